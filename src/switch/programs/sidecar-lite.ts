/**
 * The `sidecar-lite` program: Oxide's sidecar-lite P4 program (the one SoftNPU runs), in
 * TypeScript, with its tables, key and parameter encodings as x4c compiles them.
 *
 * Tables (all 14 are listed by a dump, even when empty): local_v4/v6, router v4/v6 idx and
 * route, resolver_v4/v6, mac_rewrite, proxy_arp, and NAT and attached-subnet tables, whose
 * entries are accepted and kept but do nothing (their Geneve encapsulation is not built).
 *
 * Per frame, in the P4's order:
 * 1. parse Ethernet, then IPv4/IPv6/ARP/VLAN/LLDP/0x0901 (anything else, or a frame too short
 *    for its headers, is dropped);
 * 2. a sidecar header (from the scrimlet): out of `sc_egress`, header removed;
 * 3. ARP meets proxy_arp (a range of target IPs): a hit answers out of the in-port;
 * 4. local frames (an unproxied ARP, a local_v4/v6 hit, ff02::/16, LLDP) are punted to port 0
 *    with a 24-byte sidecar header (code 1, ingress = egress = in-port, payload 0x1701d);
 * 5. otherwise route: v4/v6 idx (LPM) -> route (exact path index) -> resolver (when the
 *    nexthop is not 0; a miss drops) -> mac_rewrite on the egress port; a frame that would
 *    leave by its in-port is dropped. No TTL decrement, no checksum change.
 *
 * Propolis's rule: a frame from port 0 that resolves to port 0 is dropped. An egress port
 * outside 0..radix-1 is dropped. Deviation: `forward_vlan` on a frame that is already
 * tagged rewrites its VLAN ID instead of stacking the P4's inconsistent header.
 */
import { Counters, type PacketOut, type Pipeline } from '../pipeline.js';
import { SIDECAR_ETHERTYPE, SIDECAR_HEADER_LEN, SIDECAR_LITE_PAYLOAD, SidecarCode } from '../sidecar-header.js';
import { ExactTable, InertTable, LpmTable, RangeTable, TableSet, noParams, type Table } from '../tables.js';

/** The tables' names, as scadm and dendrite send them. */
export const SIDECAR_LITE_TABLES = {
  localV4: 'ingress.local.local_v4',
  localV6: 'ingress.local.local_v6',
  v4Idx: 'ingress.router.v4_idx.rtr',
  v4Route: 'ingress.router.v4_route.rtr',
  v6Idx: 'ingress.router.v6_idx.rtr',
  v6Route: 'ingress.router.v6_route.rtr',
  resolverV4: 'ingress.resolver.resolver_v4',
  resolverV6: 'ingress.resolver.resolver_v6',
  macRewrite: 'ingress.mac.mac_rewrite',
  proxyArp: 'ingress.pxarp.proxy_arp',
  natV4: 'ingress.nat.nat_v4',
  natV6: 'ingress.nat.nat_v6',
  attachedV4: 'ingress.attached.attached_subnet_v4',
  attachedV6: 'ingress.attached.attached_subnet_v6',
} as const;

const ETH_IPV4 = 0x0800;
const ETH_IPV6 = 0x86dd;
const ETH_ARP = 0x0806;
const ETH_VLAN = 0x8100;
const ETH_LLDP = 0x88cc;

interface Index {
  idx: number;
  slots: number;
}
interface Route {
  port: number;
  /** IPv4 nexthop as a number (0 = none). */
  nh4: number;
  /** IPv6 nexthop, network order, or undefined when 0. */
  nh6: Buffer | undefined;
  vlan: number;
}
type Mac = Uint8Array; // network order

const rev = (b: Uint8Array) => Uint8Array.from(b).reverse();
const le = (b: Uint8Array, off: number, n: number) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).readUIntLE(off, n);
const macParam = { params: 6, decode: (p: Uint8Array): Mac => rev(p) };
const indexAction = { params: 3, decode: (p: Uint8Array): Index => ({ idx: le(p, 0, 2), slots: p[2]! }) };
const dropAction = noParams<null>(null);

