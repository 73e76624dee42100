/**
 * Shared pieces of the benchmark: the context every section gets, statistics, timeouts,
 * progress lines and a cleanup stack so that whatever a section launched is removed even when
 * it fails or the run is interrupted.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Runner, gb, mb } from '../src/index.js';
import { retry } from '../src/util/retry.js';
import { sleep } from '../src/util/abort.js';
import type { ProcessRunner } from '../src/host/process.js';
import type { ImageStore } from '../src/images/store.js';
import { formatEvent, levelOf, type LogEvent, type Logger } from '../src/util/log.js';

export { gb, mb };
export { sleep as sleepFor };

/** One line of the result table: a figure beside its baseline. */
export interface Row {
  section: string;
  measure: string;
  falcon?: string;
  baseline?: string;
  /** falcon / baseline, when both are numbers of the same unit. */
  ratio?: string;
  note?: string;
}

export interface SectionResult {
  name: string;
  ok: boolean;
  error?: string;
  durationMs: number;
  rows: Row[];
  /** Raw samples and details, for the JSON file. */
  data: Record<string, unknown>;
}

export interface Stats {
  n: number;
  median: number;
  p95: number;
  min: number;
  max: number;
  mean: number;
}

/** Median, p95 (nearest rank), min, max, mean. */
export function stats(samples: readonly number[]): Stats {
  if (samples.length === 0) return { n: 0, median: NaN, p95: NaN, min: NaN, max: NaN, mean: NaN };
  const s = [...samples].sort((a, b) => a - b);
  const rank = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { n: s.length, median, p95: rank(0.95), min: s[0]!, max: s[s.length - 1]!, mean: s.reduce((a, b) => a + b, 0) / s.length };
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

export function fmtStats(s: Stats): string {
  return `${fmtMs(s.median)} (p95 ${fmtMs(s.p95)}, n=${s.n})`;
}

export function ratio(a: number, b: number): string {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '-';
  const r = a / b;
  return r >= 100 ? `${r.toFixed(0)}x` : r >= 10 ? `${r.toFixed(1)}x` : `${r.toFixed(2)}x`;
}

export function fmtBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}

export class BenchTimeout extends Error {
  override name = 'BenchTimeout';
}

/**
 * Run `fn` with a signal that aborts after `ms` (or when `outer` aborts); reject at the
 * deadline even if `fn` ignores its signal, so no step can hang the whole run. The timer and
 * the listener on `outer` are removed when `fn` settles (combineSignals keeps its listener on
 * `outer` until something aborts, which adds up over a long run).
 */
export async function withTimeout<T>(ms: number, what: string, outer: AbortSignal | undefined, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  let fail!: (e: unknown) => void;
  const failed = new Promise<never>((_, reject) => (fail = reject));
  failed.catch(() => {});
  const onOuter = () => {
    ac.abort(outer!.reason);
    fail(outer!.reason);
  };
  const timer = setTimeout(() => {
    const e = new BenchTimeout(`${what} timed out after ${fmtMs(ms)}`);
    ac.abort(e);
    fail(e);
  }, ms);
  if (outer?.aborted) onOuter();
  else outer?.addEventListener('abort', onOuter, { once: true });
  try {
    return await Promise.race([fn(ac.signal), failed]);
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener('abort', onOuter);
  }
}

/** Time an async call in ms (high resolution). */
export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

/** A timestamped Falcon log event, for the launch breakdown. */
export interface TimedEvent {
  t: number;
  event: LogEvent;
}

/**
 * A Falcon logger that keeps every event with its time (for breakdowns) and prints warnings
 * and errors, or everything with --verbose.
 */
export function recordingLogger(verbose: boolean, print: (line: string) => void): Logger & { events: TimedEvent[]; clear(): void } {
  const events: TimedEvent[] = [];
  return {
    level: 'trace',
    events,
    clear: () => void events.splice(0),
    enabled: () => true,
    log(e) {
      events.push({ t: performance.now(), event: e });
      const l = levelOf(e);
      if (l === 'error' || l === 'warn' || (verbose && l !== 'trace' && l !== 'debug')) print(`    falcon: ${formatEvent(e)}`);
    },
  };
}

export interface BenchOptions {
  quick: boolean;
  verbose: boolean;
  /** Image for the link throughput section; default debian-12 (built when missing unless noBuild). */
  netImage: string;
  noBuild: boolean;
  keepBigImage: boolean;
  /** softnpu section: restart its switches with this per-port backpressure cap (bytes) before measuring. */
  npuCapBytes?: number;
}

