/**
 * `npm run bench`: Falcon's figures, each beside a baseline measured in the same run (these
 * machines are noisy), as a table on stdout and JSON in bench/results/<timestamp>.json.
 *
 *   npm run bench                       # everything (~5 min on 2 cores under TCG)
 *   npm run bench -- --quick            # fewer iterations
 *   npm run bench -- --only exec,disk   # some sections: launch, destroy, boot, exec, startup, disk, net, memory, softnpu, impair
 *   npm run bench -- --only impair      # the userspace impairment helper against a plain link
 *
 * Every step has a timeout; a failed section is reported in the table and the run goes on;
 * everything launched is destroyed at the end, also on ctrl-c.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Runner } from '../src/index.js';
import { createProcessRunner } from '../src/host/process.js';
import { ImageStore } from '../src/images/store.js';
import { bootSection } from './boot.js';
import { diskSection } from './disk.js';
import { execSection } from './exec.js';
import { impairSection } from './impair.js';
import { launchAndDestroy } from './launch.js';
import { memorySection } from './memory.js';
import { netSection } from './net.js';
import { softnpuSection } from './softnpu.js';
import { startupSection } from './startup.js';
import { Cleanups, errorText, fmtMs, recordingLogger, rmrf, table, withTimeout, type BenchOptions, type Ctx, type Row, type SectionResult } from './lib.js';

const SECTIONS = ['launch', 'destroy', 'boot', 'exec', 'startup', 'memory', 'disk', 'net', 'softnpu', 'impair'] as const;
type Section = (typeof SECTIONS)[number];

const USAGE = `usage: npm run bench -- [--quick] [--only ${SECTIONS.join(',')}] [--net-image debian-12|tiny] [--npu-cap BYTES] [--no-build] [--keep-big-image] [--verbose]
  --quick           fewer iterations (a smoke run: ~2-3 min)
  --only a,b        run these sections only
  --net-image NAME  image of the nodes of the net, softnpu and impair sections (default debian-12; tiny uses busybox nc)
  --npu-cap BYTES   softnpu: restart its switches with this backpressure cap per port before measuring
  --no-build        do not build debian-12 when it is missing (fall back to tiny)
  --keep-big-image  keep the synthetic 4 GiB image "bench-big4g" in the store for the next run
  --verbose         print Falcon's own progress lines
Section impair: throughput, ping RTT and the helper's CPU of a link switched at runtime between
  plain and the userspace helper (falcon-impair; FALCON_IMPAIR=userspace unless set), and the
  accuracy of a 20 ms delay.
Images come from $FALCON_IMAGE_DIR (default /var/lib/falcon/images); FALCON_ACCEL is honoured.`;

function parseArgs(argv: string[]): { opts: BenchOptions; only: Section[] } {
  const opts: BenchOptions = { quick: false, verbose: false, netImage: 'debian-12', noBuild: false, keepBigImage: false };
  let only: Section[] = [...SECTIONS];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (!v) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    if (a === '--quick') opts.quick = true;
    else if (a === '--verbose' || a === '-v') opts.verbose = true;
    else if (a === '--no-build') opts.noBuild = true;
    else if (a === '--keep-big-image') opts.keepBigImage = true;
    else if (a.startsWith('--net-image')) opts.netImage = value();
    else if (a.startsWith('--npu-cap')) {
      opts.npuCapBytes = Number(value());
      if (!Number.isInteger(opts.npuCapBytes) || opts.npuCapBytes <= 0) throw new Error(`--npu-cap needs a positive number of bytes\n${USAGE}`);
    } else if (a.startsWith('--only')) {
      const names = value().split(',').map((s) => s.trim()).filter(Boolean);
      const bad = names.filter((n) => !(SECTIONS as readonly string[]).includes(n));
      if (bad.length) throw new Error(`unknown section ${bad.join(', ')}; sections are ${SECTIONS.join(', ')}`);
      only = SECTIONS.filter((s) => names.includes(s));
    } else if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE + '\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}\n${USAGE}`);
  }
  return { opts, only };
}

function hostFacts(): Record<string, unknown> {
  const first = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', timeout: 10_000 }).split('\n')[0]!.trim();
    } catch {
      return undefined;
    }
  };
  let otherQemus = 0;
  try {
    // Falcon renames its QEMUs (-name ...,process=falcon-NODE): match the command line.
    otherQemus = Number(execFileSync('pgrep', ['-c', '-f', '^qemu-system-x86_64 '], { encoding: 'utf8', timeout: 10_000 }).trim());
  } catch {
    /* pgrep exits 1 when there are none */
  }
  return {
    cores: os.cpus().length,
    cpu: os.cpus()[0]?.model,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
    qemu: first('qemu-system-x86_64', ['--version']),
    loadavg: os.loadavg(),
    otherQemuProcesses: otherQemus,
  };
}


