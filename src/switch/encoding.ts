/**
 * x4c's byte encodings and scadm/dendrite-named builders of sidecar-lite table entries from
 * human input (IP strings, CIDRs, MACs, port numbers), so nobody writes byte arrays by hand.
 *
 * x4c's rules: header fields are stored byte-reversed, so an exact key or a parameter is
 * little-endian (an address or a MAC reversed, a u16 LE); a range key is lo ‖ hi, each LE;
 * an LPM key is the address in network order then the prefix length; parameters are
 * ⌈bits/8⌉ bytes each, in declaration order.
 *
 * The builders encode like dendrite (MACs little-endian, remove keys like add keys), where
 * scadm has quirks (set-mac unreversed, remove-arp-entry unreversed, remove-route4 with a
 * 3-byte route key). Route builders take a dump (to find a free path index, as scadm does).
 */
import { FalconError } from '../util/errors.js';
import type { TableEntryJson } from './tables.js';
import { SIDECAR_LITE_TABLES as T } from './programs/sidecar-lite.js';

/** A TableAdd request (the management protocol's shape). */
export interface TableAddRequest {
  table: string;
  action: string;
  keyset_data: number[];
  parameter_data: number[];
}
/** A TableRemove request. */
export interface TableRemoveRequest {
  table: string;
  keyset_data: number[];
}
/** A dump: every table with its entries. */
export type TableDump = Record<string, TableEntryJson[]>;

function bad(what: string, value: string, expected: string): never {
  throw new FalconError('INVALID_ARGUMENT', `${what} "${value}" is not ${expected}`);
}

/** An IPv4 address as 4 network-order bytes. */
export function ipv4Bytes(s: string): number[] {
  const parts = s.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) bad('IPv4 address', s, 'a dotted quad like 10.0.1.2');
  return parts.map(Number);
}

/** An IPv6 address as 16 network-order bytes (`::`, and a dotted IPv4 tail, allowed). */
export function ipv6Bytes(s: string): number[] {
  let text = s;
  const tail: number[] = [];
  const v4 = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = ipv4Bytes(v4[2]!);
    tail.push((b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!);
    text = v4[1]!.endsWith('::') ? v4[1]! : v4[1]!.slice(0, -1);
  }
  const halves = text.split('::');
  if (halves.length > 2) bad('IPv6 address', s, 'an IPv6 address');
  const words = (h: string) => (h === '' ? [] : h.split(':').map((w) => (/^[0-9a-f]{1,4}$/i.test(w) ? parseInt(w, 16) : bad('IPv6 address', s, 'an IPv6 address'))));
  const head = words(halves[0]!);
  const rest = halves.length === 2 ? words(halves[1]!) : [];
  const given = head.length + rest.length + tail.length;
  if (halves.length === 1 ? given !== 8 : given > 7) bad('IPv6 address', s, 'an IPv6 address');
  const all = [...head, ...Array<number>(8 - given).fill(0), ...rest, ...tail];
  return all.flatMap((w) => [w >> 8, w & 0xff]);
}

/** A MAC address (aa:bb:cc:dd:ee:ff or with dashes) as 6 network-order bytes. */
export function macBytes(s: string): number[] {
  const parts = s.split(/[:-]/);
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-f]{1,2}$/i.test(p))) bad('MAC address', s, 'six hex bytes like a8:40:25:00:00:01');
  return parts.map((p) => parseInt(p, 16));
}

/** A CIDR "10.0.2.0/24" or "fd00::/64" as address bytes and prefix length. */
export function parseCidr(s: string): { v6: boolean; addr: number[]; len: number } {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  if (!m) bad('prefix', s, 'an address/length like 10.0.2.0/24');
  const v6 = m[1]!.includes(':');
  const len = Number(m[2]);
  if (len > (v6 ? 128 : 32)) bad('prefix', s, `a prefix of at most ${v6 ? 128 : 32} bits`);
  return { v6, addr: v6 ? ipv6Bytes(m[1]!) : ipv4Bytes(m[1]!), len };
}

/** A u16 little-endian (x4c's exact key or parameter). */
export function le16(n: number): number[] {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff) bad('number', String(n), 'an integer from 0 to 65535');
  return [n & 0xff, n >> 8];
}
/** Bytes reversed (network order -> x4c's little-endian). */
export const rev = (b: readonly number[]): number[] => [...b].reverse();
/** An LPM key: address in network order, then the prefix length. */
export const lpmKey = (addr: readonly number[], len: number): number[] => [...addr, len];

const add = (table: string, action: string, keyset_data: number[], parameter_data: number[]): TableAddRequest => ({ table, action, keyset_data, parameter_data });
const remove = (table: string, keyset_data: number[]): TableRemoveRequest => ({ table, keyset_data });

function checkPort(port: number): number {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) bad('port', String(port), 'a switch port number');
  return port;
}

