/**
 * How `falcon-node exec` in a pod hands a guest command's outcome back over `pods/exec`. The
 * API's stdout channel is one byte stream and its exit status only a number, so the pod-side
 * program frames what it sends: the guest's stdout and stderr apart, then one result frame
 * with the exit code or signal (or the error that stopped the exec), which a bare exit status
 * cannot tell apart from a code of 128 + n. Pure.
 *
 * A frame is a type byte, a 4-byte big-endian length, and that many bytes.
 *
 * Input goes the other way as `--stdin-bytes N` and exactly N bytes on stdin: Kubernetes before
 * 1.29 (v4.channel.k8s.io) cannot close an exec's stdin, so EOF never arrives.
 */
import { FalconError } from '../util/errors.js';

export const FRAME_STDOUT = 1;
export const FRAME_STDERR = 2;
export const FRAME_RESULT = 3;

/** The last frame: how the guest command ended, or why the exec failed. */
export type ExecFrameResult =
  | { exitCode: number | null; signal: string | null; durationMs: number }
  | { error: { name: string; code?: string; message: string } };

/**
 * One frame.
 *
 * ```ts
 * encodeFrame(FRAME_STDOUT, Buffer.from('hi')); // <01 00 00 00 02 68 69>
 * ```
 */
export function encodeFrame(type: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = type;
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

/** The result frame. */
export function encodeResultFrame(r: ExecFrameResult): Buffer {
  return encodeFrame(FRAME_RESULT, Buffer.from(JSON.stringify(r)));
}

/**
 * Splits a byte stream back into frames, however it was chunked.
 *
 * ```ts
 * const d = new FrameDecoder({ stdout: (b) => out.push(b), stderr: (b) => err.push(b), result: (r) => (done = r) });
 * d.push(chunk);
 * ```
 */
export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0);
  /** Set once the result frame arrived. */
  result: ExecFrameResult | undefined;

  constructor(private readonly on: { stdout(b: Buffer): void; stderr(b: Buffer): void }) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (this.buf.length >= 5) {
      const len = this.buf.readUInt32BE(1);
      if (this.buf.length < 5 + len) return;
      const type = this.buf[0];
      const payload = this.buf.subarray(5, 5 + len);
      this.buf = this.buf.subarray(5 + len);
      if (type === FRAME_STDOUT) this.on.stdout(Buffer.from(payload));
      else if (type === FRAME_STDERR) this.on.stderr(Buffer.from(payload));
      else if (type === FRAME_RESULT) this.result = JSON.parse(payload.toString('utf8')) as ExecFrameResult;
      else throw new FalconError('K8S_POD', `falcon-node exec sent a frame of unknown type ${type}: the falcon-node image and this Falcon differ in version`);
    }
  }

  /** Bytes of an unfinished frame: a stream that ends with some was cut. */
  get pending(): number {
    return this.buf.length;
  }
}
