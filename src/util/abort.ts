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

/** A signal that aborts when any input aborts or after `timeoutMs`. */
export function combineSignals(timeoutMs?: number, ...signals: (AbortSignal | undefined)[]): AbortSignal {
  const list = signals.filter((s): s is AbortSignal => !!s);
  if (timeoutMs !== undefined) list.push(AbortSignal.timeout(timeoutMs));
  return list.length === 0 ? new AbortController().signal : AbortSignal.any(list);
}

export class TimeoutError extends Error {
  override name = 'TimeoutError';
}
