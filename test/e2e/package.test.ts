/**
 * Falcon as a user installs it: `npm pack` this repository, install the tarball in a project
 * outside the repository, and run a `.ts` topology (tsx) and an `.mjs` one (plain node) from it;
 * then `falcon init` a project from the installed package and run its duo.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Runner } from '../../src/index.js';
import { leftovers, tempDir } from './helpers.js';

const repo = path.resolve(import.meta.dirname, '../..');
const env = { ...process.env, FALCON_LOG: 'warn' };
const started = Date.now();

/** Run a command; fail the test with its output when it exits non-zero. */
function sh(cwd: string, cmd: string, args: string[], timeout = 300_000) {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout });
  expect(r.status, `${cmd} ${args.join(' ')} in ${cwd}:\n${r.stdout}\n${r.stderr}`).toBe(0);
  return r.stdout;
}

const project = tempDir('pkg');
const topology = (name: string) => `import { Runner, mb, run } from 'falcon';

const t = new Runner('${name}');
t.node('n0', 'tiny', 1, mb(256));
await run(t);
`;

/** Launch, exec (and `more`, while it runs) and destroy one topology program; nothing of it may be left. */
function roundTrip(run: string[], cwd: string, name: string, node: string, more?: (topo: (...args: string[]) => string) => void) {
  sh(cwd, run[0]!, [...run.slice(1), 'launch']);
  expect(sh(cwd, run[0]!, [...run.slice(1), 'exec', node, 'echo from $(uname -s)'])).toBe('from Linux\n');
  more?.((...args) => sh(cwd, run[0]!, [...run.slice(1), ...args]));
  sh(cwd, run[0]!, [...run.slice(1), 'destroy']);
  expect(leftovers(new Runner(name, { falconDir: path.join(cwd, '.falcon'), persistent: true }))).toEqual([]);
}

describe('the packed package, installed outside the repository', () => {
  beforeAll(() => {
    const t0 = Date.now();
    const out = sh(repo, 'npm', ['pack', '--silent', '--pack-destination', project]).trim().split('\n').pop()!;
    const tarball = path.join(project, out);
    writeFileSync(path.join(project, 'package.json'), JSON.stringify({ private: true, type: 'module' }));
    const t1 = Date.now();
    sh(project, 'npm', ['install', '--no-audit', '--no-fund', tarball, 'tsx']);
    console.log(`npm pack (with the build) ${((t1 - t0) / 1000).toFixed(1)} s, npm install ${((Date.now() - t1) / 1000).toFixed(1)} s`);
  });
  afterAll(() => console.log(`package test: ${((Date.now() - started) / 1000).toFixed(1)} s`));

  it('ships the built code, its types and the files it reads at run time, not the sources', async () => {
    const pkg = path.join(project, 'node_modules/falcon');
    expect(existsSync(path.join(pkg, 'src'))).toBe(false);
    expect(existsSync(path.join(pkg, 'dist/index.d.ts'))).toBe(true);
    const { agentSourcePath } = await import(path.join(pkg, 'dist/guest/agent-build.js'));
    expect(existsSync(agentSourcePath())).toBe(true);
    const { impairHelperSource } = await import(path.join(pkg, 'dist/host/impair.js'));
    expect(existsSync(impairHelperSource())).toBe(true);
    const { guestFile } = await import(path.join(pkg, 'dist/images/recipes/common.js'));
    expect((await guestFile('tiny-inittab')).length).toBeGreaterThan(0);
    // The web view's page and the libraries it loads, from the installed package.
    const { AssetStore } = await import(path.join(pkg, 'dist/web/assets.js'));
    const assets = await AssetStore.open();
    for (const p of ['/assets/index.html', '/assets/app.js', '/vendor/xterm.mjs', '/vendor/cytoscape.mjs']) expect((await assets.get(p))?.body.length, p).toBeGreaterThan(0);
    expect(sh(project, 'npx', ['falcon', '--help'])).toMatch(/^Usage: falcon/);
  });

  it('a .ts topology runs through tsx: launch, exec, destroy', () => {
    const dir = path.join(project, 'ts');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'topo.ts'), topology('pkgts'));
    roundTrip(['npx', 'tsx', 'topo.ts'], dir, 'pkgts', 'n0');
  });

  it('an .mjs topology runs with plain node: launch, exec with Falcon\'s options before and after the command, destroy', () => {
    const dir = path.join(project, 'mjs');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'topo.mjs'), topology('pkgmjs'));
    const state = path.join(dir, '.falcon');
    roundTrip([process.execPath, 'topo.mjs'], dir, 'pkgmjs', 'n0', (topo) => {
      // Given to the guest, --falcon-dir would make nproc fail.
      expect(topo('exec', 'n0', 'nproc', '--falcon-dir', state)).toBe('1\n');
      expect(topo('exec', '-f', state, 'n0', 'ls', '-d', '/', '-t', '30')).toBe('/\n');
      expect(topo('exec', 'n0', '--', 'echo', '-v', '--dump')).toBe('-v --dump\n');
      const elsewhere = spawnSync(process.execPath, ['topo.mjs', 'exec', 'n0', 'nproc', '--falcon-dir', '/nonexistent'], { cwd: dir, env, encoding: 'utf8' });
      expect(elsewhere.stderr).toContain('has not been launched (no state in /nonexistent)');
    });
  });

  it('falcon init makes a project that type-checks and runs its duo', () => {
    const lab = path.join(tempDir('pkginit'), 'pkginitlab');
    const t0 = Date.now();
    const out = sh(project, 'npx', ['falcon', 'init', lab]);
    console.log(`falcon init with npm install ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect(out).toContain(`project ready (topology "pkginitlab"); next: cd ${lab} && npx tsx topo.ts launch`);
    expect(readdirSync(lab).sort()).toEqual(['.gitignore', 'node_modules', 'package-lock.json', 'package.json', 'topo.ts', 'tsconfig.json']);
    sh(lab, 'npm', ['run', '--silent', 'typecheck']);
    roundTrip(['npx', 'tsx', 'topo.ts'], lab, 'pkginitlab', 'violin');
  });
});
