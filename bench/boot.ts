/**
 * Section `boot`: how fast the tiny image boots with its kernel command line before the boot
 * flags (TINY_FAST_BOOT_FLAGS) and with them, on 1 node and on several at once; and what a
 * capped TCG translation cache (`setTcgCacheSize`) costs in boot time and saves in QEMU's RSS.
 *
 * One Falcon launch gives the QEMU command lines (from `.falcon/state.json`); the baseline
 * script then starts them with only `-append` changed, so each variant differs in one thing.
 * Every round runs every variant, in an order that rotates, so a drift of the machine hits all.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { TINY_FAST_BOOT_FLAGS } from '../src/images/recipes/tiny.js';
import { destroyBaseline, launchBaseline, type BaselineRun } from './baseline.js';
import { fmtBytes, fmtMs, gb, qemuRssBreakdown, ratio, rssBytes, stats, withTimeout, type Ctx, type Row } from './lib.js';

const BOOT_DEADLINE_MS = 180_000;
/** The capped translation cache measured beside QEMU's default (1 GiB). */
const TCG_CACHE_MIB = 32;
const MANY = ['a', 'b', 'c', 'd'];

type SavedState = { accel: string; nodes: Record<string, { qemuArgs: string[]; disk: string }> };

interface Variant {
  key: string;
  nodes: string[];
  cmdline: 'old' | 'new';
  /** Measure QEMU's memory once every agent answered. */
  rss: boolean;
}

const VARIANTS: Variant[] = [
  { key: '1-old', nodes: ['s'], cmdline: 'old', rss: true },
  { key: '1-new', nodes: ['s'], cmdline: 'new', rss: true },
  { key: '1-new-tcg32', nodes: ['t'], cmdline: 'new', rss: true },
  { key: `${MANY.length}-old`, nodes: MANY, cmdline: 'old', rss: false },
  { key: `${MANY.length}-new`, nodes: MANY, cmdline: 'new', rss: false },
];

interface Sample {
  variant: string;
  round: number;
  /** ms from starting the QEMUs until every agent answered. */
  agentMs: number;
  /** ms until the last FALCON-BOOTED on a console. */
  markerMs: number;
  rss?: { rssBytes: number; tcgCodeBytes: number; pssBytes: number };
}

/** The command line without the boot flags, and with them (whatever the stored image has). */
export function cmdlines(imageCmdline: string): { old: string; new: string } {
  const flags: readonly string[] = TINY_FAST_BOOT_FLAGS;
  const old = imageCmdline.split(/\s+/).filter((w) => w && !flags.includes(w)).join(' ');
  return { old, new: [old, ...flags].join(' ') };
}

function withAppend(args: readonly string[], cmdline: string): string[] {
  const i = args.indexOf('-append');
  return args.map((a, j) => (j === i + 1 ? cmdline : a));
}

