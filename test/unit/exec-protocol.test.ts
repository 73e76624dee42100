import { describe, expect, it } from 'vitest';
import {
  FrameDecoder,
  FrameType,
  HEADER_SIZE,
  MAGIC,
  MAX_PAYLOAD,
  PROTOCOL_VERSION,
  ProtocolError,
  STDIN_CHUNK,
  decodeExec,
  decodeExit,
  decodeHelloAck,
  decodeStarted,
  encodeExec,
  encodeExit,
  encodeFrame,
  encodeHello,
  encodeKill,
  encodeStdin,
  findHelloReply,
  frameTypeName,
  type Frame,
} from '../../src/guest/exec-protocol.js';

const ID = 0x0123456789abcdefn;

/** Comparable form: deep-equality on big Buffers is slow. */
function summary(frames: Frame[]): [number, bigint, string][] {
  return frames.map((f) => [f.type, f.id, f.payload.toString('base64')]);
}

function decodeAll(...chunks: Buffer[]): Frame[] {
  const d = new FrameDecoder();
  return chunks.flatMap((c) => d.push(c));
}

describe('frame encoding', () => {
  it('lays out the header as documented (big-endian, 20 bytes)', () => {
    const f = encodeFrame(FrameType.Stdout, ID, Buffer.from('hi'));
    expect(f.toString('hex')).toBe(
      '46414c43' + // magic "FALC"
        '83' + // type STDOUT
        '00' + // flags
        '0000' + // reserved
        '0123456789abcdef' + // id
        '00000002' + // length
        '6869', // payload
    );
    expect(HEADER_SIZE).toBe(20);
    expect(MAGIC).toBe(Buffer.from('FALC').readUInt32BE(0));
  });

  it('round-trips a frame with the full 64-bit id range', () => {
    for (const id of [0n, 1n, (1n << 64n) - 1n, ID]) {
      const [f] = decodeAll(encodeFrame(FrameType.Ping, id, Buffer.from([1, 2, 3])));
      expect(f).toEqual({ type: FrameType.Ping, id, payload: Buffer.from([1, 2, 3]) });
    }
  });

  it('refuses ids beyond 64 bits and payloads above the limit', () => {
    expect(() => encodeFrame(FrameType.Ping, 1n << 64n)).toThrow(ProtocolError);
    expect(() => encodeFrame(FrameType.Ping, -1n)).toThrow(ProtocolError);
    expect(() => encodeFrame(FrameType.Stdin, ID, Buffer.alloc(MAX_PAYLOAD + 1))).toThrow(/limit; split it/);
    expect(encodeFrame(FrameType.Stdin, ID, Buffer.alloc(MAX_PAYLOAD)).length).toBe(HEADER_SIZE + MAX_PAYLOAD);
  });

  it('names frame types', () => {
    expect(frameTypeName(FrameType.HelloAck)).toBe('HelloAck');
    expect(frameTypeName(0x42)).toBe('0x42');
  });
});

