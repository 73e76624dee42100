/**
 * Packet capture on a running topology: a tap's pcap holds the ICMP of a ping (parsed, not
 * grepped), `-w -` streams pcap, `--all` writes one pcapng interface per endpoint, and no
 * tcpdump is left once a capture ends.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mb, runCli, type Runner } from '../../src/index.js';
import { captureEndpoints } from '../../src/model/capture.js';
import { readPcap, readPcapng, type PcapPacket } from '../../src/host/pcap.js';
import { leftovers, newRunner, tempDir } from './helpers.js';

/** ICMP types of the IPv4 ICMP frames among `packets`. */
function icmpTypes(packets: PcapPacket[]): number[] {
  return packets
    .filter((p) => p.data.length >= 14 + 20 + 1 && p.data.readUInt16BE(12) === 0x0800 && p.data[14 + 9] === 1)
    .map((p) => p.data[14 + (p.data[14]! & 0x0f) * 4]!);
}

/** tcpdump processes listening on any of `ifnames`. */
function tcpdumps(ifnames: string[]): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (path.basename(argv[0] ?? '') === 'tcpdump' && ifnames.some((i) => argv.includes(i))) out.push(`${pid}: ${argv.join(' ')}`);
    } catch {
      /* gone */
    }
  }
  return out;
}

describe('capture', () => {
  const dir = tempDir('cape2e');
  let d: Runner;
  let ifnames: string[];
  beforeAll(async () => {
    d = newRunner('cape2e', dir);
    const violin = d.node('violin', 'tiny', 1, mb(512));
    const piano = d.node('piano', 'tiny', 1, mb(512));
    d.link(violin, piano);
    await d.launch();
    await d.succeed('violin', 'ip addr add 10.77.0.1/24 dev eth0 && ip link set eth0 up');
    await d.succeed('piano', 'ip addr add 10.77.0.2/24 dev eth0 && ip link set eth0 up');
    ifnames = captureEndpoints(d.toSpec()).flatMap((e) => (e.kind === 'host' ? [e.ifname] : []));
  });
  afterAll(async () => {
    await d?.destroy();
    expect(leftovers(d)).toEqual([]);
    expect(tcpdumps(ifnames ?? [])).toEqual([]);
  });

  it('a capture of violin:0 to a file holds the echo request and reply of a ping, and leaves no tcpdump', async () => {
    const file = path.join(dir, 'violin.pcap');
    const ac = new AbortController();
    let ready!: () => void;
    const listening = new Promise<void>((r) => (ready = r));
    const done = d.capture('violin:0', { output: file, signal: ac.signal, onReady: ready });
    await listening;
    expect(tcpdumps(ifnames)).toHaveLength(1);
    await d.succeed('violin', 'ping -c 2 -W 3 10.77.0.2');
    ac.abort();
    const r = await done;
    expect(tcpdumps(ifnames)).toEqual([]);
    const { header, packets } = readPcap(readFileSync(file));
    expect(header.linkType).toBe(1);
    expect(r.frames).toBe(packets.length);
    const types = icmpTypes(packets);
    expect(types.filter((t) => t === 8).length).toBeGreaterThanOrEqual(2);
    expect(types.filter((t) => t === 0).length).toBeGreaterThanOrEqual(2);
  });

  it('$topo capture violin:0 -w - --count 4 icmp streams pcap of four ICMP frames on stdout', async () => {
    const chunks: Buffer[] = [];
    let err = '';
    const cli = runCli(d, [], { argv: ['capture', 'violin:0', '-w', '-', '--count', '4', 'icmp'], stdout: (s) => chunks.push(Buffer.from(s)), stderr: (s) => (err += s) });
    // tcpdump listens long before a ping of 8 s ends; --count ends the capture.
    const ping = d.exec('violin', 'ping -c 8 -W 3 10.77.0.2');
    expect(await cli, err).toBe(0);
    await ping;
    const { packets } = readPcap(Buffer.concat(chunks));
    expect(icmpTypes(packets).sort()).toEqual([0, 0, 8, 8]);
    expect(packets).toHaveLength(4);
    expect(tcpdumps(ifnames)).toEqual([]);
  });

  it('--all writes one pcapng interface per endpoint, named by its altname, each with the ping', async () => {
    const file = path.join(dir, 'all.pcapng');
    const ac = new AbortController();
    let ready!: () => void;
    const listening = new Promise<void>((r) => (ready = r));
    const done = d.captureAll({ output: file, signal: ac.signal, onReady: ready });
    await listening;
    expect(tcpdumps(ifnames)).toHaveLength(2);
    await d.succeed('piano', 'ping -c 2 -W 3 10.77.0.1');
    ac.abort();
    await done;
    expect(tcpdumps(ifnames)).toEqual([]);
    const ng = readPcapng(readFileSync(file));
    expect(ng.interfaces.map((i) => i.name)).toEqual(['cape2e_violin_vn_sim0', 'cape2e_piano_vn_sim0']);
    for (const id of [0, 1]) {
      const types = icmpTypes(ng.packets.filter((p) => p.ifId === id));
      expect(types, `interface ${id}`).toEqual(expect.arrayContaining([8, 0]));
    }
  });
});
