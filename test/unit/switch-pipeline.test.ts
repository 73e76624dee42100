import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { addAddress, addNeighbor, addProxyArp, addRoute4, addRoute6, ipv6Bytes, setMac, type TableAddRequest } from '../../src/switch/encoding.js';
import { dumpTables, type Pipeline } from '../../src/switch/pipeline.js';
import { loadPipeline } from '../../src/switch/loader.js';
import { createPipeline as sidecarLite } from '../../src/switch/programs/sidecar-lite.js';
import { createPipeline as sidemux } from '../../src/switch/programs/sidemux.js';
import { createPipeline as wire } from '../../src/switch/programs/wire.js';
import { SIDECAR_LITE_PAYLOAD, SidecarCode, encapsulate, readSidecarHeader } from '../../src/switch/sidecar-header.js';
import { TernaryTable, noParams } from '../../src/switch/tables.js';
import { BCAST, arpBody, arpRequest, eth, expectFalconCode, ipv4Icmp, ipv6Icmp } from './switch-frames.js';

const R1 = 'a8:40:25:00:00:01';
const R2 = 'a8:40:25:00:00:02';
const GC1 = 'a8:40:25:ff:00:01';
const GC2 = 'a8:40:25:ff:00:02';

function add(p: Pipeline, reqs: TableAddRequest | TableAddRequest[]) {
  for (const e of Array.isArray(reqs) ? reqs : [reqs]) p.tableAdd(e.table, e.action, Uint8Array.from(e.keyset_data), Uint8Array.from(e.parameter_data));
}

/** The brief's two-gimlet table set: gc1 10.0.1.2 on port 1, gc2 10.0.2.2 on port 2. */
function twoGimlets(): Pipeline {
  const p = sidecarLite(3);
  add(p, addRoute4(dumpTables(p), '10.0.1.0/24', 1, '10.0.1.2'));
  add(p, addRoute4(dumpTables(p), '10.0.2.0/24', 2, '10.0.2.2'));
  add(p, [addNeighbor('10.0.1.2', GC1), addNeighbor('10.0.2.2', GC2), setMac(1, R1), setMac(2, R2)]);
  add(p, [addProxyArp('10.0.1.1', '10.0.1.1', R1), addProxyArp('10.0.2.1', '10.0.2.1', R2)]);
  return p;
}

