/**
 * capture on a cluster: tcpdump on the NIC's tap in the node's pod (`falcon-node capture`),
 * its pcap streamed back over `pods/exec`; a summary line per frame is made here, as locally.
 */
import { createWriteStream } from 'node:fs';
import { nicTapName, NODE_COMMAND, NODE_CONTAINER, podWiring } from '../../k8s/index.js';
import { PcapReader, summarizeFrame } from '../../host/pcap.js';
import type { CaptureEndpoint } from '../../model/capture.js';
import { combineSignals } from '../../util/abort.js';
import { FalconError } from '../../util/errors.js';
import { captureIntoPcapng, type CaptureOptions, type CaptureResult } from '../capture.js';
import type { K8sSession } from './session.js';

/** The tap of a tunnelled NIC in its pod, or undefined: NICs on a switch in the same pod have none. */
function podTap(s: K8sSession, ep: CaptureEndpoint): string | undefined {
  const nic = podWiring(s.spec, ep.node).nics.find((n) => n.index === ep.index);
  return ep.kind === 'host' && nic?.kind === 'tap' ? nicTapName(ep.index) : undefined;
}

function tapOf(s: K8sSession, ep: CaptureEndpoint): string {
  const tap = podTap(s, ep);
  if (tap) return tap;
  throw new FalconError('CAPTURE_ENDPOINT', `${ep.altname} (${ep.node} NIC ${ep.index}) is a socket on a switch in the pod of "${ep.kind === 'switch' ? ep.npu : ep.node}", with no interface to capture on a cluster; capture the NIC at the link's other end, or use npu ${ep.kind === 'switch' ? ep.npu : ep.node} capture inside the scrimlet`);
}

export async function k8sCapture(s: K8sSession, ep: CaptureEndpoint, o: CaptureOptions): Promise<CaptureResult> {
  if (!o.output && !o.onLine) throw new FalconError('INVALID_ARGUMENT', 'capture: give an output (file or function) or onLine');
  const tap = tapOf(s, ep);
  await s.requirePod(ep.node);
  using stop = combineSignals(o.durationMs, o.signal);
  const file = typeof o.output === 'string' ? createWriteStream(o.output, { mode: 0o600 }) : undefined;
  const write = typeof o.output === 'function' ? o.output : file ? (b: Buffer) => void file.write(b) : undefined;
  const reader = new PcapReader();
  let frames = 0;
  let ready = false;
  const argv = [NODE_COMMAND, 'capture', '--tap', tap, ...(o.count !== undefined ? ['--count', String(o.count)] : []), ...(o.filter?.length ? ['--', ...o.filter] : [])];
  let stderr = '';
  try {
    const res = await s.api.exec(s.namespace, s.pod(ep.node), NODE_CONTAINER, argv, {
      // An open stdin: falcon-node stops tcpdump when it ends (the exec closing), not at once.
      stdin: Buffer.alloc(0),
      signal: stop.signal,
      onStderr: (b) => {
        stderr = (stderr + b.toString('utf8')).slice(-2000);
        if (!ready && /listening on/.test(b.toString('utf8'))) {
          ready = true;
          o.onReady?.();
        }
      },
      onStdout: (b) => {
        const pkts = reader.push(b);
        frames += pkts.length;
        if (write) write(b);
        else for (const p of pkts) o.onLine!(summarizeFrame(p.data));
      },
    }).catch((e: unknown) => {
      // The capture's end (ctrl-c, duration) closes the exec.
      if (!stop.signal.aborted) throw e;
      return undefined;
    });
    if (res && res.exitCode !== 0 && !stop.signal.aborted)
      throw new FalconError('K8S_POD', `capture of ${ep.altname} (tap ${tap} in pod ${s.namespace}/${s.pod(ep.node)}) failed (exit ${res.exitCode}): ${stderr.trim().split('\n').slice(-3).join('; ')}`);
  } finally {
    if (file) await new Promise<void>((resolve) => file.end(resolve));
  }
  return { frames, endpoints: [ep.altname] };
}

/**
 * `capture --all` on a cluster: every NIC with a tap in its pod, each a `falcon-node capture`
 * over `pods/exec`, merged into one pcapng as locally. NICs that are sockets on a switch in
 * their own pod have no tap; they are left out with a warning naming them.
 */
export async function k8sCaptureAll(s: K8sSession, eps: CaptureEndpoint[], o: CaptureOptions & { output: string | ((chunk: Buffer) => void) }): Promise<CaptureResult> {
  const taps = eps.filter((e) => podTap(s, e) !== undefined);
  const left = eps.filter((e) => podTap(s, e) === undefined);
  if (!taps.length) throw new FalconError('CAPTURE_ENDPOINT', `topology "${s.spec.name}" has no NIC with a tap in its pod to capture (${left.map((e) => e.altname).join(', ') || 'no links'} are sockets on switches)`);
  if (left.length) s.c.log.log({ kind: 'warn', msg: `capture --all: ${left.map((e) => e.altname).join(', ')} are sockets on a switch in their pod, with no tap: left out` });
  await Promise.all([...new Set(taps.map((e) => e.node))].map((n) => s.requirePod(n)));
  return captureIntoPcapng(taps, o, (put, signal, ready) => ({
    sources: taps.length,
    jobs: taps.map((e, i) => {
      const reader = new PcapReader();
      return k8sCapture(s, e, {
        filter: o.filter,
        signal,
        onReady: ready,
        output: (b) => {
          for (const p of reader.push(b)) put(i, p);
        },
      }).then(() => undefined);
    }),
  }));
}
