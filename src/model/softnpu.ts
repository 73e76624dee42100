/**
 * The SoftNPU switches of a topology, as pure data: which node runs a switch, its program,
 * its ports (port i = the npu's i-th declared SoftNPU link; port 0 = the CPU port) and the
 * NICs QEMU gives the nodes on those ports. The runner turns this into switch configs and
 * QEMU stream NICs; nothing here touches the host.
 */
import { createHash } from 'node:crypto';
import { defaultMac } from './naming.js';
import { endpoints, linkNicCount, sidemuxName, type SoftnpuOptions, type TopologySpec } from './spec.js';

/** The switch's defaults: Oxide's sidecar-lite program, one raw CPU NIC. */
export const SOFTNPU_DEFAULTS: SoftnpuOptions = { program: 'sidecar-lite', cpuPort: 'raw' };

/** What a switch port is joined to. */
export type NpuPortPeer =
  /** A NIC of a node (its QEMU serves the socket; the switch connects). */
  | { kind: 'nic'; node: string; index: number }
  /** A port of another switch (`softnpuLinks`): the `a` side serves, the `b` side connects. */
  | { kind: 'npu'; npu: string; port: number; serves: boolean };

/** A NIC of a node that is a QEMU stream socket rather than a tap. */
export interface StreamNic {
  node: string;
  /** Index among the node's NICs (the guest's order). */
  index: number;
  mac: string;
  /** The switch and port whose socket this is: port 0 for the CPU NIC, p for tfport p. */
  npu: string;
  port: number;
  role: 'port' | 'cpu' | 'tfport';
}

export interface NpuPlan {
  /** `softnpu`: an npu node's switch; `sidemux`: the switch of a sidecar link. */
  kind: 'softnpu' | 'sidemux';
  /** The switch's name: the npu node, or `<driver>.sidemux`. */
  npu: string;
  /** The nodes whose VMs this switch serves: the npu; or the driver and the sidecar. */
  nodes: string[];
  /** sidemux: port 0, the sidecar node's NIC. */
  port0?: { node: string; index: number };
  options: SoftnpuOptions;
  /** N, the data ports. */
  radix: number;
  /** Ports 1..N in order. */
  ports: { port: number; link: number; peer: NpuPortPeer }[];
  /** The npu node's CPU-port NICs (raw: one; tfports: one per data port), after its link NICs. */
  cpuNics: StreamNic[];
}

/**
 * The CPU NIC's MAC: a8:40:25 (Oxide's prefix, as the original's vnics) then 0xf and 20 bits
 * of a hash, so it is stable per topology and node and unlike any derived link MAC (02:...).
 */
export function cpuNicMac(topology: string, npu: string): string {
  const d = createHash('sha256').update(['cpu', topology, npu].join('\0')).digest();
  const b = [0xa8, 0x40, 0x25, 0xf0 | (d[0]! & 0x0f), d[1]!, d[2]!];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Every node that runs a switch: an `a` end of softnpuLink, either end of softnpuLinks, or given options. */
export function npuNodes(spec: TopologySpec): string[] {
  const names = new Set<string>();
  for (const l of spec.links) {
    if (l.kind !== 'softnpu') continue;
    names.add(l.a.node);
    if (l.bIsNpu) names.add(l.b.node);
  }
  for (const n of spec.nodes) if (n.softnpu) names.add(n.name);
  return spec.nodes.map((n) => n.name).filter((n) => names.has(n));
}

/** The switches of a topology with their ports and the NICs on them. */
export function npuPlans(spec: TopologySpec): NpuPlan[] {
  const eps = endpoints(spec);
  const plans = new Map<string, NpuPlan>();
  for (const npu of npuNodes(spec)) {
    const node = spec.nodes.find((n) => n.name === npu)!;
    plans.set(npu, { kind: 'softnpu', npu, nodes: [npu], options: { ...SOFTNPU_DEFAULTS, ...node.softnpu }, radix: 0, ports: [], cpuNics: [] });
  }
  spec.links.forEach((l, link) => {
    if (l.kind !== 'softnpu') return;
    const a = plans.get(l.a.node);
    if (!a) return; // an undeclared node: validation reports it
    const port = ++a.radix;
    if (!l.bIsNpu) {
      const e = eps.find((x) => x.link === link)!;
      a.ports.push({ port, link, peer: { kind: 'nic', node: e.node, index: e.index } });
      return;
    }
    const b = plans.get(l.b.node);
    if (!b) return;
    const bPort = ++b.radix;
    a.ports.push({ port, link, peer: { kind: 'npu', npu: b.npu, port: bPort, serves: true } });
    b.ports.push({ port: bPort, link, peer: { kind: 'npu', npu: a.npu, port, serves: false } });
  });
  for (const p of plans.values()) {
    // CPU NICs come after the npu's link NICs and the indexes it reserved with bumpRadix.
    const first = linkNicCount(spec, p.npu);
    if (p.options.cpuPort === 'raw') {
      p.cpuNics.push({ node: p.npu, index: first, mac: cpuNicMac(spec.name, p.npu), npu: p.npu, port: 0, role: 'cpu' });
    } else {
      p.ports.forEach((port, i) => {
        const l = spec.links[port.link]!;
        // The npu end's MAC (softnpuLink's npuMac) names the scrimlet NIC standing for that port.
        const declared = l.kind === 'softnpu' ? (l.a.node === p.npu ? l.a.mac : l.b.mac) : undefined;
        const index = first + i;
        p.cpuNics.push({ node: p.npu, index, mac: (declared ?? defaultMac(spec.name, p.npu, index)).toLowerCase(), npu: p.npu, port: port.port, role: 'tfport' });
      });
    }
  }
  return [...plans.values()];
}

/** The sidemux switch of each sidecar link: port 0 the sidecar's NIC, ports 1..radix the driver's NICs. */
export function sidemuxPlans(spec: TopologySpec): NpuPlan[] {
  const eps = endpoints(spec);
  const out: NpuPlan[] = [];
  spec.links.forEach((l, link) => {
    if (l.kind !== 'sidecar') return;
    const mine = eps.filter((e) => e.link === link);
    const sc = mine.find((e) => e.switchPort?.port === 0)!;
    const driver = mine.filter((e) => e !== sc);
    out.push({
      kind: 'sidemux',
      npu: sidemuxName(l.b.node),
      nodes: [l.b.node, l.a.node],
      port0: { node: sc.node, index: sc.index },
      options: { program: 'sidemux', cpuPort: 'raw' },
      radix: driver.length,
      ports: driver.map((e) => ({ port: e.switchPort!.port, link, peer: { kind: 'nic', node: e.node, index: e.index } })),
      cpuNics: [],
    });
  });
  return out;
}

/** Every switch process of the topology: the npus', then the sidemuxes. */
export function switchPlans(spec: TopologySpec): NpuPlan[] {
  return [...npuPlans(spec), ...sidemuxPlans(spec)];
}

/** Every stream NIC of the topology: nodes' NICs on switch ports, and the npus' CPU NICs. */
export function streamNics(spec: TopologySpec, plans: NpuPlan[] = npuPlans(spec)): StreamNic[] {
  const out: StreamNic[] = [];
  for (const e of endpoints(spec)) {
    if (!e.switchPort) continue;
    out.push({ node: e.node, index: e.index, mac: (e.mac ?? defaultMac(spec.name, e.node, e.index)).toLowerCase(), npu: e.switchPort.npu, port: e.switchPort.port, role: 'port' });
  }
  for (const p of plans) out.push(...p.cpuNics);
  return out;
}
