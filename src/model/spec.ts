/**
 * The serialized form of a topology, saved as `.falcon/topology.json` at preflight and launch.
 * Later commands (serial, exec, hyperstart, snapshot, destroy) work from it alone.
 */
import { z } from 'zod';

export const TOPOLOGY_FILE_VERSION = 1;

const smbiosType1 = z
  .object({
    manufacturer: z.string().optional(),
    product: z.string().optional(),
    version: z.string().optional(),
    serial: z.string().optional(),
    uuid: z.string().optional(),
    sku: z.string().optional(),
    family: z.string().optional(),
  })
  .strict();

/** The switch of a SoftNPU node (`Topology.softnpu`): its pipeline program and CPU-port mode. */
export const softnpuOptionsSchema = z
  .object({
    /** `sidecar-lite`, `wire`, or the absolute path of a module exporting createPipeline(radix). */
    program: z.string(),
    /** `raw`: one CPU NIC carrying sidecar-header frames; `tfports`: one scrimlet NIC per switch port. */
    cpuPort: z.enum(['raw', 'tfports']),
  })
  .strict();

/**
 * An extra disk of a node (`Topology.disk`): a blank qcow2 of `sizeGiB` beside the node's boot
 * disk, attached as NVMe or virtio, or (`none`) only created, for a qemuDevice to attach.
 */
export const diskSpecSchema = z
  .object({
    /** Unique on the node: `[a-z0-9][a-z0-9_-]*`, up to 32 characters; names the file and QEMU's drive id. */
    name: z.string(),
    sizeGiB: z.number(),
    bus: z.enum(['nvme', 'virtio', 'none']),
    /** What the guest reads as the disk's serial (NVMe: /sys/class/nvme/nvmeN/serial). */
    serial: z.string(),
  })
  .strict();

/** A raw `-device driver,prop=value,...` (`Topology.qemuDevice`), passed to QEMU as is. */
export const qemuDeviceSpecSchema = z
  .object({
    driver: z.string(),
    props: z.record(z.union([z.string(), z.number(), z.boolean()])),
  })
  .strict();

export const nodeSpecSchema = z
  .object({
    name: z.string(),
    /** Position in declaration order; the original's node id. */
    id: z.number().int(),
    image: z.string(),
    cores: z.number(),
    memoryMiB: z.number(),
    mounts: z.array(z.object({ source: z.string(), destination: z.string() }).strict()),
    /** Virtual disk size; the image's own size when absent. */
    reserveGiB: z.number().optional(),
    /** Copy-on-write overlay on the base image, or a full independent copy. */
    backing: z.enum(['overlay', 'copy']),
    vncPort: z.number().optional(),
    /** TCG translation cache size in MiB (`-accel tcg,tb-size=`); QEMU's default (1 GiB) when absent. */
    tcgCacheMiB: z.number().optional(),
    bootIso: z.string().optional(),
    doSetup: z.boolean(),
    smbiosType1: smbiosType1.optional(),
    /** Options of the node's SoftNPU switch; defaults apply when absent. */
    softnpu: softnpuOptionsSchema.optional(),
    /** Extra disks, in declaration order (absent in files from before they existed). */
    disks: z.array(diskSpecSchema).optional(),
    /** Raw QEMU devices, in declaration order; on the command line after Falcon's own. */
    devices: z.array(qemuDeviceSpecSchema).optional(),
    /** NIC indexes reserved with `bumpRadix`: no link takes them; their PCI slots stay empty. */
    reservedNics: z.array(z.number()).optional(),
  })
  .strict();

/** One direction's impairment (see model/impair.ts for meanings and limits). */
export const impairmentSchema = z
  .object({
    delayMs: z.number().optional(),
    jitterMs: z.number().optional(),
    lossPct: z.number().optional(),
    duplicatePct: z.number().optional(),
    corruptPct: z.number().optional(),
    reorderPct: z.number().optional(),
    rateMbit: z.number().optional(),
  })
  .strict();

/** A link's impairment as saved: one entry per impaired direction. */
export const linkImpairSchema = z.object({ ab: impairmentSchema.optional(), ba: impairmentSchema.optional() }).strict();

const end = z.object({ node: z.string(), mac: z.string().optional() }).strict();

export const linkSpecSchema = z.discriminatedUnion('kind', [
  /** A point-to-point link between two nodes. */
  z.object({ kind: z.literal('link'), a: end, b: end, impair: linkImpairSchema.optional() }).strict(),
  /** A node on a host interface; `hostIfx: null` means the default route's interface. */
  z.object({ kind: z.literal('ext'), a: end, hostIfx: z.string().nullable(), exclusive: z.boolean() }).strict(),
  /** A port of the SoftNPU ASIC in node `a` to node `b` (both ends may be ASICs). */
  z.object({ kind: z.literal('softnpu'), a: end, b: end, bIsNpu: z.boolean() }).strict(),
  /** Sidecar CPU-port link: `a` is the sidecar, `b` the driver, `radix` its port count. */
  z.object({ kind: z.literal('sidecar'), a: end, b: end, radix: z.number() }).strict(),
]);

export const topologySpecSchema = z
  .object({
    version: z.literal(TOPOLOGY_FILE_VERSION),
    name: z.string(),
    nodes: z.array(nodeSpecSchema),
    links: z.array(linkSpecSchema),
  })
  .strict();

