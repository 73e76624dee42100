import { describe, expect, it } from 'vitest';
import { FrameBatch, FrameReader, MAX_FRAME, frameOne } from '../../src/switch/framing.js';
import { MgmtReader, applyMgmtRequest, type MgmtRequest } from '../../src/switch/mgmt.js';
import { createPipeline } from '../../src/switch/programs/sidecar-lite.js';

function reader() {
  const reqs: MgmtRequest[] = [];
  const bad: string[] = [];
  const r = new MgmtReader(
    (q) => reqs.push(q),
    (line, reason) => bad.push(`${line} | ${reason}`),
  );
  return { r, reqs, bad };
}
const E5 = Buffer.from([0xe5]);
const req = (json: string, end = '\n') => Buffer.concat([E5, Buffer.from(json + end)]);

describe('management UART reader', () => {
  it('reads the four requests, dropping \\r and \\0', () => {
    const { r, reqs, bad } = reader();
    r.push(req('"RadixRequest"', '\r\n'));
    r.push(Buffer.concat([Buffer.from([0]), req('"DumpRequest"')]));
    r.push(req('{"TableAdd":{"table":"t","action":"a","keyset_data":[1,0],"parameter_data":[2]}}'));
    r.push(req('{"TableRemove":{"table":"t","keyset_data":[1,0]}}'));
    expect(reqs).toEqual(['RadixRequest', 'DumpRequest', { TableAdd: { table: 't', action: 'a', keyset_data: [1, 0], parameter_data: [2] } }, { TableRemove: { table: 't', keyset_data: [1, 0] } }]);
    expect(bad).toEqual([]);
  });

  it('ignores the guest tty echo and boot noise (lines without the preamble)', () => {
    const { r, reqs, bad } = reader();
    r.push(Buffer.from('2\r\n{"ingress.local.local_v4":[]}\r\nlogin: \n'));
    expect(reqs).toEqual([]);
    expect(bad).toEqual([]);
  });

  it('joins a request split across chunks, byte by byte', () => {
    const { r, reqs } = reader();
    for (const b of req('"RadixRequest"')) r.push(Buffer.from([b]));
    expect(reqs).toEqual(['RadixRequest']);
  });

  it('forgets a partial line on reset (the UART reconnected)', () => {
    const { r, reqs, bad } = reader();
    r.push(Buffer.concat([E5, Buffer.from('{"TableAd')]));
    r.reset();
    r.push(req('"RadixRequest"'));
    expect(reqs).toEqual(['RadixRequest']);
    expect(bad).toEqual([]);
  });

  it('reports malformed requests and keeps going', () => {
    const { r, reqs, bad } = reader();
    r.push(req('{"TableAdd":'));
    r.push(req('"Reboot"'));
    r.push(req('{"TableAdd":{"table":"t","action":"a","keyset_data":[256],"parameter_data":[]}}'));
    r.push(Buffer.concat([Buffer.from('junk'), req('"RadixRequest"')]));
    expect(bad).toHaveLength(3);
    expect(bad[0]).toMatch(/not JSON/);
    expect(reqs).toEqual(['RadixRequest']);
  });

  it('replies as the original: radix as decimal N, dump as a bare JSON map sorted by table, nothing for add/remove', () => {
    const p = createPipeline(3);
    expect(applyMgmtRequest(p, 2, 'RadixRequest')).toEqual({ reply: '2\n', changed: false });
    const add = applyMgmtRequest(p, 2, { TableAdd: { table: 'ingress.local.local_v4', action: 'local', keyset_data: [1, 1, 0, 10], parameter_data: [] } });
    expect(add).toEqual({ changed: true });
    const dump = applyMgmtRequest(p, 2, 'DumpRequest').reply!;
    expect(dump.endsWith('}\n')).toBe(true);
    const map = JSON.parse(dump) as Record<string, unknown[]>;
    expect(Object.keys(map)).toEqual([...Object.keys(map)].sort());
    expect(Object.keys(map)).toHaveLength(14);
    expect(map['ingress.local.local_v4']).toEqual([{ action_id: 'local', keyset_data: [1, 1, 0, 10], parameter_data: [] }]);
    expect(applyMgmtRequest(p, 2, { TableRemove: { table: 'ingress.local.local_v4', keyset_data: [1, 1, 0, 10] } })).toEqual({ changed: true });
    expect(p.tableEntries('ingress.local.local_v4')).toEqual([]);
  });
});

describe('stream framing', () => {
  it('splits frames cut anywhere across chunks, in order', () => {
    const frames = [Buffer.alloc(60, 1), Buffer.alloc(1514, 2), Buffer.alloc(14, 3)];
    const stream = Buffer.concat(frames.map(frameOne));
    for (const cut of [1, 3, 4, 5, 63, 64, 65, 700, stream.length - 1]) {
      const got: string[] = [];
      const r = new FrameReader((f) => got.push(f.toString('hex')));
      r.push(stream.subarray(0, cut));
      r.push(stream.subarray(cut));
      expect(got).toEqual(frames.map((f) => f.toString('hex')));
    }
  });

  it('skips an oversized frame, counts it, and stays in step', () => {
    const got: number[] = [];
    const r = new FrameReader((f) => got.push(f.length));
    const big = frameOne(Buffer.alloc(MAX_FRAME + 1));
    const small = frameOne(Buffer.alloc(100));
    const stream = Buffer.concat([small, big, small]);
    r.push(stream.subarray(0, 2000));
    r.push(stream.subarray(2000));
    expect(got).toEqual([100, 100]);
    expect(r.oversized).toBe(1);
  });

  it('batches frames with their length prefixes into one buffer', () => {
    const b = new FrameBatch();
    b.add(Buffer.from([1, 2]));
    b.add(Buffer.from([3]));
    expect(b.count).toBe(2);
    expect(b.take().toString('hex')).toBe('00000002010200000001' + '03');
    expect(b.count).toBe(0);
  });
});
