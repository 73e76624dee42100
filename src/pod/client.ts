/** The pod-side end of a request to the supervisor: `falcon-node ctl`, `ready`, `peers`. */
import net from 'node:net';
import type { PodReply, PodRequest } from '../k8s/index.js';
import { FalconError } from '../util/errors.js';

/** Send one request to the supervisor's control socket and wait for its reply. */
export function askSupervisor(socket: string, r: PodRequest, timeoutMs: number): Promise<PodReply> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(socket);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new FalconError('TIMEOUT', `the node's supervisor did not answer "${r.op}" within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    sock.on('connect', () => sock.write(JSON.stringify(r) + '\n'));
    sock.on('data', (d) => (buf += d.toString('utf8')));
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(new FalconError('K8S_POD', `the node's supervisor is not answering on ${socket} (${e.message}); the pod is still starting, or its falcon-node container ended`, { cause: e }));
    });
    sock.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(buf) as PodReply);
      } catch {
        reject(new FalconError('K8S_POD', `the node's supervisor sent no reply to "${r.op}"`));
      }
    });
  });
}
