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
import type { CaptureOptions, CaptureResult } from '../capture.js';
import type { K8sSession } from './session.js';

/** The tap of a tunnelled NIC in its pod; NICs on a switch in the same pod have none. */
function tapOf(s: K8sSession, ep: CaptureEndpoint): string {
  const nic = podWiring(s.spec, ep.node).nics.find((n) => n.index === ep.index);
  if (ep.kind === 'host' && nic?.kind === 'tap') return nicTapName(ep.index);
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
  try {
    await s.api.exec(s.namespace, s.pod(ep.node), NODE_CONTAINER, argv, {
      signal: stop.signal,
      onStderr: (b) => {
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
    });
  } finally {
    if (file) await new Promise<void>((resolve) => file.end(resolve));
  }
  return { frames, endpoints: [ep.altname] };
}
