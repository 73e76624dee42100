import { sleep } from './abort.js';
import type { Logger } from './log.js';

export interface RetryOptions {
  /** What is being tried, for the log and the final error. */
  what: string;
  attempts?: number;
  /** Give up once this much time has passed, whatever the attempt count. */
  deadlineMs?: number;
  delayMs?: number;
  /** Each delay is multiplied by this, up to maxDelayMs. */
  factor?: number;
  maxDelayMs?: number;
  signal?: AbortSignal;
  log?: Logger;
  /** Return false to stop retrying on this error (it is rethrown). */
  retryIf?: (err: unknown) => boolean;
}

/** The one retry loop: logs every failed attempt, rethrows the last error. */
export async function retry<T>(opts: RetryOptions, fn: (attempt: number) => Promise<T>): Promise<T> {
  const attempts = opts.attempts ?? Infinity;
  const start = Date.now();
  let delay = opts.delayMs ?? 100;
  for (let attempt = 1; ; attempt++) {
    opts.signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (err) {
      const outOfTime = opts.deadlineMs !== undefined && Date.now() - start + delay > opts.deadlineMs;
      if (attempt >= attempts || outOfTime || (opts.retryIf && !opts.retryIf(err))) throw err;
      opts.log?.log({
        kind: 'retry',
        what: opts.what,
        attempt,
        attempts: Number.isFinite(attempts) ? attempts : 0,
        error: err instanceof Error ? err.message.split('\n')[0]! : String(err),
        delayMs: delay,
      });
      await sleep(delay, opts.signal);
      delay = Math.min(delay * (opts.factor ?? 1), opts.maxDelayMs ?? Infinity);
    }
  }
}