export async function bootSection(ctx: Ctx): Promise<{ rows: Row[]; data: Record<string, unknown> }> {
  // s and t: one NIC each, as a lone node on a link; a-d: a ring, two NICs each.
  const r = ctx.runner('bench_boot');
  for (const n of ['s', 't', ...MANY]) r.node(n, 'tiny', 1, gb(1));
  r.setTcgCacheSize('t', TCG_CACHE_MIB);
  r.link('s', 't');
  MANY.forEach((n, i) => r.link(n, MANY[(i + 1) % MANY.length]!));
  ctx.defer(`destroy ${r.name}`, () => r.destroy());
  ctx.progress('one Falcon launch for the QEMU command lines (not timed)');
  await withTimeout(BOOT_DEADLINE_MS + 60_000, `launch of ${r.name}`, ctx.signal, (signal) => r.launch({ signal }));
  const state = JSON.parse(await fs.readFile(r.paths.stateFile, 'utf8')) as SavedState;
  const from = { falconDir: r.paths.dir, socketDir: r.paths.socketDir };
  await withTimeout(120_000, `destroy of ${r.name}`, ctx.signal, () => r.destroy());

  const image = await ctx.store.get('tiny');
  const saved = state.nodes.s?.qemuArgs ?? [];
  const append = saved[saved.indexOf('-append') + 1];
  if (!saved.includes('-append') || append === undefined) throw new Error('the tiny image does not boot directly (no -append); nothing to compare');
  const lines = cmdlines(append);
  const rounds = ctx.n(6, 2);
  const samples: Sample[] = [];
  for (let round = 0; round < rounds; round++) {
    const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length]!);
    if (round % 2) order.reverse();
    for (const v of order) {
      const dir = path.join(ctx.workDir, `boot-${v.key}-${round}`);
      let run: BaselineRun | undefined;
      ctx.defer(`baseline ${dir}`, async () => run && destroyBaseline(ctx.proc, run));
      const nodes = v.nodes.map((name) => {
        const ns = state.nodes[name];
        if (!ns) throw new Error(`no saved arguments for node ${name}`);
        return { name, args: withAppend(ns.qemuArgs, lines[v.cmdline]), disk: ns.disk, baseDisk: image.disk };
      });
      const b = await withTimeout(BOOT_DEADLINE_MS + 60_000, `boot of ${v.key}`, ctx.signal, (signal) =>
        launchBaseline(ctx.proc, { ...from, dir, tapPrefix: `fbb${(process.pid % 0x10000).toString(16)}`, nodes }, { signal, deadlineMs: BOOT_DEADLINE_MS, onCreated: (x) => (run = x) }),
      );
      const s: Sample = {
        variant: v.key,
        round,
        agentMs: Math.max(...b.nodes.map((n) => n.agentMs ?? NaN)),
        markerMs: Math.max(...b.nodes.map((n) => n.markerMs ?? NaN)),
      };
      if (v.rss) {
        const pid = b.nodes[0]!.pid;
        const parts = await qemuRssBreakdown(pid, gb(1) * 2 ** 20, ctx.imageDir);
        s.rss = { rssBytes: await rssBytes(pid), tcgCodeBytes: parts.tcgCode, pssBytes: parts.pss };
      }
      samples.push(s);
      ctx.progress(`round ${round + 1}/${rounds}: ${v.key} ready in ${fmtMs(s.agentMs)}`);
      await withTimeout(60_000, 'baseline destroy', ctx.signal, () => destroyBaseline(ctx.proc, b));
    }
  }

  const of = (key: string) => samples.filter((s) => s.variant === key);
  const med = (key: string, f: (s: Sample) => number) => stats(of(key).map(f)).median;
  const agent = (key: string) => med(key, (s) => s.agentMs);
  const marker = (key: string) => med(key, (s) => s.markerMs);
  const flags = TINY_FAST_BOOT_FLAGS.join(' ');
  const rows: Row[] = [
    {
      section: 'boot',
      measure: `1 tiny node, QEMU start to agent answering: with \`${flags}\` vs without (median of ${of('1-new').length})`,
      falcon: fmtMs(agent('1-new')),
      baseline: fmtMs(agent('1-old')),
      ratio: ratio(agent('1-new'), agent('1-old')),
      note: `FALCON-BOOTED on the console at ${fmtMs(marker('1-new'))} vs ${fmtMs(marker('1-old'))}`,
    },
    {
      section: 'boot',
      measure: `${MANY.length} tiny nodes at once, until every agent answers: with vs without the flags (median of ${of(`${MANY.length}-new`).length})`,
      falcon: fmtMs(agent(`${MANY.length}-new`)),
      baseline: fmtMs(agent(`${MANY.length}-old`)),
      ratio: ratio(agent(`${MANY.length}-new`), agent(`${MANY.length}-old`)),
      note: `last FALCON-BOOTED at ${fmtMs(marker(`${MANY.length}-new`))} vs ${fmtMs(marker(`${MANY.length}-old`))}`,
    },
    {
      section: 'boot',
      measure: `1 tiny node, TCG cache ${TCG_CACHE_MIB} MiB vs QEMU's default: QEMU start to agent answering`,
      falcon: fmtMs(agent('1-new-tcg32')),
      baseline: fmtMs(agent('1-new')),
      ratio: ratio(agent('1-new-tcg32'), agent('1-new')),
    },
  ];
  const rss = (key: string, f: (r: NonNullable<Sample['rss']>) => number) => med(key, (s) => (s.rss ? f(s.rss) : NaN));
  rows.push({
    section: 'boot',
    measure: `1 tiny node, TCG cache ${TCG_CACHE_MIB} MiB vs QEMU's default: QEMU VmRSS when the agent answers`,
    falcon: fmtBytes(rss('1-new-tcg32', (x) => x.rssBytes)),
    baseline: fmtBytes(rss('1-new', (x) => x.rssBytes)),
    ratio: ratio(rss('1-new-tcg32', (x) => x.rssBytes), rss('1-new', (x) => x.rssBytes)),
    note: `of which translated code ${fmtBytes(rss('1-new-tcg32', (x) => x.tcgCodeBytes))} vs ${fmtBytes(rss('1-new', (x) => x.tcgCodeBytes))}; PSS ${fmtBytes(rss('1-new-tcg32', (x) => x.pssBytes))} vs ${fmtBytes(rss('1-new', (x) => x.pssBytes))}`,
  });
  return { rows, data: { accel: state.accel, cmdlines: lines, tcgCacheMiB: TCG_CACHE_MIB, rounds, samples } };
}
