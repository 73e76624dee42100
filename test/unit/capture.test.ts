import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Runner, Topology, mb, runCli } from '../../src/index.js';
import { captureEndpoints, resolveEndpoint } from '../../src/model/capture.js';
import { PcapReader, pcapGlobalHeader, pcapRecordOf, pcapngInterface, pcapngPacket, pcapngSectionHeader, readPcap, readPcapng, summarizeFrame } from '../../src/host/pcap.js';
import { tcpdumpArgs } from '../../src/host/tcpdump.js';
import { FalconError } from '../../src/util/errors.js';
import { silentLogger } from '../../src/util/log.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'falcon-capture-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every kind of endpoint: a tap link, a SoftNPU port (raw CPU NIC), a sidecar link, a tfports npu. */
function topo() {
  const t = new Topology('cap');
  const violin = t.node('violin', 'tiny', 1, mb(256));
  const piano = t.node('piano', 'tiny', 1, mb(256));
  const s = t.node('scrimlet', 'tiny', 1, mb(256));
  const side = t.node('sidecar', 'tiny', 1, mb(256));
  const s2 = t.node('s2', 'tiny', 1, mb(256));
  t.link(violin, piano);
  t.softnpuLink(s, violin);
  t.sidecarLink(side, s, 2);
  t.softnpuLink(s2, piano);
  t.softnpu(s2, { cpuPort: 'tfports' });
  return t.toSpec();
}

const errorOf = (f: () => unknown): FalconError => {
  try {
    f();
  } catch (e) {
    return e as FalconError;
  }
  throw new Error('did not throw');
};

/** An Ethernet + IPv4 + ICMP echo frame. */
function icmpFrame(type: 8 | 0): Buffer {
  const f = Buffer.alloc(14 + 20 + 8);
  Buffer.from('0200000000020200000000010800', 'hex').copy(f, 0);
  f[14] = 0x45;
  f.writeUInt16BE(28, 16);
  f[14 + 8] = 64;
  f[14 + 9] = 1;
  Buffer.from([10, 0, 0, 1, 10, 0, 0, 2]).copy(f, 26);
  f[34] = type;
  return f;
}

describe('capture endpoints', () => {
  it('resolves node:index and altnames to taps and switch ports in NIC order', () => {
    const spec = topo();
    expect(resolveEndpoint(spec, 'violin:0')).toMatchObject({ kind: 'host', node: 'violin', index: 0, altname: 'cap_violin_vn_sim0', ifname: expect.stringMatching(/^fn[0-9a-f]{9}e0$/) });
    expect(resolveEndpoint(spec, 'cap_piano_vn_sim0')).toMatchObject({ kind: 'host', node: 'piano', index: 0 });
    // violin's second NIC is on port 1 of the scrimlet's switch.
    expect(resolveEndpoint(spec, 'violin:1')).toEqual({ kind: 'switch', node: 'violin', index: 1, altname: 'cap_violin_vn_sim1', npu: 'scrimlet', port: 1 });
    // The sidecar's NIC is port 0 of the sidemux; the driver's NICs its ports 1 and 2.
    expect(resolveEndpoint(spec, 'sidecar:0')).toMatchObject({ kind: 'switch', npu: 'scrimlet.sidemux', port: 0 });
    expect(resolveEndpoint(spec, 'scrimlet:1')).toMatchObject({ kind: 'switch', npu: 'scrimlet.sidemux', port: 2 });
    // The raw CPU NIC comes after the scrimlet's link NICs: port 0 of its switch.
    expect(resolveEndpoint(spec, 'scrimlet:2')).toMatchObject({ kind: 'switch', npu: 'scrimlet', port: 0 });
    const all = captureEndpoints(spec).map((e) => `${e.node}:${e.index}`);
    expect(all).toEqual(['violin:0', 'violin:1', 'piano:0', 'piano:1', 'scrimlet:0', 'scrimlet:1', 'scrimlet:2', 'sidecar:0']);
    expect(new Set(captureEndpoints(spec).map((e) => e.altname)).size).toBe(all.length);
  });

  it('refuses an unknown node, an index out of range, an unknown altname and a tfports NIC, listing what exists', () => {
    const spec = topo();
    const node = errorOf(() => resolveEndpoint(spec, 'cello:0'));
    expect(node).toBeInstanceOf(FalconError);
    expect(node.code).toBe('CAPTURE_ENDPOINT');
    expect(node.message).toContain('no node "cello"');
    expect(node.message).toContain('violin, piano, scrimlet, sidecar, s2');
    const idx = errorOf(() => resolveEndpoint(spec, 'violin:7'));
    expect(idx.code).toBe('CAPTURE_ENDPOINT');
    expect(idx.message).toContain('node "violin" has no NIC 7; its NICs are: violin:0, violin:1');
    const alt = errorOf(() => resolveEndpoint(spec, 'cap_violin_vn_sim9'));
    expect(alt.code).toBe('CAPTURE_ENDPOINT');
    expect(alt.message).toContain('violin:0 (cap_violin_vn_sim0)');
    expect(alt.message).toContain('sidecar:0 (cap_sidecar_vn_sim0)');
    const tf = errorOf(() => resolveEndpoint(spec, 's2:0'));
    expect(tf.code).toBe('CAPTURE_ENDPOINT');
    expect(tf.message).toContain('npu s2 capture --port 0');
  });
});

