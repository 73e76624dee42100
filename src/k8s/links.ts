/**
 * A topology's links on a cluster: every link between two nodes is a VXLAN tunnel between the
 * two nodes' pods, over the pod network (no CNI plugin of ours). Pure data.
 *
 * - **VNI**: {@link vni}: `1 + (base(topology) + link) mod 16777215`, `base` = the first three
 *   bytes of sha256("falcon-vni\0" + topology). Stable across relaunches (it depends only on the
 *   topology's name and the link's declaration index), distinct for every link of a topology
 *   (consecutive modulo 2^24 - 1, so two links collide only past 16777215 links), never 0. The
 *   per-topology offset keeps two topologies' links apart too, in case a stale peer sends to a
 *   pod IP that another topology's pod has taken over.
 * - **Who listens where**: both ends. Each pod's VXLAN devices share one UDP socket on the pod's
 *   IP, port {@link DEFAULT_VXLAN_PORT} (option `vxlanPort`), demultiplexed by VNI; each end
 *   sends to its peer pod's IP on the same port (the default FDB entry of its VXLAN device),
 *   set when the peer's IP is known and replaced when the peer's pod comes back with another.
 * - **In the pod**: NIC i of the VM is the tap `nic<i>` (with the original's altname, e.g.
 *   `duo_violin_vn_sim0`); link N's VXLAN device is `vxl<N>`; a switch port tunnelled to another
 *   pod has the tap `swp<N>`, which the pod-side program bridges to the switch's port socket.
 *   The tap and the VXLAN device are wired back to back with an ingress u32 filter and
 *   `mirred egress redirect` each way, as two taps are on one host.
 * - SoftNPU links: the switch runs in the npu's pod; its port to a node in another pod is a
 *   tunnel whose npu end is a switch port, the node end a tap NIC. Sidecar links: the sidemux
 *   runs in the driver's pod, so only port 0 (the sidecar node's NIC) is a tunnel; the driver's
 *   NICs stay QEMU stream sockets on the sidemux in the same pod, as the npus' CPU NICs do.
 */
import { peerCommands, tunnelCommands } from '../host/vxlan.js';
import { createHash } from 'node:crypto';
import { altName, defaultMac } from '../model/naming.js';
import { npuPlans, sidemuxPlans, type NpuPlan } from '../model/softnpu.js';
import { endpoints, sidemuxName, type Endpoint, type LinkSpec, type TopologySpec } from '../model/spec.js';
import { DEFAULT_GUEST_MTU } from './mtu.js';
import { podName } from './names.js';

/** The IANA VXLAN port, the default of option `vxlanPort`. */
export const DEFAULT_VXLAN_PORT = 4789;
/** The largest VNI (24 bits). VNIs are 1..MAX_VNI. */
export const MAX_VNI = 0xffffff;

/**
 * The VNI offset of a topology: 0..MAX_VNI - 1, from sha256("falcon-vni\0" + name).
 *
 * ```ts
 * vniBase('duo'); // the same number on every machine and every launch
 * ```
 */
export function vniBase(topology: string): number {
  const d = createHash('sha256').update(`falcon-vni\0${topology}`).digest();
  return ((d[0]! << 16) | (d[1]! << 8) | d[2]!) % MAX_VNI;
}

/**
 * The VNI of link `link` (its index in `spec.links`) of a topology: in 1..16777215, stable,
 * and distinct from every other link of the topology.
 *
 * ```ts
 * vni('duo', 0); // e.g. 9123457
 * vni('duo', 1) === (vni('duo', 0) % 16777215) + 1; // consecutive
 * ```
 */
export function vni(topology: string, link: number): number {
  return 1 + ((vniBase(topology) + link) % MAX_VNI);
}

/** What a tunnel end is joined to in its pod. */
export type TunnelAttach =
  /** NIC `index` of the node's VM: QEMU's tap. */
  | { kind: 'nic'; node: string; index: number; mac: string }
  /** Port `port` of the switch `npu` (an npu node, or `<driver>.sidemux`) running in the pod. */
  | { kind: 'switch-port'; npu: string; port: number };