async function main(): Promise<number> {
  const { opts, only } = parseArgs(process.argv.slice(2));
  const repo = path.resolve(import.meta.dirname, '..');
  const started = Date.now();
  const since = () => `${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s`;
  const print = (line: string) => process.stderr.write(`${line}\n`);
  let current = 'setup';
  const progress = (msg: string) => print(`[${since()}] ${current}: ${msg}`);

  const ac = new AbortController();
  let interrupted = 0;
  const onSigint = () => {
    if (++interrupted > 1) process.exit(130);
    print('interrupted: stopping and cleaning up (ctrl-c again to leave at once)');
    ac.abort(new Error('interrupted'));
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);

  const log = recordingLogger(opts.verbose, print);
  const proc = createProcessRunner(log);
  const store = new ImageStore({ runner: proc, log });
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'falcon-bench-'));
  const cleanups = new Cleanups((m) => print(`warning: ${m}`));
  const ctx: Ctx = {
    opts,
    repo,
    imageDir: store.root,
    workDir,
    store,
    proc,
    log,
    signal: ac.signal,
    progress,
    defer: (what, fn) => cleanups.push(what, fn),
    runner: (name, env) => new Runner(name, { falconDir: path.join(workDir, name, '.falcon'), imageDir: store.root, logger: log, processRunner: proc, persistent: true, env }),
    n: (full, quick) => (opts.quick ? quick : full),
  };

  const host = hostFacts();
  print(`falcon bench: sections ${only.join(', ')}${opts.quick ? ' (quick)' : ''}; image store ${store.root}; work dir ${workDir}`);
  const results: SectionResult[] = [];
  let accel: { accel: string; reason: string } | undefined;
  try {
    progress('making sure the tiny image is in the store and the accelerator is decided (not timed)');
    await withTimeout(20 * 60_000, 'preparing the tiny image', ac.signal, (signal) => store.ensure('tiny', signal));
    accel = (await ctx.runner('bench_probe').hostChecks()).accel;
    progress(`accelerator: ${accel.reason}`);

    let launchDestroy: Awaited<ReturnType<typeof launchAndDestroy>> | undefined;
    const run: Record<Section, () => Promise<{ rows: Row[]; data: Record<string, unknown> }>> = {
      launch: async () => (launchDestroy ??= await launchAndDestroy(ctx, { launch: true, destroy: only.includes('destroy') })).launch,
      destroy: async () => (launchDestroy ??= await launchAndDestroy(ctx, { launch: false, destroy: true })).destroy,
      boot: () => bootSection(ctx),
      exec: () => execSection(ctx),
      startup: () => startupSection(ctx),
      memory: () => memorySection(ctx),
      disk: () => diskSection(ctx),
      net: () => netSection(ctx),
      softnpu: () => softnpuSection(ctx),
      impair: () => impairSection(ctx),
    };
    for (const name of only) {
      if (ac.signal.aborted) {
        results.push({ name, ok: false, error: 'not run: interrupted', durationMs: 0, rows: [{ section: name, measure: 'not run (interrupted)' }], data: {} });
        continue;
      }
      current = name;
      const t0 = Date.now();
      const mark = cleanups.size;
      progress('start');
      try {
        const { rows, data } = await run[name]();
        results.push({ name, ok: true, durationMs: Date.now() - t0, rows, data });
        progress(`done in ${fmtMs(Date.now() - t0)}`);
      } catch (e) {
        const msg = errorText(e);
        progress(`FAILED: ${msg}`);
        results.push({
          name,
          ok: false,
          error: e instanceof Error ? (e.stack ?? e.message) : String(e),
          durationMs: Date.now() - t0,
          rows: [{ section: name, measure: 'FAILED', note: msg }],
          data: {},
        });
      } finally {
        if (cleanups.size > mark) progress('cleaning up');
        await cleanups.unwind(mark);
      }
    }
  } catch (e) {
    print(`bench setup failed: ${errorText(e)}`);
    results.push({ name: 'setup', ok: false, error: String(e), durationMs: 0, rows: [{ section: 'setup', measure: 'FAILED', note: errorText(e) }], data: {} });
  } finally {
    current = 'cleanup';
    await cleanups.unwind();
    await rmrf(workDir);
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }

  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = path.join(repo, 'bench', 'results', `${stamp}.json`);
  const report = {
    timestamp: new Date().toISOString(),
    durationMs: Date.now() - started,
    options: opts,
    sections: only,
    accel: accel?.accel ?? process.env.FALCON_ACCEL ?? 'unknown',
    accelReason: accel?.reason,
    accelFromEnv: process.env.FALCON_ACCEL,
    imageDir: store.root,
    host,
    hostAfter: { loadavg: os.loadavg() },
    results,
  };
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, JSON.stringify(report, null, 2) + '\n');

  const rows = results.flatMap((r) => r.rows);
  const h = host as { cores: number; cpu?: string; qemu?: string; loadavg: number[]; otherQemuProcesses: number };
  process.stdout.write(
    `\nFalcon benchmark, ${new Date().toISOString()}: accelerator ${report.accel.toUpperCase()}${report.accelFromEnv ? ' (FALCON_ACCEL)' : ''}; ` +
      `${h.cores} cores (${h.cpu}); ${h.qemu}; load average at start ${h.loadavg.map((x) => x.toFixed(2)).join(' ')}, ` +
      `${h.otherQemuProcesses} other QEMU processes running${opts.quick ? '; QUICK run' : ''}\n\n` +
      table(rows) +
      `\n\nJSON: ${path.relative(process.cwd(), file)} (${fmtMs(Date.now() - started)})\n`,
  );
  return results.every((r) => r.ok) ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`${(e as Error)?.message ?? String(e)}\n`);
    process.exit(2);
  },
);