describe('tcpdump arguments', () => {
  it('pcap to stdout flushed per packet, text lines, count, and filter words after --', () => {
    expect(tcpdumpArgs('fnabc', { pcap: true })).toEqual(['-i', 'fnabc', '-n', '--immediate-mode', '-U', '-w', '-']);
    expect(tcpdumpArgs('fnabc', { pcap: false, count: 3, filter: ['icmp', 'and', 'host', '10.0.0.1'] })).toEqual([
      '-i', 'fnabc', '-n', '--immediate-mode', '-l', '-c', '3', '--', 'icmp', 'and', 'host', '10.0.0.1',
    ]);
    // A filter word that looks like an option stays a filter word.
    expect(tcpdumpArgs('x', { pcap: true, filter: ['-r', '/etc/shadow'] }).slice(-3)).toEqual(['--', '-r', '/etc/shadow']);
  });
});

describe('pcap reader', () => {
  it('reads records fed one byte at a time, with their times and lengths', () => {
    const pkts = [
      { timeUs: 1_700_000_000_123_456n, origLen: 42, data: icmpFrame(8) },
      { timeUs: 1_700_000_001_000_001n, origLen: 42, data: icmpFrame(0) },
    ];
    const bytes = Buffer.concat([pcapGlobalHeader(), ...pkts.map(pcapRecordOf)]);
    const r = new PcapReader();
    const got = [];
    for (const b of bytes) got.push(...r.push(Buffer.from([b])));
    expect(r.header).toEqual({ littleEndian: true, nanoseconds: false, snaplen: 262_144, linkType: 1 });
    expect(got).toEqual(pkts);
    expect(r.pending).toBe(0);
  });

  it('reads big-endian nanosecond pcap and refuses what is not pcap', () => {
    const h = Buffer.alloc(24);
    h.writeUInt32BE(0xa1b23c4d, 0);
    h.writeUInt32BE(65535, 16);
    h.writeUInt32BE(1, 20);
    const rec = Buffer.alloc(16 + 2);
    rec.writeUInt32BE(10, 0);
    rec.writeUInt32BE(5_000_999, 4);
    rec.writeUInt32BE(2, 8);
    rec.writeUInt32BE(60, 12);
    const { header, packets } = readPcap(Buffer.concat([h, rec]));
    expect(header.nanoseconds).toBe(true);
    expect(packets).toEqual([{ timeUs: 10_005_000n, origLen: 60, data: Buffer.alloc(2) }]);
    expect(() => readPcap(Buffer.alloc(24))).toThrow(/not a pcap stream: magic 0x0/);
  });
});

