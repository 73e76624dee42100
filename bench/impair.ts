/**
 * Section `impair`: what the userspace impairment path costs against a plain link. One launched
 * topology, two nodes a and b with one link; the link is switched at runtime, with
 * `impair('a--b', ...)` and `clearImpairment('a--b')`, between
 *
 *   plain:  the two taps wired back to back with tc mirred (the baseline);
 *   helper: tapA -> helper tap -> falcon-impair (poll loop) -> helper tap -> tapB, and back,
 *           with an impairment that forces the helper but has no practical effect.
 *
 * Same guests, same taps, same QEMU processes: only the host path between the taps differs.
 * Per slot: 50 pings at 50 ms (median and p95 of the single RTTs), then a transfer a->b (iperf3
 * on debian-12, busybox nc on tiny) with the helper's CPU (utime + stime from /proc) over the
 * transfer's wall time. Slots in ABBA order over the rounds, so a drift of the machine hits both
 * alike. Then the accuracy of a 20 ms delay each way: the RTT above the plain one, against 40 ms.
 *
 * FALCON_IMPAIR is set to `userspace` for this topology unless the caller set it (then the row
 * says which path it measured).
 */
import { readFile } from 'node:fs/promises';
import type { Impairment, ImpairStatus } from '../src/index.js';
import { MAX_RATE_MBIT, formatImpairment } from '../src/model/impair.js';
import { cpuSeconds, fmtBytes, fmtMs, mb, netImage, ratio, sleepFor, stats, timed, transfer, withTimeout, type Ctx, type Row, type Transfer } from './lib.js';

const PORT = 5201;
const NAME = 'bench_imp';
const LINK = 'a--b';
const DST = '10.9.0.2';
const PINGS = 50;
const PING_INTERVAL_S = 0.05;
/**
 * An all-zero impairment is "none" to the model (`isNoImpairment`), so it is not what to rely on
 * to force the helper: the highest rate the model accepts, 100 Gbit/s, adds 0.12 µs per 1514-byte
 * frame, far below anything a TCG guest sends.
 */
const ZERO: Impairment = { rateMbit: MAX_RATE_MBIT };
const DELAY_MS = 20;

type Path = 'plain' | 'helper';

interface Sample {
  path: Path;
  round: number;
  /** Single ping RTTs, ms. */
  rtts: number[];
  transfer: Transfer;
  /** The helper's CPU (user + system) during the transfer, s, and the host's wall time of it, s. */
  helperCpuS?: number;
  wallS?: number;
  /** Frames and bytes the helper read from its `ab` tap during the transfer. */
  helperFrames?: number;
  helperBytes?: number;
  /**
   * Frames dropped during the transfer: by the kernel on the way into the helper (its `ab` tap's
   * tx_dropped), by the helper (queue full, write errors), on the way into b's QEMU (b's tap).
   */
  drops: { intoHelper?: number; helperQueue?: number; helperWrite?: number; intoB: number };
  /** Mean size of the frames b's tap passed to b's QEMU during the transfer, B. */
  bytesPerFrameIntoB?: number;
  /** impair() before the slot / clearImpairment() after it, ms. */
  switchInMs?: number;
  switchOutMs?: number;
}

