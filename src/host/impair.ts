/**
 * The host side of link impairment, two ways:
 *
 * - netem: a `netem` root qdisc on the tap a direction's frames leave through (frames that `a`
 *   sends are redirected into `b`'s tap, so direction ab is shaped on b's tap).
 * - userspace: the falcon-impair helper (host-helpers/falcon-impair.c), for kernels without
 *   netem. It owns one tap per direction; the ingress filter of `a`'s tap redirects into the
 *   helper's `ab` tap instead of `b`'s, and the helper's tap redirects what it writes back on
 *   to `b`'s tap. Switching a link back to plain is one `filter replace` per tap.
 *
 * Pure argument builders are exported for unit tests; the functions that run them take a
 * ProcessRunner.
 */
import { promises as fs } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import type { DirectedImpairment, Impairment } from '../model/impair.js';
import { compactImpairment } from '../model/impair.js';
import { buildStatic } from './cbuild.js';
import { startDaemon, type StartedDaemon } from './daemon.js';
import { NET_CMD_TIMEOUT_MS, runBatch, splitJsonValues } from './net-ip.js';
import { wireCommand } from './net.js';
import { impairTapName } from '../model/naming.js';
import type { ProcessRunner } from './process.js';
import type { Logger } from '../util/log.js';

/** netem's default queue, also the helper's: a direction holding this many frames drops new ones. */
export const IMPAIR_QUEUE_LIMIT = 1000;

/** How a host impairs links: netem where the kernel has it, else the userspace helper. */
export type ImpairPath = 'netem' | 'userspace';

function us(ms: number): string {
  return `${Math.round(ms * 1000)}us`;
}

/** `tc qdisc replace dev DEV root handle 1: netem ...` for one direction's impairment. */
export function netemCommand(dev: string, imp: Impairment): string[] {
  const i = compactImpairment(imp);
  const args = ['qdisc', 'replace', 'dev', dev, 'root', 'handle', '1:', 'netem', 'limit', String(IMPAIR_QUEUE_LIMIT)];
  if (i.delayMs !== undefined || i.jitterMs !== undefined) {
    args.push('delay', us(i.delayMs ?? 0));
    if (i.jitterMs) args.push(us(i.jitterMs));
  }
  if (i.lossPct !== undefined) args.push('loss', `${i.lossPct}%`);
  if (i.duplicatePct !== undefined) args.push('duplicate', `${i.duplicatePct}%`);
  if (i.corruptPct !== undefined) args.push('corrupt', `${i.corruptPct}%`);
  if (i.reorderPct !== undefined) args.push('reorder', `${i.reorderPct}%`);
  if (i.rateMbit !== undefined) args.push('rate', `${Math.max(1, Math.round(i.rateMbit * 1000))}kbit`);
  return args;
}

/** Removes the netem root qdisc (the tap falls back to its default qdisc). */
export function netemClearCommand(dev: string): string[] {
  return ['qdisc', 'del', 'dev', dev, 'root', 'handle', '1:'];
}

/** The devices among `devs` whose root qdisc is netem, from `tc -j qdisc show`. */
export function parseNetemRoots(json: string): Set<string> {
  const out = new Set<string>();
  for (const v of splitJsonValues(json)) {
    for (const q of Array.isArray(v) ? v : []) {
      const r = q as { kind?: string; dev?: string; root?: boolean; parent?: string };
      if (r.kind === 'netem' && r.dev && (r.root || r.parent === undefined)) out.add(r.dev);
    }
  }
  return out;
}

export async function queryNetemRoots(runner: ProcessRunner, signal?: AbortSignal): Promise<Set<string>> {
  const r = await runner.run('tc', ['-j', 'qdisc', 'show'], { timeoutMs: NET_CMD_TIMEOUT_MS, signal });
  return parseNetemRoots(r.stdout.toString());
}

/** The taps of one node-to-node link: `a`'s, `b`'s, and the helper's two. */
export interface LinkTaps {
  a: string;
  b: string;
}

/**
 * `tc` commands that set one link's netem qdiscs to `want` (direction ab is shaped on b's tap).
 * `current`: taps whose root is netem now, so clearing leaves alone what is already clear.
 */
export function netemCommands(taps: LinkTaps, want: DirectedImpairment | undefined, current: ReadonlySet<string>): string[][] {
  const out: string[][] = [];
  for (const [dir, dev] of [['ab', taps.b], ['ba', taps.a]] as const) {
    const imp = want?.[dir];
    if (imp) out.push(netemCommand(dev, imp));
    else if (current.has(dev)) out.push(netemClearCommand(dev));
  }
  return out;
}

/** The helper's two taps: `ab` carries what `a` sends, `ba` what `b` sends. */
export interface HelperTaps {
  ab: string;
  ba: string;
}

/** The helper's taps of a link on one host: named after the link's taps (`fn1e0` -> `fn1i0`). */
export function hostHelperTaps(taps: LinkTaps): HelperTaps {
  return { ab: impairTapName(taps.a), ba: impairTapName(taps.b) };
}

