/**
 * Micro-benchmark of the P4 compiler's output against the TypeScript sidecar-lite: 1e6
 * 64-byte IPv4/UDP frames, port 1 -> a /24 route out of port 2 (idx -> route -> resolver
 * -> mac_rewrite), through `sidecar-lite` and `sidecar-lite.p4` with the same tables, in
 * the same process, alternating rounds (these machines are noisy). Prints Mpps for both.
 *
 * With --v6, 78-byte IPv6/UDP frames over an IPv6 route instead.
 *
 *   npx tsx bench/p4-micro.ts [--frames 1000000] [--rounds 3] [--v6] [--json]
 */
import { loadPipeline } from '../src/switch/loader.js';
import type { Pipeline } from '../src/switch/pipeline.js';
import { addNeighbor, addRoute4, addRoute6, ipv6Bytes, setMac } from '../src/switch/encoding.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const frames = arg('--frames', 1_000_000);
const rounds = arg('--rounds', 3);
const asJson = process.argv.includes('--json');
const v6 = process.argv.includes('--v6');

function udpFrame(len: number): Buffer {
  const f = Buffer.alloc(len);
  Buffer.from('a84025000001a84025ff0001', 'hex').copy(f, 0);
  f.writeUInt16BE(0x0800, 12);
  f[14] = 0x45;
  f.writeUInt16BE(len - 14, 16);
  f[22] = 64;
  f[23] = 17;
  Buffer.from([10, 0, 1, 2, 10, 0, 2, 2]).copy(f, 26);
  f.writeUInt16BE(5000, 34);
  f.writeUInt16BE(5001, 36);
  f.writeUInt16BE(len - 34, 38);
  return f;
}

function udp6Frame(): Buffer {
  const f = Buffer.alloc(14 + 40 + 8 + 16);
  Buffer.from('a84025000001a84025ff0001', 'hex').copy(f, 0);
  f.writeUInt16BE(0x86dd, 12);
  f[14] = 0x60;
  f.writeUInt16BE(24, 18);
  f[20] = 17;
  f[21] = 64;
  Buffer.from(ipv6Bytes('fd00:1::2')).copy(f, 22);
  Buffer.from(ipv6Bytes('fd00:2::2')).copy(f, 38);
  f.writeUInt16BE(5000, 54);
  f.writeUInt16BE(5001, 56);
  f.writeUInt16BE(24, 58);
  return f;
}

function program(p: Pipeline): Pipeline {
  const route = v6 ? [...addRoute6({}, 'fd00:2::/64', 2, 'fe80::2'), addNeighbor('fe80::2', 'a8:40:25:00:00:02')] : [...addRoute4({}, '10.0.2.0/24', 2, '10.0.2.1'), addNeighbor('10.0.2.1', 'a8:40:25:00:00:02')];
  const reqs = [...route, setMac(2, 'a8:40:25:00:00:a2')];
  for (const r of reqs) p.tableAdd(r.table, r.action, Uint8Array.from(r.keyset_data), Uint8Array.from(r.parameter_data));
  return p;
}

function run(p: Pipeline, template: Buffer): number {
  const frame = Buffer.from(template);
  let out = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < frames; i++) {
    template.copy(frame); // the switch hands a fresh frame each time; the program rewrites it in place
    out += p.processPacket(1, frame).length;
  }
  const ns = Number(process.hrtime.bigint() - t0);
  if (out !== frames) throw new Error(`expected ${frames} outputs, got ${out}`);
  return frames / (ns / 1e9) / 1e6;
}

const ts = program(await loadPipeline('sidecar-lite', 4));
const p4 = program(await loadPipeline('sidecar-lite.p4', 4));
const template = v6 ? udp6Frame() : udpFrame(64);
const best = { ts: 0, p4: 0 };
run(ts, template);
run(p4, template); // warm-up
for (let r = 0; r < rounds; r++) {
  best.ts = Math.max(best.ts, run(ts, template));
  best.p4 = Math.max(best.p4, run(p4, template));
}
const ratio = best.ts / best.p4;
if (asJson) console.log(JSON.stringify({ v6, frames, rounds, tsMpps: best.ts, p4Mpps: best.p4, ratio }));
else console.log(`${v6 ? '78-byte IPv6' : '64-byte IPv4'} frames, routed, best of ${rounds} x ${frames}:\n  sidecar-lite (TypeScript)  ${best.ts.toFixed(2)} Mpps\n  sidecar-lite.p4 (compiled) ${best.p4.toFixed(2)} Mpps\n  TypeScript / P4            ${ratio.toFixed(2)}x`);
