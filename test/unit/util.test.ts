import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { combineSignals, TimeoutError } from '../../src/util/abort.js';
import { memoryLogger } from '../../src/util/log.js';
import { retry } from '../../src/util/retry.js';
import { FalconPaths } from '../../src/runner/paths.js';

describe('combineSignals', () => {
  it('aborts with a TimeoutError at the deadline', async () => {
    using c = combineSignals(20);
    await new Promise((r) => setTimeout(r, 60));
    expect(c.signal.aborted).toBe(true);
    expect(c.signal.reason).toBeInstanceOf(TimeoutError);
  });

  it('aborts with the reason of an input that aborts', () => {
    const ac = new AbortController();
    using c = combineSignals(undefined, ac.signal);
    ac.abort(new Error('stop'));
    expect(c.signal.aborted).toBe(true);
    expect((c.signal.reason as Error).message).toBe('stop');
  });

  it('leaves no listener on a long-lived input once disposed', () => {
    const long = new AbortController();
    for (let i = 0; i < 20; i++) {
      using c = combineSignals(1000, long.signal);
      expect(c.signal.aborted).toBe(false);
    }
    expect(getEventListeners(long.signal, 'abort')).toHaveLength(0);
  });
});

describe('retry', () => {
  it('logs each failed attempt and returns the first success', async () => {
    const log = memoryLogger();
    let n = 0;
    const v = await retry({ what: 'flaky thing', attempts: 5, delayMs: 1, log }, async () => {
      if (++n < 3) throw new Error(`fail ${n}`);
      return 'ok';
    });
    expect(v).toBe('ok');
    expect(log.events).toEqual([
      { kind: 'retry', what: 'flaky thing', attempt: 1, attempts: 5, error: 'fail 1', delayMs: 1 },
      { kind: 'retry', what: 'flaky thing', attempt: 2, attempts: 5, error: 'fail 2', delayMs: 1 },
    ]);
  });

  it('rethrows the last error, and at once when retryIf says no', async () => {
    await expect(retry({ what: 'x', attempts: 2, delayMs: 1 }, async (a) => Promise.reject(new Error(`e${a}`)))).rejects.toThrow('e2');
    let calls = 0;
    await expect(
      retry({ what: 'x', attempts: 5, delayMs: 1, retryIf: () => false }, async () => {
        calls++;
        throw new Error('fatal');
      }),
    ).rejects.toThrow('fatal');
    expect(calls).toBe(1);
  });
});

describe('falcon dir paths', () => {
  it('keeps sockets in .falcon/sock while the path fits a Unix socket', () => {
    const p = new FalconPaths('/srv/lab/.falcon');
    expect(p.sockets('violin').console).toBe('/srv/lab/.falcon/sock/violin.console');
  });

  it('moves sockets to a short folder named after the falcon dir when the path is too long', () => {
    const deep = `/srv/${'a-long-folder/'.repeat(8)}.falcon`;
    const p = new FalconPaths(deep);
    const again = new FalconPaths(deep);
    expect(p.socketDir).not.toContain('a-long-folder');
    expect(p.socketDir).toBe(again.socketDir); // every command derives the same place
    expect(Buffer.byteLength(p.sockets('a_node_name_of_thirty_two_chars_').console)).toBeLessThanOrEqual(107);
    expect(new FalconPaths(`${deep}2`).socketDir).not.toBe(p.socketDir);
  });
});
