/**
 * What `capture` can listen on, as pure data: every NIC of the topology, named `node:index`
 * (the node's index-th NIC, declaration order) or by its altname (`<topology>_<node>_vn_sim<i>`,
 * as `info` shows). A NIC on a host interface (tap, macvtap) is captured with tcpdump; a NIC
 * on a switch port through the switch's control socket.
 */
import { FalconError } from '../util/errors.js';
import { altName, hostInterfaces } from './naming.js';
import { streamNics } from './softnpu.js';
import type { TopologySpec } from './spec.js';

export type CaptureEndpoint =
  /** A host interface: tcpdump listens on `ifname`. */
  | { kind: 'host'; node: string; index: number; altname: string; ifname: string }
  /** A NIC on port `port` of the switch `npu` (a SoftNPU node or a sidemux): the switch captures it. */
  | { kind: 'switch'; node: string; index: number; altname: string; npu: string; port: number };

/**
 * Every capturable NIC of the topology, by node then index. The NICs standing for switch
 * ports in `tfports` mode are left out: the switch sees their frames on port 0, with the
 * sidecar header (`npu NODE capture --port 0`).
 */
export function captureEndpoints(spec: TopologySpec): CaptureEndpoint[] {
  const out: CaptureEndpoint[] = hostInterfaces(spec).map((h) => ({ kind: 'host', node: h.node, index: h.index, altname: h.altname, ifname: h.ifname }));
  for (const s of streamNics(spec)) {
    if (s.role === 'tfport') continue;
    out.push({ kind: 'switch', node: s.node, index: s.index, altname: altName(spec.name, s.node, s.index), npu: s.npu, port: s.port });
  }
  const order = new Map(spec.nodes.map((n, i) => [n.name, i]));
  return out.sort((a, b) => (order.get(a.node) ?? 0) - (order.get(b.node) ?? 0) || a.index - b.index);
}

/**
 * The endpoint `text` names: `node:index` or an altname.
 * @throws FalconError CAPTURE_ENDPOINT naming what exists when nothing matches.
 */
export function resolveEndpoint(spec: TopologySpec, text: string): CaptureEndpoint {
  const all = captureEndpoints(spec);
  const fail = (why: string) => new FalconError('CAPTURE_ENDPOINT', `topology "${spec.name}": ${why}`);
  const byName = all.find((e) => e.altname === text);
  if (byName) return byName;
  const m = /^([^:]+):(\d+)$/.exec(text);
  const listing = all.map((e) => `${e.node}:${e.index} (${e.altname})`).join(', ') || '(none: the topology has no links)';
  if (!m) throw fail(`"${text}" is neither node:index nor an altname; the endpoints are: ${listing}`);
  const node = m[1]!;
  const index = Number(m[2]);
  if (!spec.nodes.some((n) => n.name === node)) throw fail(`has no node "${node}"; its nodes are: ${spec.nodes.map((n) => n.name).join(', ') || '(none)'}`);
  const mine = all.filter((e) => e.node === node);
  const hit = mine.find((e) => e.index === index);
  if (hit) return hit;
  const tf = streamNics(spec).find((s) => s.node === node && s.index === index && s.role === 'tfport');
  if (tf)
    throw fail(`${text} is the NIC standing for port ${tf.port} of the switch of "${tf.npu}" (tfports mode), which the switch sees on port 0 with the sidecar header; capture that with: npu ${tf.npu} capture --port 0`);
  const have = mine.map((e) => `${e.node}:${e.index}`).join(', ');
  throw fail(`node "${node}" has no NIC ${index}; ${have ? `its NICs are: ${have}` : 'it has no NICs'}`);
}
