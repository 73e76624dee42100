/**
 * Which way a command reaches a node: its exec channel (falcon-agent), or a login on its serial
 * console for images without the agent. Connections to agents are shared and kept open briefly.
 */
import { SharedExecConnections } from '../guest/exec-client.js';
import { ExecError, type ExecOptions, type ExecResult } from '../guest/exec-types.js';
import { execOverSerial } from '../guest/serial-exec.js';
import { FalconError } from '../util/errors.js';
import type { RunContext } from './context.js';
import type { NodeState } from './state.js';

/** Where an `execDump` writes the guest's output as it arrives. */
export interface DumpTarget {
  stdout(chunk: Buffer): void;
  stderr(chunk: Buffer): void;
}

export class ExecRouter {
  private readonly conns = new SharedExecConnections();

  /** Close every agent connection: a reset, stop or destroy ends them anyway. */
  closeAll(): void {
    this.conns.closeAll();
  }

  /** Run `command` on `node`; `serialCommand` is what a serial login runs instead (it cannot pass an environment). */
  async run(c: RunContext, node: string, ns: NodeState, command: string, o: ExecOptions, serialCommand = command): Promise<ExecResult<Buffer>> {
    const socks = c.paths.sockets(node);
    if (ns.exec === 'agent') return this.conns.exec(socks.exec, command, { ...o, node });
    if (o.input !== undefined)
      throw new FalconError(
        'EXEC_STDIN_UNSUPPORTED',
        `node "${node}" runs commands over its serial console (its image has no falcon-agent), which cannot pass input; use an image with the agent, or put the data in the command`,
      );
    const started = Date.now();
    const r = await execOverSerial(socks.console, serialCommand, { user: ns.login?.user, password: ns.login?.password, timeoutMs: o.timeoutMs, signal: o.signal, log: c.log });
    const stdout = Buffer.from(r.stdout);
    // A serial login gives the output at the end only: it is shown then.
    o.onStdout?.(stdout);
    return { exitCode: r.exitCode, signal: null, stdout, stderr: Buffer.alloc(0), durationMs: Date.now() - started };
  }
}

/** `succeed`'s rule: the result when the command exited 0, else an ExecError. */
export function requireSuccess<T extends ExecResult<string> | ExecResult<Buffer>>(node: string, command: string, r: T): T {
  if (r.exitCode !== 0) throw new ExecError<string | Buffer>(node, command, r);
  return r;
}

/** Options of an exec whose output is also written to `to` (default: this process's stdout and stderr) as it arrives. */
export function dumpOptions(o: ExecOptions, to: DumpTarget): ExecOptions {
  return {
    ...o,
    onStdout: (b) => {
      to.stdout(b);
      o.onStdout?.(b);
    },
    onStderr: (b) => {
      to.stderr(b);
      o.onStderr?.(b);
    },
  };
}