export type NodeSpec = z.infer<typeof nodeSpecSchema>;
export type LinkSpec = z.infer<typeof linkSpecSchema>;
export type LinkEnd = z.infer<typeof end>;
export type DirectedImpairment = z.infer<typeof linkImpairSchema>;
export type SmbiosType1 = z.infer<typeof smbiosType1>;
export type SoftnpuOptions = z.infer<typeof softnpuOptionsSchema>;
export type DiskSpec = z.infer<typeof diskSpecSchema>;
export type QemuDeviceSpec = z.infer<typeof qemuDeviceSpecSchema>;
export type TopologySpec = z.infer<typeof topologySpecSchema>;

/** One network interface of a node, in the order the guest sees them. */
export interface Endpoint {
  node: string;
  /** Index among the node's interfaces: declaration order of its links. */
  index: number;
  /** Index of the link in `TopologySpec.links`. */
  link: number;
  side: 'a' | 'b';
  mac?: string;
  /** The node at the other end, for node-to-node links. */
  peer?: { node: string; index: number };
  /** A NIC on a port of a switch process (a QEMU stream socket, not a tap): an npu's, or a sidemux (`npu` is then {@link sidemuxName}). */
  switchPort?: { npu: string; port: number };
}

/** The name of the sidemux switch of a sidecar link: after its driver (no node name has a "."). */
export function sidemuxName(driver: string): string {
  return `${driver}.sidemux`;
}

/** Sidecar radixes beyond this are invalid (validation says so); planning stops there. */
export const MAX_SIDECAR_RADIX = 64;

/** What endpoint indexes are computed from: the links, and the nodes' reserved indexes. */
export type EndpointSource = Pick<TopologySpec, 'links'> & { nodes: readonly Pick<NodeSpec, 'name' | 'reservedNics'>[] };

/**
 * Every endpoint of the topology, indexes assigned in the order links were declared, skipping
 * the indexes a node reserved with `bumpRadix` (so tap names, altnames and MACs, all derived
 * from the index, skip them too).
 *
 * ```ts
 * endpoints(d.toSpec()).map((e) => `${e.node}:${e.index}`); // ['violin:0', 'piano:0']
 * ```
 */
export function endpoints(spec: EndpointSource): Endpoint[] {
  const reserved = new Map(spec.nodes.map((n) => [n.name, new Set(n.reservedNics ?? [])]));
  const count = new Map<string, number>();
  const next = (node: string) => {
    let i = count.get(node) ?? 0;
    while (reserved.get(node)?.has(i)) i++;
    count.set(node, i + 1);
    return i;
  };
  const ports = new Map<string, number>();
  const out: Endpoint[] = [];
  spec.links.forEach((l, link) => {
    if (l.kind === 'softnpu') {
      // The npu end is a switch port, not a NIC of the npu node (port i = its i-th link).
      const port = nextPort(ports, l.a.node);
      if (l.bIsNpu) nextPort(ports, l.b.node);
      else out.push({ node: l.b.node, index: next(l.b.node), link, side: 'b', mac: l.b.mac, switchPort: { npu: l.a.node, port } });
      return;
    }
    if (l.kind === 'sidecar') {
      // One switch per sidecar link: port 0 is the sidecar's NIC, 1..radix the driver's NICs.
      const sm = sidemuxName(l.b.node);
      out.push({ node: l.a.node, index: next(l.a.node), link, side: 'a', mac: l.a.mac, switchPort: { npu: sm, port: 0 } });
      const radix = Number.isInteger(l.radix) ? Math.min(Math.max(l.radix, 0), MAX_SIDECAR_RADIX) : 0;
      for (let p = 1; p <= radix; p++) out.push({ node: l.b.node, index: next(l.b.node), link, side: 'b', switchPort: { npu: sm, port: p } });
      return;
    }
    const ea: Endpoint = { node: l.a.node, index: next(l.a.node), link, side: 'a', mac: l.a.mac };
    out.push(ea);
    if (l.kind !== 'ext') {
      const eb: Endpoint = { node: l.b.node, index: next(l.b.node), link, side: 'b', mac: l.b.mac };
      ea.peer = { node: eb.node, index: eb.index };
      eb.peer = { node: ea.node, index: ea.index };
      out.push(eb);
    }
  });
  return out;
}

/**
 * The number of NIC indexes a node's links and reservations take: one past the highest, so
 * a SoftNPU node's CPU NICs come after both.
 *
 * ```ts
 * linkNicCount(spec, 'sled'); // 3 for two links and one bumpRadix
 * ```
 */
export function linkNicCount(spec: EndpointSource, node: string): number {
  const reserved = spec.nodes.find((n) => n.name === node)?.reservedNics ?? [];
  let max = -1;
  for (const e of endpoints(spec)) if (e.node === node && e.index > max) max = e.index;
  for (const r of reserved) if (Number.isInteger(r) && r > max) max = r;
  return max + 1;
}

function nextPort(ports: Map<string, number>, npu: string): number {
  const p = (ports.get(npu) ?? 0) + 1;
  ports.set(npu, p);
  return p;
}

/**
 * The endpoints of one node, in index order.
 *
 * ```ts
 * endpointsOf(spec, 'violin').length; // its link NICs
 * ```
 */
export function endpointsOf(spec: EndpointSource, node: string): Endpoint[] {
  return endpoints(spec).filter((e) => e.node === node);
}
