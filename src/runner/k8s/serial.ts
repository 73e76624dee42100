/**
 * The serial console of a node on a cluster: `falcon-node serial` in its pod over `pods/exec`,
 * as a {@link SerialConsole} the CLI's attach uses like a local console socket.
 */
import { PassThrough, Writable } from 'node:stream';
import { NODE_COMMAND, NODE_CONTAINER } from '../../k8s/index.js';
import type { SerialConsole } from '../serial-console.js';
import type { K8sSession } from './session.js';

export async function k8sConsole(s: K8sSession, node: string): Promise<SerialConsole> {
  await s.requirePod(node);
  const input = new PassThrough();
  const listeners = new Set<(b: Buffer) => void>();
  const closers = new Set<() => void>();
  const ac = new AbortController();
  const out = new Writable({
    write(chunk: Buffer, _e, next) {
      for (const l of listeners) l(chunk);
      next();
    },
  });
  const err = new Writable({ write: (_c, _e, next) => next() });
  const done = s.api
    .execStream(s.namespace, s.pod(node), NODE_CONTAINER, [NODE_COMMAND, 'serial', '--node', node], { stdin: input, stdout: out, stderr: err, signal: ac.signal })
    .catch(() => null)
    .finally(() => {
      for (const c of closers) c();
    });
  return {
    nodeName: node,
    write: (b) => void input.write(b),
    onData: (cb) => (listeners.add(cb), () => listeners.delete(cb)),
    onClose: (cb) => (closers.add(cb), () => closers.delete(cb)),
    close: async () => {
      closers.clear();
      input.end();
      ac.abort();
      await done;
    },
  };
}
