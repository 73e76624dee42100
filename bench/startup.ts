/**
 * What a topology program costs to start, for `exec a true` and `info` on a running 1-node
 * `tiny` topology, beside `node -e 0` measured in the same rounds: plain node on an `.mjs`
 * topology importing the built falcon (dist/), the generic CLI on the `.falcon` dir alone, and a
 * `.ts` topology through tsx (its sources, and falcon built as a project with the installed
 * package has it). Medians of interleaved rounds, so drift hits every form alike.
 *
 *   npm run bench:startup                 # 15 rounds
 *   npm run bench:startup -- --rounds 25
 *
 * Also the `startup` section of `npm run bench`. Needs root (the node's tap), like the bench.
 * Reports figures only: nothing here asserts a timing.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Runner } from '../src/index.js';
import { createProcessRunner } from '../src/host/process.js';
import { ImageStore } from '../src/images/store.js';
import { builtIsCurrent } from '../src/cli/init.js';
import { Cleanups, errorText, fmtMs, mb, ratio, recordingLogger, rmrf, spawnTimed, stats, table, withTimeout, type Ctx, type Row, type Stats } from './lib.js';

const NAME = 'bench_su';

/** The topology program, importing falcon from `from` (its sources for tsx, dist/ for node), its falcon dir given. */
const program = (from: string, falconDir: string) => `import { Runner, mb, run } from ${JSON.stringify(from)};
const t = new Runner(${JSON.stringify(NAME)}, { falconDir: ${JSON.stringify(falconDir)} });
t.node('a', 'tiny', 1, mb(256));
await run(t);
`;

/** One form of start-up: what runs, and how the table names it. */
interface Form {
  label: string;
  cmd: string;
  args: string[];
}

export async function startupSection(ctx: Ctx, rounds?: number): Promise<{ rows: Row[]; data: Record<string, unknown> }> {
  if (!builtIsCurrent(ctx.repo)) {
    ctx.progress('dist/ is missing or older than src/: npm run build (not timed)');
    await withTimeout(300_000, 'npm run build', ctx.signal, (signal) => npmBuild(ctx.repo, signal));
  }
  const r = ctx.runner(NAME);
  r.node('a', 'tiny', 1, mb(256));
  ctx.defer(`destroy ${r.name}`, () => r.destroy());
  ctx.progress('launching a 1-node tiny topology (not timed)');
  await withTimeout(240_000, `launch of ${r.name}`, ctx.signal, (signal) => r.launch({ signal }));

  const dir = path.join(ctx.workDir, 'startup');
  await fs.mkdir(dir, { recursive: true });
  const files = { ts: path.join(dir, 'topo.ts'), js: path.join(dir, 'topo.mjs'), tsDist: path.join(dir, 'topo-dist.ts') };
  // As in a project of `falcon init`: tsx compiles topo.ts as ESM only in a module package.
  await fs.writeFile(path.join(dir, 'package.json'), '{ "type": "module" }\n');
  await fs.writeFile(files.ts, program(path.join(ctx.repo, 'src/index.ts'), r.paths.dir));
  await fs.writeFile(files.js, program(path.join(ctx.repo, 'dist/index.js'), r.paths.dir));
  // What a project with the installed package runs: its topo.ts through tsx, falcon built.
  await fs.writeFile(files.tsDist, program(path.join(ctx.repo, 'dist/index.js'), r.paths.dir));

  const node = process.execPath;
  const cli = path.join(ctx.repo, 'bin/falcon.js');
  const forms: Record<string, Form> = {
    baseline: { label: '`node -e 0`', cmd: node, args: ['-e', '0'] },
    jsExec: { label: '`node topo.mjs exec a true` (falcon built)', cmd: node, args: [files.js, 'exec', 'a', 'true'] },
    jsInfo: { label: '`node topo.mjs info` (falcon built)', cmd: node, args: [files.js, 'info'] },
    cliExec: { label: '`node bin/falcon.js --falcon-dir DIR exec a true`', cmd: node, args: [cli, '--falcon-dir', r.paths.dir, 'exec', 'a', 'true'] },
    cliInfo: { label: '`node bin/falcon.js --falcon-dir DIR info`', cmd: node, args: [cli, '--falcon-dir', r.paths.dir, 'info'] },
    tsxExec: { label: '`node --import tsx topo.ts exec a true` (falcon sources)', cmd: node, args: ['--import', 'tsx', files.ts, 'exec', 'a', 'true'] },
    tsxInfo: { label: '`node --import tsx topo.ts info` (falcon sources)', cmd: node, args: ['--import', 'tsx', files.ts, 'info'] },
    tsxDistExec: { label: '`node --import tsx topo.ts exec a true` (falcon built, as installed)', cmd: node, args: ['--import', 'tsx', files.tsDist, 'exec', 'a', 'true'] },
    npxTsxExec: { label: '`npx tsx topo.ts exec a true` (falcon sources)', cmd: 'npx', args: ['tsx', files.ts, 'exec', 'a', 'true'] },
  };
  const n = rounds ?? ctx.n(15, 5);
  const env = { ...process.env, FALCON_IMAGE_DIR: ctx.imageDir, FALCON_LOG: 'warn' };
  ctx.progress(`${n} rounds of: ${Object.keys(forms).join(', ')} (interleaved, so drift hits all alike)`);
  const samples = await withTimeout(30 * 60_000, 'start-up runs', ctx.signal, async (signal) => {
    const xs: Record<string, number[]> = Object.fromEntries(Object.keys(forms).map((k) => [k, []]));
    // One untimed round first: the page cache and tsx's own cache are warm for every form alike.
    for (let i = -1; i < n; i++) {
      for (const [k, f] of Object.entries(forms)) {
        // From the repository, where `--import tsx` and `npx tsx` resolve.
        const t = await spawnTimed(f.cmd, f.args, { cwd: ctx.repo, env, timeoutMs: 60_000, signal });
        if (i >= 0) xs[k]!.push(t.ms);
      }
    }
    return xs;
  });
  const s = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, stats(v)])) as Record<string, Stats>;
  const base = s.baseline!;
  const p = (x: Stats) => `${fmtMs(x.median)} / p95 ${fmtMs(x.p95)}`;
  const rows: Row[] = Object.entries(forms).map(([k, f]) => ({
    section: 'startup',
    measure: `${f.label}, median / p95 (n=${s[k]!.n})`,
    falcon: p(s[k]!),
    baseline: p(base),
    ratio: ratio(s[k]!.median, base.median),
  }));
  rows[rows.length - 1]!.note = 'baseline: `node -e 0`, in the same rounds';
  return { rows, data: { stats: s, samples } };
}

