/**
 * Sections `launch` and `destroy`: Runner.launch of a 1-node and a 4-node (ring) tiny topology
 * against the same QEMU command lines started by a minimal script, and Runner.destroy against
 * killing those QEMUs and deleting their files by hand. Falcon and baseline alternate in each
 * round, so drifts of a noisy machine hit both.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Runner } from '../src/index.js';
import { destroyBaseline, launchBaseline, type BaselineRun } from './baseline.js';
import { fmtMs, gb, ratio, stats, timed, withTimeout, type Ctx, type Row, type TimedEvent } from './lib.js';

const BOOT_DEADLINE_MS = 180_000;

interface RoundResult {
  size: number;
  falconFirst: boolean;
  falconLaunchMs: number;
  falconDestroyMs: number;
  breakdown: Breakdown;
  baselineLaunchMs: number;
  baselineDestroyMs: number;
  baselineDestroyParts: { killMs: number; tapsMs: number; filesMs: number };
  /** Per node: ms until FALCON-BOOTED, ms until the agent answered. */
  baselineNodes: { name: string; markerMs?: number; agentMs?: number }[];
  accel?: string;
}

interface Breakdown {
  /** launch() call to the first QEMU start: preflight, images, accelerator, network, disks, state. */
  preBootMs: number;
  /** QEMU start to the agent answering, mean over nodes. */
  bootWaitMs: number;
  /** Agent answering to set-up done, mean over nodes. */
  setupMs: number;
  /** Last node ready to launch() returning. */
  afterMs: number;
}

function breakdown(events: TimedEvent[], t0: number, t1: number): Breakdown {
  const at = (state: string) => events.filter((e) => e.event.kind === 'node' && e.event.state === state);
  const starting = at('starting');
  const booted = at('booted');
  const ready = at('ready');
  const perNode = (a: TimedEvent[], b: TimedEvent[]) => {
    const d = b.map((e) => {
      const s = a.find((x) => x.event.kind === 'node' && e.event.kind === 'node' && x.event.node === e.event.node);
      return s ? e.t - s.t : NaN;
    });
    return d.reduce((x, y) => x + y, 0) / Math.max(1, d.length);
  };
  return {
    preBootMs: starting.length ? Math.min(...starting.map((e) => e.t)) - t0 : NaN,
    bootWaitMs: perNode(starting, booted),
    setupMs: perNode(booted, ready),
    afterMs: ready.length ? t1 - Math.max(...ready.map((e) => e.t)) : NaN,
  };
}

function declare(ctx: Ctx, size: number): Runner {
  const r = ctx.runner(`bench_l${size}`);
  const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].slice(0, size);
  for (const n of names) r.node(n, 'tiny', 1, gb(1));
  // A ring: every node has two links (one link for two nodes, none for one).
  if (size === 2) r.link('a', 'b');
  if (size > 2) names.forEach((n, i) => r.link(n, names[(i + 1) % size]!));
  return r;
}

type SavedState = { accel: string; nodes: Record<string, { qemuArgs: string[]; disk: string; image: string }> };

async function falconPart(ctx: Ctx, size: number, tag: string) {
  const r = declare(ctx, size);
  ctx.defer(`destroy ${r.name}`, () => r.destroy());
  ctx.progress(`${tag}: falcon launch`);
  ctx.log.clear();
  const t0 = performance.now();
  await withTimeout(BOOT_DEADLINE_MS + 60_000, `launch of ${r.name}`, ctx.signal, (signal) => r.launch({ signal }));
  const t1 = performance.now();
  const bd = breakdown(ctx.log.events, t0, t1);
  const state = JSON.parse(await fs.readFile(r.paths.stateFile, 'utf8')) as SavedState;
  ctx.progress(`${tag}: falcon ready in ${fmtMs(t1 - t0)}; falcon destroy`);
  const destroyMs = (await withTimeout(120_000, `destroy of ${r.name}`, ctx.signal, () => timed(() => r.destroy()))).ms;
  return { launchMs: t1 - t0, destroyMs, breakdown: bd, state, falconDir: r.paths.dir, socketDir: r.paths.socketDir };
}

async function baselinePart(ctx: Ctx, size: number, tag: string, i: number, from: { state: SavedState; falconDir: string; socketDir: string }) {
  const baseDisk = (await ctx.store.get('tiny')).disk;
  const dir = path.join(ctx.workDir, `baseline-${size}-${i}`);
  let run: BaselineRun | undefined;
  ctx.defer(`baseline ${dir}`, async () => run && destroyBaseline(ctx.proc, run));
  ctx.progress(`${tag}: baseline launch (same QEMU command lines, own overlays, sockets and taps)`);
  const b = await withTimeout(BOOT_DEADLINE_MS + 60_000, `baseline launch of ${size} nodes`, ctx.signal, (signal) =>
    timed(() =>
      launchBaseline(
        ctx.proc,
        {
          falconDir: from.falconDir,
          socketDir: from.socketDir,
          dir,
          tapPrefix: `fbn${(process.pid % 0x10000).toString(16)}`,
          nodes: Object.entries(from.state.nodes).map(([name, ns]) => ({ name, args: ns.qemuArgs, disk: ns.disk, baseDisk })),
        },
        { signal, deadlineMs: BOOT_DEADLINE_MS, onCreated: (x) => (run = x) },
      ),
    ),
  );
  ctx.progress(`${tag}: baseline ready in ${fmtMs(b.ms)}; baseline destroy`);
  const d = await withTimeout(60_000, 'baseline destroy', ctx.signal, () => timed(() => destroyBaseline(ctx.proc, b.value)));
  return { launchMs: b.ms, destroyMs: d.ms, destroyParts: d.value, nodes: b.value.nodes.map((n) => ({ name: n.name, markerMs: n.markerMs, agentMs: n.agentMs })) };
}

