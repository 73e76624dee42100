/**
 * The exec channel's wire format (see docs/exec-channel.md). Pure: encoding, decoding and
 * incremental parsing of frames, no I/O.
 *
 * Frame = 20-byte header + payload, big-endian:
 *   magic u32 'FALC' | type u8 | flags u8 (0) | reserved u16 (0) | id u64 | length u32
 */

import { FalconError } from '../util/errors.js';

export const PROTOCOL_VERSION = 1;
export const MAGIC = 0x46414c43; // "FALC"
export const HEADER_SIZE = 20;
/** Largest payload either side accepts; the agent refuses bigger frames too. */
export const MAX_PAYLOAD = 1 << 20;
/** Stdin is sent in chunks of this size. */
export const STDIN_CHUNK = 64 * 1024;

export const FrameType = {
  // host -> agent
  Hello: 0x01,
  Exec: 0x02,
  Stdin: 0x03,
  Kill: 0x04,
  Ping: 0x05,
  // agent -> host
  HelloAck: 0x81,
  Started: 0x82,
  Stdout: 0x83,
  Stderr: 0x84,
  Exit: 0x85,
  Error: 0x86,
  Pong: 0x87,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

const TYPE_NAMES = new Map<number, string>(Object.entries(FrameType).map(([k, v]) => [v, k]));

/** Name of a frame type, for messages ("Exec", "0x42"). */
export function frameTypeName(type: number): string {
  return TYPE_NAMES.get(type) ?? `0x${type.toString(16).padStart(2, '0')}`;
}

export interface Frame {
  type: number;
  /** Request id (EXEC and its replies) or session nonce (HELLO / HELLO_ACK). */
  id: bigint;
  payload: Buffer;
}

/** Flag bit in EXEC: stdin frames follow (otherwise stdin is at EOF from the start). */
export const EXEC_FLAG_STDIN = 1;

/** A malformed byte stream: the connection cannot continue. */
export class ProtocolError extends FalconError {
  override name = 'ProtocolError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('EXEC_PROTOCOL', message, options);
  }
}

const U64_MAX = (1n << 64n) - 1n;

export function encodeFrame(type: number, id: bigint, payload: Buffer = Buffer.alloc(0)): Buffer {
  if (payload.length > MAX_PAYLOAD) {
    throw new ProtocolError(
      `exec-channel frame ${frameTypeName(type)} has a ${payload.length}-byte payload, more than the ${MAX_PAYLOAD}-byte limit; split it`,
    );
  }
  if (id < 0n || id > U64_MAX) throw new ProtocolError(`frame id ${id} does not fit in 64 bits`);
  const b = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
  writeHeader(b, type, id, payload.length);
  payload.copy(b, HEADER_SIZE);
  return b;
}

function writeHeader(b: Buffer, type: number, id: bigint, length: number): void {
  b.writeUInt32BE(MAGIC, 0);
  b.writeUInt8(type, 4);
  b.writeUInt8(0, 5);
  b.writeUInt16BE(0, 6);
  b.writeBigUInt64BE(id, 8);
  b.writeUInt32BE(length, 16);
}

/**
 * Incremental decoder: feed it chunks as they arrive, get whole frames back. Throws
 * ProtocolError on a bad magic or an oversize length; after that the stream is unusable.
 */
export class FrameDecoder {
  // Chunks are only joined once a whole frame is there, so tiny chunks cost O(n), not O(n^2).
  private chunks: Buffer[] = [];
  private total = 0;
  /** Size of the frame at the head of the queue, once its header has been read. */
  private need = 0;
  private failed: ProtocolError | undefined;

  constructor(private readonly maxPayload = MAX_PAYLOAD) {}

  /** Bytes held back waiting for the rest of a frame. */
  get pending(): number {
    return this.total;
  }

