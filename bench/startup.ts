/**
 * Section `startup`: what a topology program costs to start, for `info` and `exec a true` on a
 * running 1-node topology: through tsx on falcon's TypeScript sources, through tsx on the built
 * falcon (what a project with the installed package runs), and as plain JavaScript by node;
 * each beside `node` running an empty file, all measured in this run.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { builtIsCurrent } from '../src/cli/init.js';
import { fmtMs, gb, ratio, spawnTimed, stats, withTimeout, type Ctx, type Row, type Stats } from './lib.js';

const NAME = 'bench_su';

/** The same topology program, importing the sources (for tsx) or the build (for node). */
const program = (from: string) => `import { Runner, gb, run } from '${from}';
const t = new Runner('${NAME}');
t.node('a', 'tiny', 1, gb(1));
await run(t);
`;

export async function startupSection(ctx: Ctx): Promise<{ rows: Row[]; data: Record<string, unknown> }> {
  if (!builtIsCurrent(ctx.repo)) {
    ctx.progress('dist/ is missing or older than src/: npm run build (not timed)');
    await withTimeout(300_000, 'npm run build', ctx.signal, (signal) => npmBuild(ctx.repo, signal));
  }
  const r = ctx.runner(NAME);
  r.node('a', 'tiny', 1, gb(1));
  ctx.defer(`destroy ${r.name}`, () => r.destroy());
  ctx.progress('launching a 1-node tiny topology');
  await withTimeout(240_000, `launch of ${r.name}`, ctx.signal, (signal) => r.launch({ signal }));

  const dir = path.join(ctx.workDir, 'startup');
  await fs.mkdir(dir, { recursive: true });
  const files = {
    empty: path.join(dir, 'empty.mjs'),
    ts: path.join(dir, 'topo.ts'),
    js: path.join(dir, 'topo.mjs'),
    tsDist: path.join(dir, 'topo-dist.ts'),
  };
  // As in a project of `falcon init`: tsx compiles topo.ts as ESM only in a module package.
  await fs.writeFile(path.join(dir, 'package.json'), '{ "type": "module" }\n');
  await fs.writeFile(files.empty, '');
  await fs.writeFile(files.ts, program(path.join(ctx.repo, 'src/index.ts')));
  await fs.writeFile(files.js, program(path.join(ctx.repo, 'dist/index.js')));
  // What a project with the installed package runs: its topo.ts through tsx, falcon built.
  await fs.writeFile(files.tsDist, program(path.join(ctx.repo, 'dist/index.js')));

  const n = ctx.n(20, 5);
  const env = { ...process.env, FALCON_IMAGE_DIR: ctx.imageDir, FALCON_LOG: 'warn' };
  const runs: Record<string, string[]> = {
    node: [files.empty],
    tsxInfo: ['--import', 'tsx', files.ts, 'info', '--falcon-dir', r.paths.dir],
    jsInfo: [files.js, 'info', '--falcon-dir', r.paths.dir],
    tsxDistInfo: ['--import', 'tsx', files.tsDist, 'info', '--falcon-dir', r.paths.dir],
    tsxExec: ['--import', 'tsx', files.ts, 'exec', '--falcon-dir', r.paths.dir, 'a', 'true'],
    jsExec: [files.js, 'exec', '--falcon-dir', r.paths.dir, 'a', 'true'],
    tsxDistExec: ['--import', 'tsx', files.tsDist, 'exec', '--falcon-dir', r.paths.dir, 'a', 'true'],
  };
  ctx.progress(`${n} rounds of: ${Object.keys(runs).join(', ')} (interleaved, so drift hits all alike)`);
  const samples = await withTimeout(600_000, 'start-up runs', ctx.signal, async (signal) => {
    const xs: Record<string, number[]> = Object.fromEntries(Object.keys(runs).map((k) => [k, []]));
    for (let i = 0; i < n; i++) {
      for (const [k, args] of Object.entries(runs)) {
        // From the repository, where `--import tsx` resolves.
        const t = await spawnTimed(process.execPath, args, { cwd: ctx.repo, env, timeoutMs: 60_000, signal });
        xs[k]!.push(t.ms);
      }
    }
    return xs;
  });
  const s = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, stats(v)])) as Record<keyof typeof runs, Stats>;
  const p = (x: Stats) => `${fmtMs(x.median)} / p95 ${fmtMs(x.p95)}`;
  const row = (measure: string, x: Stats): Row => ({
    section: 'startup',
    measure: `${measure}, median / p95 (n=${x.n})`,
    falcon: p(x),
    baseline: p(s.node!),
    ratio: ratio(x.median, s.node!.median),
  });
  const rows = [
    row('`node --import tsx topo.ts info` (sources)', s.tsxInfo!),
    row('`node topo.mjs info` (built dist/)', s.jsInfo!),
    row('`node --import tsx topo.ts info` (falcon built, as installed)', s.tsxDistInfo!),
    row('`node --import tsx topo.ts exec a true` (sources)', s.tsxExec!),
    row('`node --import tsx topo.ts exec a true` (falcon built, as installed)', s.tsxDistExec!),
    { ...row('`node topo.mjs exec a true` (built dist/)', s.jsExec!), note: 'baseline: `node empty.mjs`, in the same rounds' },
  ];
  return { rows, data: { stats: s, samples } };
}

function npmBuild(cwd: string, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', 'build'], { cwd, stdio: ['ignore', 'ignore', 'inherit'], signal });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`npm run build exited ${code}`))));
  });
}
