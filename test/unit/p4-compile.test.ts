/**
 * The P4 compiler (src/p4/compile.ts) and its pipeline (src/switch/p4-program.ts): small
 * programs compiled from inline source and run on crafted frames.
 */
import { describe, expect, it } from 'vitest';
import { compileP4Pipeline, type P4Pipeline } from '../../src/switch/p4-program.js';
import { loadPipeline } from '../../src/switch/loader.js';
import { addNeighbor, addProxyArp, addRoute4, addRoute6, ipv4Bytes, ipv6Bytes, le16, lpmKey, rev, setMac } from '../../src/switch/encoding.js';
import { loadP4Program } from '../../src/p4/index.js';
import { tableLayouts } from '../../src/p4/table-layout.js';
import { fileURLToPath } from 'node:url';

const HEADERS = `
#include <core.p4>
#include <softnpu.p4>
header ethernet_h { bit<48> dst; bit<48> src; bit<16> ether_type; }
header vlan_h { bit<3> pcp; bit<1> dei; bit<12> vid; bit<16> ether_type; }
header ipv4_h {
  bit<4> version; bit<4> ihl; bit<8> dscp_ecn; bit<16> total_len; bit<16> ident; bit<3> flags;
  bit<13> frag_offset; bit<8> ttl; bit<8> protocol; bit<16> hdr_checksum; bit<32> src; bit<32> dst;
}
header ipv6_h { bit<4> version; bit<8> traffic_class; bit<20> flow_label; bit<16> payload_len; bit<8> next_hdr; bit<8> hop_limit; bit<128> src; bit<128> dst; }
header tag_h { bit<8> a; bit<8> b; }
struct headers_t { ethernet_h eth; tag_h tag; vlan_h vlan; ipv4_h ipv4; ipv6_h ipv6; }
SoftNPU(parse(), ingress(), egress()) main;
`;

/** The usual parser: Ethernet, an optional VLAN tag, then IPv4 or IPv6. */
const PARSER = `
parser parse(packet_in pkt, out headers_t hdr, inout ingress_metadata_t ig) {
  state start {
    pkt.extract(hdr.eth);
    transition select(hdr.eth.ether_type) {
      16w0x8100: vlan;
      16w0x0800: ipv4;
      16w0x86dd: ipv6;
      default: accept;
    }
  }
  state vlan {
    pkt.extract(hdr.vlan);
    transition select(hdr.vlan.ether_type) { 16w0x0800: ipv4; default: accept; }
  }
  state ipv4 { pkt.extract(hdr.ipv4); transition accept; }
  state ipv6 { pkt.extract(hdr.ipv6); transition accept; }
}`;

const EMPTY_EGRESS = `control egress(inout headers_t hdr, inout ingress_metadata_t ig, inout egress_metadata_t eg) { apply { } }`;

function program(ingressBody: string, opts: { parser?: string; egress?: string; radix?: number } = {}): P4Pipeline {
  const source = `${HEADERS}\n${opts.parser ?? PARSER}\ncontrol ingress(inout headers_t hdr, inout ingress_metadata_t ig, inout egress_metadata_t eg) {\n${ingressBody}\n}\n${opts.egress ?? EMPTY_EGRESS}`;
  return compileP4Pipeline({ source, file: '/virtual/test.p4' }, opts.radix ?? 4);
}

const MAC_A = [0xa8, 0x40, 0x25, 0, 0, 1];
const MAC_B = [0xa8, 0x40, 0x25, 0, 0, 2];

function eth(type: number, rest: number[] = []): Buffer {
  return Buffer.from([...MAC_A, ...MAC_B, type >> 8, type & 0xff, ...rest]);
}
function ipv4(src: string, dst: string, extra: number[] = [], proto = 17): number[] {
  return [0x45, 0, 0, 20 + extra.length, 0, 0, 0x40, 0, 64, proto, 0, 0, ...ipv4Bytes(src), ...ipv4Bytes(dst), ...extra];
}
function ipv6(src: string, dst: string): number[] {
  return [0x60, 0, 0, 0, 0, 0, 17, 64, ...ipv6Bytes(src), ...ipv6Bytes(dst)];
}
const v4Frame = (src: string, dst: string, payload: number[] = [1, 2, 3, 4]) => eth(0x0800, ipv4(src, dst, payload));

