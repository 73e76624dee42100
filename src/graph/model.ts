/**
 * The topology graph as data: what `graph --format json` prints and what the Mermaid and DOT
 * renderers draw. Built from `Runner.info()` alone, so statuses are live and a topology that was
 * never launched graphs too.
 */
import { formatImpairment } from '../model/impair.js';
import type { LinkEndInfo, LinkInfo, NodeInfo, TopologyInfo } from '../runner/runner.js';
import type { SwitchInfo } from '../runner/switches.js';
import { sidemuxName } from '../model/spec.js';

/** A VM (`node`), a switch process (`switch`: SoftNPU or sidemux) or a host interface (`host`, an extLink's). */
export interface GraphNode {
  /** Unique and made of `[A-Za-z0-9_]` only: a Mermaid and DOT id as is. */
  id: string;
  kind: 'node' | 'switch' | 'host';
  /** The node name, the switch's name (`npu` or `driver.sidemux`), or the host interface. */
  name: string;
  /** `running`, `stopped` or `not launched`; a host interface is `host`. */
  status: 'running' | 'stopped' | 'not launched' | 'host';
  /** VMs only. */
  image?: string;
  cores?: number;
  memoryMiB?: number;
  /** Switches only: the pipeline program, the CPU port mode and the data port count. */
  program?: string;
  cpuPort?: 'raw' | 'tfports';
  radix?: number;
  /** Switches only: port 0 (the CPU port) and the data ports, with what each connects. */
  ports?: { port: number; to: string }[];
  /** VMs with extra disks (`disk()`): each disk's name, bus, size and serial, in declaration order. */
  disks?: GraphDisk[];
  /** VMs with raw QEMU devices (`qemuDevice()`): driver and properties, as declared. */
  devices?: GraphDevice[];
}

/** An extra disk of a VM, as the graph shows it. */
export interface GraphDisk {
  name: string;
  bus: 'nvme' | 'virtio' | 'none';
  sizeGiB: number;
  serial: string;
}

/** A raw QEMU device of a VM. */
export interface GraphDevice {
  driver: string;
  props: Record<string, string | number | boolean>;
}

/** What the graph reads of a node beyond what every NodeInfo has: its disks and raw devices. */
type NodeExtras = { disks?: readonly (GraphDisk & { path?: string })[]; devices?: readonly GraphDevice[] };

/** One end of an edge: a NIC of a VM (`nic`), a switch port (`port`), or a host interface. */
export interface GraphEnd {
  /** The `GraphNode.id` of this end. */
  id: string;
  /** The node, switch or host interface name. */
  name: string;
  /** The NIC's index in the guest; for a sidecar link's driver end, the first of `radix` NICs. */
  nic?: number;
  /** The switch port number; for a sidecar link's driver end, the first of `radix` ports. */
  port?: number;
  /** The host interface of a tap or macvtap end (`ip link` shows it with `altname`). */
  ifname?: string;
  altname?: string;
}

/**
 * A link: `link` (two taps), `ext` (a macvtap on a host interface), `softnpu` (a switch port to a
 * NIC or to another switch's port), `sidecar` (sidecar NIC to sidemux port 0, or sidemux ports to
 * driver NICs), `cpu` (a SoftNPU switch's port 0 to its npu node's CPU NIC).
 */
export interface GraphEdge {
  kind: 'link' | 'ext' | 'softnpu' | 'sidecar' | 'cpu';
  /** The index of the link in the topology (its `info().links` entry); absent for `cpu` edges. */
  link?: number;
  from: GraphEnd;
  to: GraphEnd;
  /** extLink: `bridge` (extLink) or `passthru` (extLinkExclusive). */
  macvtapMode?: 'bridge' | 'passthru';
  /** Sidecar edges: the sidemux's radix. */
  radix?: number;
  /** Extra labels of the link (the hook for impairment: e.g. `delay 20ms`); empty when none. */
  labels: string[];
}

/** `graph --format json`: the topology's name, its nodes and its edges. */
export interface TopologyGraph {
  topology: string;
  nodes: GraphNode[];
  edges: GraphEdge[];
}

export interface GraphOptions {
  /**
   * Labels for a link (index into `info.links`), drawn on its edges and listed in `labels`.
   * Default: its impairment (`delay 100ms, loss 10%`, per direction when they differ).
   */
  linkLabels?: (link: LinkInfo, index: number) => string[] | undefined;
}

/** An id of `[A-Za-z0-9_]` only, one-to-one with (prefix, name): `h-2.x` -> `n_h_2d2_2ex`. */
export function graphId(prefix: 'n' | 'sw' | 'host', name: string): string {
  return `${prefix}_${name.replace(/[^A-Za-z0-9]/g, (c) => `_${c.charCodeAt(0).toString(16)}`)}`;
}

