/**
 * Section `net`: TCP throughput and ping RTT between two nodes over a Falcon link (two taps
 * wired back to back with tc mirred), against the same two running VMs re-wired onto a plain
 * Linux bridge: the tc ingress qdiscs (and so the mirred filters) are removed and both taps are
 * enslaved to a new bridge; afterwards the Falcon wiring is restored. Same guests, same taps,
 * same QEMU processes: only the host path between the taps differs.
 *
 * Addresses: the guests' IPv6 link-local addresses on eth0 (no configuration, no routable
 * address; the link is a private wire between the two VMs).
 *
 * Tool: iperf3 on `debian-12`. Without that image (or with --net-image tiny), busybox `nc`
 * piping /dev/zero on `tiny`, timed by the host around the exec, which says so in the table.
 */
import { readFile } from 'node:fs/promises';
import { wireCommand } from '../src/host/net.js';
import type { Runner } from '../src/index.js';
import { retry } from '../src/util/retry.js';
import { gb, netImage, ratio, sleepFor, stats, timed, withTimeout, type Ctx, type Row } from './lib.js';

const PORT = 5201;

interface Sample {
  wiring: 'falcon' | 'bridge';
  round: number;
  bitsPerSecond: number;
  rttMs?: number;
  retransmits?: number;
}

async function sh(r: Runner, node: string, cmd: string, timeoutMs = 60_000, signal?: AbortSignal): Promise<string> {
  const x = await r.exec(node, cmd, { timeoutMs, signal });
  if (x.exitCode !== 0) throw new Error(`on ${node}: \`${cmd}\` exited ${x.exitCode}: ${x.stderr.toString().trim() || x.stdout.toString().trim()}`);
  return x.stdout.toString();
}