function run(p: P4Pipeline, port: number, frame: Buffer): { port: number; hex: string }[] {
  return p.processPacket(port, Buffer.from(frame)).map(([f, o]) => ({ port: o, hex: Buffer.from(f).toString('hex') }));
}
function add(p: P4Pipeline, table: string, action: string, key: number[], params: number[] = [], prio?: number): void {
  p.tableAdd(table, action, Uint8Array.from(key), Uint8Array.from(params), prio);
}
const hex = (b: Buffer | number[]) => Buffer.from(b).toString('hex');

describe('P4 compiler: parser', () => {
  const fwd = `apply { eg.port = 16w2; if (hdr.vlan.isValid()) { eg.port = 16w3; } if (hdr.ipv4.isValid()) { hdr.ipv4.ttl = 8w1; } }`;

  it('extracts by select and sends valid headers in struct order with the payload', () => {
    const p = program(fwd);
    const f = v4Frame('10.0.0.1', '10.0.0.2');
    const out = run(p, 1, f);
    const want = Buffer.from(f);
    want[14 + 8] = 1;
    expect(out).toEqual([{ port: 2, hex: hex(want) }]);
    const tagged = eth(0x8100, [0x20, 0x05, 0x08, 0x00, ...ipv4('10.0.0.1', '10.0.0.2')]);
    expect(run(p, 1, tagged)[0]!.port).toBe(3);
    // default: accept with Ethernet only; the rest is payload, unchanged
    const arp = eth(0x0806, [9, 9, 9]);
    expect(run(p, 1, arp)).toEqual([{ port: 2, hex: hex(arp) }]);
  });

  it('rejects a frame too short for a header it extracts, and reject drops', () => {
    const p = program(fwd);
    expect(run(p, 1, eth(0x0800, [0x45, 0, 0]))).toEqual([]);
    expect(run(p, 1, Buffer.from([1, 2, 3]))).toEqual([]);
    const rej = program(fwd, { parser: PARSER.replace('default: accept;\n    }', 'default: reject;\n    }') });
    expect(run(rej, 1, eth(0x0806, [1]))).toEqual([]);
  });

  it('selects with masks, tuples, lookahead and advance', () => {
    const parser = `
parser parse(packet_in pkt, out headers_t hdr, inout ingress_metadata_t ig) {
  state start {
    pkt.extract(hdr.eth);
    transition select(hdr.eth.ether_type, pkt.lookahead<bit<8>>()) {
      (16w0x0800 &&& 16w0xff00, 8w0x45): ipv4;
      (16w0x9000, _): skip;
      default: accept;
    }
  }
  state skip { pkt.advance(32w16); pkt.extract(hdr.tag); transition accept; }
  state ipv4 { pkt.extract(hdr.ipv4); transition accept; }
}`;
    const p = program(`apply { eg.port = 16w1; if (hdr.ipv4.isValid()) { eg.port = 16w2; } if (hdr.tag.isValid()) { eg.port = 16w3; } }`, { parser });
    expect(run(p, 0, eth(0x0801, ipv4('1.1.1.1', '2.2.2.2')))[0]!.port).toBe(2);
    expect(run(p, 0, eth(0x0800, [0x46, ...ipv4('1.1.1.1', '2.2.2.2').slice(1)]))[0]!.port).toBe(1);
    // advance skips 2 bytes, then tag (2 bytes) is extracted: output = eth, tag, then the bytes after the tag
    const out = run(p, 0, eth(0x9000, [0xaa, 0xbb, 7, 8, 9]));
    expect(out).toEqual([{ port: 3, hex: hex(eth(0x9000, [7, 8, 9])) }]);
  });
});

