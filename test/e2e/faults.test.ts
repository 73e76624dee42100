/**
 * Faults and bad input: a CLI killed mid-launch, a falcon dir too deep for Unix sockets, two
 * launches at once, a guest that never boots.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LaunchError, Runner, mb } from '../../src/index.js';
import { retry } from '../../src/util/retry.js';
import { leftovers, newRunner, tempDir } from './helpers.js';

const repo = path.resolve(import.meta.dirname, '../..');
const fixture = path.join(repo, 'test/e2e/fixtures/topo.ts');

function cliArgs(falconDir: string, ...args: string[]): string[] {
  return ['--import', 'tsx', fixture, '--falcon-dir', falconDir, ...args];
}

describe('faults', () => {
  it('a CLI killed with SIGKILL in the middle of launch leaves nothing that destroy cannot remove', async () => {
    const falconDir = path.join(tempDir('killed'), '.falcon');
    const env = { ...process.env, FALCON_TEST_TOPO: 'killed', FALCON_TEST_NODES: '2', FALCON_LOG: 'warn' };
    const cli = spawn(process.execPath, cliArgs(falconDir, 'launch'), { cwd: repo, env, stdio: 'ignore' });
    // Kill it once QEMU runs but before the guests are ready.
    await retry({ what: 'waiting for the launch to start QEMU', deadlineMs: 60_000, delayMs: 100 }, async () => {
      const pids = existsSync(falconDir) ? readdirSync(falconDir).filter((f) => f.endsWith('.pid')) : [];
      if (pids.length < 1) throw new Error('no QEMU yet');
    });
    cli.kill('SIGKILL');
    await new Promise((r) => cli.once('exit', r));
    const probe = new Runner('killed', { falconDir, persistent: true });
    expect(leftovers(probe).some((l) => l.startsWith('process'))).toBe(true); // QEMU outlived the CLI
    const r = spawnSync(process.execPath, cliArgs(falconDir, 'destroy'), { cwd: repo, env, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(leftovers(probe)).toEqual([]);
  });

  it('works in a falcon dir so deep that its socket paths exceed the Unix limit', async () => {
    const deep = path.join(tempDir('deep'), ...Array.from({ length: 6 }, (_, i) => `a-rather-long-folder-name-${i}`));
    mkdirSync(deep, { recursive: true });
    const d = newRunner('deep', deep);
    d.node('n', 'tiny', 1, mb(256));
    expect(path.join(d.paths.dir, 'sock', 'n.console').length).toBeGreaterThan(107);
    try {
      await d.launch();
      expect(d.paths.socketDir.length).toBeLessThan(60);
      expect((await d.exec('n', 'echo deep')).stdout.toString()).toBe('deep\n');
    } finally {
      await d.destroy();
    }
    expect(leftovers(d)).toEqual([]);
  });

  it('two launches of one topology at once: one wins, the other is told why', async () => {
    const falconDir = path.join(tempDir('twice'), '.falcon');
    const env = { ...process.env, FALCON_TEST_TOPO: 'twice', FALCON_LOG: 'warn' };
    const run = () =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const p = spawn(process.execPath, cliArgs(falconDir, 'launch'), { cwd: repo, env, stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        p.stderr!.on('data', (c) => (stderr += c));
        p.once('exit', (code) => resolve({ code, stderr }));
      });
    try {
      const results = await Promise.all([run(), run()]);
      const codes = results.map((r) => r.code).sort();
      expect(codes).toEqual([0, 1]);
      const loser = results.find((r) => r.code === 1)!;
      expect(loser.stderr).toMatch(/held by another falcon command \("launch", pid \d+/);
    } finally {
      spawnSync(process.execPath, cliArgs(falconDir, 'destroy'), { cwd: repo, env });
    }
    expect(leftovers(new Runner('twice', { falconDir, persistent: true }))).toEqual([]);
  });

  it('a guest that never boots fails launch within its deadline, names the node, shows the console', async () => {
    const dir = tempDir('broken');
    const image = `broken-e2e-${process.pid}`;
    const d = newRunner('broken', dir, { bootTimeoutMs: 20_000 });
    const tiny = await d.store.get('tiny');
    // The tiny kernel told to mount a root that does not exist: it panics.
    await d.store.import(image, tiny.disk, {
      kernel: tiny.kernel,
      initrd: tiny.initrd,
      cmdline: 'console=ttyS0 root=/dev/nonexistent rootwait=0 rdinit=/nonexistent init=/nonexistent',
      exec: 'agent',
    });
    d.node('wreck', image, 1, mb(256));
    try {
      const err = await d.launch().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(LaunchError);
      const msg = (err as Error).message;
      expect(msg).toMatch(/failed on "wreck"/);
      expect(msg).toMatch(/did not become ready within 20 s/);
      expect(msg).toMatch(/last console output/);
      expect(msg).toMatch(/Kernel panic|nonexistent|Linux version/);
      expect(readFileSync(d.paths.consoleLog('wreck'), 'utf8').length).toBeGreaterThan(0);
    } finally {
      await d.destroy();
      await d.store.remove(image, { force: true });
    }
    expect(leftovers(d)).toEqual([]);
  });
});