  push(chunk: Buffer): Frame[] {
    if (this.failed) throw this.failed;
    if (chunk.length === 0) return [];
    this.chunks.push(chunk);
    this.total += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.need === 0) {
        if (this.total < HEADER_SIZE) break;
        this.need = HEADER_SIZE + this.readHeader(this.head(HEADER_SIZE));
      }
      if (this.total < this.need) break;
      const buf = this.head(this.need);
      frames.push({
        type: buf.readUInt8(4),
        id: buf.readBigUInt64BE(8),
        // A copy, so the caller may keep it while the input buffer is reused.
        payload: Buffer.from(buf.subarray(HEADER_SIZE, this.need)),
      });
      this.consume(this.need);
      this.need = 0;
    }
    return frames;
  }

  /** The first `n` bytes as one buffer (joining chunks if needed); n <= total. */
  private head(n: number): Buffer {
    if (this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks, this.total)];
    return this.chunks[0]!;
  }

  private consume(n: number): void {
    this.total -= n;
    const first = this.chunks[0]!;
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
  }

  /** Validates a header and returns its payload length. */
  private readHeader(h: Buffer): number {
    const magic = h.readUInt32BE(0);
    if (magic !== MAGIC) {
      this.failed = new ProtocolError(
        `exec channel: bad frame magic 0x${magic.toString(16).padStart(8, '0')} (expected 0x${MAGIC.toString(16)}); ` +
          'the peer is not a falcon-agent speaking this protocol, or the stream lost sync',
      );
      throw this.failed;
    }
    const length = h.readUInt32BE(16);
    if (length > this.maxPayload) {
      this.failed = new ProtocolError(
        `exec channel: frame ${frameTypeName(h.readUInt8(4))} announces a ${length}-byte payload, ` +
          `more than the ${this.maxPayload}-byte limit; the stream is corrupt`,
      );
      throw this.failed;
    }
    return length;
  }
}

/**
 * Finds the agent's answer to our HELLO — a HELLO_ACK or an ERROR carrying our `nonce` — in
 * bytes that may start with stale output meant for an earlier client (a CLI killed mid-exec).
 * Returns the offset of that frame's header, or `{ discard }`: how many leading bytes cannot
 * be the start of it and may be dropped.
 */
export function findHelloReply(buf: Buffer, nonce: bigint): { offset: number } | { discard: number } {
  let best = -1;
  for (const type of [FrameType.HelloAck, FrameType.Error]) {
    const pattern = Buffer.alloc(16);
    pattern.writeUInt32BE(MAGIC, 0);
    pattern.writeUInt8(type, 4);
    pattern.writeBigUInt64BE(nonce, 8);
    const at = buf.indexOf(pattern);
    if (at >= 0 && (best < 0 || at < best)) best = at;
  }
  if (best >= 0) return { offset: best };
  return { discard: Math.max(0, buf.length - 15) };
}

// ---- payloads ----

export function encodeHello(nonce: bigint, version = PROTOCOL_VERSION): Buffer {
  const p = Buffer.alloc(8);
  p.writeUInt32BE(version, 0);
  p.writeUInt32BE(0, 4); // flags
  return encodeFrame(FrameType.Hello, nonce, p);
}

export interface HelloAck {
  version: number;
  /** The agent's self-description, e.g. "falcon-agent 1.0 pid 93". */
  agent: string;
}

export function decodeHelloAck(payload: Buffer): HelloAck {
  if (payload.length < 4) throw new ProtocolError(`exec channel: HELLO_ACK payload is ${payload.length} bytes, expected at least 4`);
  return { version: payload.readUInt32BE(0), agent: payload.subarray(4).toString('utf8') };
}

export interface ExecRequest {
  command: string;
  /** Extra environment, NAME -> value; overrides the agent's defaults. */
  env?: Record<string, string>;
  /** Whether STDIN frames follow. */
  stdin?: boolean;
}