function npmBuild(cwd: string, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', 'build'], { cwd, stdio: ['ignore', 'ignore', 'inherit'], signal });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`npm run build exited ${code}`))));
  });
}

/** `npm run bench:startup`: this section alone, its table on stdout. */
async function main(argv: string[]): Promise<number> {
  let rounds = 15;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--rounds' || a === '-n') rounds = Number(argv[++i]);
    else if (a.startsWith('--rounds=')) rounds = Number(a.slice('--rounds='.length));
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: npm run bench:startup -- [--rounds N]   (default 15)\n');
      return 0;
    } else throw new Error(`unknown argument ${a}; usage: npm run bench:startup -- [--rounds N]`);
  }
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds needs a positive whole number');
  const repo = path.resolve(import.meta.dirname, '..');
  const print = (line: string) => process.stderr.write(`${line}\n`);
  const ac = new AbortController();
  const onSignal = () => ac.abort(new Error('interrupted'));
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const log = recordingLogger(false, print);
  const proc = createProcessRunner(log);
  const store = new ImageStore({ runner: proc, log });
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'falcon-bench-startup-'));
  const cleanups = new Cleanups((m) => print(`warning: ${m}`));
  const ctx: Ctx = {
    opts: { quick: false, verbose: false, netImage: 'tiny', noBuild: true, keepBigImage: false },
    repo,
    imageDir: store.root,
    workDir,
    store,
    proc,
    log,
    signal: ac.signal,
    progress: (msg) => print(`startup: ${msg}`),
    defer: (what, fn) => cleanups.push(what, fn),
    runner: (name) => new Runner(name, { falconDir: path.join(workDir, name, '.falcon'), imageDir: store.root, logger: log, processRunner: proc, persistent: true }),
    n: (full) => full,
  };
  try {
    await withTimeout(20 * 60_000, 'preparing the tiny image', ac.signal, (signal) => store.ensure('tiny', signal));
    const { rows } = await startupSection(ctx, rounds);
    const load = os.loadavg().map((x) => x.toFixed(2)).join(' ');
    process.stdout.write(`\nFalcon start-up, ${new Date().toISOString()}: ${os.cpus().length} cores, node ${process.version}, load average ${load}; medians of ${rounds} rounds\n\n${table(rows, { falcon: 'time', baseline: 'node -e 0' })}\n`);
    return 0;
  } catch (e) {
    print(`bench:startup failed: ${errorText(e)}`);
    return 1;
  } finally {
    await cleanups.unwind();
    await rmrf(workDir);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === import.meta.filename) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`${(e as Error)?.message ?? String(e)}\n`);
      process.exit(2);
    },
  );
}
