/**
 * The differential test of sidecar-lite: the P4 program (src/switch/programs/sidecar-lite.p4,
 * compiled) against the TypeScript one (sidecar-lite.ts), over the same table set and tens of
 * thousands of frames (p4-frames.ts), compared byte for byte and port for port.
 *
 * A P4 program that stops compiling fails the test. The generator's own tests (determinism,
 * coverage) and a self-test of the comparison (it finds a planted difference) run too.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { dumpTables, type Pipeline } from '../../src/switch/pipeline.js';
import { loadPipeline } from '../../src/switch/loader.js';
import { createPipeline as sidecarLiteTs } from '../../src/switch/programs/sidecar-lite.js';
import { DIFF_RADIX, FRAME_CLASSES, fillTables, generateFrames, hexDump, sidecarLiteTableSet, type FrameClass, type GenFrame } from './p4-frames.js';

/** One frame's outputs, copied out of the pipeline's buffers at once. */
type Outputs = { hex: string; port: number }[];

function run(p: Pipeline, f: GenFrame): Outputs | { error: string } {
  try {
    return p.processPacket(f.port, Buffer.from(f.frame)).map(([frame, port]) => ({ hex: Buffer.from(frame).toString('hex'), port }));
  } catch (e) {
    return { error: (e as Error).message };
  }
}

interface Difference {
  index: number;
  f: GenFrame;
  expected: Outputs | { error: string };
  actual: Outputs | { error: string };
}

/** Runs every frame through both pipelines; the first `keep` differences, and how many there were. */
function compare(expected: Pipeline, actual: Pipeline, frames: readonly GenFrame[], keep = 8): { count: number; first: Difference[] } {
  const first: Difference[] = [];
  let count = 0;
  frames.forEach((f, index) => {
    const e = run(expected, f);
    const a = run(actual, f);
    if (JSON.stringify(e) === JSON.stringify(a)) return;
    count++;
    if (first.length < keep) first.push({ index, f, expected: e, actual: a });
  });
  return { count, first };
}

function describeOutputs(o: Outputs | { error: string }): string {
  if ('error' in o) return `  threw: ${o.error}`;
  if (o.length === 0) return '  (dropped)';
  return o.map((x) => `  -> port ${x.port}, ${x.hex.length / 2} bytes\n${indent(hexDump(Buffer.from(x.hex, 'hex')))}`).join('\n');
}
const indent = (s: string) => s.replace(/^/gm, '    ');

function report(r: { count: number; first: Difference[] }, total: number): string {
  const parts = [`${r.count} of ${total} frames differ; the first ${r.first.length}:`];
  for (const d of r.first) {
    parts.push(
      `#${d.index} ${d.f.cls}, in on port ${d.f.port}, ${d.f.frame.length} bytes:\n${indent(hexDump(d.f.frame))}\n` +
        ` TypeScript:\n${describeOutputs(d.expected)}\n P4:\n${describeOutputs(d.actual)}`,
    );
  }
  return parts.join('\n\n');
}

function tsPipeline(): Pipeline {
  const p = sidecarLiteTs(DIFF_RADIX);
  fillTables(p);
  return p;
}

const digest = (frames: readonly GenFrame[]) => {
  const h = createHash('sha256');
  for (const f of frames) h.update(`${f.cls}/${f.port}/`).update(f.frame).update('\n');
  return h.digest('hex');
};

