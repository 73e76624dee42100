import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startDaemon, waitUntilReady, type DaemonOptions } from '../../src/host/daemon.js';
import { createProcessRunner } from '../../src/host/process.js';
import { terminate, waitForExit } from '../../src/host/procs.js';
import { isFalconError } from '../../src/util/errors.js';
import { pidAlive } from '../../src/util/fs.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'falcon-daemon-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
/** A tiny daemon: `node -e script`, with its own log and pid file; ready once the pid file names it. */
function daemon(script: string, o: Partial<DaemonOptions> = {}): DaemonOptions & { pidFile: string } {
  const base = path.join(dir, `d${n++}`);
  const pidFile = `${base}.pid`;
  return {
    what: 'the test daemon',
    command: process.execPath,
    args: ['-e', script, pidFile],
    runner: createProcessRunner(),
    logFile: `${base}.log`,
    ready: async (pid) => readFileSync(pidFile, 'utf8').trim() === String(pid),
    notReady: 'did not write its pid file',
    timeoutMs: 10_000,
    code: 'IMPAIR_FAILED',
    poll: { delayMs: 20 },
    killGraceMs: 500,
    pidFile,
    ...o,
  };
}

/** Resolves to the pid the daemon prints first, so a test can check it was stopped. */
const started = (log: string) => Number(/started (\d+)/.exec(readFileSync(log, 'utf8'))?.[1]);

const READY = `console.log('started', process.pid); setTimeout(() => require('fs').writeFileSync(process.argv[1], process.pid + '\\n'), 200); setInterval(() => {}, 1000);`;
const NEVER_READY = `console.log('started', process.pid); console.error('listening on nothing at all'); setInterval(() => {}, 1000);`;
const EXITS = `console.log('started', process.pid); console.error('fatal: the config names no ports'); process.exit(3);`;

describe('startDaemon', () => {
  it('starts a detached process with an owner-only log and resolves once it is ready', async () => {
    const d = daemon(READY);
    const child = await startDaemon(d);
    try {
      expect(pidAlive(child.pid)).toBe(true);
      expect(readFileSync(d.pidFile, 'utf8').trim()).toBe(String(child.pid));
      expect(statSync(d.logFile).mode & 0o777).toBe(0o600);
      expect(readFileSync(d.logFile, 'utf8')).toContain(`started ${child.pid}`);
    } finally {
      await terminate(child.pid, 500);
    }
  });

  it('stops one that is never ready and fails with the end of its log', async () => {
    const d = daemon(NEVER_READY, { timeoutMs: 600 });
    const t0 = Date.now();
    const e = await startDaemon(d).catch((x: unknown) => x);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(isFalconError(e) && e.code).toBe('IMPAIR_FAILED');
    expect((e as Error).message).toMatch(/^the test daemon did not write its pid file within 0\.6 s; the end of its log \(.*d\d+\.log\):\n/);
    expect((e as Error).message).toContain('listening on nothing at all');
    const pid = started(d.logFile);
    expect(await waitForExit(pid, 2000)).toBe(true);
  });

  it('fails at once with the exit status and the end of its log when it exits before it is ready', async () => {
    const d = daemon(EXITS, { timeoutMs: 20_000 });
    const t0 = Date.now();
    const e = await startDaemon(d).catch((x: unknown) => x);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(isFalconError(e) && e.code).toBe('IMPAIR_FAILED');
    expect((e as Error).message).toMatch(/^the test daemon exited \(code 3\) before it was ready; the end of its log/);
    expect((e as Error).message).toContain('fatal: the config names no ports');
  });

  it('on abort stops the daemon and rejects with the abort reason', async () => {
    const ac = new AbortController();
    const d = daemon(NEVER_READY, { signal: ac.signal });
    setTimeout(() => ac.abort(new Error('the user pressed ctrl-c')), 300);
    await expect(startDaemon(d)).rejects.toThrow('the user pressed ctrl-c');
    expect(await waitForExit(started(d.logFile), 2000)).toBe(true);
  });

  it('does not start anything when the signal is already aborted', async () => {
    const d = daemon(READY, { signal: AbortSignal.abort(new Error('too late')) });
    await expect(startDaemon(d)).rejects.toThrow('too late');
    expect(() => statSync(d.logFile)).toThrow();
  });

  it('is not held by a probe that ignores its signal: the deadline still ends the wait', async () => {
    const d = daemon(NEVER_READY, { timeoutMs: 400, ready: () => new Promise<boolean>(() => {}) });
    await expect(startDaemon(d)).rejects.toThrow(/did not write its pid file within 0\.4 s/);
    expect(await waitForExit(started(d.logFile), 2000)).toBe(true);
  });
});

describe('waitUntilReady', () => {
  it('waits for a daemon found running and says "(empty)" for an empty log', async () => {
    const d = daemon(NEVER_READY);
    await expect(
      waitUntilReady({ ...d, pid: process.pid, logFile: path.join(dir, 'none.log'), timeoutMs: 200, ready: async () => false }),
    ).rejects.toThrow(/within 0\.2 s; the end of its log \(.*none\.log\):\n\(empty\)$/);
    let asked = 0;
    await waitUntilReady({ ...d, pid: process.pid, ready: async () => ++asked === 3 });
    expect(asked).toBe(3);
  });
});