/** What every section gets. */
export interface Ctx {
  opts: BenchOptions;
  repo: string;
  imageDir: string;
  /** A private temp folder for falcon dirs and baseline files; removed at the end. */
  workDir: string;
  store: ImageStore;
  proc: ProcessRunner;
  log: ReturnType<typeof recordingLogger>;
  signal: AbortSignal;
  progress(msg: string): void;
  /** Register an undo step; the section's steps run when it ends, the rest at the very end. */
  defer(what: string, fn: () => Promise<unknown>): void;
  /** A Runner with the bench's store, logger and a falcon dir of its own; `env` replaces process.env for it. */
  runner(name: string, env?: NodeJS.ProcessEnv): Runner;
  /** iterations: the full count, or the quick one. */
  n(full: number, quick: number): number;
}

/**
 * The image of the sections that measure links (net, softnpu): --net-image, with debian-12
 * built when missing (unless --no-build); tiny, with the reason, when it cannot be had.
 */
export async function netImage(ctx: Ctx): Promise<{ image: string; fallback?: string }> {
  const image = ctx.opts.netImage;
  if (image !== 'debian-12' || (await ctx.store.has(image))) return { image };
  let fallback: string | undefined;
  if (ctx.opts.noBuild) fallback = 'debian-12 is not in the store and --no-build was given';
  else {
    ctx.progress('debian-12 is not in the store: building it (a few minutes)');
    try {
      await withTimeout(30 * 60_000, 'building debian-12', ctx.signal, (signal) => ctx.store.ensure('debian-12', signal));
      return { image };
    } catch (e) {
      if (ctx.signal.aborted) throw e;
      fallback = `building debian-12 failed: ${errorText(e)}`;
    }
  }
  ctx.progress(`falling back to tiny + busybox nc (${fallback})`);
  return { image: 'tiny', fallback };
}

/** A LIFO stack of undo steps; each failure is reported, none stops the others. */
export class Cleanups {
  private readonly steps: { what: string; fn: () => Promise<unknown> }[] = [];
  constructor(private readonly report: (msg: string) => void) {}
  push(what: string, fn: () => Promise<unknown>): void {
    this.steps.push({ what, fn });
  }
  get size(): number {
    return this.steps.length;
  }
  /** Undo down to `mark` entries (0: everything). */
  async unwind(mark = 0): Promise<void> {
    while (this.steps.length > mark) {
      const s = this.steps.pop()!;
      try {
        await withTimeout(120_000, `cleanup: ${s.what}`, undefined, () => s.fn());
      } catch (e) {
        this.report(`cleanup "${s.what}" failed: ${(e as Error).message.split('\n')[0]}`);
      }
    }
  }
}

/** Spawn a command and measure its wall time to exit; rejects on a non-zero exit. */
export function spawnTimed(
  cmd: string,
  args: string[],
  o: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number; signal?: AbortSignal },
): Promise<{ ms: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { cwd: o.cwd, env: o.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const kill = () => child.kill('SIGKILL');
    const timer = setTimeout(kill, o.timeoutMs);
    o.signal?.addEventListener('abort', kill, { once: true });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, sig) => {
      const ms = performance.now() - t0;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', kill);
      if (code === 0) resolve({ ms, stdout: out, stderr: err });
      else reject(new Error(`${cmd} ${args.join(' ')} ${sig ? `was killed (${sig})` : `exited ${code}`}: ${err.trim().slice(-500)}`));
    });
  });
}

/** utime + stime of a process in seconds. */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // clock ticks (USER_HZ 100)
}

/** What a transfer between two nodes measured. */
export interface Transfer {
  bps: number;
  /** Wall time of the transfer, s. */
  seconds: number;
  retransmits?: number;
}

/**
 * A TCP transfer from node `from` to `dst` (an address of node `to`): iperf3 for `seconds` (an
 * iperf3 server must listen on `port` there), or with `busybox`, `ncBytes` of zeros through
 * busybox nc, timed by the host around the sender's exec.
 */