describe('P4 compiler: controls', () => {
  it('runs if/else, return, locals and nested control instances', () => {
    const p = program(`
      action set(bit<16> port) { eg.port = port; }
      apply {
        bit<8> t = hdr.ipv4.ttl;
        if (t == 8w1) { eg.drop = true; return; }
        else if (t < 8w10) { set(16w3); return; }
        set(16w2);
      }`);
    const f = (ttl: number) => {
      const b = v4Frame('1.1.1.1', '2.2.2.2');
      b[22] = ttl;
      return b;
    };
    expect(run(p, 1, f(1))).toEqual([]);
    expect(run(p, 1, f(5))[0]!.port).toBe(3);
    expect(run(p, 1, f(64))[0]!.port).toBe(2);
  });

  it('inlines nested controls with in/out/inout parameters', () => {
    const source = `${HEADERS}\n${PARSER}
control pick(in bit<32> addr, out bit<16> port, inout egress_metadata_t eg) {
  apply { if (addr[31:24] == 8w10) { port = 16w2; } else { port = 16w3; } eg.nexthop_v4 = addr; }
}
control ingress(inout headers_t hdr, inout ingress_metadata_t ig, inout egress_metadata_t eg) {
  pick() p;
  apply { bit<16> out_port = 16w0; p.apply(hdr.ipv4.dst, out_port, eg); eg.port = out_port; hdr.ipv4.src = eg.nexthop_v4; }
}
${EMPTY_EGRESS}`;
    const p = compileP4Pipeline({ source, file: '/virtual/nested.p4' }, 4);
    const o = run(p, 1, v4Frame('1.1.1.1', '10.9.9.9'));
    expect(o[0]!.port).toBe(2);
    expect(o[0]!.hex).toBe(hex(v4Frame('10.9.9.9', '10.9.9.9')));
    expect(run(p, 1, v4Frame('1.1.1.1', '11.9.9.9'))[0]!.port).toBe(3);
  });

  it('wraps arithmetic at the width, shifts, complements and slices', () => {
    const p = program(`
      apply {
        eg.port = 16w1;
        hdr.ipv4.ttl = hdr.ipv4.ttl + 8w10;                  // 250 + 10 = 4
        hdr.ipv4.protocol = hdr.ipv4.protocol - 8w20;        // 17 - 20 = 253
        hdr.ipv4.ident = ~hdr.ipv4.ident;                    // ~0x1234
        hdr.ipv4.hdr_checksum = (hdr.ipv4.total_len << 16w4) | (16w0xf000 >> 16w12);
        hdr.ipv4.dscp_ecn[7:4] = hdr.ipv4.version;           // a slice written
        hdr.ipv4.flags = 3w7;                                // 3 bits inside a byte
        hdr.ipv4.frag_offset = 13w0x1abc;                    // 13 bits across two bytes
        hdr.eth.src[47:40] = 8w0xee;
        hdr.ipv4.dst = hdr.ipv4.src + 32w0xffffffff;         // wraps: src - 1
      }`);
    const f = v4Frame('10.0.0.1', '10.0.0.2');
    f[22] = 250;
    f.writeUInt16BE(0x1234, 18);
    f.writeUInt16BE(0x0123, 16);
    const o = Buffer.from(run(p, 1, f)[0]!.hex, 'hex');
    expect(o[22]).toBe(4);
    expect(o[23]).toBe(253);
    expect(o.readUInt16BE(18)).toBe(~0x1234 & 0xffff);
    expect(o.readUInt16BE(24)).toBe(((0x0123 << 4) & 0xffff) | 0xf);
    expect(o[15]).toBe(0x40);
    expect(o.readUInt16BE(20)).toBe((7 << 13) | 0x1abc);
    expect(o[6]).toBe(0xee);
    expect([...o.subarray(30, 34)]).toEqual([10, 0, 0, 0]);
  });

  it('compares and assigns 128-bit values and their slices', () => {
    const p = program(`
      apply {
        eg.port = 16w1;
        if (hdr.ipv6.dst[127:112] == 16w0xff02) { eg.port = 16w2; }
        if (hdr.ipv6.src == 128w0) { eg.port = 16w3; }
        eg.nexthop_v6 = hdr.ipv6.src;
        hdr.ipv6.dst = eg.nexthop_v6;
        hdr.ipv6.flow_label = 20w0xabcde;
      }`);
    const o = run(p, 1, eth(0x86dd, ipv6('fd00::1', 'ff02::2')));
    expect(o[0]!.port).toBe(2);
    const b = Buffer.from(o[0]!.hex, 'hex');
    expect(hex(b.subarray(14 + 24, 14 + 40))).toBe(hex(ipv6Bytes('fd00::1')));
    expect(((b[15]! & 0xf) << 16) | b.readUInt16BE(16)).toBe(0xabcde);
    expect(run(p, 1, eth(0x86dd, ipv6('::', 'fd00::2')))[0]!.port).toBe(3);
  });

  it('setValid pushes a header and setInvalid pops one, in struct order', () => {
    const p = program(`
      apply {
        eg.port = 16w1;
        if (hdr.vlan.isValid()) {
          hdr.eth.ether_type = hdr.vlan.ether_type;
          hdr.vlan.setInvalid();
        } else {
          hdr.vlan.setValid();
          hdr.vlan.vid = 12w42;
          hdr.vlan.ether_type = hdr.eth.ether_type;
          hdr.eth.ether_type = 16w0x8100;
          hdr.tag.setValid();
          hdr.tag.a = 8w0xaa;
        }
      }`);
    const plain = v4Frame('1.1.1.1', '2.2.2.2');
    const pushed = Buffer.from(run(p, 1, plain)[0]!.hex, 'hex');
    // eth, tag (before vlan in the struct), vlan, ipv4, payload
    expect(hex(pushed)).toBe(hex(Buffer.concat([plain.subarray(0, 12), Buffer.from([0x81, 0x00, 0xaa, 0x00, 0x00, 42, 0x08, 0x00]), plain.subarray(14)])));
    const tagged = eth(0x8100, [0x00, 42, 0x08, 0x00, ...ipv4('1.1.1.1', '2.2.2.2', [1, 2, 3, 4])]);
    expect(run(p, 1, tagged)[0]!.hex).toBe(hex(plain));
  });
});

