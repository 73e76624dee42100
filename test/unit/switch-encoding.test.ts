import { describe, expect, it } from 'vitest';
import {
  addAddress,
  addNat,
  addNeighbor,
  addProxyArp,
  addRoute4,
  addRoute6,
  clearMac,
  describeEntry,
  freeRouteIndex,
  ipv6Bytes,
  macBytes,
  removeNeighbor,
  removeRoute,
  setMac,
  type TableDump,
} from '../../src/switch/encoding.js';
import { createPipeline } from '../../src/switch/programs/sidecar-lite.js';
import { dumpTables } from '../../src/switch/pipeline.js';
import { expectFalconCode } from './switch-frames.js';

const GC1_MAC = 'a8:40:25:ff:00:01';
const GC2_MAC = 'a8:40:25:ff:00:02';

describe('x4c encodings (design brief §4, two gimlets)', () => {
  it('add-route4 gives the brief route and idx entries, allocating path indexes 0 then 1', () => {
    const dump: TableDump = {};
    const r1 = addRoute4(dump, '10.0.1.0/24', 1, '10.0.1.2');
    expect(r1).toEqual([
      { table: 'ingress.router.v4_route.rtr', action: 'forward', keyset_data: [0, 0], parameter_data: [1, 0, 2, 1, 0, 10] },
      { table: 'ingress.router.v4_idx.rtr', action: 'index', keyset_data: [10, 0, 1, 0, 24], parameter_data: [0, 0, 1] },
    ]);
    const p = createPipeline(3);
    for (const e of r1) p.tableAdd(e.table, e.action, Uint8Array.from(e.keyset_data), Uint8Array.from(e.parameter_data));
    const r2 = addRoute4(dumpTables(p), '10.0.2.0/24', 2, '10.0.2.2');
    expect(r2).toEqual([
      { table: 'ingress.router.v4_route.rtr', action: 'forward', keyset_data: [1, 0], parameter_data: [2, 0, 2, 2, 0, 10] },
      { table: 'ingress.router.v4_idx.rtr', action: 'index', keyset_data: [10, 0, 2, 0, 24], parameter_data: [1, 0, 1] },
    ]);
  });

  it('resolver, mac_rewrite and proxy_arp entries match the brief byte for byte', () => {
    expect(addNeighbor('10.0.1.2', GC1_MAC)).toEqual({ table: 'ingress.resolver.resolver_v4', action: 'rewrite_dst', keyset_data: [2, 1, 0, 10], parameter_data: [1, 0, 0xff, 0x25, 0x40, 0xa8] });
    expect(addNeighbor('10.0.2.2', GC2_MAC).keyset_data).toEqual([2, 2, 0, 10]);
    expect(setMac(1, 'a8:40:25:00:00:01')).toEqual({ table: 'ingress.mac.mac_rewrite', action: 'rewrite', keyset_data: [1, 0], parameter_data: [1, 0, 0, 37, 64, 168] });
    expect(setMac(2, 'a8:40:25:00:00:02').parameter_data).toEqual([2, 0, 0, 37, 64, 168]);
    expect(addProxyArp('10.0.1.1', '10.0.1.1', 'a8:40:25:00:00:01')).toEqual({ table: 'ingress.pxarp.proxy_arp', action: 'proxy_arp_reply', keyset_data: [1, 1, 0, 10, 1, 1, 0, 10], parameter_data: [1, 0, 0, 37, 64, 168] });
    expect(addProxyArp('10.0.2.1', '10.0.2.1', 'a8:40:25:00:00:02').keyset_data).toEqual([1, 2, 0, 10, 1, 2, 0, 10]);
  });

  it('local addresses are exact keys, byte-reversed; removals use the same keys as adds', () => {
    expect(addAddress('10.0.1.1')).toEqual({ table: 'ingress.local.local_v4', action: 'local', keyset_data: [1, 1, 0, 10], parameter_data: [] });
    expect(addAddress('fd00::1').keyset_data).toEqual([1, ...Array(14).fill(0), 0xfd]);
    expect(removeNeighbor('10.0.1.2')).toEqual({ table: 'ingress.resolver.resolver_v4', keyset_data: [2, 1, 0, 10] });
    expect(clearMac(2)).toEqual({ table: 'ingress.mac.mac_rewrite', keyset_data: [2, 0] });
  });

  it('remove-route finds the path index in a dump and removes both entries', () => {
    const p = createPipeline(3);
    for (const e of [...addRoute4({}, '10.0.1.0/24', 1, '10.0.1.2')]) p.tableAdd(e.table, e.action, Uint8Array.from(e.keyset_data), Uint8Array.from(e.parameter_data));
    expect(removeRoute(dumpTables(p), '10.0.1.0/24')).toEqual([
      { table: 'ingress.router.v4_idx.rtr', keyset_data: [10, 0, 1, 0, 24] },
      { table: 'ingress.router.v4_route.rtr', keyset_data: [0, 0] },
    ]);
    expect(removeRoute(dumpTables(p), '10.9.0.0/16')).toEqual([]);
  });

  it('add-route6: 17-byte LPM key, 18 parameter bytes with the nexthop reversed', () => {
    const [route, idx] = addRoute6({}, 'fd00:1::/64', 3, 'fe80::2');
    expect(idx!.keyset_data).toEqual([0xfd, 0, 0, 1, ...Array(12).fill(0), 64]);
    expect(route!.parameter_data).toEqual([3, 0, 2, ...Array(13).fill(0), 0x80, 0xfe]);
  });

  it('NAT entries: dst reversed, port range LE, target reversed, 3-byte VNI, MAC reversed', () => {
    const e = addNat('192.168.0.1', 1024, 2047, 'fd00::99', 0x123456, 'a8:40:25:00:00:09');
    expect(e.keyset_data).toEqual([1, 0, 168, 192, 0, 4, 0xff, 7]);
    expect(e.parameter_data).toEqual([0x99, ...Array(14).fill(0), 0xfd, 0x56, 0x34, 0x12, 9, 0, 0, 37, 64, 168]);
  });

  it('parses IPv6 forms and refuses bad input with INVALID_ARGUMENT', () => {
    expect(ipv6Bytes('::')).toEqual(Array(16).fill(0));
    expect(ipv6Bytes('::ffff:10.0.0.1').slice(10)).toEqual([0xff, 0xff, 10, 0, 0, 1]);
    expect(ipv6Bytes('1:2:3:4:5:6:7:8')).toEqual([0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]);
    expectFalconCode('INVALID_ARGUMENT', () => ipv6Bytes('1::2::3'), () => macBytes('a8:40'), () => addRoute4({}, '10.0.0.0/33', 1, '10.0.0.1'), () => setMac(70000, GC1_MAC));
  });

  it('freeRouteIndex skips every slot in use', () => {
    const dump: TableDump = { 'ingress.router.v4_idx.rtr': [{ action_id: 'index', keyset_data: [10, 0, 0, 0, 8], parameter_data: [0, 0, 2] }] };
    expect(freeRouteIndex(dump, false)).toBe(2);
  });

  it('describes entries in words', () => {
    expect(describeEntry('ingress.router.v4_route.rtr', { action_id: 'forward', keyset_data: [0, 0], parameter_data: [1, 0, 2, 1, 0, 10] })).toBe('idx 0 -> forward port 1 nexthop 10.0.1.2');
    expect(describeEntry('ingress.mac.mac_rewrite', { action_id: 'rewrite', keyset_data: [1, 0], parameter_data: [1, 0, 0, 37, 64, 168] })).toBe('port 1 -> src a8:40:25:00:00:01');
    expect(describeEntry('ingress.local.local_v6', { action_id: 'local', keyset_data: [1, ...Array(14).fill(0), 0xfd], parameter_data: [] })).toBe('fd00::1 local');
  });
});