/** The path index an idx entry gives a prefix, from a dump (scadm's RouteData::lookup). */
export function routeIndex(dump: TableDump, cidr: string): number | undefined {
  const c = parseCidr(cidr);
  const key = lpmKey(c.addr, c.len).join(',');
  const e = (dump[c.v6 ? T.v6Idx : T.v4Idx] ?? []).find((x) => x.keyset_data.join(',') === key && x.action_id === 'index');
  return e ? e.parameter_data[0]! | (e.parameter_data[1]! << 8) : undefined;
}

/** The lowest path index no idx entry uses (scadm's find_available), counting all slots. */
export function freeRouteIndex(dump: TableDump, v6: boolean): number {
  const used = new Set<number>();
  for (const e of dump[v6 ? T.v6Idx : T.v4Idx] ?? []) {
    if (e.action_id !== 'index') continue;
    const idx = e.parameter_data[0]! | (e.parameter_data[1]! << 8);
    for (let s = 0; s < Math.max(1, e.parameter_data[2] ?? 1); s++) used.add(idx + s);
  }
  for (const e of dump[v6 ? T.v6Route : T.v4Route] ?? []) used.add(e.keyset_data[0]! | (e.keyset_data[1]! << 8));
  let i = 0;
  while (used.has(i)) i++;
  return i;
}

/**
 * `add-route4 DEST/LEN PORT NEXTHOP`: a route entry (path index -> port, nexthop) and an
 * idx entry (prefix -> index, 1 slot), in scadm's order. `vlan` uses forward_vlan.
 */
export function addRoute4(dump: TableDump, dest: string, port: number, nexthop: string, vlan = 0): TableAddRequest[] {
  const c = parseCidr(dest);
  if (c.v6) bad('IPv4 prefix', dest, 'an IPv4 prefix (use addRoute6)');
  const idx = routeIndex(dump, dest) ?? freeRouteIndex(dump, false);
  const params = [...le16(checkPort(port)), ...rev(ipv4Bytes(nexthop)), ...(vlan ? le16(vlan) : [])];
  return [add(T.v4Route, vlan ? 'forward_vlan' : 'forward', le16(idx), params), add(T.v4Idx, 'index', lpmKey(c.addr, c.len), [...le16(idx), 1])];
}

/** `add-route6 DEST/LEN PORT NEXTHOP`. */
export function addRoute6(dump: TableDump, dest: string, port: number, nexthop: string, vlan = 0): TableAddRequest[] {
  const c = parseCidr(dest);
  if (!c.v6) bad('IPv6 prefix', dest, 'an IPv6 prefix (use addRoute4)');
  const idx = routeIndex(dump, dest) ?? freeRouteIndex(dump, true);
  const params = [...le16(checkPort(port)), ...rev(ipv6Bytes(nexthop)), ...(vlan ? le16(vlan) : [])];
  return [add(T.v6Route, vlan ? 'forward_vlan' : 'forward', le16(idx), params), add(T.v6Idx, 'index', lpmKey(c.addr, c.len), [...le16(idx), 1])];
}

/** `remove-route4/6 DEST/LEN`: the idx entry and its route entry; [] when there is no such route. */
export function removeRoute(dump: TableDump, dest: string): TableRemoveRequest[] {
  const c = parseCidr(dest);
  const idx = routeIndex(dump, dest);
  if (idx === undefined) return [];
  return [remove(c.v6 ? T.v6Idx : T.v4Idx, lpmKey(c.addr, c.len)), remove(c.v6 ? T.v6Route : T.v4Route, le16(idx))];
}

/** `add-address4/6 ADDR`: frames to ADDR are punted to the CPU port. */
export function addAddress(addr: string): TableAddRequest {
  return addr.includes(':') ? add(T.localV6, 'local', rev(ipv6Bytes(addr)), []) : add(T.localV4, 'local', rev(ipv4Bytes(addr)), []);
}
export function removeAddress(addr: string): TableRemoveRequest {
  return addr.includes(':') ? remove(T.localV6, rev(ipv6Bytes(addr))) : remove(T.localV4, rev(ipv4Bytes(addr)));
}

/** `add-arp-entry IP MAC` / `add-ndp-entry IP MAC`: the resolver's nexthop -> destination MAC. */
export function addNeighbor(ip: string, mac: string): TableAddRequest {
  const v6 = ip.includes(':');
  return add(v6 ? T.resolverV6 : T.resolverV4, 'rewrite_dst', rev(v6 ? ipv6Bytes(ip) : ipv4Bytes(ip)), rev(macBytes(mac)));
}
export function removeNeighbor(ip: string): TableRemoveRequest {
  const v6 = ip.includes(':');
  return remove(v6 ? T.resolverV6 : T.resolverV4, rev(v6 ? ipv6Bytes(ip) : ipv4Bytes(ip)));
}

