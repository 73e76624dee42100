import { FalconError } from './errors.js';

/** Abortable sleep. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A signal that aborts when any input aborts or after `timeoutMs`; dispose it (`using`) to drop
 * its listeners and timer once the work is done. Built from a controller and a plain timer: on
 * Node 20 `AbortSignal.any([AbortSignal.timeout(ms)])` can be garbage-collected and never fire
 * (nodejs/node#57736).
 */
export function combineSignals(timeoutMs?: number, ...signals: (AbortSignal | undefined)[]): { signal: AbortSignal } & Disposable {
  const ac = new AbortController();
  const list = signals.filter((s): s is AbortSignal => !!s);
  let timer: NodeJS.Timeout | undefined;
  const cleanup = () => {
    clearTimeout(timer);
    for (const s of list) s.removeEventListener('abort', onAbort);
  };
  const onAbort = (e: Event) => {
    cleanup();
    ac.abort((e.target as AbortSignal).reason);
  };
  const already = list.find((s) => s.aborted);
  if (already) ac.abort(already.reason);
  else {
    for (const s of list) s.addEventListener('abort', onAbort, { once: true });
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => {
        cleanup();
        ac.abort(new TimeoutError(`timed out after ${timeoutMs} ms`));
      }, timeoutMs);
    }
  }
  return { signal: ac.signal, [Symbol.dispose]: cleanup };
}

export class TimeoutError extends FalconError {
  override name = 'TimeoutError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('TIMEOUT', message, options);
  }
}