/**
 * `tc` commands that route a link through the helper's taps (which must exist). `taps` are the
 * devices the link joins (two taps on a host; a NIC's tap and its VXLAN device in a pod).
 */
export function helperWireCommands(taps: LinkTaps, helper: HelperTaps = hostHelperTaps(taps)): string[][] {
  const hab = helper.ab;
  const hba = helper.ba;
  return [
    ['qdisc', 'replace', 'dev', hab, 'handle', 'ffff:', 'ingress'],
    ['qdisc', 'replace', 'dev', hba, 'handle', 'ffff:', 'ingress'],
    wireCommand(hab, taps.b),
    wireCommand(hba, taps.a),
    // Last: until now frames still went straight across.
    wireCommand(taps.a, hab),
    wireCommand(taps.b, hba),
  ];
}

/** `tc` commands that wire a link's taps straight to each other again. */
export function plainWireCommands(taps: LinkTaps): string[][] {
  return [wireCommand(taps.a, taps.b), wireCommand(taps.b, taps.a)];
}

export async function runTc(commands: string[][], runner: ProcessRunner, signal?: AbortSignal): Promise<void> {
  if (commands.length) await runBatch('tc', commands, { runner, signal });
}

/** The helper's config: one line per impaired direction (a missing one passes frames unchanged). */
export function helperConfigText(want: DirectedImpairment): string {
  const lines: string[] = [];
  for (const dir of ['ab', 'ba'] as const) {
    const i = want[dir] && compactImpairment(want[dir]);
    if (!i) continue;
    const kv: string[] = [];
    if (i.delayMs !== undefined) kv.push(`delay_ms=${i.delayMs}`);
    if (i.jitterMs !== undefined) kv.push(`jitter_ms=${i.jitterMs}`);
    if (i.lossPct !== undefined) kv.push(`loss_pct=${i.lossPct}`);
    if (i.duplicatePct !== undefined) kv.push(`duplicate_pct=${i.duplicatePct}`);
    if (i.corruptPct !== undefined) kv.push(`corrupt_pct=${i.corruptPct}`);
    if (i.reorderPct !== undefined) kv.push(`reorder_pct=${i.reorderPct}`);
    if (i.rateMbit !== undefined) kv.push(`rate_mbit=${i.rateMbit}`);
    kv.push(`limit=${IMPAIR_QUEUE_LIMIT}`);
    lines.push(`${dir} ${kv.join(' ')}`);
  }
  return lines.join('\n') + '\n';
}

/** The files of one link's helper. */
export interface HelperFiles {
  config: string;
  stats: string;
  pidFile: string;
  log: string;
}

/** The helper's command line (its config path is unique per link: destroy finds it by that). */
export function helperArgs(helper: HelperTaps, files: HelperFiles): string[] {
  return ['--tap-ab', helper.ab, '--tap-ba', helper.ba, '--config', files.config, '--stats', files.stats, '--pid-file', files.pidFile];
}

/** How long a helper may take to have its taps up. */
const HELPER_READY_MS = 5000;

/**
 * Start falcon-impair (`bin`) on `helper`'s taps with `files`, and wait until it is ready: it
 * writes its pid file once its taps are up. Stopped again if it is not.
 */
export async function startImpairHelper(o: { bin: string; helper: HelperTaps; files: HelperFiles; what: string; runner: ProcessRunner; signal?: AbortSignal }): Promise<StartedDaemon> {
  const f = o.files;
  await fs.rm(f.pidFile, { force: true });
  return startDaemon({
    what: o.what,
    command: o.bin,
    args: helperArgs(o.helper, f),
    runner: o.runner,
    logFile: f.log,
    ready: async (pid) => Number((await fs.readFile(f.pidFile, 'utf8').catch(() => '')).trim()) === pid,
    notReady: 'did not come up',
    timeoutMs: HELPER_READY_MS,
    code: 'IMPAIR_FAILED',
    poll: { delayMs: 10, factor: 1.5, maxDelayMs: 200 },
    killGraceMs: 2000,
    signal: o.signal,
  });
}

/** Per-direction counters the helper keeps (see falcon-impair.c). */
export interface HelperDirectionStats {
  rx: number;
  tx: number;
  lost: number;
  queueDrops: number;
  duplicated: number;
  corrupted: number;
  reordered: number;
  writeErrors: number;
  queued: number;
}

export function impairHelperSource(): string {
  return fileURLToPath(new URL('../../host-helpers/falcon-impair.c', import.meta.url));
}

/** Builds (or reuses) the static helper binary in `cacheDir`. */
export function buildImpairHelper(o: { cacheDir: string; runner: ProcessRunner; log: Logger; signal?: AbortSignal }): Promise<string> {
  return buildStatic({ ...o, source: impairHelperSource(), name: 'falcon-impair', what: 'the impairment helper', code: 'IMPAIR_FAILED' });
}

/** A short stable key for a link's files: `violin.0--piano.0`, hashed when too long for a file name. */
export function linkFileKey(label: string): string {
  const key = label.replace(/:/g, '.');
  return key.length <= 120 ? key : createHash('sha256').update(label).digest('hex').slice(0, 32);
}