/** `set-mac PORT MAC`: the source MAC of frames routed out of PORT (little-endian, as dendrite). */
export function setMac(port: number, mac: string): TableAddRequest {
  return add(T.macRewrite, 'rewrite', le16(checkPort(port)), rev(macBytes(mac)));
}
export function clearMac(port: number): TableRemoveRequest {
  return remove(T.macRewrite, le16(checkPort(port)));
}

/** `add-proxy-arp BEGIN END MAC`: ARP for a target in BEGIN..END is answered with MAC. */
export function addProxyArp(begin: string, end: string, mac: string): TableAddRequest {
  return add(T.proxyArp, 'proxy_arp_reply', [...rev(ipv4Bytes(begin)), ...rev(ipv4Bytes(end))], rev(macBytes(mac)));
}
export function removeProxyArp(begin: string, end: string): TableRemoveRequest {
  return remove(T.proxyArp, [...rev(ipv4Bytes(begin)), ...rev(ipv4Bytes(end))]);
}

/** `add-nat4/6 DST BEGIN END TARGET VNI MAC` (kept by sidecar-lite, not acted on). */
export function addNat(dst: string, begin: number, end: number, target: string, vni: number, mac: string): TableAddRequest {
  if (!Number.isInteger(vni) || vni < 0 || vni >= 1 << 24) bad('VNI', String(vni), 'a 24-bit number');
  const v6 = dst.includes(':');
  const key = [...rev(v6 ? ipv6Bytes(dst) : ipv4Bytes(dst)), ...le16(begin), ...le16(end)];
  return add(v6 ? T.natV6 : T.natV4, 'forward_to_sled', key, [...rev(ipv6Bytes(target)), vni & 0xff, (vni >> 8) & 0xff, vni >> 16, ...rev(macBytes(mac))]);
}
export function removeNat(dst: string, begin: number, end: number): TableRemoveRequest {
  const v6 = dst.includes(':');
  return remove(v6 ? T.natV6 : T.natV4, [...rev(v6 ? ipv6Bytes(dst) : ipv4Bytes(dst)), ...le16(begin), ...le16(end)]);
}

const hexMac = (b: readonly number[]) => b.map((x) => x.toString(16).padStart(2, '0')).join(':');
const v4 = (b: readonly number[]) => b.join('.');
function v6(b: readonly number[]): string {
  const w: string[] = [];
  for (let i = 0; i < 16; i += 2) w.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return w.join(':').replace(/(^|:)0(:0)+(:|$)/, '::').replace(/:{3,}/, '::');
}
const u16 = (b: readonly number[], o = 0) => b[o]! | (b[o + 1]! << 8);

/** A sidecar-lite entry in words (for `npu dump` without --json); raw bytes for unknown tables. */
export function describeEntry(table: string, e: TableEntryJson): string {
  const k = e.keyset_data;
  const p = e.parameter_data;
  try {
    switch (table) {
      case T.localV4:
        return `${v4(rev(k))} ${e.action_id}`;
      case T.localV6:
        return `${v6(rev(k))} ${e.action_id}`;
      case T.v4Idx:
      case T.attachedV4:
        return `${v4(k.slice(0, 4))}/${k[4]} -> ${e.action_id}${e.action_id === 'index' ? ` idx ${u16(p)} slots ${p[2]}` : ''}`;
      case T.v6Idx:
      case T.attachedV6:
        return `${v6(k.slice(0, 16))}/${k[16]} -> ${e.action_id}${e.action_id === 'index' ? ` idx ${u16(p)} slots ${p[2]}` : ''}`;
      case T.v4Route:
      case T.v6Route: {
        const nh = p.length >= 18 ? v6(rev(p.slice(2, 18))) : v4(rev(p.slice(2, 6)));
        const vlan = p.length === 8 || p.length === 20 ? ` vlan ${u16(p, p.length - 2)}` : '';
        return `idx ${u16(k)} -> ${e.action_id} port ${u16(p)} nexthop ${nh}${vlan}`;
      }
      case T.resolverV4:
        return `${v4(rev(k))} -> ${e.action_id}${p.length ? ` ${hexMac(rev(p))}` : ''}`;
      case T.resolverV6:
        return `${v6(rev(k))} -> ${e.action_id}${p.length ? ` ${hexMac(rev(p))}` : ''}`;
      case T.macRewrite:
        return `port ${u16(k)} -> src ${hexMac(rev(p))}`;
      case T.proxyArp:
        return `${v4(rev(k.slice(0, 4)))}..${v4(rev(k.slice(4, 8)))} -> ${hexMac(rev(p))}`;
    }
  } catch {
    // fall through to raw bytes
  }
  return `${e.action_id} key [${k.join(',')}] params [${p.join(',')}]`;
}