function v6OrUndefined(p: Uint8Array): Buffer | undefined {
  return p.some((x) => x !== 0) ? Buffer.from(rev(p)) : undefined;
}
const fwd4 = { params: 6, decode: (p: Uint8Array): Route => ({ port: le(p, 0, 2), nh4: le(p, 2, 4), nh6: undefined, vlan: 0 }) };
const fwd6 = { params: 18, decode: (p: Uint8Array): Route => ({ port: le(p, 0, 2), nh4: 0, nh6: v6OrUndefined(p.subarray(2, 18)), vlan: 0 }) };
const fwd4Vlan = { params: 8, decode: (p: Uint8Array): Route => ({ ...fwd4.decode(p), vlan: le(p, 6, 2) & 0xfff }) };
const fwd6Vlan = { params: 20, decode: (p: Uint8Array): Route => ({ ...fwd6.decode(p), vlan: le(p, 18, 2) & 0xfff }) };

/** The ones'-complement checksum p4rs's `Checksum` computes, over two addresses. */
function csum(buf: Buffer, a: number, b: number, len: number): number {
  let s = 0;
  for (let i = 0; i < len; i += 2) s += ((buf[a + i]! << 8) | buf[a + i + 1]!) + ((buf[b + i]! << 8) | buf[b + i + 1]!);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

export class SidecarLite implements Pipeline {
  readonly localV4 = new ExactTable<boolean>(SIDECAR_LITE_TABLES.localV4, 4, { local: noParams(true), nonlocal: noParams(false) });
  readonly localV6 = new ExactTable<boolean>(SIDECAR_LITE_TABLES.localV6, 16, { local: noParams(true), nonlocal: noParams(false) });
  readonly v4Idx = new LpmTable<Index | null>(SIDECAR_LITE_TABLES.v4Idx, 4, { index: indexAction, drop: dropAction });
  readonly v6Idx = new LpmTable<Index | null>(SIDECAR_LITE_TABLES.v6Idx, 16, { index: indexAction, drop: dropAction });
  readonly v4Route = new ExactTable<Route>(SIDECAR_LITE_TABLES.v4Route, 2, { forward: fwd4, forward_v6: fwd6, forward_vlan: fwd4Vlan, forward_vlan_v6: fwd6Vlan });
  readonly v6Route = new ExactTable<Route>(SIDECAR_LITE_TABLES.v6Route, 2, { forward: fwd6, forward_vlan: fwd6Vlan });
  readonly resolverV4 = new ExactTable<Mac | null>(SIDECAR_LITE_TABLES.resolverV4, 4, { rewrite_dst: macParam, drop: dropAction });
  readonly resolverV6 = new ExactTable<Mac | null>(SIDECAR_LITE_TABLES.resolverV6, 16, { rewrite_dst: macParam, drop: dropAction });
  readonly macRewrite = new ExactTable<Mac>(SIDECAR_LITE_TABLES.macRewrite, 2, { rewrite: macParam });
  readonly proxyArp = new RangeTable<Mac>(SIDECAR_LITE_TABLES.proxyArp, 4, { proxy_arp_reply: macParam });
  private readonly tables: TableSet;
  private readonly c = new Counters();

  constructor(readonly radix: number) {
    const sled = { forward_to_sled: 16 + 3 + 6 };
    this.tables = new TableSet([
      this.localV4,
      this.localV6,
      this.v4Idx,
      this.v4Route,
      this.v6Idx,
      this.v6Route,
      this.resolverV4,
      this.resolverV6,
      this.macRewrite,
      this.proxyArp,
      new InertTable(SIDECAR_LITE_TABLES.natV4, 4 + 4, sled),
      new InertTable(SIDECAR_LITE_TABLES.natV6, 16 + 4, sled),
      new InertTable(SIDECAR_LITE_TABLES.attachedV4, 5, sled),
      new InertTable(SIDECAR_LITE_TABLES.attachedV6, 17, sled),
    ] as Table<unknown>[]);
  }

  tableAdd(table: string, action: string, key: Uint8Array, params: Uint8Array, prio?: number): void {
    this.tables.tableAdd(table, action, key, params, prio);
  }
  tableRemove(table: string, key: Uint8Array): void {
    this.tables.tableRemove(table, key);
  }
  tableIds(): string[] {
    return this.tables.tableIds();
  }
  tableEntries(table: string) {
    return this.tables.tableEntries(table);
  }
  counters(): Record<string, number> {
    return this.c.snapshot();
  }

  private drop(reason: string): PacketOut[] {
    this.c.inc(reason);
    return [];
  }

  processPacket(port: number, frame: Buffer): PacketOut[] {
    const h = parseHeaders(frame);
    if (h === undefined) return this.drop('drop_parse');
    if (h.sidecar) return this.fromCpu(port, frame);
    if (h.et === ETH_ARP) {
      const reply = this.proxyArpReply(frame, h.off);
      if (reply) return [[reply, port]];
    }
    if (this.isLocal(frame, h)) {
      if (port === 0) return this.drop('drop_cpu_to_cpu');
      return [[this.punt(port, frame), 0]];
    }
    return this.route(port, frame, h);
  }

  /** A frame from the CPU port with a sidecar header: decapsulated, out of the port it names. */
  private fromCpu(port: number, frame: Buffer): PacketOut[] {
    const egress = (frame[18]! << 8) | frame[19]!;
    if (egress >= this.radix) return this.drop('drop_bad_egress');
    if (port === 0 && egress === 0) return this.drop('drop_cpu_to_cpu');
    const out = Buffer.allocUnsafe(frame.length - SIDECAR_HEADER_LEN);
    frame.copy(out, 0, 0, 12);
    out[12] = frame[20]!;
    out[13] = frame[21]!;
    frame.copy(out, 14, 14 + SIDECAR_HEADER_LEN);
    this.c.inc('from_cpu');
    return [[out, egress]];
  }

  /** An ARP request for a proxied address, turned into its reply in place; undefined otherwise. */
  private proxyArpReply(frame: Buffer, off: number): Buffer | undefined {
    const mac = this.proxyArp.get(frame.readUInt32BE(off + 24));
    if (!mac) return undefined;
    frame.copy(frame, 0, 6, 12); // eth.dst = eth.src
    frame.set(mac, 6);
    frame.copy(frame, off + 18, off + 8, off + 14); // target_mac = sender_mac
    frame.set(mac, off + 8);
    frame[off + 6] = 0;
    frame[off + 7] = 2;
    const sip = frame.readUInt32BE(off + 14);
    frame.copy(frame, off + 14, off + 24, off + 28);
    frame.writeUInt32BE(sip, off + 24);
    this.c.inc('proxy_arp');
    return frame;
  }

  /** Addressed to the switch's own addresses (or multicast v6, ARP, LLDP): for the CPU port. */
  private isLocal(frame: Buffer, h: Headers): boolean {
    if (h.et === ETH_IPV6) return this.localV6.getBytes(frame, h.off + 24) === true || (frame[h.off + 24] === 0xff && frame[h.off + 25] === 0x02);
    if (h.et === ETH_IPV4) return this.localV4.get(frame.readUInt32BE(h.off + 16)) === true;
    return true; // ARP, LLDP
  }

  /** The frame with a sidecar header (forward to userspace, ingress `port`) for the CPU port. */
  private punt(port: number, frame: Buffer): Buffer {
    const out = Buffer.allocUnsafe(frame.length + SIDECAR_HEADER_LEN);
    frame.copy(out, 0, 0, 12);
    out[12] = SIDECAR_ETHERTYPE >> 8;
    out[13] = SIDECAR_ETHERTYPE & 0xff;
    out[14] = SidecarCode.ForwardToUserspace;
    out[15] = 0;
    out.writeUInt16BE(port, 16);
    out.writeUInt16BE(port, 18);
    out[20] = frame[12]!;
    out[21] = frame[13]!;
    out.set(SIDECAR_LITE_PAYLOAD, 22);
    frame.copy(out, 14 + SIDECAR_HEADER_LEN, 14);
    this.c.inc('punt');
    return out;
  }

  /** idx -> route -> resolver -> mac_rewrite, as sidecar-lite's ingress does. */
  private route(port: number, frame: Buffer, h: Headers): PacketOut[] {
    const off = h.off;
    let route: Route | undefined;
    if (h.et === ETH_IPV4) {
      const ix = this.v4Idx.lookup(frame, off + 16);
      if (!ix) return this.drop('drop_no_route');
      route = this.v4Route.get(pathIdx(ix, csum(frame, off + 16, off + 12, 4)));
    } else {
      const ix = this.v6Idx.lookup(frame, off + 24);
      if (!ix) return this.drop('drop_no_route');
      route = this.v6Route.get(pathIdx(ix, csum(frame, off + 24, off + 8, 16)));
    }
    if (!route) return this.drop('drop_no_route');
    if (route.nh4 !== 0) {
      const mac = this.resolverV4.get(route.nh4);
      if (!mac) return this.drop('drop_no_neighbor');
      frame.set(mac, 0);
    }
    if (route.nh6) {
      const mac = this.resolverV6.getBytes(route.nh6, 0);
      if (!mac) return this.drop('drop_no_neighbor');
      frame.set(mac, 0);
    }
    const egress = route.port;
    if (egress === port) return this.drop('drop_reflection');
    if (egress >= this.radix) return this.drop('drop_bad_egress');
    if (port === 0 && egress === 0) return this.drop('drop_cpu_to_cpu');
    const src = this.macRewrite.get(egress);
    if (src) frame.set(src, 6);
    let out = frame;
    if (route.vlan !== 0) out = setVlan(frame, route.vlan);
    this.c.inc('routed');
    return [[out, egress]];
  }
}

/** Where the parser left off: the inner ethertype, the offset of its header, and whether a sidecar header came first. */
interface Headers {
  et: number;
  off: number;
  sidecar: boolean;
}

/** The P4 parser: ethernet, optional sidecar and VLAN headers, then one of v4/v6/ARP/LLDP, which must fit; undefined rejects the frame. */
function parseHeaders(frame: Buffer): Headers | undefined {
  const len = frame.length;
  if (len < 14) return undefined;
  let et = (frame[12]! << 8) | frame[13]!;
  let off = 14;
  let sidecar = false;
  if (et === SIDECAR_ETHERTYPE) {
    if (len < 14 + SIDECAR_HEADER_LEN) return undefined;
    sidecar = true;
    et = (frame[20]! << 8) | frame[21]!;
    off += SIDECAR_HEADER_LEN;
    if (et !== ETH_IPV4 && et !== ETH_IPV6 && et !== ETH_ARP && et !== ETH_VLAN && et !== ETH_LLDP) return undefined;
  }
  if (et === ETH_VLAN) {
    if (len < off + 4) return undefined;
    et = (frame[off + 2]! << 8) | frame[off + 3]!;
    off += 4;
    if (et !== ETH_IPV4 && et !== ETH_IPV6 && et !== ETH_ARP) return undefined;
  }
  let need: number;
  if (et === ETH_IPV4) need = 20 + l4Len(frame[off + 9]);
  else if (et === ETH_IPV6) need = 40 + l6Len(frame[off + 6]);
  else if (et === ETH_ARP) need = 28;
  else if (et === ETH_LLDP) need = 0;
  else return undefined;
  if (len < off + need) return undefined;
  return { et, off, sidecar };
}

function pathIdx(ix: Index, hash: number): number {
  return ix.slots > 1 ? (ix.idx + (hash % ix.slots)) & 0xffff : ix.idx;
}

/** Bytes of the L4 header the parser extracts after IPv4, by protocol. */
function l4Len(proto: number | undefined): number {
  return proto === 6 ? 20 : proto === 17 || proto === 1 ? 8 : 0;
}
function l6Len(next: number | undefined): number {
  return next === 6 ? 20 : next === 17 || next === 58 ? 8 : next === 0xdd ? 4 : 0;
}

function setVlan(frame: Buffer, vid: number): Buffer {
  if (frame[12] === 0x81 && frame[13] === 0x00) {
    frame.writeUInt16BE(vid & 0xfff, 14);
    return frame;
  }
  const out = Buffer.allocUnsafe(frame.length + 4);
  frame.copy(out, 0, 0, 12);
  out.writeUInt16BE(ETH_VLAN, 12);
  out.writeUInt16BE(vid & 0xfff, 14);
  frame.copy(out, 16, 12);
  return out;
}

export function createPipeline(radix: number): Pipeline {
  return new SidecarLite(radix);
}
