/** `cmd`, upstream's `cmd!` macro: a named exec logged at start and finish, its errors prefixed. */
import { describe, expect, it } from 'vitest';
import { ExecError, cmd, memoryLogger, type Runner } from '../../src/index.js';

function fake(exitCode: number) {
  const log = memoryLogger();
  const d = {
    log,
    async succeed(node: string, command: string) {
      const r = { exitCode, signal: null, stdout: `out of ${command}`, stderr: 'boom', durationMs: 1 };
      if (exitCode !== 0) throw new ExecError(node, command, r);
      return r;
    },
  } as unknown as Runner;
  return { d, log };
}

describe('cmd', () => {
  it('resolves with stdout and logs "MESSAGE start" then "MESSAGE finish"', async () => {
    const { d, log } = fake(0);
    expect(await cmd(d, 'violin', 'uname -a', 'violin uname')).toBe('out of uname -a');
    expect(log.events.map((e) => (e as { msg?: string }).msg)).toEqual(['violin uname start', 'violin uname finish']);
  });

  it('rejects with the message first and the ExecError as cause, and still logs finish', async () => {
    const { d, log } = fake(3);
    const e = (await cmd(d, 'violin', 'false', 'violin check').then(
      () => undefined,
      (x: unknown) => x,
    )) as Error & { code: string; cause: unknown };
    expect(e.message).toMatch(/^violin check .*exit status 3/s);
    expect(e.code).toBe('EXEC_FAILED');
    expect(e.cause).toBeInstanceOf(ExecError);
    expect(log.events.at(-1)).toMatchObject({ msg: 'violin check finish' });
  });
});
