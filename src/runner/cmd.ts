/** Upstream's `cmd!` macro as a function: a named exec, logged at its start and end. */
import type { NodeRef } from '../model/topology.js';
import { FalconError, isFalconError } from '../util/errors.js';
import type { Runner } from './runner.js';

/**
 * Run `command` on `node` as the step `message`: logs "MESSAGE start" and "MESSAGE finish",
 * resolves with the command's stdout, and rejects with an error whose message starts with
 * `message` (its `cause` is the original error). Unlike upstream's `cmd!`, which cannot see the
 * exit status, a non-zero exit rejects too (an `ExecError` as `cause`).
 *
 * ```ts
 * const [a, b] = await Promise.all([cmd(d, violin, 'uname -a', 'violin uname'), cmd(d, piano, 'uname -a', 'piano uname')]);
 * ```
 */
export async function cmd(d: Runner, node: NodeRef, command: string, message: string): Promise<string> {
  d.log.log({ kind: 'step', msg: `${message} start` });
  try {
    const r = await d.succeed(node, command);
    return r.stdout;
  } catch (e) {
    throw new FalconError(isFalconError(e) ? e.code : 'EXEC_FAILED', `${message} ${(e as Error)?.message ?? String(e)}`, { cause: e });
  } finally {
    d.log.log({ kind: 'step', msg: `${message} finish` });
  }
}
