/**
 * The userspace impairment helper's life on a topology: its files in `.falcon/impair/`, starting
 * it and waiting until its taps are up, and stopping it (one link's, those of links the topology
 * no longer has, or all of them for destroy). What it is told to do comes from impairments.ts.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { DirectedImpairment } from '../model/impair.js';
import { buildImpairHelper, hostHelperTaps, startImpairHelper, helperConfigText, linkFileKey, type HelperFiles, type LinkTaps } from '../host/impair.js';
import { findProcessesWithArgs, terminate } from '../host/procs.js';
import { writeFileAtomic } from '../util/fs.js';
import type { Logger } from '../util/log.js';
import type { FalconPaths } from './paths.js';
import { cacheDir, type RunContext } from './context.js';



/** Where a topology's helpers keep their config, counters, pid and log. */
export function impairDir(paths: FalconPaths): string {
  return path.join(paths.dir, 'impair');
}

/** The files of the helper of the link labelled `label` (`violin:0--piano:0`). */
export function helperFiles(paths: FalconPaths, label: string): HelperFiles {
  const base = path.join(impairDir(paths), linkFileKey(label));
  return { config: `${base}.conf`, stats: `${base}.stats.json`, pidFile: `${base}.pid`, log: `${base}.log` };
}

/** Pids of running helpers, by config file. */
export async function helperPids(configs: readonly string[]): Promise<Map<string, number[]>> {
  return findProcessesWithArgs(configs);
}

/**
 * Give the link's helper the impairment `want`: a running one (`pids`) re-reads its config on
 * SIGHUP; otherwise it is built if needed, started, and awaited until its taps are up.
 */
export async function ensureHelper(c: RunContext, taps: LinkTaps, f: HelperFiles, want: DirectedImpairment, pids: number[]): Promise<void> {
  await fs.mkdir(path.dirname(f.config), { recursive: true, mode: 0o700 });
  await writeFileAtomic(f.config, helperConfigText(want));
  if (pids.length) {
    // The helper re-reads its config on SIGHUP; frames in flight keep their departure times.
    for (const p of pids) process.kill(p, 'SIGHUP');
    return;
  }
  const bin = await buildImpairHelper({ cacheDir: path.join(cacheDir(c), 'bin'), runner: c.proc, log: c.log, signal: c.signal });
  await startImpairHelper({ bin, helper: hostHelperTaps(taps), files: f, what: `the impairment helper of ${taps.a}/${taps.b}`, runner: c.proc, signal: c.signal });
}

/** Stop the helpers of links the topology no longer has, and forget their files. */
export async function stopStrayHelpers(c: RunContext, keep: ReadonlySet<string>): Promise<void> {
  const dir = impairDir(c.paths);
  const entries = await fs.readdir(dir).catch(() => [] as string[]);
  const stray = entries.filter((e) => e.endsWith('.conf')).map((e) => path.join(dir, e)).filter((f) => !keep.has(f));
  if (!stray.length) return;
  const pids = await helperPids(stray);
  for (const conf of stray) {
    const list = pids.get(conf) ?? [];
    await Promise.all(list.map((p) => terminate(p, 2000)));
    const base = conf.slice(0, -'.conf'.length);
    await Promise.all(['.conf', '.stats.json', '.pid', '.log'].map((x) => fs.rm(base + x, { force: true })));
    if (list.length) c.log.log({ kind: 'step', level: 'debug', msg: `impairment: stopped the helper of ${path.basename(base)}, a link the topology no longer has` });
  }
}

/** Stop every helper of the topology (also of links no longer declared): for destroy. */
export async function stopImpairHelpers(paths: FalconPaths, log: Logger): Promise<void> {
  const entries = await fs.readdir(impairDir(paths)).catch(() => [] as string[]);
  const configs = entries.filter((e) => e.endsWith('.conf')).map((e) => path.join(impairDir(paths), e));
  if (!configs.length) return;
  const pids = [...(await helperPids(configs)).values()].flat();
  await Promise.all(pids.map((p) => terminate(p, 2000)));
  if (pids.length) log.log({ kind: 'step', level: 'debug', msg: `impairment: stopped ${pids.length} helper${pids.length === 1 ? '' : 's'} (pid ${pids.join(', ')})` });
}