/**
 * One round: Falcon then baseline in even rounds, baseline then Falcon in odd ones (ABBA), so
 * a drift of the machine hits both alike. A baseline that goes first uses the command lines of
 * the previous round's Falcon launch (the same: same names, same falcon dir).
 */
async function round(ctx: Ctx, size: number, i: number, rounds: number, previous?: SavedFrom): Promise<{ result: RoundResult; from: SavedFrom }> {
  const tag = `${size} node${size > 1 ? 's' : ''}, round ${i + 1}/${rounds}`;
  let f: Awaited<ReturnType<typeof falconPart>>;
  let b: Awaited<ReturnType<typeof baselinePart>>;
  if (i % 2 === 1 && previous) {
    b = await baselinePart(ctx, size, tag, i, previous);
    f = await falconPart(ctx, size, tag);
  } else {
    f = await falconPart(ctx, size, tag);
    b = await baselinePart(ctx, size, tag, i, f);
  }
  return {
    result: {
      size,
      falconFirst: !(i % 2 === 1 && previous),
      falconLaunchMs: f.launchMs,
      falconDestroyMs: f.destroyMs,
      breakdown: f.breakdown,
      baselineLaunchMs: b.launchMs,
      baselineDestroyMs: b.destroyMs,
      baselineDestroyParts: b.destroyParts,
      baselineNodes: b.nodes,
      accel: f.state.accel,
    },
    from: f,
  };
}

type SavedFrom = { state: SavedState; falconDir: string; socketDir: string };

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/**
 * Rounds of launch + destroy for each size; rows for launch and/or destroy as asked.
 * `sizes` default [1, 4].
 */
export async function launchAndDestroy(ctx: Ctx, want: { launch: boolean; destroy: boolean }): Promise<{ launch: { rows: Row[]; data: Record<string, unknown> }; destroy: { rows: Row[]; data: Record<string, unknown> } }> {
  const rounds = ctx.n(4, 1);
  const sizes = want.launch ? [1, 4] : [4];
  const results: RoundResult[] = [];
  const previous = new Map<number, SavedFrom>();
  for (let i = 0; i < rounds; i++)
    for (const size of sizes) {
      const { result, from } = await round(ctx, size, i, rounds, previous.get(size));
      results.push(result);
      previous.set(size, from);
    }

  const launchRows: Row[] = [];
  const destroyRows: Row[] = [];
  for (const size of sizes) {
    const rs = results.filter((r) => r.size === size);
    const f = stats(rs.map((r) => r.falconLaunchMs));
    const b = stats(rs.map((r) => r.baselineLaunchMs));
    const marker = mean(rs.map((r) => Math.max(...r.baselineNodes.map((n) => n.markerMs ?? NaN))));
    const bd = {
      pre: mean(rs.map((r) => r.breakdown.preBootMs)),
      boot: mean(rs.map((r) => r.breakdown.bootWaitMs)),
      setup: mean(rs.map((r) => r.breakdown.setupMs)),
      after: mean(rs.map((r) => r.breakdown.afterMs)),
    };
    launchRows.push({
      section: 'launch',
      measure: `${size}-node tiny topology, launch to ready (median of ${rs.length})`,
      falcon: fmtMs(f.median),
      baseline: fmtMs(b.median),
      ratio: ratio(f.median, b.median),
      note:
        `falcon: ${fmtMs(bd.pre)} before QEMU starts, ${fmtMs(bd.boot)} boot to agent, ${fmtMs(bd.setup)} set-up, ${fmtMs(bd.after)} after; ` +
        `baseline: last FALCON-BOOTED at ${fmtMs(marker)}`,
    });
    const fd = stats(rs.map((r) => r.falconDestroyMs));
    const bdd = stats(rs.map((r) => r.baselineDestroyMs));
    const part = (k: 'killMs' | 'tapsMs' | 'filesMs') => fmtMs(stats(rs.map((r) => r.baselineDestroyParts[k])).median);
    destroyRows.push({
      section: 'destroy',
      measure: `${size}-node tiny topology, destroy (median of ${rs.length})`,
      falcon: fmtMs(fd.median),
      baseline: fmtMs(bdd.median),
      ratio: ratio(fd.median, bdd.median),
      note: `baseline: SIGTERM the QEMUs and wait (${part('killMs')}), delete the taps (${part('tapsMs')}) and files (${part('filesMs')})`,
    });
  }
  const data = { rounds: results, accel: results[0]?.accel };
  return { launch: { rows: launchRows, data }, destroy: { rows: destroyRows, data } };
}