describe('P4 compiler: output', () => {
  it('broadcasts to every port but the ingress one, running egress per copy', () => {
    const p = program(`apply { eg.broadcast = true; }`, {
      egress: `control egress(inout headers_t hdr, inout ingress_metadata_t ig, inout egress_metadata_t eg) {
        apply { hdr.eth.dst[7:0] = eg.port[7:0]; if (eg.port == 16w3) { eg.drop = true; } }
      }`,
    });
    const out = run(p, 1, eth(0x0806, [1, 2]));
    expect(out.map((o) => o.port)).toEqual([0, 2]);
    expect(out.map((o) => Buffer.from(o.hex, 'hex')[5])).toEqual([0, 2]);
  });

  it('drops on egress.drop, an unassigned port, and a port outside the radix', () => {
    expect(run(program(`apply { eg.port = 16w2; eg.drop = true; }`), 1, eth(0x0806))).toEqual([]);
    expect(run(program(`apply { }`), 1, eth(0x0806))).toEqual([]);
    expect(run(program(`apply { eg.port = 16w4; }`), 1, eth(0x0806))).toEqual([]);
    const p = program(`apply { eg.port = ig.port; }`);
    expect(run(p, 1, eth(0x0806))[0]!.port).toBe(1); // no reflection rule in the runtime
    expect(run(p, 0, eth(0x0806))[0]!.port).toBe(0); // nor a CPU-to-CPU one (the program's business)
    expect(run(p, 9, eth(0x0806))).toEqual([]);
    expect(run(p, 1, Buffer.from([1]))).toEqual([]);
    expect(p.counters!()).toEqual({ parser_reject: 1, dropped: 1, forwarded: 2 });
  });

  it('computes Checksum as the Internet checksum of the listed fields', () => {
    const p = program(`Checksum() csum; apply { eg.port = 16w1; hdr.ipv4.hdr_checksum = csum.run({hdr.ipv4.src, hdr.ipv4.dst}); hdr.ipv4.ident = csum.run({hdr.ipv4.ttl, hdr.ipv4.protocol, hdr.ipv4.version}); }`);
    const o = Buffer.from(run(p, 1, v4Frame('192.168.1.200', '10.255.3.4'))[0]!.hex, 'hex');
    let s = 0xc0a8 + 0x01c8 + 0x0aff + 0x0304;
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    expect(o.readUInt16BE(24)).toBe(~s & 0xffff);
    // 8 + 8 + 4 bits, zero-padded to 32: 0x4011, 0x4000
    let t = 0x4011 + 0x4000;
    while (t > 0xffff) t = (t & 0xffff) + (t >>> 16);
    expect(o.readUInt16BE(18)).toBe(~t & 0xffff);
  });
});

