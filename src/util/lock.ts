/**
 * Advisory locks (the image store's images, a topology's .falcon directory): a lock file
 * created with O_EXCL holding the owner's pid and purpose.
 * A lock whose pid is dead is stale and taken over. Within one process, waiters queue on a
 * promise instead of polling the file, so parallel launches of one image don't slow each other.
 */
import { open, readFile, stat, unlink } from 'node:fs/promises';
import os from 'node:os';
import { pidAlive } from './fs.js';
import type { Logger } from './log.js';
import { retry } from './retry.js';
import { FalconError } from './errors.js';

export interface LockOptions {
  /** Shown in errors, e.g. "image 'tiny'". */
  what: string;
  /** How long to wait for another process to release the lock; 0 fails at once. */
  waitMs: number;
  /** What the holder is doing (e.g. "launch"), shown to whoever finds the lock taken. */
  purpose?: string;
  signal?: AbortSignal;
  log?: Logger;
}

export class LockBusyError extends FalconError {
  override name = 'LockBusyError';
  readonly lockPath: string;
  readonly pid: number;
  constructor(o: {
    lockPath: string;
    /** The holder's. */
    pid: number;
    /** What is locked, for the message: `topology "duo"`. */
    what: string;
    since?: string;
    /** The holder's command. */
    purpose?: string;
  }) {
    super(
      'LOCK_BUSY',
      `${o.what} is held by another falcon command (${o.purpose ? `"${o.purpose}", ` : ''}pid ${o.pid}${o.since ? `, since ${o.since}` : ''}), which is still running; ` +
        `wait for it to finish, or if that process is not Falcon, delete ${o.lockPath}`,
    );
    this.lockPath = o.lockPath;
    this.pid = o.pid;
  }
}

interface LockContent {
  pid: number;
  host?: string;
  since?: string;
  purpose?: string;
}

/** A partially written lock file older than this is treated as stale. */
const EMPTY_LOCK_GRACE_MS = 5_000;

const inProcess = new Map<string, Promise<void>>();

/** Takes the lock at `lockPath` and returns the function that releases it. */
export async function acquireLock(lockPath: string, o: LockOptions): Promise<() => Promise<void>> {
  // Queue behind holders in this process first; only then contend for the file.
  const previous = inProcess.get(lockPath) ?? Promise.resolve();
  let releaseLocal!: () => void;
  const mine = new Promise<void>((r) => (releaseLocal = r));
  const chained = previous.then(() => mine);
  inProcess.set(lockPath, chained);
  const cleanupLocal = () => {
    releaseLocal();
    if (inProcess.get(lockPath) === chained) inProcess.delete(lockPath);
  };
  try {
    await abortable(previous, o.signal);
    await retry(
      {
        what: `waiting for the lock on ${o.what}`,
        deadlineMs: o.waitMs,
        attempts: o.waitMs <= 0 ? 1 : Infinity,
        delayMs: 100,
        factor: 1.5,
        maxDelayMs: 2_000,
        signal: o.signal,
        log: o.log,
        retryIf: (e) => e instanceof LockBusyError,
      },
      () => tryTake(lockPath, o.what, o.purpose),
    );
  } catch (err) {
    cleanupLocal();
    throw err;
  }
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    try {
      await unlink(lockPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    } finally {
      cleanupLocal();
    }
  };
}

async function tryTake(lockPath: string, what: string, purpose?: string): Promise<void> {
  for (;;) {
    try {
      const fh = await open(lockPath, 'wx', 0o600);
      try {
        const content: LockContent = { pid: process.pid, host: os.hostname(), since: new Date().toISOString(), purpose };
        await fh.writeFile(JSON.stringify(content) + '\n');
      } finally {
        await fh.close();
      }
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = await readHolder(lockPath);
    if (holder === 'gone') continue;
    if (holder === 'stale') {
      await unlink(lockPath).catch(() => {});
      continue;
    }
    throw new LockBusyError({ lockPath, pid: holder.pid, what, since: holder.since, purpose: holder.purpose });
  }
}

async function readHolder(lockPath: string): Promise<LockContent | 'stale' | 'gone'> {
  let text: string;
  try {
    text = await readFile(lockPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw err;
  }
  let content: LockContent | undefined;
  try {
    const parsed = JSON.parse(text) as Partial<LockContent>;
    if (typeof parsed.pid === 'number' && Number.isInteger(parsed.pid) && parsed.pid > 0) content = parsed as LockContent;
  } catch {
    // being written right now, or left half-written by a crash
  }
  if (!content) {
    const st = await stat(lockPath).catch(() => undefined);
    if (!st) return 'gone';
    return Date.now() - st.mtimeMs > EMPTY_LOCK_GRACE_MS ? 'stale' : { pid: 0, since: undefined };
  }
  if (content.host && content.host !== os.hostname()) return content; // can't check another host's pids
  return pidAlive(content.pid) ? content : 'stale';
}

function abortable<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
