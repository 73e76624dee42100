/**
 * Commands for the test cluster harness: argument arrays only (no shell), a timeout on every
 * command and every wait, daemons detached with their output in a log file of their own.
 */
import { execFile, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

export type Log = (line: string) => void;

/** Progress lines on stderr, so `--json` output on stdout stays clean. */
export const stderrLog: Log = (line) => process.stderr.write(`k8s: ${line}\n`);

export class CommandError extends Error {
  constructor(
    readonly cmd: string[],
    readonly code: number | string | null,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(`${cmd.join(' ')} failed (${code}): ${(stderr || stdout).trim().split('\n').slice(-8).join('\n')}`);
    this.name = 'CommandError';
  }
}

export interface RunOptions {
  timeoutMs?: number;
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Runs a command to its end; throws CommandError on a non-zero exit or a timeout. */
export function run(cmd: string, args: string[], o: RunOptions = {}): Promise<{ stdout: string; stderr: string }> {
  const timeoutMs = o.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, env: o.env ?? process.env, cwd: o.cwd, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err) {
          const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: number | string };
          const code = e.killed ? `timed out after ${timeoutMs} ms` : (e.code ?? null);
          reject(new CommandError([cmd, ...args], code, stdout, stderr));
        } else resolve({ stdout, stderr });
      },
    );
    if (o.input !== undefined) child.stdin?.end(o.input);
  });
}

/** Like run, but resolves with the exit status instead of throwing on a non-zero one. */
export async function tryRun(cmd: string, args: string[], o: RunOptions = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(cmd, args, o);
    return { code: 0, ...r };
  } catch (err) {
    if (err instanceof CommandError && typeof err.code === 'number') return { code: err.code, stdout: err.stdout, stderr: err.stderr };
    throw err;
  }
}

/** A long-running process, detached from us (it outlives the CLI), writing to `logFile`. */
export function spawnDaemon(cmd: string, args: string[], logFile: string, env?: NodeJS.ProcessEnv): number {
  const fd = openSync(logFile, 'a', 0o600);
  try {
    const child = spawn(cmd, args, { detached: true, stdio: ['ignore', fd, fd], env: env ?? process.env });
    if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
    child.on('error', () => {});
    child.unref();
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A zombie (a child of ours that exited) counts as gone.
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The last lines of a log file, for error messages. */
export function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Why a daemon died, from its log: the last error lines (klog E/F lines, "error", "fatal",
 * "invalid"; a Go panic's goroutine dump is skipped), else its last lines.
 */
export function errorLines(file: string, lines = 8): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return '(no log)';
  }
  const all = text.trimEnd().split('\n');
  const dump = all.findIndex((l) => /^goroutine \d+ \[/.test(l));
  const head = dump >= 0 ? all.slice(0, dump) : all;
  const errs = head.filter((l) => /^[EF]\d{4} |\b(error|fatal|invalid|failed|panic)\b/i.test(l));
  return (errs.length ? errs : head).slice(-lines).join('\n');
}

/**
 * Polls `check` until it returns a value other than undefined/false, or throws after
 * `timeoutMs` with `what` and the last error or state `check` reported through `note`.
 */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  check: (note: (s: string) => void) => Promise<T | undefined | false> | T | undefined | false,
  o: { intervalMs?: number; alive?: () => string | undefined } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  const note = (s: string) => (last = s);
  for (;;) {
    try {
      const v = await check(note);
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = (err as Error).message;
    }
    const dead = o.alive?.();
    if (dead) throw new Error(`${what}: ${dead}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last: ${last})` : ''}`);
    await sleep(o.intervalMs ?? 250);
  }
}
