/**
 * `falcon init [DIR]`: scaffold a topology project (package.json, tsconfig.json, a duo topology
 * in topo.ts), then install its dependencies, so `cd DIR && npx tsx topo.ts launch` works.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MAX_NAME_LENGTH, nameProblem } from '../model/validate.js';
import { FalconError } from '../util/errors.js';
import type { Logger } from '../util/log.js';

export interface InitOptions {
  /** The project folder; created when missing, refused when it has files. */
  dir: string;
  /** Topology name in topo.ts (default: derived from the folder name). */
  name?: string;
  /** npm spec of the falcon dependency (default: `file:` the root of the running package). */
  falconSpec?: string;
  /** Run `npm install` (default true). */
  install?: boolean;
  log: Logger;
  /** Where npm's output goes (default: inherited, so its progress shows). */
  stdio?: 'inherit' | 'ignore';
  signal?: AbortSignal;
}

/** The root of the running falcon package: src/cli/ and dist/cli/ are both two levels down. */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** A topology name from a folder name: letters, digits and "_", starting with a letter. */
export function topologyNameFor(dir: string): string {
  let n = path.basename(path.resolve(dir)).replace(/[^A-Za-z0-9_]/g, '_');
  if (!/^[A-Za-z]/.test(n)) n = `topo_${n}`;
  return n.slice(0, MAX_NAME_LENGTH);
}

/** False in a checkout whose dist/ is missing or older than src/ (an installed package has no src/). */
export function builtIsCurrent(root: string): boolean {
  const built = path.join(root, 'dist/index.js');
  if (!existsSync(built)) return false;
  const src = path.join(root, 'src');
  if (!existsSync(src)) return true;
  const stamp = statSync(built).mtimeMs;
  return readdirSync(src, { recursive: true, withFileTypes: true }).every((e) => !e.isFile() || statSync(path.join(e.parentPath ?? e.path, e.name)).mtimeMs <= stamp);
}

const NPM_TIMEOUT_MS = 15 * 60_000;

/** Write the project files and install its dependencies; returns the topology name. */
export async function initProject(o: InitOptions): Promise<string> {
  const dir = path.resolve(o.dir);
  const present = await readdir(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return [];
    throw new FalconError('INIT_FAILED', `falcon init: cannot read ${dir}: ${e.message}`, { cause: e });
  });
  if (present.length) {
    const shown = present.sort().slice(0, 5).join(', ') + (present.length > 5 ? ', ...' : '');
    throw new FalconError('INIT_FAILED', `falcon init: ${dir} is not empty (it has ${shown}); choose an empty or new folder`);
  }
  const name = o.name ?? topologyNameFor(dir);
  const problem = nameProblem('topology', name);
  if (problem) throw new FalconError('INVALID_ARGUMENT', `falcon init --name: ${problem}`);

  const own = JSON.parse(await readFile(path.join(packageRoot, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
    devDependencies?: Record<string, string>;
  };
  const pkg = {
    name: name.toLowerCase().replace(/_/g, '-'),
    private: true,
    type: 'module',
    scripts: {
      launch: 'tsx topo.ts launch',
      info: 'tsx topo.ts info',
      destroy: 'tsx topo.ts destroy',
      typecheck: 'tsc --noEmit',
    },
    dependencies: { falcon: o.falconSpec ?? `file:${packageRoot}`, tsx: own.dependencies.tsx ?? '^4' },
    devDependencies: { typescript: own.devDependencies?.typescript ?? '^5', '@types/node': own.devDependencies?.['@types/node'] ?? '^20' },
  };
  const tsconfig = {
    compilerOptions: {
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      types: ['node'],
    },
    include: ['*.ts'],
  };
  const topo = `// A Falcon topology: two nodes and a link between them. Its own CLI:
//   npx tsx topo.ts launch | info | exec violin 'ip addr' | serial violin | destroy
import { Runner, gb, run } from 'falcon';

const d = new Runner('${name}');
const violin = d.node('violin', 'tiny', 1, gb(1));
const piano = d.node('piano', 'tiny', 1, gb(1));
d.link(violin, piano);
await run(d);
`;
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'package.json'), JSON.stringify(pkg, null, 2) + '\n');
  await writeFile(path.join(dir, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2) + '\n');
  await writeFile(path.join(dir, 'topo.ts'), topo);
  await writeFile(path.join(dir, '.gitignore'), 'node_modules/\n.falcon/\n');
  o.log.log({ kind: 'step', msg: `created ${dir}: package.json, tsconfig.json, topo.ts (topology "${name}"), .gitignore` });
  if (o.install !== false) {
    // topo.ts imports falcon's dist/: a checkout whose build is missing or stale is built first.
    if (!o.falconSpec && !builtIsCurrent(packageRoot)) {
      o.log.log({ kind: 'step', msg: `building falcon in ${packageRoot} (its dist/ is missing or older than src/)` });
      await npm(['run', 'build'], packageRoot, o);
    }
    o.log.log({ kind: 'step', msg: `npm install in ${dir}` });
    await npm(['install', '--no-audit', '--no-fund'], dir, o);
  }
  return name;
}

/** Run npm with its output shown on stderr (the CLI's stdout keeps only the result). */
async function npm(args: string[], cwd: string, o: InitOptions): Promise<void> {
  const what = `npm ${args.join(' ')} in ${cwd}`;
  const out = o.stdio === 'ignore' ? 'ignore' : process.stderr;
  const child = spawn('npm', args, { cwd, stdio: ['ignore', out, out], timeout: NPM_TIMEOUT_MS, signal: o.signal });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, s) => resolve([c, s]));
  }).catch((e: Error) => {
    throw new FalconError('INIT_FAILED', `falcon init: could not run ${what}: ${e.message}; install Node.js's npm, or pass --no-install`, { cause: e });
  });
  if (code !== 0) {
    throw new FalconError('INIT_FAILED', `falcon init: ${what} failed (${signal ?? `exit ${code}`}); its output is above. Fix the cause and run it again there`);
  }
}