/** One end of a tunnel, in the pod of `node`. */
export interface TunnelEnd {
  /** The Falcon node whose pod holds this end. */
  node: string;
  pod: string;
  attach: TunnelAttach;
  /** The tap in the pod: `nic<i>`, or `swp<link>` for a switch port. */
  tap: string;
  /** The VXLAN device in the pod: `vxl<link>`. */
  vxlan: string;
  /** The original's interface name, given to a NIC's tap as its altname. */
  altname?: string;
}

/** One link as a tunnel between two pods. */
export interface Tunnel {
  link: number;
  kind: Exclude<LinkSpec['kind'], 'ext'>;
  vni: number;
  a: TunnelEnd;
  b: TunnelEnd;
}

/**
 * The tap name of NIC `index` in its pod.
 *
 * ```ts
 * nicTapName(0); // 'nic0'
 * ```
 */
export function nicTapName(index: number): string {
  return `nic${index}`;
}

/**
 * The VXLAN device of link `link` in a pod.
 *
 * ```ts
 * vxlanName(3); // 'vxl3'
 * ```
 */
export function vxlanName(link: number): string {
  return `vxl${link}`;
}

/**
 * The tap of a switch port tunnelled to another pod, named after its link.
 *
 * ```ts
 * switchPortTapName(1); // 'swp1'
 * ```
 */
export function switchPortTapName(link: number): string {
  return `swp${link}`;
}

function nicEnd(spec: TopologySpec, e: Endpoint): TunnelEnd {
  const mac = (e.mac ?? defaultMac(spec.name, e.node, e.index)).toLowerCase();
  const end: TunnelEnd = {
    node: e.node,
    pod: podName(e.node),
    attach: { kind: 'nic', node: e.node, index: e.index, mac },
    tap: nicTapName(e.index),
    vxlan: vxlanName(e.link),
    altname: altName(spec.name, e.node, e.index),
  };
  return end;
}

function portEnd(node: string, npu: string, port: number, link: number): TunnelEnd {
  return { node, pod: podName(node), attach: { kind: 'switch-port', npu, port }, tap: switchPortTapName(link), vxlan: vxlanName(link) };
}

function softnpuTunnel(spec: TopologySpec, link: number, eps: Endpoint[], plans: NpuPlan[]): Tunnel | undefined {
  const l = spec.links[link];
  if (l?.kind !== 'softnpu') return undefined;
  const port = plans.find((p) => p.npu === l.a.node)?.ports.find((p) => p.link === link);
  if (!port) return undefined; // an undeclared npu: validation reports it
  const a = portEnd(l.a.node, l.a.node, port.port, link);
  if (port.peer.kind === 'npu') return { link, kind: 'softnpu', vni: vni(spec.name, link), a, b: portEnd(l.b.node, port.peer.npu, port.peer.port, link) };
  const e = eps.find((x) => x.link === link);
  return e ? { link, kind: 'softnpu', vni: vni(spec.name, link), a, b: nicEnd(spec, e) } : undefined;
}

function sidecarTunnel(spec: TopologySpec, link: number, eps: Endpoint[]): Tunnel | undefined {
  const l = spec.links[link];
  if (l?.kind !== 'sidecar') return undefined;
  const sc = eps.find((x) => x.link === link && x.switchPort?.port === 0);
  if (!sc) return undefined;
  return { link, kind: 'sidecar', vni: vni(spec.name, link), a: nicEnd(spec, sc), b: portEnd(l.b.node, sidemuxName(l.b.node), 0, link) };
}

/**
 * Every link of the topology as a tunnel, in declaration order; external links have none (the
 * k8s backend refuses them at preflight).
 *
 * ```ts
 * tunnels(duo).map((t) => `${t.a.pod}:${t.a.tap} <-> ${t.b.pod}:${t.b.tap}`); // ['violin:nic0 <-> piano:nic0']
 * ```
 */