describe('P4 compiler: tables', () => {
  const tables = `
    action drop() { eg.drop = true; }
    action send(bit<16> port) { eg.port = port; }
    action send_mac(bit<16> port, bit<48> mac) { eg.port = port; hdr.eth.dst = mac; }
    table by_port { key = { ig.port: exact; } actions = { send; drop; } default_action = send(16w3); }
    table v4 { key = { hdr.ipv4.dst: lpm; } actions = { send; send_mac; } default_action = drop; }
    table v6 { key = { hdr.ipv6.dst: lpm; } actions = { send; } default_action = drop; }
    table tern { key = { hdr.ipv4.protocol: ternary; } actions = { send; } default_action = NoAction; }
    table ranged { key = { hdr.ipv4.src: exact; hdr.ipv4.ttl: range; } actions = { send; } default_action = NoAction; }
    table consts {
      key = { hdr.eth.ether_type: exact; }
      actions = { send; drop; }
      default_action = NoAction;
      const entries = { 16w0x0806: send(16w1); 16w0x88cc: drop(); }
    }
  `;
  const apply = (body: string) => program(`${tables} apply { ${body} }`);

  it('exact with a default action taking arguments', () => {
    const p = apply('by_port.apply();');
    add(p, 'ingress.by_port', 'send', le16(1), le16(2));
    add(p, 'ingress.by_port', 'drop', le16(2));
    expect(run(p, 1, eth(0x0806))[0]!.port).toBe(2);
    expect(run(p, 2, eth(0x0806))).toEqual([]);
    expect(run(p, 0, eth(0x0806))[0]!.port).toBe(3);
    p.tableRemove('ingress.by_port', Uint8Array.from(le16(1)));
    expect(run(p, 1, eth(0x0806))[0]!.port).toBe(3);
  });

  it('LPM, IPv4 and IPv6, longest prefix first, with 48-bit parameters', () => {
    const p = apply('if (hdr.ipv4.isValid()) { v4.apply(); } else { v6.apply(); }');
    add(p, 'ingress.v4', 'send', lpmKey(ipv4Bytes('10.0.0.0'), 8), le16(1));
    add(p, 'ingress.v4', 'send_mac', lpmKey(ipv4Bytes('10.1.0.0'), 16), [...le16(2), ...rev(MAC_B)]);
    add(p, 'ingress.v6', 'send', lpmKey(ipv6Bytes('fd00::'), 16), le16(3));
    add(p, 'ingress.v6', 'send', lpmKey(ipv6Bytes('fd00:1::'), 32), le16(2));
    expect(run(p, 0, v4Frame('1.1.1.1', '10.2.3.4'))[0]!.port).toBe(1);
    const o = run(p, 0, v4Frame('1.1.1.1', '10.1.3.4'))[0]!;
    expect(o.port).toBe(2);
    expect(o.hex.slice(0, 12)).toBe(hex(MAC_B));
    expect(run(p, 0, v4Frame('1.1.1.1', '11.1.3.4'))).toEqual([]);
    expect(run(p, 0, eth(0x86dd, ipv6('::1', 'fd00:1::5')))[0]!.port).toBe(2);
    expect(run(p, 0, eth(0x86dd, ipv6('::1', 'fd00:2::5')))[0]!.port).toBe(3);
    expect(() => add(p, 'ingress.v4', 'send', lpmKey(ipv4Bytes('10.0.0.0'), 33), le16(1))).toThrow(/prefix length/);
  });

  it('ternary (care byte), by priority', () => {
    const p = apply('eg.port = 16w0; tern.apply();');
    add(p, 'ingress.tern', 'send', [0, 0], le16(1), 1);
    add(p, 'ingress.tern', 'send', [1, 17], le16(2), 5);
    expect(run(p, 3, v4Frame('1.1.1.1', '2.2.2.2'))[0]!.port).toBe(2);
    expect(run(p, 3, eth(0x0800, ipv4('1.1.1.1', '2.2.2.2', [], 6)))[0]!.port).toBe(1);
  });

  it('exact + range keys', () => {
    const p = apply('eg.port = 16w0; ranged.apply();');
    add(p, 'ingress.ranged', 'send', [...rev(ipv4Bytes('1.1.1.1')), 10, 100], le16(2));
    const f = (ttl: number, src = '1.1.1.1') => {
      const b = v4Frame(src, '2.2.2.2');
      b[22] = ttl;
      return b;
    };
    expect(run(p, 3, f(64))[0]!.port).toBe(2);
    expect(run(p, 3, f(100))[0]!.port).toBe(2);
    expect(run(p, 3, f(101))[0]!.port).toBe(0);
    expect(run(p, 3, f(64, '1.1.1.2'))[0]!.port).toBe(0);
    expect(p.tableLayouts().find((t) => t.name === 'ingress.ranged')!.keys.map((k) => [k.name, k.matchKind, k.width, k.offset, k.length])).toEqual([
      ['hdr.ipv4.src', 'exact', 32, 0, 4],
      ['hdr.ipv4.ttl', 'range', 8, 4, 2],
    ]);
  });

  it('const entries match and are not dumped', () => {
    const p = apply('eg.port = 16w2; consts.apply();');
    expect(run(p, 3, eth(0x0806))[0]!.port).toBe(1);
    expect(run(p, 3, eth(0x88cc))).toEqual([]);
    expect(run(p, 3, eth(0x0801))[0]!.port).toBe(2);
    expect(p.tableEntries('ingress.consts')).toEqual([]);
  });

  it('lists every table (applied or not) and checks entries', () => {
    const p = apply('by_port.apply();');
    expect(p.tableIds().sort()).toEqual(['ingress.by_port', 'ingress.consts', 'ingress.ranged', 'ingress.tern', 'ingress.v4', 'ingress.v6']);
    expect(() => add(p, 'ingress.nope', 'send', le16(1), le16(2))).toThrow(/no table/);
    expect(() => add(p, 'ingress.by_port', 'nope', le16(1), le16(2))).toThrow(/no action/);
    expect(() => add(p, 'ingress.by_port', 'send', [1], le16(2))).toThrow(/2-byte keys/);
    expect(() => add(p, 'ingress.by_port', 'send', le16(1), [2])).toThrow(/2 parameter bytes/);
    add(p, 'ingress.by_port', 'send', le16(1), le16(2));
    add(p, 'ingress.by_port', 'send', le16(1), le16(3)); // an existing key keeps the old entry
    expect(p.tableEntries('ingress.by_port')).toEqual([{ action_id: 'send', keyset_data: [1, 0], parameter_data: [2, 0] }]);
    expect(run(p, 1, eth(0x0806))[0]!.port).toBe(2);
  });
});