export function encodeExec(id: bigint, req: ExecRequest): Buffer {
  const cmd = Buffer.from(req.command, 'utf8');
  if (cmd.includes(0)) throw new ProtocolError('exec: the command contains a NUL byte, which a shell command cannot hold');
  const env = Object.entries(req.env ?? {}).map(([k, v]) => {
    if (!/^[^=\0]+$/.test(k) || v.includes('\0')) {
      throw new ProtocolError(`exec: bad environment variable name or value for ${JSON.stringify(k)} (no '=' in names, no NUL bytes)`);
    }
    return Buffer.from(`${k}=${v}`, 'utf8');
  });
  const parts: Buffer[] = [];
  const head = Buffer.alloc(8);
  head.writeUInt32BE(req.stdin ? EXEC_FLAG_STDIN : 0, 0);
  head.writeUInt32BE(cmd.length, 4);
  parts.push(head, cmd);
  const n = Buffer.alloc(4);
  n.writeUInt32BE(env.length, 0);
  parts.push(n);
  for (const e of env) {
    const l = Buffer.alloc(4);
    l.writeUInt32BE(e.length, 0);
    parts.push(l, e);
  }
  const payload = Buffer.concat(parts);
  if (payload.length > MAX_PAYLOAD) {
    throw new ProtocolError(
      `exec: command plus environment is ${payload.length} bytes, more than the ${MAX_PAYLOAD}-byte limit; pass large data as input instead`,
    );
  }
  return encodeFrame(FrameType.Exec, id, payload);
}

/** Inverse of encodeExec's payload (used by tests and fake agents). */
export function decodeExec(payload: Buffer): Required<ExecRequest> {
  const fail = () => new ProtocolError(`exec channel: malformed EXEC payload (${payload.length} bytes)`);
  if (payload.length < 12) throw fail();
  const flags = payload.readUInt32BE(0);
  const cmdLen = payload.readUInt32BE(4);
  if (cmdLen > payload.length - 12) throw fail();
  const command = payload.subarray(8, 8 + cmdLen).toString('utf8');
  let pos = 8 + cmdLen;
  const n = payload.readUInt32BE(pos);
  pos += 4;
  const env: Record<string, string> = {};
  for (let i = 0; i < n; i++) {
    if (pos + 4 > payload.length) throw fail();
    const l = payload.readUInt32BE(pos);
    pos += 4;
    if (l > payload.length - pos) throw fail();
    const kv = payload.subarray(pos, pos + l).toString('utf8');
    pos += l;
    const eq = kv.indexOf('=');
    if (eq <= 0) throw fail();
    env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return { command, env, stdin: (flags & EXEC_FLAG_STDIN) !== 0 };
}

/** Stdin data split into frames; an empty frame (EOF) ends it. */
export function encodeStdin(id: bigint, data: Buffer, eof = true): Buffer[] {
  const frames: Buffer[] = [];
  for (let off = 0; off < data.length; off += STDIN_CHUNK) {
    frames.push(encodeFrame(FrameType.Stdin, id, data.subarray(off, off + STDIN_CHUNK)));
  }
  if (eof) frames.push(encodeFrame(FrameType.Stdin, id));
  return frames;
}

/** Ask the agent to SIGTERM the command's process group, then SIGKILL it after graceMs. */
export function encodeKill(id: bigint, graceMs: number): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(Math.max(0, Math.min(0xffffffff, Math.round(graceMs))), 0);
  return encodeFrame(FrameType.Kill, id, p);
}

export type ExitStatus = { exited: true; code: number } | { exited: false; signal: number };

export function encodeExit(id: bigint, status: ExitStatus): Buffer {
  const p = Buffer.alloc(8);
  p.writeUInt8(status.exited ? 0 : 1, 0);
  p.writeUInt32BE(status.exited ? status.code : status.signal, 4);
  return encodeFrame(FrameType.Exit, id, p);
}

export function decodeExit(payload: Buffer): ExitStatus {
  if (payload.length < 8) throw new ProtocolError(`exec channel: EXIT payload is ${payload.length} bytes, expected 8`);
  const how = payload.readUInt8(0);
  const value = payload.readUInt32BE(4);
  if (how === 0) return { exited: true, code: value };
  if (how === 1) return { exited: false, signal: value };
  throw new ProtocolError(`exec channel: EXIT has unknown kind ${how}`);
}

export function decodeStarted(payload: Buffer): { pid: number } {
  if (payload.length < 4) throw new ProtocolError(`exec channel: STARTED payload is ${payload.length} bytes, expected 4`);
  return { pid: payload.readUInt32BE(0) };
}