export function tunnels(spec: TopologySpec): Tunnel[] {
  const eps = endpoints(spec);
  const plans = npuPlans(spec);
  const out: Tunnel[] = [];
  spec.links.forEach((l, link) => {
    let t: Tunnel | undefined;
    if (l.kind === 'link') {
      const [ea, eb] = [eps.find((e) => e.link === link && e.side === 'a'), eps.find((e) => e.link === link && e.side === 'b')];
      if (ea && eb) t = { link, kind: 'link', vni: vni(spec.name, link), a: nicEnd(spec, ea), b: nicEnd(spec, eb) };
    } else if (l.kind === 'softnpu') t = softnpuTunnel(spec, link, eps, plans);
    else if (l.kind === 'sidecar') t = sidecarTunnel(spec, link, eps);
    if (t) out.push(t);
  });
  return out;
}

/**
 * The impairment helper's taps for link `link` in the pod of the link's `a` end, which impairs
 * both directions (what `a` sends on its way out, what `b` sends on its way in), as one helper
 * does both on a host.
 *
 * ```ts
 * impairHelperTaps(2); // { ab: 'iab2', ba: 'iba2' }
 * ```
 */
export function impairHelperTaps(link: number): { ab: string; ba: string } {
  return { ab: `iab${link}`, ba: `iba${link}` };
}

/** One NIC of a pod's VM, in the guest's order, and how QEMU gets it. */
export type PodNic =
  /** A tap (`-netdev tap,ifname=<tap>`), wired to a tunnel. */
  | { index: number; mac: string; kind: 'tap'; tap: string; link: number }
  /** A QEMU stream socket on a switch running in the same pod (an npu's CPU NICs, a driver's sidemux NICs). */
  | { index: number; mac: string; kind: 'stream'; npu: string; port: number; role: 'port' | 'cpu' | 'tfport' };

/** A tunnel end in this pod, with what it needs to reach the other end. */
export interface PodTunnel extends TunnelEnd {
  link: number;
  vni: number;
  /** UDP port, the same at both ends. */
  port: number;
  /** The other end's node and pod, whose pod IP the tunnel sends to. */
  peer: { node: string; pod: string };
}

/** Everything the pod-side program sets up for one node's pod. */
export interface PodWiring {
  topology: string;
  node: string;
  pod: string;
  /** The switch processes this pod runs: the node's own SoftNPU switch, the sidemux of a link it drives. */
  switches: { npu: string; kind: 'softnpu' | 'sidemux' }[];
  nics: PodNic[];
  tunnels: PodTunnel[];
  /** `ip`/`tc` commands (argv, the program first) that need no peer address: run before QEMU starts. */
  setup: string[][];
}

/**
 * The switch processes that run in `node`'s pod: its own SoftNPU switch, and the sidemux of the
 * sidecar link it drives.
 *
 * ```ts
 * podSwitches(softnpu, 'scrimlet').map((p) => p.npu); // ['scrimlet']
 * podSwitches(sidecar, 'scdriver').map((p) => p.npu); // ['scdriver.sidemux']
 * ```
 */
export function podSwitches(spec: TopologySpec, node: string): NpuPlan[] {
  return [...npuPlans(spec).filter((p) => p.npu === node), ...sidemuxPlans(spec).filter((p) => p.nodes[0] === node)];
}

function podNics(spec: TopologySpec, node: string, local: Set<string>, ts: Tunnel[]): PodNic[] {
  const nics: PodNic[] = [];
  for (const e of endpoints(spec)) {
    if (e.node !== node) continue;
    const mac = (e.mac ?? defaultMac(spec.name, e.node, e.index)).toLowerCase();
    if (e.switchPort && local.has(e.switchPort.npu)) nics.push({ index: e.index, mac, kind: 'stream', npu: e.switchPort.npu, port: e.switchPort.port, role: 'port' });
    else if (ts.some((t) => t.link === e.link)) nics.push({ index: e.index, mac, kind: 'tap', tap: nicTapName(e.index), link: e.link });
  }
  for (const p of npuPlans(spec)) if (p.npu === node) for (const c of p.cpuNics) nics.push({ index: c.index, mac: c.mac, kind: 'stream', npu: c.npu, port: c.port, role: c.role });
  return nics.sort((x, y) => x.index - y.index);
}