export async function transfer(
  ctx: Pick<Ctx, 'signal'>,
  r: Runner,
  o: { from: string; to: string; dst: string; port: number; busybox: boolean; seconds: number; ncBytes: number },
): Promise<Transfer> {
  const sh = async (node: string, cmd: string, timeoutMs = 60_000) => (await r.succeed(node, cmd, { timeoutMs, signal: ctx.signal })).stdout;
  if (!o.busybox) {
    const out = await sh(o.from, `iperf3 -c ${o.dst} -p ${o.port} -t ${o.seconds} -J`, (o.seconds + 120) * 1000);
    const j = JSON.parse(out) as { end: { sum_received: { bits_per_second: number; seconds: number }; sum_sent: { retransmits?: number } } };
    return { bps: j.end.sum_received.bits_per_second, seconds: j.end.sum_received.seconds, retransmits: j.end.sum_sent.retransmits };
  }
  // The receiver counts the bytes (nc -e) and closes the connection after the last one,
  // which ends the sender's nc: the host times the sender's exec.
  await sh(o.to, `rm -f /tmp/nc.count; nc -l -p ${o.port} -e sh -c 'head -c ${o.ncBytes} | wc -c > /tmp/nc.count' >/dev/null 2>&1 </dev/null &`);
  await sleep(200, ctx.signal); // let the listener bind
  const t = await timed(() => sh(o.from, `dd if=/dev/zero bs=65536 count=${o.ncBytes / 65536} 2>/dev/null | nc ${o.dst} ${o.port}`, 600_000));
  const got = await retry({ what: "the receiver's byte count", deadlineMs: 10_000, delayMs: 50, signal: ctx.signal }, async () => {
    const n = Number((await sh(o.to, 'cat /tmp/nc.count 2>/dev/null || echo -1')).trim());
    if (n < 0) throw new Error('the receiver wrote no count');
    return n;
  });
  if (got !== o.ncBytes) throw new Error(`nc delivered ${got} of ${o.ncBytes} bytes`);
  return { bps: (o.ncBytes * 8) / (t.ms / 1000), seconds: t.ms / 1000 };
}

/** VmRSS of a process in bytes. */
export async function rssBytes(pid: number): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
  const m = status.match(/^VmRSS:\s+(\d+)\s+kB/m);
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

/** Where a QEMU's resident memory is, from /proc/PID/smaps. */
export interface RssParts {
  /** The one anonymous mapping of at least the node's memory size: the guest's RAM. */
  guestRam: number;
  /** Executable+writable anonymous mappings: TCG's translated code. */
  tcgCode: number;
  /** Files of the image store mapped by QEMU (the kernel and initrd it loaded), page cache shared by all nodes. */
  imageFiles: number;
  /** QEMU itself: binary, libraries, heap, device state. */
  other: number;
  /** Proportional set size: shared pages split between the processes mapping them. */
  pss: number;
}

export async function qemuRssBreakdown(pid: number, guestBytes: number, imageDir: string): Promise<RssParts> {
  const smaps = await fs.readFile(`/proc/${pid}/smaps`, 'utf8');
  const parts: RssParts = { guestRam: 0, tcgCode: 0, imageFiles: 0, other: 0, pss: 0 };
  let perms = '';
  let file = '';
  let size = 0;
  for (const line of smaps.split('\n')) {
    const head = line.match(/^[0-9a-f]+-[0-9a-f]+ (\S+) \S+ \S+ \S+\s*(.*)$/);
    if (head) {
      perms = head[1]!;
      file = head[2]!.trim();
      size = 0;
      continue;
    }
    const m = line.match(/^(Size|Rss|Pss):\s+(\d+) kB/);
    if (!m) continue;
    const bytes = Number(m[2]) * 1024;
    if (m[1] === 'Size') size = bytes;
    else if (m[1] === 'Pss') parts.pss += bytes;
    else if (file.startsWith(imageDir + '/')) parts.imageFiles += bytes;
    else if (!file && perms.startsWith('rwx')) parts.tcgCode += bytes;
    else if (!file && size >= guestBytes) parts.guestRam += bytes;
    else parts.other += bytes;
  }
  return parts;
}

export async function rmrf(p: string): Promise<void> {
  await fs.rm(p, { recursive: true, force: true });
}

export function errorText(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  // Keep the table readable: the first line, the whole thing goes to the JSON.
  const lines = msg.split('\n').map((l) => l.trim()).filter(Boolean);
  // A first line ending in ':' announces a list: keep its first items.
  return (lines[0]!.endsWith(':') ? lines.slice(0, 3).join(' ') : lines[0] ?? '').slice(0, 300);
}

export const relPath = (repo: string, p: string) => path.relative(repo, p) || '.';

/** The bench's table: a row per figure, its note indented under it; `labels` names the figure and baseline columns. */
export function table(rows: Row[], labels: { falcon: string; baseline: string } = { falcon: 'falcon', baseline: 'baseline' }): string {
  const head = { section: 'section', measure: 'measure', falcon: labels.falcon, baseline: labels.baseline, ratio: 'ratio' };
  const cols = ['section', 'measure', 'falcon', 'baseline', 'ratio'] as const;
  const width = Object.fromEntries(cols.map((c) => [c, Math.max(head[c].length, ...rows.map((r) => (r[c] ?? '').length))])) as Record<(typeof cols)[number], number>;
  const line = (r: Partial<Row>) => cols.map((c) => (r[c] ?? '').padEnd(width[c])).join(' | ').trimEnd();
  const out = [line(head), cols.map((c) => '-'.repeat(width[c])).join('-|-')];
  for (const r of rows) {
    out.push(line(r));
    if (r.note) out.push(`${' '.repeat(width.section)} |   ${r.note}`);
  }
  return out.join('\n');
}