/** A link's impairment as edge labels: one when both directions match, else one per direction. */
export function impairmentLabels(l: LinkInfo): string[] {
  const imp = l.impairment;
  if (!imp || (!imp.ab && !imp.ba)) return [];
  const ab = formatImpairment(imp.ab);
  const ba = formatImpairment(imp.ba);
  if (ab === ba) return [ab];
  const a = `${l.a.node}:${l.a.index}`;
  const b = l.b ? `${l.b.node}:${l.b.index}` : 'b';
  return [...(imp.ab ? [`${a}→${b}: ${ab}`] : []), ...(imp.ba ? [`${b}→${a}: ${ba}`] : [])];
}

/** The graph of a topology as `Runner.info()` describes it. */
export function topologyGraph(info: TopologyInfo, o: GraphOptions = {}): TopologyGraph {
  const statusOf = new Map(info.nodes.map((n) => [n.name, graphStatus(n.status)]));
  const nodes: GraphNode[] = info.nodes.map(vmNode);
  for (const s of info.switches) nodes.push(switchNode(s, statusOf));
  const edges: GraphEdge[] = [];
  // The CPU port of each SoftNPU switch is a NIC of its npu node (port 0; tfports: several NICs).
  for (const s of info.switches.filter((x) => x.kind === 'softnpu')) {
    edges.push({ kind: 'cpu', from: { id: graphId('sw', s.node), name: s.node, port: 0 }, to: { id: graphId('n', s.node), name: s.node }, labels: [] });
  }
  info.links.forEach((l, i) => {
    const labels = (o.linkLabels ?? impairmentLabels)(l, i) ?? [];
    const vm = (e: LinkEndInfo): GraphEnd => ({ id: graphId('n', e.node), name: e.node, nic: e.index, ...(e.ifname ? { ifname: e.ifname, altname: e.altname } : {}) });
    if (l.kind === 'link' && l.b) edges.push({ kind: 'link', link: i, from: vm(l.a), to: vm(l.b), labels });
    else if (l.kind === 'ext') {
      const host = l.hostIfx ?? 'host';
      if (!nodes.some((n) => n.kind === 'host' && n.name === host)) nodes.push({ id: graphId('host', host), kind: 'host', name: host, status: 'host' });
      edges.push({ kind: 'ext', link: i, from: vm(l.a), to: { id: graphId('host', host), name: host }, macvtapMode: l.exclusive ? 'passthru' : 'bridge', labels });
    } else if (l.kind === 'softnpu' && l.b) {
      const end = (e: LinkEndInfo): GraphEnd => (e.port !== undefined ? { id: graphId('sw', e.node), name: e.node, port: e.port } : vm(e));
      edges.push({ kind: 'softnpu', link: i, from: end(l.a), to: end(l.b), labels });
    } else if (l.kind === 'sidecar' && l.b) {
      const mux = sidemuxName(l.b.node);
      const radix = info.switches.find((s) => s.node === mux)?.radix;
      const muxEnd = (port: number): GraphEnd => ({ id: graphId('sw', mux), name: mux, port });
      edges.push({ kind: 'sidecar', link: i, from: vm(l.a), to: muxEnd(0), radix, labels });
      edges.push({ kind: 'sidecar', link: i, from: muxEnd(1), to: vm(l.b), radix, labels });
    }
  });
  return { topology: info.name, nodes, edges };
}

/** A node's status as the graph draws it: a cluster's `pod gone` as never launched, `starting` and `failed` as stopped. */
function graphStatus(s: NodeInfo['status']): GraphNode['status'] {
  if (s === 'running' || s === 'not launched' || s === 'stopped') return s;
  return s === 'pod gone' ? 'not launched' : 'stopped';
}

/** A VM's graph node; disks and devices only when it has some. */
function vmNode(n: NodeInfo & NodeExtras): GraphNode {
  const g: GraphNode = { id: graphId('n', n.name), kind: 'node', name: n.name, status: graphStatus(n.status), image: n.image, cores: n.cores, memoryMiB: n.memoryMiB };
  if (n.disks?.length) g.disks = n.disks.map((d) => ({ name: d.name, bus: d.bus, sizeGiB: d.sizeGiB, serial: d.serial }));
  if (n.devices?.length) g.devices = n.devices.map((d) => ({ driver: d.driver, props: { ...d.props } }));
  return g;
}

function switchNode(s: SwitchInfo, statusOf: Map<string, GraphNode['status']>): GraphNode {
  // A switch runs beside its VM (the npu, or the sidemux's driver): never launched if that VM was not.
  const owner = s.kind === 'sidemux' ? s.node.replace(/\.sidemux$/, '') : s.node;
  const status = s.status === 'running' ? 'running' : statusOf.get(owner) === 'not launched' ? 'not launched' : 'stopped';
  return { id: graphId('sw', s.node), kind: 'switch', name: s.node, status, program: s.program, cpuPort: s.cpuPort, radix: s.radix, ports: s.ports };
}