describe('FrameDecoder', () => {
  const frames = [
    encodeFrame(FrameType.Stdout, 1n, Buffer.from('first')),
    encodeFrame(FrameType.Stderr, 2n, Buffer.alloc(0)),
    encodeFrame(FrameType.Stdout, 3n, Buffer.alloc(70_000, 7)),
    encodeFrame(FrameType.Exit, 1n, Buffer.alloc(8)),
  ];
  const stream = Buffer.concat(frames);

  it('decodes many frames from one chunk', () => {
    const out = decodeAll(stream);
    expect(out.map((f) => [f.type, f.id, f.payload.length])).toEqual([
      [FrameType.Stdout, 1n, 5],
      [FrameType.Stderr, 2n, 0],
      [FrameType.Stdout, 3n, 70_000],
      [FrameType.Exit, 1n, 8],
    ]);
  });

  it('decodes a stream fed one byte at a time', () => {
    const d = new FrameDecoder();
    const out: Frame[] = [];
    for (let i = 0; i < stream.length; i++) out.push(...d.push(stream.subarray(i, i + 1)));
    expect(summary(out)).toEqual(summary(decodeAll(stream)));
    expect(d.pending).toBe(0);
  });

  it('decodes a stream split at every possible point into two chunks (header and payload boundaries)', () => {
    const small = Buffer.concat([frames[0]!, frames[1]!, frames[3]!]);
    const want = decodeAll(small);
    for (let cut = 0; cut <= small.length; cut++) {
      expect(decodeAll(small.subarray(0, cut), small.subarray(cut))).toEqual(want);
    }
  });

  it('decodes random chunkings', () => {
    const want = summary(decodeAll(stream));
    let seed = 42;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let round = 0; round < 20; round++) {
      const d = new FrameDecoder();
      const out: Frame[] = [];
      for (let off = 0; off < stream.length; ) {
        const n = 1 + Math.floor(rnd() * 9000);
        out.push(...d.push(stream.subarray(off, off + n)));
        off += n;
      }
      expect(summary(out)).toEqual(want);
    }
  });

  it('keeps payloads intact when the input buffer is reused by the caller', () => {
    const d = new FrameDecoder();
    const chunk = Buffer.from(encodeFrame(FrameType.Stdout, 1n, Buffer.from('abc')));
    const [f] = d.push(chunk);
    chunk.fill(0);
    expect(f!.payload.toString()).toBe('abc');
  });

  it('holds back a partial frame', () => {
    const d = new FrameDecoder();
    expect(d.push(frames[0]!.subarray(0, 10))).toEqual([]);
    expect(d.pending).toBe(10);
    expect(d.push(frames[0]!.subarray(10))).toHaveLength(1);
    expect(d.pending).toBe(0);
  });

  it('fails clearly on a bad magic, and stays failed', () => {
    const d = new FrameDecoder();
    const bad = Buffer.from(frames[0]!);
    bad.write('HTTP', 0);
    expect(() => d.push(bad)).toThrow(ProtocolError);
    expect(() => d.push(frames[0]!)).toThrow(/bad frame magic 0x48545450 \(expected 0x46414c43\)/);
  });

  it('reports a bad magic after good frames in the same chunk', () => {
    const d = new FrameDecoder();
    expect(() => d.push(Buffer.concat([frames[0]!, Buffer.alloc(HEADER_SIZE, 0xff)]))).toThrow(/bad frame magic 0xffffffff/);
  });

  it('fails clearly on an oversize length, before the payload arrives', () => {
    const hdr = encodeFrame(FrameType.Stdout, 1n).subarray(0, HEADER_SIZE);
    hdr.writeUInt32BE(MAX_PAYLOAD + 1, 16);
    expect(() => new FrameDecoder().push(hdr)).toThrow(/frame Stdout announces a 1048577-byte payload, more than the 1048576-byte limit/);
    expect(() => new FrameDecoder(16).push(encodeFrame(FrameType.Stdout, 1n, Buffer.alloc(17)))).toThrow(ProtocolError);
  });
});