describe('p4-frames (the differential test inputs)', () => {
  const frames = generateFrames();

  it('is deterministic: the same seed gives the same frames, another seed others', () => {
    expect(digest(generateFrames())).toBe(digest(frames));
    expect(digest(generateFrames({ seed: 1, count: 2000 }))).toBe(digest(generateFrames({ seed: 1, count: 2000 })));
    expect(digest(generateFrames({ seed: 2, count: 2000 }))).not.toBe(digest(generateFrames({ seed: 1, count: 2000 })));
    expect(sidecarLiteTableSet()).toEqual(sidecarLiteTableSet());
  });

  it('covers every frame class and every ingress port, tens of thousands of frames in all', () => {
    expect(frames.length).toBeGreaterThan(40_000);
    const byClass = new Map<FrameClass, number>();
    for (const f of frames) byClass.set(f.cls, (byClass.get(f.cls) ?? 0) + 1);
    for (const cls of FRAME_CLASSES) expect(byClass.get(cls) ?? 0, cls).toBeGreaterThanOrEqual(300);
    expect(byClass.get('truncated')).toBeGreaterThan(3000);
    for (let port = 0; port < DIFF_RADIX; port++) expect(frames.filter((f) => f.port === port).length, `port ${port}`).toBeGreaterThan(2000);
    expect(frames.every((f) => f.port >= 0 && f.port < DIFF_RADIX)).toBe(true);
    // Truncation at every length: 0..13 (inside Ethernet) and past it.
    const truncatedLengths = new Set(frames.filter((f) => f.cls === 'truncated').map((f) => f.frame.length));
    for (let len = 0; len < 104; len++) expect(truncatedLengths.has(len), `truncated to ${len} bytes`).toBe(true);
  });

  it('takes every branch of the TypeScript sidecar-lite, many times', () => {
    const p = tsPipeline();
    const outs = frames.map((f) => ({ f, out: run(p, f) }));
    const c = p.counters!();
    for (const k of ['drop_parse', 'drop_cpu_to_cpu', 'drop_bad_egress', 'drop_no_route', 'drop_no_neighbor', 'drop_reflection', 'proxy_arp', 'punt', 'routed', 'from_cpu']) {
      expect(c[k] ?? 0, k).toBeGreaterThanOrEqual(100);
    }
    const routed = outs.filter((o) => !('error' in o.out) && o.out.length === 1 && /^(v4|v6|vlan-v)/.test(o.f.cls));
    const outOf = (o: (typeof routed)[number]) => (o.out as Outputs)[0]!;
    // VLAN tags added to untagged frames, and rewritten on tagged ones.
    expect(routed.some((o) => o.f.frame.readUInt16BE(12) !== 0x8100 && outOf(o).hex.slice(24, 28) === '8100')).toBe(true);
    expect(routed.some((o) => o.f.frame.readUInt16BE(12) === 0x8100 && outOf(o).hex.slice(28, 32) !== o.f.frame.subarray(14, 16).toString('hex'))).toBe(true);
    // The 4-slot multipath prefix spreads over several ports.
    const spread = new Set(routed.filter((o) => o.f.cls.startsWith('v4') && o.f.frame[30] === 10 && o.f.frame[32] === 1 && o.f.frame[33]! >= 128 && o.f.frame[33] !== 200).map((o) => outOf(o).port));
    expect(spread.size).toBeGreaterThanOrEqual(3);
  });

  it('the comparison finds a planted difference and reports it with a hex dump', () => {
    const some = frames.slice(0, 3000);
    const a = tsPipeline();
    const b = tsPipeline();
    expect(compare(a, b, some).count).toBe(0);
    const planted: Pipeline = {
      tableAdd: b.tableAdd.bind(b),
      tableRemove: b.tableRemove.bind(b),
      tableIds: b.tableIds.bind(b),
      tableEntries: b.tableEntries.bind(b),
      processPacket: (port, frame) => b.processPacket(port, frame).map(([f, p]) => [f, f[12] === 0x09 ? p : p + 1]),
    };
    const r = compare(a, planted, some, 2);
    expect(r.count).toBeGreaterThan(100);
    const text = report(r, some.length);
    expect(text).toMatch(/frames differ/);
    expect(text).toMatch(/0000 {2}[0-9a-f]{2} /);
    expect(text).toMatch(/-> port \d+/);
  });
});

describe('sidecar-lite.p4 against sidecar-lite.ts', () => {
  it('has the same tables and takes the same entries', async () => {
    const ts = tsPipeline();
    const p4 = await loadPipeline('sidecar-lite.p4', DIFF_RADIX);
    expect([...p4.tableIds()].sort()).toEqual([...ts.tableIds()].sort());
    fillTables(p4);
    expect(dumpTables(p4)).toEqual(dumpTables(ts));
  });

  it('sends every frame to the same ports with the same bytes', async () => {
    const frames = generateFrames();
    const p4 = await loadPipeline('sidecar-lite.p4', DIFF_RADIX);
    fillTables(p4);
    const r = compare(tsPipeline(), p4, frames);
    if (r.count > 0) expect.fail(report(r, frames.length));
  }, 120_000);
});
