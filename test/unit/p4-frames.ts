/**
 * Inputs of the sidecar-lite differential test (not a test file): a seeded, deterministic
 * generator of tens of thousands of frames, random and crafted, each with an ingress port,
 * and one fixed, rich table set that goes into both programs through `tableAdd`.
 *
 * The table set and the address pools the generator draws from are made for each other:
 * frames hit local addresses, plain / nested / multipath / VLAN / bad-port routes, routes
 * whose next hop is unknown or resolves to `drop`, proxy-ARP ranges (overlapping ones too),
 * the inert NAT and attached-subnet tables, and miss everything, so every branch of
 * sidecar-lite is taken many times over (the coverage test checks the program's counters).
 */
import {
  addAddress,
  addNat,
  addNeighbor,
  addProxyArp,
  addRoute4,
  addRoute6,
  freeRouteIndex,
  ipv4Bytes,
  ipv6Bytes,
  le16,
  lpmKey,
  macBytes,
  parseCidr,
  rev,
  setMac,
  type TableAddRequest,
  type TableDump,
} from '../../src/switch/encoding.js';
import type { Pipeline } from '../../src/switch/pipeline.js';
import { SIDECAR_LITE_TABLES as T } from '../../src/switch/programs/sidecar-lite.js';
import { SIDECAR_LITE_PAYLOAD, SidecarCode, encapsulate } from '../../src/switch/sidecar-header.js';
import { BCAST, arpBody, eth, ip4 } from './switch-frames.js';

/** Ports 0..4: the CPU port and four front ports. */
export const DIFF_RADIX = 5;
export const DEFAULT_SEED = 0x5eed_f1c0;
export const DEFAULT_COUNT = 40_000;

/** What a generated frame is meant to exercise. */
export const FRAME_CLASSES = [
  'v4-tcp',
  'v4-udp',
  'v4-icmp',
  'v4-other',
  'v6-tcp',
  'v6-udp',
  'v6-icmp',
  'v6-ddm',
  'v6-other',
  'v6-mcast',
  'arp-proxy',
  'arp-other',
  'vlan-v4',
  'vlan-v6',
  'vlan-arp',
  'vlan-bad',
  'lldp',
  'sidecar',
  'sidecar-bad-egress',
  'sidecar-bad-inner',
  'truncated',
  'unknown-ethertype',
  'garbage',
] as const;
export type FrameClass = (typeof FRAME_CLASSES)[number];

export interface GenFrame {
  cls: FrameClass;
  port: number;
  frame: Buffer;
}

// ---------------------------------------------------------------------------------------
// PRNG
// ---------------------------------------------------------------------------------------