/** The node's eth0 link-local address once duplicate address detection is over. */
async function linkLocal(r: Runner, node: string, signal: AbortSignal): Promise<string> {
  return retry({ what: `link-local address of ${node}`, deadlineMs: 60_000, delayMs: 500, signal }, async () => {
    const out = await sh(r, node, 'ip -6 addr show dev eth0', 30_000, signal);
    const line = out.split('\n').find((l) => /inet6 fe80:/.test(l));
    const m = line?.match(/inet6 (fe80:[0-9a-f:]+)\//);
    if (!m || /tentative/.test(line!)) throw new Error(`no usable link-local address on ${node} yet`);
    return m[1]!;
  });
}

async function rtt(r: Runner, addr: string, signal: AbortSignal, busybox: boolean): Promise<number> {
  const out = await sh(r, 'a', busybox ? `ping -c 5 ${addr}%eth0` : `ping -c 10 -i 0.2 ${addr}%eth0`, 60_000, signal);
  const m = out.match(/min\/avg\/max(?:\/mdev)? = ([\d.]+)\/([\d.]+)\//);
  if (!m) throw new Error(`cannot read the ping summary: ${out.slice(-300)}`);
  return Number(m[2]);
}

export async function netSection(ctx: Ctx): Promise<{ rows: Row[]; data: Record<string, unknown> }> {
  const { image, fallback } = await netImage(ctx);
  const busybox = image === 'tiny';
  const seconds = ctx.n(10, 5);
  const rounds = ctx.n(3, 1);

  const r = ctx.runner('bench_net');
  r.node('a', image, 1, gb(1));
  r.node('b', image, 1, gb(1));
  r.link('a', 'b');
  ctx.defer(`destroy ${r.name}`, () => r.destroy());
  ctx.progress(`launching two ${image} nodes with a link`);
  await withTimeout(600_000, `launch of ${r.name}`, ctx.signal, (signal) => r.launch({ signal }));
  const info = await r.info();
  const link = info.links.find((l) => l.kind === 'link')!;
  const tapA = link.a.ifname;
  const tapB = link.b!.ifname;

  await sh(r, 'a', 'ip link set eth0 up');
  await sh(r, 'b', 'ip link set eth0 up');
  await linkLocal(r, 'a', ctx.signal);
  const addrB = await linkLocal(r, 'b', ctx.signal);
  if (!busybox) await sh(r, 'b', `iperf3 -s -D -p ${PORT}`);

  const measure = async (wiring: Sample['wiring'], round: number): Promise<Sample> => {
    ctx.progress(`round ${round + 1}/${rounds}, ${wiring === 'falcon' ? 'Falcon link (tc mirred)' : 'plain bridge'}: ping, then ${busybox ? 'nc' : 'iperf3'} for ~${seconds} s`);
    const rttMs = await rtt(r, addrB, ctx.signal, busybox);
    if (!busybox) {
      const out = await sh(r, 'a', `iperf3 -6 -c ${addrB}%eth0 -p ${PORT} -t ${seconds} -J`, (seconds + 60) * 1000, ctx.signal);
      const j = JSON.parse(out) as { end: { sum_received: { bits_per_second: number }; sum_sent: { retransmits?: number } } };
      return { wiring, round, bitsPerSecond: j.end.sum_received.bits_per_second, rttMs, retransmits: j.end.sum_sent.retransmits };
    }
    // busybox: the receiver runs `head -c N | wc -c` on the connection (nc -e) and closes it after
    // the last byte, which ends the sender's nc: the host times the sender's exec.
    const bytes = 256 * 1024 * 1024;
    await sh(r, 'b', `rm -f /tmp/nc.count; nc -l -p ${PORT} -e sh -c 'head -c ${bytes} | wc -c > /tmp/nc.count' >/dev/null 2>&1 </dev/null &`);
    await sleepFor(200, ctx.signal); // let the listener bind
    const t = await timed(() => sh(r, 'a', `dd if=/dev/zero bs=65536 count=${bytes / 65536} 2>/dev/null | nc ${addrB}%eth0 ${PORT}`, 300_000, ctx.signal));
    const got = await retry({ what: "the receiver's byte count", deadlineMs: 10_000, delayMs: 50, signal: ctx.signal }, async () => {
      const n = Number((await sh(r, 'b', 'cat /tmp/nc.count 2>/dev/null || echo -1')).trim());
      if (n < 0) throw new Error('the receiver wrote no count');
      return n;
    });
    if (got !== bytes) throw new Error(`nc delivered ${got} of ${bytes} bytes`);
    return { wiring, round, bitsPerSecond: (bytes * 8) / (t.ms / 1000), rttMs };
  };

  const bridge = `fbnbr${(process.pid % 0x10000).toString(16)}`;
  const ip = (...args: string[]) => ctx.proc.run('ip', args, { timeoutMs: 30_000, signal: ctx.signal });
  const tc = (...args: string[]) => ctx.proc.run('tc', args, { timeoutMs: 30_000, signal: ctx.signal });
  const toBridge = async () => {
    await tc('qdisc', 'del', 'dev', tapA, 'ingress');
    await tc('qdisc', 'del', 'dev', tapB, 'ingress');
    await ip('link', 'add', 'name', bridge, 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0');
    // The host must not talk on the wire: no IPv6 link-local on the bridge.
    await ip('link', 'set', 'dev', bridge, 'addrgenmode', 'none');
    await ip('link', 'set', 'dev', tapA, 'master', bridge);
    await ip('link', 'set', 'dev', tapB, 'master', bridge);
    await ip('link', 'set', 'dev', bridge, 'up');
  };
  const toFalcon = async () => {
    await ctx.proc.run('ip', ['link', 'del', 'dev', bridge], { timeoutMs: 30_000, reject: false });
    for (const [dev, peer] of [
      [tapA, tapB],
      [tapB, tapA],
    ] as const) {
      await tc('qdisc', 'replace', 'dev', dev, 'ingress');
      await tc(...wireCommand(dev, peer));
    }
  };
  ctx.defer(`remove bridge ${bridge}`, () => ctx.proc.run('ip', ['link', 'del', 'dev', bridge], { timeoutMs: 30_000, reject: false }));

  // Untimed warm-up: TCG translates the guests' network paths and iperf3 on first use.
  ctx.progress('warm-up transfer (not counted)');
  await withTimeout(240_000, 'warm-up', ctx.signal, async () => {
    await rtt(r, addrB, ctx.signal, busybox);
    if (!busybox) await sh(r, 'a', `iperf3 -6 -c ${addrB}%eth0 -p ${PORT} -t 2 -J`, 120_000, ctx.signal);
  });
  // ABBA order (falcon, bridge, bridge, falcon, ...) so a drift of the machine hits both alike.
  const order: Sample['wiring'][] = [];
  for (let i = 0; i < rounds; i++) order.push(...(i % 2 ? (['bridge', 'falcon'] as const) : (['falcon', 'bridge'] as const)));
  const samples: Sample[] = [];
  let wired: Sample['wiring'] = 'falcon';
  try {
    for (const [i, wiring] of order.entries()) {
      if (wiring !== wired) {
        await (wiring === 'bridge' ? toBridge() : toFalcon());
        wired = wiring;
      }
      samples.push(await withTimeout((seconds + 180) * 1000, `measurement over the ${wiring === 'falcon' ? 'Falcon link' : 'bridge'}`, ctx.signal, () => measure(wiring, i >> 1)));
    }
  } finally {
    if (wired === 'bridge') await toFalcon();
  }
  const brNf = await readFile('/proc/sys/net/bridge/bridge-nf-call-iptables', 'utf8').then((s) => s.trim() === '1', () => false);
  const f = samples.filter((s) => s.wiring === 'falcon');
  const b = samples.filter((s) => s.wiring === 'bridge');
  const bps = (xs: Sample[]) => stats(xs.map((s) => s.bitsPerSecond)).median;
  const ms = (xs: Sample[]) => stats(xs.map((s) => s.rttMs ?? NaN)).median;
  const mbit = (x: number) => `${(x / 1e6).toFixed(0)} Mbit/s`;
  const what = busybox ? `busybox nc, 256 MiB of zeros a->b (FALLBACK: ${fallback ?? 'asked for tiny'})` : `iperf3 TCP a->b, ${seconds} s`;
  const rows: Row[] = [
    {
      section: 'net',
      measure: `${image} nodes (1 vCPU each): ${what}, median of ${f.length}`,
      falcon: mbit(bps(f)),
      baseline: mbit(bps(b)),
      ratio: ratio(bps(f), bps(b)),
      note: `baseline: the same VMs with their taps on a plain Linux bridge${brNf ? ' (bridge-nf-call-iptables=1)' : ''}; retransmits ${f.map((s) => s.retransmits ?? '-').join('/')} vs ${b.map((s) => s.retransmits ?? '-').join('/')}`,
    },
    {
      section: 'net',
      measure: `${image} nodes: ping RTT a->b (avg), median of ${f.length}`,
      falcon: `${ms(f).toFixed(2)} ms`,
      baseline: `${ms(b).toFixed(2)} ms`,
      ratio: ratio(ms(f), ms(b)),
      note: 'IPv6 link-local addresses on eth0',
    },
  ];
  return { rows, data: { image, fallback, seconds, samples, taps: [tapA, tapB], bridgeNfCallIptables: brNf } };
}