describe('payloads', () => {
  it('hello carries the protocol version in a frame whose id is the session nonce', () => {
    const [f] = decodeAll(encodeHello(ID));
    expect(f!.type).toBe(FrameType.Hello);
    expect(f!.id).toBe(ID);
    expect(f!.payload.readUInt32BE(0)).toBe(PROTOCOL_VERSION);
  });

  it('decodes HELLO_ACK', () => {
    const p = Buffer.concat([Buffer.from([0, 0, 0, 1]), Buffer.from('falcon-agent 1.0 pid 7')]);
    expect(decodeHelloAck(p)).toEqual({ version: 1, agent: 'falcon-agent 1.0 pid 7' });
    expect(() => decodeHelloAck(Buffer.alloc(2))).toThrow(ProtocolError);
  });

  it('round-trips EXEC with quotes, newlines, unicode and env', () => {
    const command = `printf '%s\\n' "a \\"quoted\\" word" 'single'\necho ünïcødé $HOME; ${'x'.repeat(400)}`;
    const [f] = decodeAll(encodeExec(ID, { command, env: { FOO: 'bar=baz', EMPTY: '' }, stdin: true }));
    expect(f!.type).toBe(FrameType.Exec);
    expect(decodeExec(f!.payload)).toEqual({ command, env: { FOO: 'bar=baz', EMPTY: '' }, stdin: true });
    const [g] = decodeAll(encodeExec(ID, { command: 'true' }));
    expect(decodeExec(g!.payload)).toEqual({ command: 'true', env: {}, stdin: false });
  });

  it('lays out EXEC as documented', () => {
    const [f] = decodeAll(encodeExec(ID, { command: 'ls', env: { A: 'b' }, stdin: true }));
    expect(f!.payload.toString('hex')).toBe('00000001' + '00000002' + '6c73' + '00000001' + '00000003' + '413d62');
  });

  it('rejects what the agent cannot run', () => {
    expect(() => encodeExec(ID, { command: 'a\0b' })).toThrow(/NUL byte/);
    expect(() => encodeExec(ID, { command: 'x', env: { 'A=B': 'c' } })).toThrow(/bad environment variable/);
    expect(() => encodeExec(ID, { command: 'x', env: { '': 'c' } })).toThrow(/bad environment variable/);
    expect(() => encodeExec(ID, { command: 'x'.repeat(MAX_PAYLOAD) })).toThrow(/pass large data as input/);
    expect(() => decodeExec(Buffer.alloc(5))).toThrow(/malformed EXEC/);
    const p = Buffer.alloc(12);
    p.writeUInt32BE(100, 4);
    expect(() => decodeExec(p)).toThrow(/malformed EXEC/);
  });

  it('splits stdin into chunks and ends with an empty EOF frame', () => {
    const data = Buffer.alloc(STDIN_CHUNK * 2 + 5, 1);
    const out = decodeAll(...encodeStdin(ID, data));
    expect(out.map((f) => f.payload.length)).toEqual([STDIN_CHUNK, STDIN_CHUNK, 5, 0]);
    expect(out.every((f) => f.type === FrameType.Stdin && f.id === ID)).toBe(true);
    expect(decodeAll(...encodeStdin(ID, Buffer.alloc(0))).map((f) => f.payload.length)).toEqual([0]);
    expect(encodeStdin(ID, Buffer.alloc(3), false)).toHaveLength(1);
  });

  it('encodes KILL with a clamped grace period', () => {
    const [f] = decodeAll(encodeKill(ID, 1500));
    expect(f!.payload.readUInt32BE(0)).toBe(1500);
    expect(decodeAll(encodeKill(ID, -5))[0]!.payload.readUInt32BE(0)).toBe(0);
  });

  it('round-trips EXIT for exits and signals', () => {
    for (const s of [{ exited: true, code: 0 }, { exited: true, code: 255 }, { exited: false, signal: 9 }] as const) {
      expect(decodeExit(decodeAll(encodeExit(ID, s))[0]!.payload)).toEqual(s);
    }
    expect(() => decodeExit(Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]))).toThrow(/unknown kind 2/);
    expect(() => decodeExit(Buffer.alloc(4))).toThrow(ProtocolError);
  });

  it('decodes STARTED', () => {
    expect(decodeStarted(Buffer.from([0, 0, 1, 0]))).toEqual({ pid: 256 });
    expect(() => decodeStarted(Buffer.alloc(1))).toThrow(ProtocolError);
  });
});

describe('findHelloReply (resync after a dead client)', () => {
  const nonce = 0xfeedfacecafebeefn;
  const ack = encodeFrame(FrameType.HelloAck, nonce, Buffer.from([0, 0, 0, 1]));

  it('finds the reply behind stale frames and a torn frame', () => {
    const stale = Buffer.concat([
      encodeFrame(FrameType.Stdout, 5n, Buffer.alloc(1000, 0x41)).subarray(300), // torn
      encodeFrame(FrameType.HelloAck, 1234n, Buffer.from([0, 0, 0, 1])), // another client's
      encodeFrame(FrameType.Exit, 5n, Buffer.alloc(8)),
    ]);
    expect(findHelloReply(Buffer.concat([stale, ack]), nonce)).toEqual({ offset: stale.length });
  });

  it('finds an ERROR reply too (version mismatch)', () => {
    const err = encodeFrame(FrameType.Error, nonce, Buffer.from('protocol version 9 is not supported'));
    expect(findHelloReply(Buffer.concat([Buffer.from('junk'), err, ack]), nonce)).toEqual({ offset: 4 });
  });

  it('says how much can be dropped while the reply has not arrived, keeping a possible prefix', () => {
    const junk = Buffer.alloc(100, 0x55);
    expect(findHelloReply(junk, nonce)).toEqual({ discard: 85 });
    expect(findHelloReply(Buffer.alloc(3), nonce)).toEqual({ discard: 0 });
    // A reply split right after its first byte is found once the rest arrives.
    const got = Buffer.concat([junk, ack.subarray(0, 1)]);
    const r = findHelloReply(got, nonce);
    expect('discard' in r && r.discard).toBe(86);
    const kept = Buffer.concat([got.subarray(86), ack.subarray(1)]);
    expect(findHelloReply(kept, nonce)).toEqual({ offset: 14 });
  });

  it('ignores frames for other nonces', () => {
    expect('discard' in findHelloReply(encodeFrame(FrameType.HelloAck, nonce + 1n), nonce)).toBe(true);
  });
});