/** mulberry32: small, fast, and the same sequence on every platform. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  u32(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** 0..n-1. */
  int(n: number): number {
    return Math.floor((this.u32() / 0x1_0000_0000) * n);
  }
  chance(p: number): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }
  pick<X>(xs: readonly X[]): X {
    return xs[this.int(xs.length)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
  /** A choice by weight: `[[weight, value], ...]`. */
  weighted<X>(table: readonly (readonly [number, X])[]): X {
    let r = this.int(table.reduce((s, [w]) => s + w, 0));
    for (const [w, x] of table) {
      if (r < w) return x;
      r -= w;
    }
    return table[table.length - 1]![1];
  }
}

// ---------------------------------------------------------------------------------------
// The table set
// ---------------------------------------------------------------------------------------

/** Router MACs per port, and neighbours' MACs. */
export const PORT_MAC = ['a8:40:25:00:00:a0', 'a8:40:25:00:00:a1', 'a8:40:25:00:00:a2', 'a8:40:25:00:00:a3'] as const;
const NB = (n: number) => `a8:40:25:ff:00:${n.toString(16).padStart(2, '0')}`;
const PROXY_MAC = ['a8:40:25:00:01:01', 'a8:40:25:00:01:02', 'a8:40:25:00:01:03', 'a8:40:25:00:01:04'] as const;

const raw = (table: string, action: string, keyset_data: number[], parameter_data: number[]): TableAddRequest => ({ table, action, keyset_data, parameter_data });
const v4Params = (port: number, nh: string, vlan?: number) => [...le16(port), ...rev(ipv4Bytes(nh)), ...(vlan === undefined ? [] : le16(vlan))];
const v6Params = (port: number, nh: string, vlan?: number) => [...le16(port), ...rev(ipv6Bytes(nh)), ...(vlan === undefined ? [] : le16(vlan))];
const idxEntry = (cidr: string, idx: number, slots: number): TableAddRequest => {
  const c = parseCidr(cidr);
  return raw(c.v6 ? T.v6Idx : T.v4Idx, 'index', lpmKey(c.addr, c.len), [...le16(idx), slots]);
};
const idxDrop = (cidr: string): TableAddRequest => {
  const c = parseCidr(cidr);
  return raw(c.v6 ? T.v6Idx : T.v4Idx, 'drop', lpmKey(c.addr, c.len), []);
};
const sledParams = (target: string, vni: number, mac: string) => [...rev(ipv6Bytes(target)), vni & 0xff, (vni >> 8) & 0xff, vni >> 16, ...rev(macBytes(mac))];

/**
 * The fixed table set, as TableAdd requests in the order they are sent. Built with the
 * encoding.ts builders (which find free path indices in a dump, as scadm does) and, for
 * what they cannot express (multipath, `drop` entries, IPv6 next hops on IPv4 routes,
 * attached subnets), with the same encodings by hand.
 */
export function sidecarLiteTableSet(): TableAddRequest[] {
  const reqs: TableAddRequest[] = [];
  const dump: TableDump = {};
  const add = (r: TableAddRequest | TableAddRequest[]) => {
    for (const e of Array.isArray(r) ? r : [r]) {
      reqs.push(e);
      (dump[e.table] ??= []).push({ action_id: e.action, keyset_data: e.keyset_data, parameter_data: e.parameter_data });
    }
  };

  // The switch's own addresses, and entries that say "not local" explicitly.
  for (const a of ['10.0.1.1', '10.0.2.1', '192.0.2.1', 'fd00:1::1', 'fe80::aa:1', 'fd00:2::1']) add(addAddress(a));
  add(raw(T.localV4, 'nonlocal', rev(ipv4Bytes('192.0.2.2')), []));
  add(raw(T.localV6, 'nonlocal', rev(ipv6Bytes('fd00:2::2')), []));

  // IPv4 routes: nested prefixes, a host route, direct (next hop 0), VLANs (one with bits
  // above the 12-bit VID, one that masks to VID 0), a port beyond the radix, the CPU port,
  // an unknown next hop, and a next hop whose resolver entry is `drop`.
  add(addRoute4(dump, '10.0.0.0/8', 4, '0.0.0.0'));
  add(addRoute4(dump, '10.0.1.0/24', 1, '10.0.1.2'));
  add(addRoute4(dump, '10.0.2.0/24', 2, '10.0.2.2'));
  add(addRoute4(dump, '10.0.1.200/32', 3, '10.0.3.2'));
  add(addRoute4(dump, '10.0.5.0/24', 2, '10.0.2.2'));
  add(addRoute4(dump, '10.0.6.0/24', 3, '10.0.3.2'));
  add(addRoute4(dump, '198.51.100.0/24', 2, '10.0.2.2', 100));
  add(addRoute4(dump, '198.51.101.0/24', 3, '10.0.3.2', 0x1064));
  add(addRoute4(dump, '198.51.102.0/24', 1, '10.0.1.2', 0x1000));
  add(addRoute4(dump, '203.0.113.0/24', 7, '10.0.1.2'));
  add(addRoute4(dump, '100.64.0.0/10', 0, '0.0.0.0'));
  add(addRoute4(dump, '172.20.0.0/16', 1, '10.0.1.99'));
  add(addRoute4(dump, '172.21.0.0/16', 2, '10.0.2.66'));
  add(idxDrop('10.0.9.0/24'));

  // IPv4 multipath: 4 slots with slot 2 missing; 3 slots over IPv6 next hops and VLANs;
  // 4 slots from index 65534, which wrap to indices 0 and 1 (other routes' paths);
  // slots = 0 (the index itself); 2 slots with no paths at all.
  let a = freeRouteIndex(dump, false);
  add([
    raw(T.v4Route, 'forward', le16(a), v4Params(1, '10.0.1.2')),
    raw(T.v4Route, 'forward', le16(a + 1), v4Params(2, '10.0.2.2')),
    raw(T.v4Route, 'forward_vlan', le16(a + 3), v4Params(3, '10.0.3.2', 42)),
    idxEntry('10.0.1.128/25', a, 4),
  ]);
  a = freeRouteIndex(dump, false);
  add([
    raw(T.v4Route, 'forward_v6', le16(a), v6Params(2, 'fe80::2')),
    raw(T.v4Route, 'forward_vlan_v6', le16(a + 1), v6Params(3, 'fe80::3', 300)),
    raw(T.v4Route, 'forward', le16(a + 2), v4Params(4, '0.0.0.0')),
    idxEntry('172.22.0.0/16', a, 3),
  ]);
  add([
    raw(T.v4Route, 'forward', le16(65534), v4Params(1, '10.0.1.2')),
    raw(T.v4Route, 'forward_v6', le16(65535), v6Params(4, 'fe80::4')),
    idxEntry('172.23.0.0/16', 65534, 4),
  ]);
  a = freeRouteIndex(dump, false);
  add([raw(T.v4Route, 'forward', le16(a), v4Params(2, '10.0.2.2')), idxEntry('172.24.0.0/16', a, 0)]);
  add(idxEntry('172.25.0.0/16', freeRouteIndex(dump, false) + 10, 2));

  // IPv6 routes, in the same spirit.
  add(addRoute6(dump, 'fd00:1::/64', 1, 'fe80::1'));
  add(addRoute6(dump, 'fd00:2::/64', 2, 'fe80::2'));
  add(addRoute6(dump, 'fd00:3::/48', 3, 'fe80::3', 200));
  add(addRoute6(dump, 'fd00:4::/64', 9, 'fe80::1'));
  add(addRoute6(dump, 'fd00:5::/64', 0, '::'));
  add(addRoute6(dump, 'fd00:6::/64', 4, 'fe80::66'));
  add(addRoute6(dump, 'fd00:a::/64', 1, 'fe80::67'));
  add(addRoute6(dump, '2000::/3', 4, 'fe80::4'));
  add(idxDrop('fd00:8::/64'));
  a = freeRouteIndex(dump, true);
  add([
    raw(T.v6Route, 'forward', le16(a), v6Params(1, 'fe80::1')),
    raw(T.v6Route, 'forward_vlan', le16(a + 1), v6Params(2, 'fe80::2', 0xabc)),
    raw(T.v6Route, 'forward', le16(a + 2), v6Params(3, '::')),
    idxEntry('fd00:7::/64', a, 3),
  ]);
  a = freeRouteIndex(dump, true);
  add([raw(T.v6Route, 'forward', le16(a), v6Params(2, 'fe80::2')), idxEntry('fd00:9::/64', a, 0)]);

  // Neighbours (10.0.1.99 and fe80::66 stay unknown).
  for (const [ip, n] of [['10.0.1.2', 1], ['10.0.2.2', 2], ['10.0.3.2', 3], ['fe80::1', 0x11], ['fe80::2', 0x12], ['fe80::3', 0x13], ['fe80::4', 0x14]] as const) add(addNeighbor(ip, NB(n)));
  add(raw(T.resolverV4, 'drop', rev(ipv4Bytes('10.0.2.66')), []));
  add(raw(T.resolverV6, 'drop', rev(ipv6Bytes('fe80::67')), []));

  // Router MACs on ports 0..3; port 4 keeps the source MAC.
  PORT_MAC.forEach((m, port) => add(setMac(port, m)));

  // Proxy ARP, with two overlapping ranges (the first added wins).
  add(addProxyArp('10.0.1.1', '10.0.1.1', PROXY_MAC[0]));
  add(addProxyArp('10.0.2.1', '10.0.2.1', PROXY_MAC[1]));
  add(addProxyArp('192.168.10.0', '192.168.10.255', PROXY_MAC[2]));
  add(addProxyArp('192.168.10.128', '192.168.11.0', PROXY_MAC[3]));
  add(addProxyArp('172.16.0.0', '172.16.0.10', PROXY_MAC[0]));

  // NAT and attached subnets: kept, looked up, without effect.
  add(addNat('10.0.5.5', 1000, 2000, 'fd00:99::1', 77, NB(0x55)));
  add(addNat('10.0.5.6', 0, 65535, 'fd00:99::2', 0x123456, NB(0x56)));
  add(addNat('fd00:2::55', 80, 80, 'fd00:99::3', 78, NB(0x57)));
  add(raw(T.attachedV4, 'forward_to_sled', lpmKey(ipv4Bytes('10.0.6.0'), 24), sledParams('fd00:99::4', 90, NB(0x60))));
  add(raw(T.attachedV6, 'forward_to_sled', lpmKey(ipv6Bytes('fd00:6::'), 64), sledParams('fd00:99::5', 91, NB(0x61))));

  // Keys added a second time: both programs keep the first entry (as p4rs does).
  reqs.push(addNeighbor('10.0.1.2', NB(0xee)), addProxyArp('10.0.1.1', '10.0.1.1', PROXY_MAC[3]), setMac(1, NB(0xef)));
  return reqs;
}

/** Sends the fixed table set to a pipeline (the TypeScript one or the P4 one). */
export function fillTables(p: Pipeline): void {
  for (const r of sidecarLiteTableSet()) p.tableAdd(r.table, r.action, Uint8Array.from(r.keyset_data), Uint8Array.from(r.parameter_data));
}

// ---------------------------------------------------------------------------------------
// Frame builders
// ---------------------------------------------------------------------------------------

const hex2 = (n: number) => n.toString(16).padStart(2, '0');
const macStr = (b: Uint8Array) => [...b].map(hex2).join(':');

/** Destination pools: '*' is a random octet (IPv4) or 16-bit word (IPv6). */
const V4_DST = [
  '10.0.1.1', '10.0.2.1', '192.0.2.1', '192.0.2.2', '10.0.1.*', '10.0.1.200', '10.0.2.*', '10.0.5.5', '10.0.5.6',
  '10.0.6.*', '10.0.9.*', '10.*.*.*', '198.51.100.*', '198.51.101.*', '198.51.102.*', '203.0.113.*', '100.64.*.*',
  '100.127.*.*', '172.20.*.*', '172.21.*.*', '172.22.*.*', '172.23.*.*', '172.24.*.*', '172.25.*.*', '8.8.8.8', '*.*.*.*',
];
const V4_SRC = ['10.0.1.*', '10.0.2.*', '10.0.3.*', '192.0.2.*', '*.*.*.*'];
const V6_DST = [
  'fd00:1::1', 'fe80::aa:1', 'fd00:2::1', 'fd00:2::2', 'fd00:2::55', 'fd00:1::*', 'fd00:2::*:*', 'fd00:3:*::*', 'fd00:4::*',
  'fd00:5::*', 'fd00:6::*', 'fd00:7::*:*', 'fd00:8::*', 'fd00:9::*', 'fd00:a::*', '2001:db8::*', '3fff:*::*', 'fe80::*',
  'ff05::2', '*:*::*:*',
];
const V6_MCAST = ['ff02::1', 'ff02::2', 'ff02::1:ff00:*', 'ff02::*', 'ff02:*::*:*'];
const V6_SRC = ['fe80::*', 'fd00:1::*', 'fd00:2::*:*', '*:*::*:*'];
const ARP_PROXIED = ['10.0.1.1', '10.0.2.1', '192.168.10.*', '192.168.11.0', '172.16.0.0', '172.16.0.5', '172.16.0.10'];
const ARP_OTHER = ['10.0.1.2', '10.0.1.*', '192.168.11.1', '172.16.0.11', '*.*.*.*'];
const UNKNOWN_TYPES = [0x0000, 0x05dc, 0x0801, 0x0805, 0x0807, 0x0900, 0x0902, 0x86dc, 0x86de, 0x8101, 0x88cb, 0x88cd, 0x8847, 0x88a8, 0x9100, 0xffff];

class Builder {
  constructor(
    readonly rng: Rng,
    readonly radix: number,
  ) {}

  v4(pattern: string): Buffer {
    return ip4(pattern.replace(/\*/g, () => String(this.rng.int(256))));
  }
  v6(pattern: string): Buffer {
    return Buffer.from(ipv6Bytes(pattern.replace(/\*/g, () => this.rng.int(0x10000).toString(16))));
  }
  /** A unicast MAC, sometimes the broadcast one. */
  mac(): string {
    if (this.rng.chance(0.1)) return BCAST;
    const b = this.rng.bytes(6);
    b[0] = b[0]! & 0xfe;
    return macStr(b);
  }
  payload(max = 48): Buffer {
    return this.rng.bytes(this.rng.int(max + 1));
  }
  tcp(): Buffer {
    const b = this.rng.bytes(20);
    b[12] = 0x50;
    return b;
  }
  udp(): Buffer {
    const b = this.rng.bytes(8);
    if (this.rng.chance(0.2)) b.writeUInt16BE(this.rng.pick([80, 1000, 1500, 2000, 6081]), 2);
    return b;
  }
  icmp(v6: boolean): Buffer {
    const b = this.rng.bytes(8);
    b[0] = v6 ? this.rng.pick([128, 129, 133, 134, 135, 136]) : this.rng.pick([0, 8, 3, 11]);
    return b;
  }
  ipv4(dst: Buffer, proto: number, l4: Buffer): Buffer {
    const h = this.rng.bytes(20);
    h[0] = 0x45;
    h[9] = proto;
    this.v4(this.rng.pick(V4_SRC)).copy(h, 12);
    dst.copy(h, 16);
    const body = Buffer.concat([l4, this.payload()]);
    h.writeUInt16BE(20 + body.length, 2);
    return Buffer.concat([h, body]);
  }
  ipv6(dst: Buffer, next: number, l4: Buffer): Buffer {
    const h = this.rng.bytes(40);
    h[0] = 0x60 | (h[0]! & 0x0f);
    h[6] = next;
    this.v6(this.rng.pick(V6_SRC)).copy(h, 8);
    dst.copy(h, 24);
    const body = Buffer.concat([l4, this.payload()]);
    h.writeUInt16BE(body.length, 4);
    return Buffer.concat([h, body]);
  }
  /** An IPv4 packet of a given L4 kind ('other' picks a protocol the parser does not follow). */
  v4Packet(kind: 'tcp' | 'udp' | 'icmp' | 'other'): Buffer {
    const dst = this.v4(this.rng.pick(V4_DST));
    if (kind === 'tcp') return this.ipv4(dst, 6, this.tcp());
    if (kind === 'udp') return this.ipv4(dst, 17, this.udp());
    if (kind === 'icmp') return this.ipv4(dst, 1, this.icmp(false));
    return this.ipv4(dst, this.rng.pick([0, 2, 4, 41, 47, 50, 58, 89, 132, 0xdd, 255]), this.payload(24));
  }
  v6Packet(kind: 'tcp' | 'udp' | 'icmp' | 'ddm' | 'other' | 'mcast'): Buffer {
    const dst = this.v6(this.rng.pick(kind === 'mcast' ? V6_MCAST : V6_DST));
    if (kind === 'tcp') return this.ipv6(dst, 6, this.tcp());
    if (kind === 'udp') return this.ipv6(dst, 17, this.udp());
    if (kind === 'icmp') return this.ipv6(dst, 58, this.icmp(true));
    if (kind === 'ddm') return this.ipv6(dst, 0xdd, this.ddm());
    if (kind === 'mcast') return this.ipv6(dst, this.rng.pick([58, 17, 0xdd, 6, 0]), this.rng.pick([this.icmp(true), this.udp(), this.ddm(), this.tcp()]));
    return this.ipv6(dst, this.rng.pick([0, 1, 4, 41, 43, 44, 50, 59, 60, 89, 255]), this.payload(24));
  }
  ddm(): Buffer {
    const elements = this.rng.int(5);
    const b = Buffer.concat([this.rng.bytes(4), this.rng.bytes(4 * elements)]);
    b[1] = 3 + 4 * elements + (this.rng.chance(0.2) ? 4 * this.rng.int(4) : 0);
    return b;
  }
  arp(proxied: boolean): Buffer {
    const op = this.rng.weighted([[8, 1], [1, 2], [1, this.rng.int(0x10000)]] as const);
    const smac = this.mac().replace(BCAST, 'a8:40:25:ff:00:99');
    const body = arpBody(op, smac, '10.0.' + this.rng.int(4) + '.' + this.rng.int(256), '00:00:00:00:00:00', '0.0.0.0');
    this.v4(this.rng.pick(proxied ? ARP_PROXIED : ARP_OTHER)).copy(body, 24);
    return Buffer.concat([body, this.payload(18)]);
  }
  lldp(): Buffer {
    return this.payload(this.rng.chance(0.1) ? 0 : 80);
  }
  /** A frame of one of the parseable kinds (what a sidecar header may carry). */
  inner(): { type: number; body: Buffer } {
    return this.rng.pick([
      () => ({ type: 0x0800, body: this.v4Packet(this.rng.pick(['tcp', 'udp', 'icmp', 'other'] as const)) }),
      () => ({ type: 0x86dd, body: this.v6Packet(this.rng.pick(['tcp', 'udp', 'icmp', 'ddm', 'other', 'mcast'] as const)) }),
      () => ({ type: 0x0806, body: this.arp(this.rng.chance(0.5)) }),
      () => ({ type: 0x88cc, body: this.lldp() }),
      () => ({ type: 0x8100, body: this.tag(this.rng.pick([0x0800, 0x86dd, 0x0806]), this.v4Packet('udp')) }),
    ])();
  }
  /** A VLAN tag (random PCP/DEI/VID) followed by `body` of type `inner`. */
  tag(inner: number, body: Buffer): Buffer {
    const t = Buffer.alloc(4);
    t.writeUInt16BE(this.rng.int(0x10000), 0);
    t.writeUInt16BE(inner, 2);
    return Buffer.concat([t, body]);
  }
  frame(type: number, body: Buffer): Buffer {
    return eth(this.mac(), this.mac().replace(BCAST, 'a8:40:25:ff:00:98'), type, body);
  }
  port(): number {
    return this.rng.int(this.radix);
  }
}

type Maker = (b: Builder) => { frame: Buffer; port?: number };

/** How to make one frame of each class. */
const MAKERS: Record<FrameClass, Maker> = {
  'v4-tcp': (b) => ({ frame: b.frame(0x0800, b.v4Packet('tcp')) }),
  'v4-udp': (b) => ({ frame: b.frame(0x0800, b.v4Packet('udp')) }),
  'v4-icmp': (b) => ({ frame: b.frame(0x0800, b.v4Packet('icmp')) }),
  'v4-other': (b) => ({ frame: b.frame(0x0800, b.v4Packet('other')) }),
  'v6-tcp': (b) => ({ frame: b.frame(0x86dd, b.v6Packet('tcp')) }),
  'v6-udp': (b) => ({ frame: b.frame(0x86dd, b.v6Packet('udp')) }),
  'v6-icmp': (b) => ({ frame: b.frame(0x86dd, b.v6Packet('icmp')) }),
  'v6-ddm': (b) => ({ frame: b.frame(0x86dd, b.v6Packet('ddm')) }),
  'v6-other': (b) => ({ frame: b.frame(0x86dd, b.v6Packet('other')) }),
  'v6-mcast': (b) => ({ frame: b.frame(0x86dd, b.v6Packet('mcast')) }),
  'arp-proxy': (b) => ({ frame: b.frame(0x0806, b.arp(true)) }),
  'arp-other': (b) => ({ frame: b.frame(0x0806, b.arp(false)) }),
  'vlan-v4': (b) => ({ frame: b.frame(0x8100, b.tag(0x0800, b.v4Packet(b.rng.pick(['tcp', 'udp', 'icmp', 'other'] as const)))) }),
  'vlan-v6': (b) => ({ frame: b.frame(0x8100, b.tag(0x86dd, b.v6Packet(b.rng.pick(['tcp', 'udp', 'icmp', 'ddm', 'other', 'mcast'] as const)))) }),
  'vlan-arp': (b) => ({ frame: b.frame(0x8100, b.tag(0x0806, b.arp(b.rng.chance(0.6)))) }),
  'vlan-bad': (b) => ({ frame: b.frame(0x8100, b.tag(b.rng.pick([0x8100, 0x88cc, 0x0901, ...UNKNOWN_TYPES]), b.v4Packet('udp'))) }),
  lldp: (b) => ({ frame: eth('01:80:c2:00:00:0e', b.mac().replace(BCAST, 'a8:40:25:ff:00:97'), 0x88cc, b.lldp()) }),
  sidecar: (b) => sidecarFrame(b, b.rng.int(b.radix)),
  'sidecar-bad-egress': (b) => sidecarFrame(b, b.rng.chance(0.3) ? b.radix + b.rng.int(4) : b.radix + b.rng.int(0x10000 - b.radix)),
  'sidecar-bad-inner': (b) => {
    const inner = b.frame(b.rng.pick([0x0901, ...UNKNOWN_TYPES]), b.v4Packet('udp'));
    return { frame: encapsulate(inner, { code: SidecarCode.ForwardFromUserspace, ingress: 0, egress: b.rng.int(b.radix) }), port: cpuMostly(b) };
  },
  truncated: (b) => {
    const whole = MAKERS[b.rng.pick(PARSEABLE)](b).frame;
    return { frame: Buffer.from(whole.subarray(0, b.rng.int(Math.min(whole.length, 100)))) };
  },
  'unknown-ethertype': (b) => ({ frame: b.frame(b.rng.pick(UNKNOWN_TYPES), b.payload(64)) }),
  garbage: (b) => {
    const g = b.rng.bytes(b.rng.int(160));
    if (g.length >= 14 && b.rng.chance(0.5)) g.writeUInt16BE(b.rng.pick([0x0800, 0x86dd, 0x0806, 0x8100, 0x88cc, 0x0901]), 12);
    return { frame: g };
  },
};

/** Classes whose untruncated frames the parser accepts (truncation templates). */
const PARSEABLE: readonly FrameClass[] = ['v4-tcp', 'v4-udp', 'v4-icmp', 'v4-other', 'v6-tcp', 'v6-udp', 'v6-icmp', 'v6-ddm', 'v6-other', 'v6-mcast', 'arp-proxy', 'arp-other', 'vlan-v4', 'vlan-v6', 'vlan-arp', 'lldp', 'sidecar'];

const cpuMostly = (b: Builder) => (b.rng.chance(0.8) ? 0 : b.port());

function sidecarFrame(b: Builder, egress: number): { frame: Buffer; port: number } {
  const inner = b.inner();
  const frame = b.frame(inner.type, inner.body);
  const code = b.rng.weighted([[6, SidecarCode.ForwardFromUserspace], [2, SidecarCode.ForwardToUserspace], [1, b.rng.int(256)]] as const);
  const payload = b.rng.chance(0.5) ? SIDECAR_LITE_PAYLOAD : b.rng.bytes(16);
  return { frame: encapsulate(frame, { code, ingress: b.rng.int(0x10000), egress, payload }), port: cpuMostly(b) };
}

/** Relative frequency of each class in the random part. */
const WEIGHTS: Record<FrameClass, number> = {
  'v4-tcp': 8, 'v4-udp': 8, 'v4-icmp': 6, 'v4-other': 3,
  'v6-tcp': 6, 'v6-udp': 6, 'v6-icmp': 5, 'v6-ddm': 3, 'v6-other': 3, 'v6-mcast': 3,
  'arp-proxy': 4, 'arp-other': 3,
  'vlan-v4': 4, 'vlan-v6': 3, 'vlan-arp': 2, 'vlan-bad': 1,
  lldp: 2, sidecar: 5, 'sidecar-bad-egress': 2, 'sidecar-bad-inner': 1,
  truncated: 4, 'unknown-ethertype': 2, garbage: 2,
};

/**
 * Crafted frames: every parseable kind truncated at every length up to its full headers
 * (every boundary, and every byte in between), and edge cases random draws rarely make.
 */
function crafted(b: Builder): GenFrame[] {
  const out: GenFrame[] = [];
  for (const cls of PARSEABLE) {
    for (let copy = 0; copy < 2; copy++) {
      const whole = MAKERS[cls](b).frame;
      for (let len = 0; len < Math.min(whole.length, 14 + 24 + 4 + 40 + 20 + 2); len++) out.push({ cls: 'truncated', port: b.port(), frame: Buffer.from(whole.subarray(0, len)) });
    }
  }
  const tiny = (cls: FrameClass, frame: Buffer, port: number) => out.push({ cls, port, frame });
  for (let port = 0; port < b.radix; port++) {
    tiny('lldp', eth('01:80:c2:00:00:0e', 'a8:40:25:ff:00:97', 0x88cc, Buffer.alloc(0)), port); // exactly 14 bytes
    tiny('sidecar', encapsulate(eth(BCAST, 'a8:40:25:ff:00:96', 0x88cc, Buffer.alloc(0)), { code: 0, ingress: 0, egress: (port + 1) % b.radix }), port); // exactly 38
    tiny('sidecar', encapsulate(b.frame(0x0800, b.v4Packet('tcp')), { code: 0, ingress: 0, egress: port }), port); // back out of the in-port
    tiny('sidecar-bad-egress', encapsulate(b.frame(0x0800, b.v4Packet('tcp')), { code: 0, ingress: 0, egress: b.radix }), port);
    tiny('sidecar-bad-egress', encapsulate(b.frame(0x86dd, b.v6Packet('udp')), { code: 0, ingress: 0, egress: 0xffff }), port);
    for (const dst of ['10.0.1.1', '10.0.1.130', '10.0.1.200', '100.64.0.1', '203.0.113.1', '198.51.101.1', '198.51.102.1', '172.23.0.1']) {
      tiny('v4-udp', b.frame(0x0800, b.ipv4(ip4(dst), 17, b.udp())), port);
      tiny('vlan-v4', b.frame(0x8100, b.tag(0x0800, b.ipv4(ip4(dst), 6, b.tcp()))), port);
    }
    for (const dst of ['ff02::1', 'fd00:1::1', 'fd00:5::1', 'fd00:3::1', 'fd00:7::1']) tiny('v6-icmp', b.frame(0x86dd, b.ipv6(b.v6(dst), 58, b.icmp(true))), port);
    for (const t of ['10.0.1.1', '192.168.10.200', '192.168.11.0', '172.16.0.11']) {
      const body = arpBody(1, 'a8:40:25:ff:00:01', '10.0.1.2', '00:00:00:00:00:00', t);
      tiny(t === '172.16.0.11' ? 'arp-other' : 'arp-proxy', eth(BCAST, 'a8:40:25:ff:00:01', 0x0806, body), port);
      tiny('vlan-arp', eth(BCAST, 'a8:40:25:ff:00:01', 0x8100, b.tag(0x0806, body)), port);
    }
    tiny('garbage', Buffer.alloc(0), port);
    tiny('unknown-ethertype', b.frame(0x0901 + 1, Buffer.alloc(40)), port);
  }
  return out;
}

/**
 * The frames of the differential test: the crafted ones, then `count` random ones, the same
 * for the same seed. Each frame has an ingress port in 0..radix-1.
 */
export function generateFrames(opts: { seed?: number; count?: number; radix?: number } = {}): GenFrame[] {
  const radix = opts.radix ?? DIFF_RADIX;
  const b = new Builder(new Rng(opts.seed ?? DEFAULT_SEED), radix);
  const table = FRAME_CLASSES.map((c) => [WEIGHTS[c], c] as const);
  const out = crafted(b);
  for (let i = 0; i < (opts.count ?? DEFAULT_COUNT); i++) {
    const cls = b.rng.weighted(table);
    const made = MAKERS[cls](b);
    out.push({ cls, port: made.port ?? b.port(), frame: made.frame });
  }
  return out;
}

/** A classic hex dump (offset, 16 bytes, ASCII) for reports. */
export function hexDump(buf: Uint8Array): string {
  const lines: string[] = [];
  for (let off = 0; off < buf.length; off += 16) {
    const row = buf.subarray(off, off + 16);
    const hex = [...row].map(hex2).join(' ').padEnd(47);
    const text = [...row].map((c) => (c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : '.')).join('');
    lines.push(`${off.toString(16).padStart(4, '0')}  ${hex}  ${text}`);
  }
  return lines.join('\n') || '(empty)';
}