describe('sidecar-lite', () => {
  it('lists all 14 tables in a dump, even empty', () => {
    const d = dumpTables(sidecarLite(3));
    expect(Object.keys(d).sort()).toEqual(
      [
        'ingress.attached.attached_subnet_v4',
        'ingress.attached.attached_subnet_v6',
        'ingress.local.local_v4',
        'ingress.local.local_v6',
        'ingress.mac.mac_rewrite',
        'ingress.nat.nat_v4',
        'ingress.nat.nat_v6',
        'ingress.pxarp.proxy_arp',
        'ingress.resolver.resolver_v4',
        'ingress.resolver.resolver_v6',
        'ingress.router.v4_idx.rtr',
        'ingress.router.v4_route.rtr',
        'ingress.router.v6_idx.rtr',
        'ingress.router.v6_route.rtr',
      ].sort(),
    );
    expect(Object.values(d).every((e) => e.length === 0)).toBe(true);
  });

  it('answers a proxied ARP request out of the in-port with the router MAC', () => {
    const p = twoGimlets();
    const out = p.processPacket(1, arpRequest(GC1, '10.0.1.2', '10.0.1.1'));
    expect(out).toHaveLength(1);
    const [f, port] = out[0]!;
    expect(port).toBe(1);
    const arp = arpBody(2, R1, '10.0.1.1', GC1, '10.0.1.2');
    expect(f.toString('hex')).toBe(eth(GC1, R1, 0x0806, arp).toString('hex'));
  });

  it('routes IPv4 from port 1 to port 2, rewriting both MACs and keeping the TTL and checksum', () => {
    const p = twoGimlets();
    const ip = ipv4Icmp('10.0.1.2', '10.0.2.2', 64);
    const out = p.processPacket(1, eth(R1, GC1, 0x0800, Buffer.from(ip)));
    expect(out).toHaveLength(1);
    expect(out[0]![1]).toBe(2);
    expect(out[0]![0].toString('hex')).toBe(eth(GC2, R2, 0x0800, ip).toString('hex'));
    expect(out[0]![0][14 + 8]).toBe(64);
  });

  it('routes IPv6 through v6 idx/route/resolver and mac_rewrite', () => {
    const p = sidecarLite(3);
    add(p, addRoute6(dumpTables(p), 'fd00:2::/64', 2, 'fd00:2::2'));
    add(p, [addNeighbor('fd00:2::2', GC2), setMac(2, R2)]);
    const ip = ipv6Icmp(Buffer.from(ipv6Bytes('fd00:1::2')), Buffer.from(ipv6Bytes('fd00:2::2')), 7);
    const out = p.processPacket(1, eth(R1, GC1, 0x86dd, Buffer.from(ip)));
    expect(out.map(([f, port]) => [f.toString('hex'), port])).toEqual([[eth(GC2, R2, 0x86dd, ip).toString('hex'), 2]]);
  });

  it('punts a local address to port 0 with the 24-byte sidecar header', () => {
    const p = twoGimlets();
    add(p, addAddress('10.0.1.1'));
    const inner = eth(R1, GC1, 0x0800, ipv4Icmp('10.0.1.2', '10.0.1.1'));
    const out = p.processPacket(1, Buffer.from(inner));
    expect(out).toHaveLength(1);
    const [f, port] = out[0]!;
    expect(port).toBe(0);
    const hdr = Buffer.concat([Buffer.from([1, 0, 0, 1, 0, 1, 0x08, 0x00]), Buffer.from(SIDECAR_LITE_PAYLOAD)]);
    expect(f.toString('hex')).toBe(Buffer.concat([inner.subarray(0, 12), Buffer.from([0x09, 0x01]), hdr, inner.subarray(14)]).toString('hex'));
    expect(hdr.subarray(8).toString('hex')).toBe('0000000000000000000000000001701d');
  });

  it('punts unproxied ARP, ff02::/16 and LLDP; drops an unknown ethertype', () => {
    const p = twoGimlets();
    expect(p.processPacket(2, arpRequest(GC2, '10.0.2.2', '10.0.2.9'))[0]![1]).toBe(0);
    const ns = ipv6Icmp(Buffer.from(ipv6Bytes('fe80::1')), Buffer.from(ipv6Bytes('ff02::1:ff00:1')), 255);
    expect(p.processPacket(2, eth('33:33:ff:00:00:01', GC2, 0x86dd, ns))[0]![1]).toBe(0);
    expect(p.processPacket(1, eth('01:80:c2:00:00:0e', GC1, 0x88cc, Buffer.alloc(30)))[0]![1]).toBe(0);
    expect(p.processPacket(1, eth(BCAST, GC1, 0x88b5, Buffer.alloc(50)))).toEqual([]);
    expect(p.counters!().drop_parse).toBe(1);
  });

  it('decapsulates a frame from the CPU port out of its sc_egress port', () => {
    const p = twoGimlets();
    const inner = eth(GC2, R2, 0x0800, ipv4Icmp('10.0.2.1', '10.0.2.2'));
    const out = p.processPacket(0, encapsulate(inner, { code: SidecarCode.ForwardFromUserspace, ingress: 0, egress: 2 }));
    expect(out.map(([f, port]) => [f.toString('hex'), port])).toEqual([[inner.toString('hex'), 2]]);
  });

  it('drops a frame routed back out of its in-port, a CPU frame to the CPU port, and an egress beyond the radix', () => {
    const p = twoGimlets();
    expect(p.processPacket(2, eth(R2, GC2, 0x0800, ipv4Icmp('10.0.2.5', '10.0.2.2')))).toEqual([]);
    expect(p.counters!().drop_reflection).toBe(1);
    const inner = eth(GC2, R2, 0x0800, ipv4Icmp('10.0.2.1', '10.0.2.2'));
    expect(p.processPacket(0, encapsulate(inner, { code: 0, ingress: 0, egress: 0 }))).toEqual([]);
    expect(p.processPacket(0, encapsulate(inner, { code: 0, ingress: 0, egress: 3 }))).toEqual([]);
  });

  it('drops without a route and when the resolver misses; a route removed stops forwarding', () => {
    const p = twoGimlets();
    expect(p.processPacket(1, eth(R1, GC1, 0x0800, ipv4Icmp('10.0.1.2', '10.0.3.2')))).toEqual([]);
    p.tableRemove('ingress.resolver.resolver_v4', Uint8Array.from([2, 2, 0, 10]));
    expect(p.processPacket(1, eth(R1, GC1, 0x0800, ipv4Icmp('10.0.1.2', '10.0.2.2')))).toEqual([]);
    expect(p.counters!()).toMatchObject({ drop_no_route: 1, drop_no_neighbor: 1 });
  });

  it('drops short frames and truncated headers', () => {
    const p = twoGimlets();
    expect(p.processPacket(1, Buffer.alloc(10))).toEqual([]);
    expect(p.processPacket(1, eth(R1, GC1, 0x0800, ipv4Icmp('10.0.1.2', '10.0.2.2').subarray(0, 24)))).toEqual([]);
    expect(p.processPacket(0, Buffer.concat([eth(R1, GC1, 0x0901, Buffer.alloc(10))]))).toEqual([]);
  });

  it('keeps the old entry when a key is added twice, and refuses bad entries with NPU_TABLE', () => {
    const p = twoGimlets();
    p.tableAdd('ingress.mac.mac_rewrite', 'rewrite', Uint8Array.from([1, 0]), Uint8Array.from([9, 9, 9, 9, 9, 9]));
    expect(p.tableEntries('ingress.mac.mac_rewrite')![0]!.parameter_data).toEqual([1, 0, 0, 37, 64, 168]);
    expectFalconCode(
      'NPU_TABLE',
      () => p.tableAdd('ingress.nope', 'x', new Uint8Array(), new Uint8Array()),
      () => p.tableAdd('ingress.mac.mac_rewrite', 'nope', Uint8Array.from([1, 0]), new Uint8Array(6)),
      () => p.tableAdd('ingress.mac.mac_rewrite', 'rewrite', Uint8Array.from([1, 0, 0]), new Uint8Array(6)),
    );
  });

  it('accepts NAT and attached-subnet entries without acting on them', () => {
    const p = twoGimlets();
    p.tableAdd('ingress.attached.attached_subnet_v4', 'forward_to_sled', Uint8Array.from([10, 0, 2, 0, 24]), new Uint8Array(25));
    expect(p.tableEntries('ingress.attached.attached_subnet_v4')).toHaveLength(1);
    expect(p.processPacket(1, eth(R1, GC1, 0x0800, ipv4Icmp('10.0.1.2', '10.0.2.2')))[0]![1]).toBe(2);
  });

  it('forward_vlan inserts an 802.1Q tag', () => {
    const p = sidecarLite(3);
    add(p, addRoute4(dumpTables(p), '10.0.2.0/24', 2, '0.0.0.0', 42));
    const ip = ipv4Icmp('10.0.1.2', '10.0.2.2');
    const [f, port] = p.processPacket(1, eth(R1, GC1, 0x0800, Buffer.from(ip)))[0]!;
    expect(port).toBe(2);
    expect(f.subarray(12, 18).toString('hex')).toBe('8100002a0800');
  });

  it('loads by name through the loader and refuses unknown programs with NPU_PROGRAM', async () => {
    const p = await loadPipeline('sidecar-lite', 3);
    expect(p.tableIds()).toHaveLength(14);
    await expect(loadPipeline('nope', 3)).rejects.toMatchObject({ code: 'NPU_PROGRAM' });
    await expect(loadPipeline('/nonexistent/prog.js', 3)).rejects.toMatchObject({ code: 'NPU_PROGRAM' });
  });

  it('loads a user program from a module path, relative to a base folder', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fsw-prog-'));
    try {
      writeFileSync(
        path.join(dir, 'hub.mjs'),
        `export function createPipeline(radix) {
          return {
            processPacket: (port, frame) => [...Array(radix).keys()].filter((p) => p !== port).map((p) => [frame, p]),
            tableAdd() {}, tableRemove() {}, tableIds: () => [], tableEntries: () => undefined,
          };
        }\n`,
      );
      writeFileSync(path.join(dir, 'bad.mjs'), 'export const x = 1;\n');
      const p = await loadPipeline('./hub.mjs', 3, dir);
      expect(p.processPacket(1, Buffer.alloc(14)).map(([, port]) => port)).toEqual([0, 2]);
      await expect(loadPipeline(path.join(dir, 'bad.mjs'), 3)).rejects.toMatchObject({ code: 'NPU_PROGRAM' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('wire', () => {
  it('joins ports 1 and 2 and drops the rest', () => {
    const p = wire(3);
    const f = Buffer.from('abcdefabcdefabcdefabcdef', 'hex');
    expect(p.processPacket(1, f)).toEqual([[f, 2]]);
    expect(p.processPacket(2, f)).toEqual([[f, 1]]);
    expect(p.processPacket(0, f)).toEqual([]);
  });
});

describe('sidemux', () => {
  const inner = eth(BCAST, GC1, 0x0806, Buffer.alloc(28, 7));

  it('encapsulates driver NIC p (port p+1) toward port 0 with code 0 and egress p, byte for byte', () => {
    const p = sidemux(5);
    const out = p.processPacket(3, Buffer.from(inner));
    expect(out).toHaveLength(1);
    expect(out[0]![1]).toBe(0);
    const expected = Buffer.concat([inner.subarray(0, 12), Buffer.from([0x09, 0x01, 0, 0, 0, 0, 0, 2, 0x08, 0x06]), Buffer.alloc(16), inner.subarray(14)]);
    expect(out[0]![0].toString('hex')).toBe(expected.toString('hex'));
  });

  it('delivers a code-1 frame from the sidecar to the NIC of its ingress port, decapsulated', () => {
    const p = sidemux(5);
    const out = p.processPacket(0, encapsulate(inner, { code: SidecarCode.ForwardToUserspace, ingress: 3, egress: 3 }));
    expect(out.map(([f, port]) => [f.toString('hex'), port])).toEqual([[inner.toString('hex'), 4]]);
  });

  it('keeps a VLAN tag of the inner frame both ways', () => {
    const p = sidemux(3);
    const tagged = eth(BCAST, GC1, 0x8100, Buffer.concat([Buffer.from([0, 5, 0x08, 0x06]), Buffer.alloc(28)]));
    const [enc] = p.processPacket(1, Buffer.from(tagged))[0]!;
    expect(readSidecarHeader(enc)!.etherType).toBe(0x8100);
    expect(enc.subarray(38, 42).toString('hex')).toBe('00050806');
    const back = encapsulate(tagged, { code: 1, ingress: 0, egress: 0 });
    expect(p.processPacket(0, back)[0]![0].toString('hex')).toBe(tagged.toString('hex'));
  });

  it('counts and drops bad codes, short frames, frames without a header and ports out of range', () => {
    const p = sidemux(3);
    expect(p.processPacket(0, encapsulate(inner, { code: 0, ingress: 0, egress: 0 }))).toEqual([]);
    expect(p.processPacket(0, encapsulate(inner, { code: 3, ingress: 0, egress: 0 }))).toEqual([]);
    expect(p.processPacket(0, encapsulate(inner, { code: 1, ingress: 2, egress: 0 }))).toEqual([]);
    expect(p.processPacket(0, inner.subarray(0, 30))).toEqual([]);
    expect(p.processPacket(0, Buffer.concat([inner, Buffer.alloc(30)]))).toEqual([]);
    expect(p.processPacket(5, inner)).toEqual([]);
    expect(p.processPacket(1, inner.subarray(0, 10))).toEqual([]);
    expect(p.counters!()).toEqual({ drop_bad_code: 2, drop_bad_port: 2, drop_short: 2, drop_no_header: 1 });
  });
});

describe('TernaryTable', () => {
  it('matches value/mask, the highest priority first', () => {
    const t = new TernaryTable<string>('t', 2, { a: { params: 1, decode: (p) => `a${p[0]}` }, b: noParams('b') });
    t.addWithPriority('a', Uint8Array.from([0x0a, 0x00, 0xff, 0x00]), Uint8Array.from([1]), 1);
    t.addWithPriority('b', Uint8Array.from([0x0a, 0x01, 0xff, 0xff]), new Uint8Array(), 5);
    expect(t.lookup(Uint8Array.from([0x0a, 0x01]), 0)).toBe('b');
    expect(t.lookup(Uint8Array.from([0x0a, 0x07]), 0)).toBe('a1');
    expect(t.lookup(Uint8Array.from([0x0b, 0x01]), 0)).toBeUndefined();
  });
});