describe('pcapng writer', () => {
  it('lays out the section header, an interface with if_name, and a padded enhanced packet', () => {
    expect(pcapngSectionHeader().toString('hex')).toBe('0a0d0d0a' + '1c000000' + '4d3c2b1a' + '0100' + '0000' + 'ffffffffffffffff' + '1c000000');
    // type 1, length 32: linktype 1, reserved, snaplen, if_name "ab" (padded to 4), end of options.
    expect(pcapngInterface('ab', 1, 65535).toString('hex')).toBe('01000000' + '20000000' + '0100' + '0000' + 'ffff0000' + '0200' + '0200' + '61620000' + '00000000' + '20000000');
    const epb = pcapngPacket(3, { timeUs: 0x1_0000_0002n, origLen: 5, data: Buffer.from('0102030405', 'hex') });
    expect(epb.toString('hex')).toBe('06000000' + '28000000' + '03000000' + '01000000' + '02000000' + '05000000' + '05000000' + '0102030405000000' + '28000000');
  });

  it('round-trips through its own reader, and tcpdump reads it with the interface names', () => {
    const file = Buffer.concat([
      pcapngSectionHeader(),
      pcapngInterface('cap_violin_vn_sim0'),
      pcapngInterface('cap_piano_vn_sim0'),
      pcapngPacket(0, { timeUs: 1_700_000_000_000_001n, origLen: 42, data: icmpFrame(8) }),
      pcapngPacket(1, { timeUs: 1_700_000_000_000_002n, origLen: 42, data: icmpFrame(0) }),
    ]);
    const back = readPcapng(file);
    expect(back.interfaces).toEqual([{ name: 'cap_violin_vn_sim0', linkType: 1 }, { name: 'cap_piano_vn_sim0', linkType: 1 }]);
    expect(back.packets.map((p) => [p.ifId, p.timeUs, p.data[34]])).toEqual([[0, 1_700_000_000_000_001n, 8], [1, 1_700_000_000_000_002n, 0]]);
    expect(() => readPcapng(file.subarray(0, file.length - 2))).toThrow(/not a valid pcapng/);
    const f = path.join(dir, 'two.pcapng');
    writeFileSync(f, file);
    let out: string;
    try {
      out = execFileSync('tcpdump', ['-r', f, '-n', '-e', '--print'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return; // tcpdump is not installed here
      throw e;
    }
    expect(out).toMatch(/ICMP echo request/);
    expect(out).toMatch(/ICMP echo reply/);
  });
});

describe('frame summaries', () => {
  it('says what an ICMP echo and an ARP request are', () => {
    expect(summarizeFrame(icmpFrame(8))).toBe('02:00:00:00:00:01 > 02:00:00:00:00:02 IPv4 10.0.0.1 > 10.0.0.2 ICMP echo request, length 28');
    const arp = Buffer.from('ffffffffffff02000000000108060001080006040001020000000001' + '0a000001' + '000000000000' + '0a000002', 'hex');
    expect(summarizeFrame(arp)).toBe('02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff ARP who-has 10.0.0.2 tell 10.0.0.1');
  });
});

describe('capture CLI', () => {
  const r = () => {
    const d = new Runner('capcli', { falconDir: path.join(dir, '.falcon'), logger: silentLogger, imageDir: path.join(dir, 'images') });
    const a = d.node('a', 'tiny', 1, mb(256));
    const s = d.node('s', 'tiny', 1, mb(256));
    d.link(a, s);
    d.softnpuLink(s, a);
    return d;
  };
  const cli = async (argv: string[]) => {
    let err = '';
    const code = await runCli(r(), [], { argv, stdout: () => {}, stderr: (s) => (err += s) });
    return { code, err };
  };

  it('refuses a missing endpoint, --all without a file, a bad count and a filter on a switch port', async () => {
    expect(await cli(['capture'])).toMatchObject({ code: 1, err: expect.stringContaining('name an endpoint') });
    expect(await cli(['capture', '--all'])).toMatchObject({ code: 1, err: expect.stringContaining('give -w FILE.pcapng') });
    expect(await cli(['capture', '--all', '-w', '-'])).toMatchObject({ code: 1, err: expect.stringContaining('give -w FILE.pcapng') });
    expect(await cli(['capture', 'a:0', '--count', 'many'])).toMatchObject({ code: 1, err: expect.stringContaining('--count takes a whole number') });
    expect(await cli(['capture', 'a:9'])).toMatchObject({ code: 1, err: expect.stringContaining('node "a" has no NIC 9; its NICs are: a:0, a:1') });
    expect(await cli(['capture', 'a:1', 'icmp'])).toMatchObject({ code: 1, err: expect.stringContaining('applies to host interfaces only') });
  });
});
