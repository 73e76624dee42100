/**
 * QEMU `-netdev stream` framing: each frame is a 4-byte big-endian length, then the frame,
 * both ways. {@link FrameReader} splits a byte stream into frames, in place where it can
 * (frames are subarrays of the chunk; only a frame cut across chunks is copied);
 * {@link FrameBatch} collects frames for one socket and writes them with one write.
 */

/** The largest frame the switch passes: a 9216-byte jumbo payload plus headers. */
export const MAX_FRAME = 9216 + 42;

/** Splits a stream into frames. Oversized frames are skipped (counted) and the stream stays in step. */
export class FrameReader {
  /** Frames dropped because their length was over {@link MAX_FRAME}. */
  oversized = 0;
  private pending: Buffer | undefined;
  private skip = 0;

  constructor(private readonly onFrame: (frame: Buffer) => void, private readonly maxFrame = MAX_FRAME) {}

  /** Feeds a chunk; calls onFrame for each complete frame, in order. */
  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.skip > 0) {
      const n = Math.min(this.skip, buf.length);
      this.skip -= n;
      buf = buf.subarray(n);
      if (buf.length === 0) return;
    }
    if (this.pending) {
      buf = Buffer.concat([this.pending, buf]);
      this.pending = undefined;
    }
    let off = 0;
    const end = buf.length;
    while (end - off >= 4) {
      const len = buf.readUInt32BE(off);
      if (len > this.maxFrame) {
        this.oversized++;
        const avail = end - off - 4;
        if (avail >= len) {
          off += 4 + len;
          continue;
        }
        this.skip = len - avail;
        return;
      }
      if (end - off - 4 < len) break;
      this.onFrame(buf.subarray(off + 4, off + 4 + len));
      off += 4 + len;
    }
    if (off < end) this.pending = Buffer.from(buf.subarray(off));
  }

  /** Forgets a partial frame (after a reconnect, the new stream starts afresh). */
  reset(): void {
    this.pending = undefined;
    this.skip = 0;
  }
}

/** Frames queued for one socket until {@link take}, which returns them framed in one buffer. */
export class FrameBatch {
  private readonly frames: Buffer[] = [];
  private bytes = 0;

  add(frame: Buffer): void {
    this.frames.push(frame);
    this.bytes += 4 + frame.length;
  }

  get count(): number {
    return this.frames.length;
  }

  /** The queued frames, each with its length prefix, in one new buffer; empties the batch. */
  take(): Buffer {
    const out = Buffer.allocUnsafe(this.bytes);
    let off = 0;
    for (const f of this.frames) {
      out.writeUInt32BE(f.length, off);
      f.copy(out, off + 4);
      off += 4 + f.length;
    }
    this.frames.length = 0;
    this.bytes = 0;
    return out;
  }
}

/** One frame with its length prefix. */
export function frameOne(frame: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + frame.length);
  out.writeUInt32BE(frame.length, 0);
  out.set(frame, 4);
  return out;
}
