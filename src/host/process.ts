/**
 * Running host commands. Everything goes through a `ProcessRunner` so unit tests can record the
 * exact arguments without root, while e2e tests run the real thing. Commands are argument arrays,
 * never shell strings.
 */
import { spawn, type StdioOptions } from 'node:child_process';
import type { Logger } from '../util/log.js';
import { silentLogger } from '../util/log.js';
import { FalconError } from '../util/errors.js';

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to stdin, which is then closed. */
  input?: string | Buffer;
  /** Default 60 s. SIGTERM at the deadline, SIGKILL `killGraceMs` later. */
  timeoutMs?: number;
  killGraceMs?: number;
  signal?: AbortSignal;
  /** Resolve instead of throwing on a non-zero exit. */
  reject?: boolean;
  /** Called with each chunk of stdout/stderr as it arrives (progress display). */
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
}

export interface RunResult {
  command: string;
  args: readonly string[];
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  stdoutBuffer: Buffer;
  timedOut: boolean;
}

/** What a failed host command left: the fields of `HostCommandError`. */
export interface HostCommandFailure {
  command: string;
  args: readonly string[];
  /** null when it did not exit by itself (killed, or never ran). */
  exitCode: number | null;
  stderr: string;
  stdout?: string;
  timedOut?: boolean;
  signal?: NodeJS.Signals | null;
  /** Why it could not run (a spawn error), or the abort reason. */
  cause?: unknown;
}

/**
 * The one error type for failed host commands. Its message is one short line plus stderr.
 */
export class HostCommandError extends FalconError {
  override name = 'HostCommandError';
  readonly command: string;
  readonly args: readonly string[];
  readonly exitCode: number | null;
  readonly stderr: string;
  readonly stdout: string;
  readonly timedOut: boolean;
  readonly signal: NodeJS.Signals | null;

  constructor(f: HostCommandFailure) {
    // `cause` only when given, as Error itself does.
    super('HOST_COMMAND_FAILED', HostCommandError.describe(f), 'cause' in f ? { cause: f.cause } : undefined);
    this.command = f.command;
    this.args = f.args;
    this.exitCode = f.exitCode;
    this.stderr = f.stderr;
    this.stdout = f.stdout ?? '';
    this.timedOut = f.timedOut ?? false;
    this.signal = f.signal ?? null;
  }

  static describe(f: HostCommandFailure): string {
    const cmdline = [f.command, ...f.args].join(' ');
    const short = cmdline.length > 200 ? `${cmdline.slice(0, 200)}...` : cmdline;
    const why = f.timedOut
      ? 'timed out'
      : f.cause instanceof Error
        ? `could not run: ${f.cause.message}`
        : f.signal
          ? `was killed by ${f.signal}`
          : `failed with exit code ${f.exitCode}`;
    const err = f.stderr.trim();
    return `Command ${why}: ${short}${err ? `\n${err}` : ''}`;
  }
}

export interface ProcessRunner {
  run(command: string, args: readonly string[], options?: RunOptions): Promise<RunResult>;
  /**
   * Start a process that outlives this one (QEMU). Its stdio goes to the given fds;
   * extra fds are passed as fd 3, 4, ... Returns the pid.
   */
  spawnDetached(command: string, args: readonly string[], options: DetachedOptions): Promise<DetachedProcess>;
}

export interface DetachedProcess {
  pid: number;
  /** Settles when the process exits while this process still runs (no polling needed). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface DetachedOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  stdout: number;
  stderr: number;
  extraFds?: number[];
}

export function createProcessRunner(log: Logger = silentLogger): ProcessRunner {
  return {
    run: (command, args, options = {}) => runProcess(command, args, options, log),
    spawnDetached: (command, args, options) => spawnDetached(command, args, options, log),
  };
}

function runProcess(command: string, args: readonly string[], o: RunOptions, log: Logger): Promise<RunResult> {
  const started = Date.now();
  log.log({ kind: 'cmd', cmd: command, args });
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: o.cwd,
      env: o.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const terminate = () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), o.killGraceMs ?? 3000);
      killTimer.unref();
    };
    const timer = setTimeout(() => {
      timedOut = true;
      terminate();
    }, o.timeoutMs ?? 60_000);
    const onAbort = () => terminate();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout!.on('data', (c: Buffer) => {
      out.push(c);
      o.onStdout?.(c);
    });
    child.stderr!.on('data', (c: Buffer) => {
      err.push(c);
      o.onStderr?.(c);
    });
    child.stdin!.on('error', () => {}); // the child may exit before reading its input
    child.stdin!.end(o.input ?? undefined);
    let spawnError: Error | undefined;
    child.on('error', (e) => (spawnError = e));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      o.signal?.removeEventListener('abort', onAbort);
      const stdoutBuffer = Buffer.concat(out);
      const r: RunResult = {
        command,
        args,
        exitCode: code,
        signal,
        stdout: stdoutBuffer.toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        stdoutBuffer,
        timedOut,
      };
      log.log({ kind: 'cmd-done', cmd: command, exitCode: code, ms: Date.now() - started });
      const aborted = o.signal?.aborted ?? false;
      if (spawnError || timedOut || aborted || (code !== 0 && o.reject !== false)) {
        reject(
          new HostCommandError({
            command,
            args,
            exitCode: code,
            stderr: r.stderr,
            stdout: r.stdout,
            timedOut,
            signal,
            cause: spawnError ?? (aborted ? o.signal!.reason : undefined),
          }),
        );
      } else resolve(r);
    });
  });
}

function spawnDetached(command: string, args: readonly string[], o: DetachedOptions, log: Logger): Promise<DetachedProcess> {
  log.log({ kind: 'cmd', cmd: command, args });
  return new Promise((resolve, reject) => {
    const stdio: StdioOptions = ['ignore', o.stdout, o.stderr, ...(o.extraFds ?? [])];
    const child = spawn(command, args, { cwd: o.cwd, env: o.env, stdio, detached: true });
    child.once('error', (e) => reject(new HostCommandError({ command, args, exitCode: null, stderr: '', cause: e })));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
      child.once('exit', (code, signal) => res({ code, signal })),
    );
    child.once('spawn', () => {
      child.unref();
      resolve({ pid: child.pid!, exited });
    });
  });
}

/** A runner that records calls and answers from a table; for unit tests of argument building. */
export function recordingRunner(
  answer: (command: string, args: readonly string[]) => Partial<RunResult> | Error = () => ({}),
): ProcessRunner & { calls: { command: string; args: string[] }[] } {
  const calls: { command: string; args: string[] }[] = [];
  return {
    calls,
    async run(command, args, options = {}) {
      calls.push({ command, args: [...args] });
      const a = answer(command, args);
      if (a instanceof Error) throw a;
      const r: RunResult = {
        command,
        args,
        exitCode: 0,
        signal: null,
        stdout: '',
        stderr: '',
        stdoutBuffer: Buffer.from(a.stdout ?? ''),
        timedOut: false,
        ...a,
      };
      if (r.exitCode !== 0 && options.reject !== false) {
        throw new HostCommandError({ command, args, exitCode: r.exitCode, stderr: r.stderr, stdout: r.stdout });
      }
      return r;
    },
    async spawnDetached(command, args) {
      calls.push({ command, args: [...args] });
      return { pid: 4242, exited: new Promise(() => {}) };
    },
  };
}
