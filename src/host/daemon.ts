/**
 * Starting a daemon: a detached process that outlives the CLI (a SoftNPU switch, an impairment
 * helper), its stdout and stderr in an owner-only log, awaited until a probe says it is ready.
 * If it exits first or is not ready in time, it is stopped and the error quotes its log's end.
 */
import { closeSync } from 'node:fs';
import { combineSignals } from '../util/abort.js';
import { FalconError, type FalconErrorCode } from '../util/errors.js';
import { tail } from '../util/fs.js';
import { retry } from '../util/retry.js';
import type { ProcessRunner } from './process.js';
import { terminate } from './procs.js';
import { openOwnerOnly } from './qemu-vm.js';

/** How much of the log a failure quotes. */
const LOG_TAIL_BYTES = 1500;

export interface DaemonExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Waiting for a daemon, started here or found running. */
export interface ReadyWait {
  /** Who it is, for messages: `the switch of node "s"`. */
  what: string;
  pid: number;
  /** Settles when it exits (known for one started by this process): the wait ends at once. */
  exited?: Promise<DaemonExit>;
  /** Its log, quoted in errors. */
  logFile: string;
  /** True once it is ready; asked until then (a throw counts as not yet). The signal ends with the wait. */
  ready: (pid: number, signal: AbortSignal) => Promise<boolean>;
  /** What not being ready in time means, for the message: `did not answer on its control socket /x`. */
  notReady: string;
  timeoutMs: number;
  /** The code of the error thrown when it exits early or is not ready in time. */
  code: FalconErrorCode;
  /** Delay between probes (ms): the first, multiplied by `factor` up to `maxDelayMs`. */
  poll?: { delayMs: number; factor?: number; maxDelayMs?: number };
  signal?: AbortSignal;
}

export interface DaemonOptions extends Omit<ReadyWait, 'pid' | 'exited'> {
  command: string;
  args: readonly string[];
  runner: ProcessRunner;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** SIGTERM's grace before SIGKILL when it is stopped for failing; default 3 s. */
  killGraceMs?: number;
}

export interface StartedDaemon {
  pid: number;
  exited: Promise<DaemonExit>;
}

/**
 * Start `command` detached, stdout and stderr appended to `logFile` (0600), and resolve once
 * `ready` says so. If it exits first, is not ready within `timeoutMs`, or `signal` aborts, it is
 * stopped (SIGTERM, then SIGKILL) and the error (or the abort reason) is thrown.
 */
export async function startDaemon(o: DaemonOptions): Promise<StartedDaemon> {
  o.signal?.throwIfAborted();
  const fd = openOwnerOnly(o.logFile);
  let child: StartedDaemon;
  try {
    child = await o.runner.spawnDetached(o.command, o.args, { cwd: o.cwd, env: o.env, stdout: fd, stderr: fd });
  } finally {
    closeSync(fd);
  }
  let gone = false;
  void child.exited.then(() => (gone = true));
  try {
    await waitUntilReady({ ...o, pid: child.pid, exited: child.exited });
  } catch (e) {
    // A half-started daemon nobody waits for would linger; one that exited is gone already.
    if (!gone) await terminate(child.pid, o.killGraceMs);
    throw e;
  }
  return child;
}

/**
 * Resolve once `ready` says the daemon is; reject when it exits first or after `timeoutMs`, with
 * the end of its log. A caller's abort rejects with the abort reason. Stops nothing.
 */
export async function waitUntilReady(w: ReadyWait): Promise<void> {
  let gone: DaemonExit | undefined;
  const exit = new AbortController();
  void w.exited?.then((e) => {
    gone = e;
    exit.abort(new FalconError(w.code, `${w.what} exited`));
  });
  // One signal for the whole wait: the deadline, the caller's abort, the daemon's exit.
  using wait = combineSignals(w.timeoutMs, w.signal, exit.signal);
  const failed = async (why: string) =>
    new FalconError(w.code, `${w.what} ${why}; the end of its log (${w.logFile}):\n${(await tail(w.logFile, LOG_TAIL_BYTES)).trimEnd() || '(empty)'}`);
  const { delayMs = 50, factor = 1.5, maxDelayMs = 500 } = w.poll ?? {};
  try {
    await retry({ what: `waiting for ${w.what}`, deadlineMs: w.timeoutMs, delayMs, factor, maxDelayMs, signal: wait.signal, retryIf: () => !gone }, async () => {
      const ok = await orAbort(w.ready(w.pid, wait.signal).catch(() => false), wait.signal);
      if (!ok) throw new FalconError(w.code, `${w.what} is not ready yet`);
    });
  } catch (e) {
    if (w.signal?.aborted) throw e;
    if (!gone) throw await failed(`${w.notReady} within ${w.timeoutMs / 1000} s`);
  }
  if (gone) throw await failed(`exited (${gone.signal ? `signal ${gone.signal}` : `code ${gone.code}`}) before it was ready`);
}

/** `p`, or the signal's reason once it aborts: a probe that ignores its signal cannot hold the wait. */
function orAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