/**
 * The wiring of one node's pod: its VM's NICs, its tunnel ends, its switches, and the set-up
 * commands. `localIp` (the pod's own IP, `FALCON_POD_IP`) pins the VXLAN devices' source, which
 * an IPv6 pod network needs; `mtu` is the guest MTU (default 1500).
 *
 * ```ts
 * const w = podWiring(spec, 'violin', { vxlanPort: 4789 });
 * w.tunnels[0]; // { tap: 'nic0', vxlan: 'vxl0', vni: ..., peer: { node: 'piano', pod: 'piano' }, ... }
 * for (const argv of w.setup) await run(argv[0], argv.slice(1));
 * ```
 */
export function podWiring(spec: TopologySpec, node: string, o: { vxlanPort?: number; localIp?: string; mtu?: number } = {}): PodWiring {
  const port = o.vxlanPort ?? DEFAULT_VXLAN_PORT;
  const switches = podSwitches(spec, node);
  const local = new Set(switches.map((s) => s.npu));
  const all = tunnels(spec);
  const mine: PodTunnel[] = [];
  for (const t of all) {
    for (const [end, other] of [[t.a, t.b], [t.b, t.a]] as const)
      if (end.node === node) mine.push({ ...end, link: t.link, vni: t.vni, port, peer: { node: other.node, pod: other.pod } });
  }
  return {
    topology: spec.name,
    node,
    pod: podName(node),
    switches: switches.map((s) => ({ npu: s.npu, kind: s.kind })),
    nics: podNics(spec, node, local, all),
    tunnels: mine,
    setup: mine.flatMap((t) => tunnelSetupCommands(t, { localIp: o.localIp, mtu: o.mtu })),
  };
}

/** Handle of the one u32 filter on each device, as on the host, so `filter replace` is idempotent. */

/**
 * The commands that make a tunnel end's tap and VXLAN device and wire them back to back; no
 * peer address yet (frames are dropped until {@link tunnelPeerCommands} gives one). The tap has
 * no IPv6 link-local address: the pod must not talk on the topology's links.
 *
 * ```ts
 * tunnelSetupCommands(w.tunnels[0])[0]; // ['ip', 'tuntap', 'add', 'dev', 'nic0', 'mode', 'tap']
 * ```
 */
export function tunnelSetupCommands(t: PodTunnel, o: { localIp?: string; mtu?: number } = {}): string[][] {
  const mtu = o.mtu ?? DEFAULT_GUEST_MTU;
  const wiring = tunnelCommands({ ifname: t.vxlan, vni: t.vni, local: o.localIp, port: t.port, mtu }, t.tap);
  return [
    ['ip', 'tuntap', 'add', 'dev', t.tap, 'mode', 'tap'],
    ['ip', 'link', 'set', 'dev', t.tap, 'mtu', String(mtu), 'addrgenmode', 'none'],
    ...(t.altname ? [['ip', 'link', 'property', 'add', 'dev', t.tap, 'altname', t.altname]] : []),
    ['ip', 'link', 'set', 'dev', t.tap, 'up'],
    ...wiring.ip.map((c) => ['ip', ...c]),
    ...wiring.tc.map((c) => ['tc', ...c]),
  ];
}

/**
 * The commands pointing a tunnel end at its peer's pod IP: the VXLAN device's default FDB entry
 * (`bridge fdb replace` leaves an all-zero entry alone, so the old one is deleted first).
 *
 * ```ts
 * tunnelPeerCommands(t, '10.244.1.7');
 * // [['bridge', 'fdb', 'append', '00:00:00:00:00:00', 'dev', 'vxl0', 'dst', '10.244.1.7']]
 * tunnelPeerCommands(t, '10.244.2.9', '10.244.1.7'); // del the old entry, then append
 * ```
 */
export function tunnelPeerCommands(t: Pick<PodTunnel, 'vxlan'>, peerIp: string, previousIp?: string): string[][] {
  return peerCommands(t.vxlan, peerIp, previousIp).map((c) => ['bridge', ...c]);
}