describe('P4 compiler: more keys and controls', () => {
  it('keys on a 64-bit slice of an IPv6 address and on a bool; egress tables are named after egress', () => {
    const source = `${HEADERS}\n${PARSER}
control ingress(inout headers_t hdr, inout ingress_metadata_t ig, inout egress_metadata_t eg) {
  action send(bit<16> port) { eg.port = port; }
  table net { key = { hdr.ipv6.dst[127:64]: exact; ig.lldp: exact; } actions = { send; } default_action = send(16w1); }
  apply { net.apply(); }
}
control nothing(inout egress_metadata_t eg) { }
control egress(inout headers_t hdr, inout ingress_metadata_t ig, inout egress_metadata_t eg) {
  action mark(bit<8> v) { hdr.ipv6.hop_limit = v; }
  table marks { key = { eg.port: exact; } actions = { mark; } default_action = NoAction; }
  nothing() n;
  apply { n.apply(eg); marks.apply(); }
}`;
    const p = compileP4Pipeline({ source, file: '/virtual/keys.p4' }, 4);
    expect(p.tableIds()).toEqual(['ingress.net', 'egress.marks']);
    const net = p.tableLayouts()[0]!;
    expect(net.keys.map((k) => [k.width, k.offset, k.length])).toEqual([[64, 0, 8], [1, 8, 1]]);
    add(p, 'ingress.net', 'send', [...rev(ipv6Bytes('fd00:1:2:3::').slice(0, 8)), 0], le16(2));
    add(p, 'egress.marks', 'mark', le16(2), [7]);
    const o = run(p, 0, eth(0x86dd, ipv6('::1', 'fd00:1:2:3::99')));
    expect(o[0]!.port).toBe(2);
    expect(Buffer.from(o[0]!.hex, 'hex')[14 + 7]).toBe(7);
    expect(run(p, 0, eth(0x86dd, ipv6('::1', 'fd00:1:2:4::99')))[0]!.port).toBe(1);
  });

  it('copies whole headers to and from local header variables', () => {
    const p = program(`apply {
      eg.port = 16w1;
      ipv4_h saved = hdr.ipv4;
      hdr.ipv4.ttl = 8w1;
      hdr.ipv4.src = 32w0;
      if (saved.isValid()) { hdr.ipv4 = saved; hdr.ipv4.ttl = saved.ttl - 8w1; }
    }`);
    const f = v4Frame('1.2.3.4', '5.6.7.8');
    const want = Buffer.from(f);
    want[22] = 63;
    expect(run(p, 1, f)[0]!.hex).toBe(hex(want));
  });

  it('computes on 128-bit values (BigInt, off the fast path)', () => {
    const p = program(`apply {
      eg.port = 16w1;
      hdr.ipv6.dst = hdr.ipv6.src + 128w0x10001;
      if (hdr.ipv6.dst > hdr.ipv6.src) { hdr.ipv6.hop_limit = (hdr.ipv6.src ^ hdr.ipv6.dst)[7:0]; }
      hdr.ipv6.src = ~(hdr.ipv6.src & 128w0);
    }`);
    const b = Buffer.from(run(p, 1, eth(0x86dd, ipv6('fd00::ffff', '::')))[0]!.hex, 'hex');
    expect(hex(b.subarray(38, 54))).toBe(hex(ipv6Bytes('fd00::2:0')));
    expect(b[21]).toBe(0xff);
    expect(hex(b.subarray(22, 38))).toBe('ff'.repeat(16));
  });

  it('reports what it cannot compile with a position', () => {
    const parser = PARSER.replace('pkt.extract(hdr.eth);', 'pkt.extract(hdr.eth); bit<40> x = pkt.lookahead<bit<40>>();');
    expect(() => program(`apply { eg.port = 16w1; }`, { parser })).toThrow(/test\.p4:\d+:\d+: lookahead is supported for bit<N> up to 32 bits/);
  });
});

