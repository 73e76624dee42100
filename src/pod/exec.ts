/**
 * `falcon-node exec`: one guest command over the node's exec channel, from inside its pod, with
 * the outcome framed on stdout for the runner (src/k8s/exec-frames.ts).
 */
import { encodeFrame, encodeResultFrame, FRAME_STDERR, FRAME_STDOUT } from '../k8s/index.js';
import type { RunContext } from '../runner/context.js';
import { ExecRouter } from '../runner/exec-routing.js';
import { readState } from '../runner/state.js';
import { FalconError } from '../util/errors.js';

export interface PodExecOptions {
  node: string;
  command: string;
  timeoutMs?: number;
  /** Read exactly this many bytes of stdin as the command's input. */
  stdinBytes?: number;
  env?: Record<string, string>;
}

/** Exactly `n` bytes of stdin (its EOF never comes over pods/exec before Kubernetes 1.29). */
export function readStdinBytes(n: number, stdin: NodeJS.ReadableStream = process.stdin): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let got = 0;
    const done = () => {
      stdin.removeListener('data', onData);
      stdin.pause();
      const all = Buffer.concat(parts);
      if (all.length < n) reject(new FalconError('EXEC_FAILED', `stdin ended after ${all.length} of ${n} bytes`));
      else resolve(all.subarray(0, n));
    };
    const onData = (d: Buffer) => {
      parts.push(d);
      got += d.length;
      if (got >= n) done();
    };
    if (n === 0) return resolve(Buffer.alloc(0));
    stdin.on('data', onData);
    stdin.once('end', done);
    stdin.once('error', reject);
  });
}

/** Run the command and write its framed output to `out`; resolves once the result frame is written. */
export async function podExec(c: RunContext, o: PodExecOptions, out: (b: Buffer) => void): Promise<void> {
  const exec = new ExecRouter();
  try {
    const state = await readState(c.paths);
    const ns = state?.nodes[o.node];
    if (!ns?.qemuArgs) throw new FalconError('NODE_NOT_LAUNCHED', `node "${o.node}" has not started in this pod yet (no state in ${c.paths.dir})`);
    const input = o.stdinBytes !== undefined ? await readStdinBytes(o.stdinBytes) : undefined;
    const r = await exec.run(c, o.node, ns, o.command, {
      timeoutMs: o.timeoutMs,
      ...(input !== undefined ? { input } : {}),
      ...(o.env ? { env: o.env } : {}),
      onStdout: (b) => out(encodeFrame(FRAME_STDOUT, b)),
      onStderr: (b) => out(encodeFrame(FRAME_STDERR, b)),
    });
    out(encodeResultFrame({ exitCode: r.exitCode, signal: r.signal, durationMs: r.durationMs }));
  } catch (e) {
    const err = e as Error;
    out(encodeResultFrame({ error: { name: err.name, ...(e instanceof FalconError ? { code: e.code } : {}), message: err.message } }));
  } finally {
    exec.closeAll();
  }
}