/** Single RTTs (ms) from iputils or busybox ping output (`time=1.23 ms`). */
export function pingTimes(out: string): number[] {
  return [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
}

export async function impairSection(ctx: Ctx): Promise<{ rows: Row[]; data: Record<string, unknown> }> {
  const { image, fallback } = await netImage(ctx);
  const busybox = image === 'tiny';
  const seconds = ctx.n(5, 3);
  const rounds = ctx.n(3, 1);
  const ncBytes = 64 * 1024 * 1024;
  const forced = process.env.FALCON_IMPAIR;

  const r = ctx.runner(NAME, { ...process.env, FALCON_IMPAIR: forced ?? 'userspace' });
  r.node('a', image, 1, mb(busybox ? 256 : 1024));
  r.node('b', image, 1, mb(busybox ? 256 : 1024));
  r.link('a', 'b');
  ctx.defer(`destroy ${r.name}`, () => r.destroy());
  ctx.progress(`launching two ${image} nodes with a link`);
  await withTimeout(600_000, `launch of ${r.name}`, ctx.signal, (signal) => r.launch({ signal }));

  const sh = async (node: string, cmd: string, timeoutMs = 60_000) => (await r.succeed(node, cmd, { timeoutMs, signal: ctx.signal })).stdout;
  for (const [node, x] of [
    ['a', 1],
    ['b', 2],
  ] as const)
    await sh(node, `ip link set eth0 up; ip addr add 10.9.0.${x}/24 dev eth0`);
  if (!busybox) await sh('b', `iperf3 -s -D -p ${PORT}`);

  const ping = async (): Promise<number[]> => {
    const rtts = pingTimes(await sh('a', `ping -c ${PINGS} -i ${PING_INTERVAL_S} -W 2 ${DST}`, 120_000));
    if (rtts.length < PINGS * 0.9) throw new Error(`only ${rtts.length} of ${PINGS} pings were answered`);
    return rtts;
  };
  const moveTo = async (p: Path, imp: Impairment = ZERO): Promise<{ ms: number; status: ImpairStatus }> => {
    const t = await timed(() => withTimeout(60_000, `switching ${LINK} to ${p}`, ctx.signal, () => (p === 'helper' ? r.impair(LINK, imp) : r.clearImpairment(LINK))));
    const s = t.value;
    if (p === 'plain' && s.helperPid) throw new Error(`${LINK} was cleared but its helper (pid ${s.helperPid}) still runs`);
    if (p === 'helper' && s.path === 'userspace' && !s.helperPid) throw new Error(`${LINK} was impaired (${formatImpairment(imp)}) but no helper runs`);
    return { ms: t.ms, status: s };
  };
  const tapCount = async (tap: string) => {
    const f = (c: string) => readFile(`/sys/class/net/${tap}/statistics/${c}`, 'utf8').then(Number);
    return { frames: await f('tx_packets'), bytes: await f('tx_bytes'), dropped: await f('tx_dropped') };
  };
  const tapB = (await r.info()).links.find((l) => l.kind === 'link')!.b!.ifname;

  // Untimed warm-up: TCG translates the network paths (and iperf3) on first use; the first
  // impair builds the helper when the store's cache has none.
  ctx.progress('warm-up: ping and a short transfer on each path (not counted)');
  const warm = async () => {
    await sh('a', `ping -c 5 -i 0.2 -W 2 ${DST}`);
    await transfer(ctx, r, { from: 'a', to: 'b', dst: DST, port: PORT, busybox, seconds: 2, ncBytes: ncBytes / 4 });
  };
  const way = await withTimeout(600_000, 'warm-up', ctx.signal, async () => {
    await warm();
    const p = (await moveTo('helper')).status.path;
    await warm();
    await moveTo('plain');
    return p;
  });

  const measure = async (p: Path, round: number): Promise<Sample> => {
    ctx.progress(`round ${round + 1}/${rounds}, ${p}: ${PINGS} pings, then ${busybox ? `nc of ${fmtBytes(ncBytes)}` : `iperf3 for ${seconds} s`}`);
    const sw = p === 'helper' ? await moveTo('helper') : undefined;
    const rtts = await ping();
    const pid = sw?.status.helperPid;
    const tap = sw?.status.helperTaps?.ab;
    const cpu0 = pid ? await cpuSeconds(pid) : 0;
    const tap0 = tap ? await tapCount(tap) : undefined;
    const b0 = await tapCount(tapB);
    const helper0 = sw?.status.directions[0]?.stats;
    const t = await timed(() => transfer(ctx, r, { from: 'a', to: 'b', dst: DST, port: PORT, busybox, seconds, ncBytes }));
    const b1 = await tapCount(tapB);
    const sample: Sample = { path: p, round, rtts, transfer: t.value, drops: { intoB: b1.dropped - b0.dropped } };
    if (b1.frames > b0.frames) sample.bytesPerFrameIntoB = (b1.bytes - b0.bytes) / (b1.frames - b0.frames);
    if (pid && tap && tap0) {
      sample.helperCpuS = (await cpuSeconds(pid)) - cpu0;
      sample.wallS = t.ms / 1000;
      const tap1 = await tapCount(tap);
      sample.helperFrames = tap1.frames - tap0.frames;
      sample.helperBytes = tap1.bytes - tap0.bytes;
      sample.drops.intoHelper = tap1.dropped - tap0.dropped;
      // The helper rewrites its counters at most twice a second.
      await sleepFor(600, ctx.signal);
      const helper1 = (await r.impairments(LINK))[0]?.directions[0]?.stats;
      if (helper1) {
        sample.drops.helperQueue = helper1.queueDrops - (helper0?.queueDrops ?? 0);
        sample.drops.helperWrite = helper1.writeErrors - (helper0?.writeErrors ?? 0);
      }
    }
    if (sw) {
      sample.switchInMs = sw.ms;
      sample.switchOutMs = (await moveTo('plain')).ms;
    }
    return sample;
  };

  const order: { p: Path; round: number }[] = [];
  for (let i = 0; i < rounds; i++) for (const p of (i % 2 ? ['helper', 'plain'] : ['plain', 'helper']) as Path[]) order.push({ p, round: i });
  const samples: Sample[] = [];
  for (const { p, round } of order) samples.push(await withTimeout((seconds + 300) * 1000, `measurement over the ${p} path`, ctx.signal, () => measure(p, round)));

  // Accuracy: a real delay through the same path, against the plain RTT of the same run.
  ctx.progress(`accuracy: ${PINGS} pings with a ${DELAY_MS} ms delay each way`);
  await moveTo('helper', { delayMs: DELAY_MS });
  const delayed = await ping();
  await moveTo('plain');

  const of = (p: Path) => samples.filter((x) => x.path === p);
  const bps = (p: Path) => stats(of(p).map((x) => x.transfer.bps)).median;
  const rtt = (p: Path) => stats(of(p).flatMap((x) => x.rtts));
  const mbit = (x: number) => `${(x / 1e6).toFixed(0)} Mbit/s`;
  const list = (p: Path, f: (x: Sample) => string) => of(p).map(f).join(' / ');
  const h = of('helper');
  const frameSize = (p: Path) => stats(of(p).flatMap((x) => (x.bytesPerFrameIntoB ? [x.bytesPerFrameIntoB] : []))).median.toFixed(0);
  const cpu = stats(h.flatMap((x) => (x.helperCpuS === undefined ? [] : [x.helperCpuS / x.wallS!])));
  const frames = h.reduce((n, x) => n + (x.helperFrames ?? 0), 0);
  const bytes = h.reduce((n, x) => n + (x.helperBytes ?? 0), 0);
  const wall = h.reduce((n, x) => n + (x.wallS ?? 0), 0);
  const through = way === 'userspace' ? `falcon-impair (${formatImpairment(ZERO)})` : `${way ?? '?'} (${formatImpairment(ZERO)}; FALCON_IMPAIR=${forced})`;
  const what = busybox ? `busybox nc, ${fmtBytes(ncBytes)} of zeros a->b (${fallback ? `FALLBACK: ${fallback}` : 'asked for tiny'})` : `iperf3 TCP a->b, ${seconds} s`;
  const plainRtt = rtt('plain');
  const delayedRtt = stats(delayed);
  const rows: Row[] = [
    {
      section: 'impair',
      measure: `${image} nodes (1 vCPU each): ${what} through ${through}, median of ${h.length}`,
      falcon: mbit(bps('helper')),
      baseline: mbit(bps('plain')),
      ratio: ratio(bps('helper'), bps('plain')),
      note:
        `baseline: the same link wired straight (tc mirred), switched at runtime with impair/clearImpairment, order plain,helper then reversed; ` +
        `samples ${list('helper', (x) => mbit(x.transfer.bps))} vs ${list('plain', (x) => mbit(x.transfer.bps))}; ` +
        `retransmits ${list('helper', (x) => String(x.transfer.retransmits ?? '-'))} vs ${list('plain', (x) => String(x.transfer.retransmits ?? '-'))}; ` +
        `frames dropped into the helper/by its queue/writing/into b's tap ${list('helper', (x) => `${x.drops.intoHelper ?? '-'}/${x.drops.helperQueue ?? '-'}/${x.drops.helperWrite ?? '-'}/${x.drops.intoB}`)} vs into b's tap ${list('plain', (x) => String(x.drops.intoB))}; ` +
        `mean frame into b's QEMU ${frameSize('helper')} B vs ${frameSize('plain')} B`,
    },
  ];
  if (cpu.n)
    rows.push({
      section: 'impair',
      measure: '  falcon-impair CPU per second of transfer (utime+stime / wall)',
      falcon: `${cpu.median.toFixed(2)} core`,
      note:
        `per transfer ${list('helper', (x) => `${x.helperCpuS!.toFixed(2)} s/${x.wallS!.toFixed(1)} s`)}; ` +
        `${cpu.max >= 0.9 ? 'near a whole core: the helper is likely the limit' : 'well under a core: the helper is not the limit (the guests are)'}; ` +
        `it read ${(frames / wall / 1000).toFixed(1)}k frames/s a->b, ${frames ? (bytes / frames).toFixed(0) : '-'} B each (its taps take TSO: segments cross whole)`,
    });
  rows.push(
    {
      section: 'impair',
      measure: `  ping RTT a->b, median of ${rtt('helper').n} (${PINGS} per slot, -i ${PING_INTERVAL_S})`,
      falcon: fmtMs(rtt('helper').median),
      baseline: fmtMs(plainRtt.median),
      ratio: ratio(rtt('helper').median, plainRtt.median),
    },
    {
      section: 'impair',
      measure: '  ping RTT a->b, p95',
      falcon: fmtMs(rtt('helper').p95),
      baseline: fmtMs(plainRtt.p95),
      ratio: ratio(rtt('helper').p95, plainRtt.p95),
    },
    {
      section: 'impair',
      measure: `  switching at runtime: impair() in / clearImpairment() out, median of ${h.length}`,
      falcon: `${fmtMs(stats(h.map((x) => x.switchInMs!)).median)} / ${fmtMs(stats(h.map((x) => x.switchOutMs!)).median)}`,
      note: 'impair: write the setting, start the helper, create its taps, rewire with tc; clear: rewire, stop the helper',
    },
    {
      section: 'impair',
      measure: `accuracy: delay ${DELAY_MS} ms each way, RTT above the plain RTT (medians, ${PINGS} pings)`,
      falcon: fmtMs(delayedRtt.median - plainRtt.median),
      baseline: `${fmtMs(2 * DELAY_MS)} expected`,
      ratio: ratio(delayedRtt.median - plainRtt.median, 2 * DELAY_MS),
      note: `RTT with the delay: median ${fmtMs(delayedRtt.median)}, p95 ${fmtMs(delayedRtt.p95)}, min ${fmtMs(delayedRtt.min)}`,
    },
  );
  return { rows, data: { image, fallback, path: way, zeroImpairment: ZERO, seconds, rounds, samples, delayed: { delayMs: DELAY_MS, rtts: delayed } } };
}