describe('the example router.p4', () => {
  it('routes by LPM and rewrites both MACs', async () => {
    const p = await loadPipeline(fileURLToPath(new URL('../../examples/p4/router.p4', import.meta.url)), 4);
    p.tableAdd('ingress.routes', 'forward', Uint8Array.from(lpmKey(ipv4Bytes('10.0.2.0'), 24)), Uint8Array.from([...le16(2), ...rev(MAC_B)]));
    p.tableAdd('ingress.port_mac', 'set_src', Uint8Array.from(le16(2)), Uint8Array.from(rev([0xa8, 0x40, 0x25, 0, 0, 0xa2])));
    const out = p.processPacket(1, v4Frame('10.0.1.2', '10.0.2.9'));
    expect(out.map(([f, o]) => [hex(f.subarray(0, 12)), o])).toEqual([[`${hex(MAC_B)}a840250000a2`, 2]]);
    expect(p.processPacket(2, v4Frame('10.0.1.2', '10.0.2.9'))).toEqual([]);
    expect(p.processPacket(1, v4Frame('10.0.1.2', '10.0.3.9'))).toEqual([]);
  });
});

describe('sidecar-lite.p4 layouts', () => {
  const file = fileURLToPath(new URL('../../src/switch/programs/sidecar-lite.p4', import.meta.url));

  it('has the key and parameter layouts encoding.ts builds entries for', () => {
    const layouts = new Map(tableLayouts(loadP4Program(file)).map((t) => [t.name, t]));
    const route = [...addRoute4({}, '10.0.2.0/24', 2, '10.0.2.1'), ...addRoute6({}, 'fd00:2::/64', 3, 'fe80::1'), addNeighbor('10.0.2.1', 'a8:40:25:00:00:02'), setMac(2, 'a8:40:25:00:00:a2'), addProxyArp('10.0.0.10', '10.0.0.20', 'a8:40:25:00:00:aa')];
    for (const r of route) {
      const t = layouts.get(r.table)!;
      expect(t, r.table).toBeDefined();
      expect(t.keyBytes, r.table).toBe(r.keyset_data.length);
      expect(t.actions.find((a) => a.name === r.action)!.paramBytes, `${r.table} ${r.action}`).toBe(r.parameter_data.length);
    }
    const idx = layouts.get('ingress.router.v4_idx.rtr')!;
    expect(idx.keys).toEqual([{ name: 'dst', matchKind: 'lpm', width: 32, bool: false, valueBytes: 4, offset: 0, length: 5 }]);
    expect(idx.actions.find((a) => a.name === 'index')!.params.map((x) => [x.name, x.width, x.offset])).toEqual([['idx', 16, 0], ['slots', 8, 2]]);
  });

  it('loads as a built-in and by path, and routes like the entries say', async () => {
    for (const name of ['sidecar-lite.p4', file]) {
      const p = await loadPipeline(name, 4);
      for (const r of [...addRoute4({}, '10.0.2.0/24', 2, '10.0.2.1'), addNeighbor('10.0.2.1', 'a8:40:25:00:00:02'), setMac(2, 'a8:40:25:00:00:a2')]) {
        p.tableAdd(r.table, r.action, Uint8Array.from(r.keyset_data), Uint8Array.from(r.parameter_data));
      }
      const out = p.processPacket(1, v4Frame('10.0.1.2', '10.0.2.2', [0, 1, 0, 2, 0, 8, 0, 0]));
      expect(out.map(([f, o]) => [hex(f.subarray(0, 12)), o])).toEqual([['a8402500000' + '2a84025000' + '0a2', 2]]);
    }
  });
});
