/**
 * The P4 compiler: a checked program (check.ts) to the source of ONE JavaScript function
 * body, `new Function('rt', source)(rt)` giving `process(port, frame) => [frame, port][]`.
 *
 * Model (see compile/storage.ts): headers are views onto a copy of the frame's first bytes
 * in a work buffer W (validity hv[i], offset ho[i]); metadata fields are bytes in W too;
 * values up to 48 bits are JS numbers, wider ones byte ranges. Nested controls and actions
 * are inlined under their qualified names; tables are objects the runtime (rt.tables, in
 * the order of `tables`) provides, looked up by number or by a selector buffer in network
 * order (their key/param byte layouts are in table-layout.ts).
 *
 * Output, as softnpu.p4 documents: egress.drop -> nothing; egress.broadcast -> a copy for
 * every port but the ingress one (egress runs per copy on a snapshot); else egress.port if
 * assigned (a port outside 0..radix-1 is dropped). No other policy: Propolis drops what its
 * guest (port 0) sends to port 0, but in Falcon that is the switch's or the program's
 * business (sidecar-lite.p4 does it itself). A copy is its valid headers in the declaration order of the parser's output
 * struct, then the frame after the last extracted byte. When the valid headers are the
 * extracted ones in place, the frame is rewritten in place (no allocation).
 *
 * Not supported (a compile error says so): arithmetic other than ==/!= on values wider
 * than 48 bits, int<N> signedness (treated as bit<N>), varbit, externs but Checksum,
 * lookahead wider than 32 bits, header stacks (x4c has none).
 */
import type { CheckedProgram, ControlInfo } from './checked.js';
import { Gen, type TableUse } from './compile/context.js';
import { writeBits } from './compile/expr.js';
import { parserCode } from './compile/parser.js';
import { RUNTIME_SOURCE } from './compile/runtime.js';
import { tableLayouts } from './table-layout.js';
import { block, enterControl } from './compile/stmt.js';
import { compileError, DROP, headersInOrder, REJECT, type FieldLoc, type HeaderNode, type Node, type StructNode } from './compile/storage.js';

export type { TableUse } from './compile/context.js';
export type { ConstEntry } from './compile/context.js';

/** The compiled program: the function body and the tables it expects in `rt.tables`. */
export interface CompiledP4 {
  source: string;
  tables: TableUse[];
}

/** What the generated function expects (`rt`): one runtime table per `CompiledP4.tables` entry, the port count, and counters (P4_COUNTERS). */
export interface P4RuntimeTable {
  /** How many entries the table has (0: the lookup is skipped). */
  readonly n: number;
  getN(key: number): { a: number; p: unknown[] } | undefined;
  lpmN(key: number): { a: number; p: unknown[] } | undefined;
  get(selector: Uint8Array): { a: number; p: unknown[] } | undefined;
}

/** What `rt.counters` (a Float64Array) counts, by index. */
export const P4_COUNTERS = ['parser_reject', 'dropped', 'forwarded'] as const;

/** Frames up to this length are processed; longer ones are dropped. */
export const MAX_FRAME = 65536;

function member(s: StructNode, name: string, what: string): FieldLoc {
  const m = s.members.get(name);
  if (!m || m.kind !== 'loc') return compileError({ file: '', line: 1, col: 1 }, `${what} has no field ${name}`, 'include softnpu.p4');
  return m;
}

function controlCode(g: Gen, c: ControlInfo, label: string, bindings: Node[]): string {
  const { sc, pre } = enterControl(g, c, [c.name], undefined, label);
  c.decl.params.forEach((p, i) => sc.bind(p, bindings[i]!));
  const body = c.decl.body?.apply;
  return `${label}: {\n${pre.join('\n')}\n${body ? block(g, body, sc) : ''}\n}`;
}

function deparseCode(hdrs: HeaderNode[]): string {
  const back = hdrs.map((h) => `if (hd[${h.h}] === 1 && hv[${h.h}] === 1) { const o = ho[${h.h}]; for (let i = 0; i < ${h.layout.bytes}; i++) frame[o - BASE + i] = W[o + i]; }`);
  const sizes = hdrs.map((h) => `if (hv[${h.h}] === 1) { if (ho[${h.h}] !== p) same = false; p += ${h.layout.bytes}; }`);
  const copies = hdrs.map((h) => `if (hv[${h.h}] === 1) { W.copy(out, q, ho[${h.h}], ho[${h.h}] + ${h.layout.bytes}); q += ${h.layout.bytes}; }`);
  return `function deparse(frame, len, pe, inPlace) {
let p = BASE, same = true;
${sizes.join('\n')}
const hl = p - BASE;
if (inPlace && same && hl === pe) {
${back.join('\n')}
return frame;
}
const out = Buffer.allocUnsafe(hl + len - pe);
let q = 0;
${copies.join('\n')}
frame.copy(out, q, pe, len);
return out;
}`;
}

interface Meta {
  igPort: FieldLoc;
  egPort: FieldLoc;
  egDrop: FieldLoc;
  egBcast: FieldLoc;
  portSet: number;
}

function outputCode(egress: string, m: Meta): string {
  const rdPort = `(W[${m.egPort.base}] << 8 | W[${Number(m.egPort.base) + 1}])`;
  const setPort = writeBits('W', m.egPort.base, m.egPort.bit, 16, 'p');
  const snap = egress.trim() ? 'W.copy(SW, 0, 0, BASE + cp); shv.set(hv); sho.set(ho);' : '';
  const restore = egress.trim() ? 'if (!first) { SW.copy(W, 0, 0, BASE + cp); hv.set(shv); ho.set(sho); } first = false;' : '';
  return `if (W[${m.egDrop.base}] === 1) ${DROP}
if (W[${m.egBcast.base}] === 1) {
${snap}
const outs = [];
let first = true;
for (let p = 0; p < RADIX; p++) {
if (p === port) continue;
${restore}
${setPort}
${egress}
if (W[${m.egDrop.base}] === 1) continue;
outs.push([deparse(frame, len, pe, false), p]);
}
CNT[outs.length ? 2 : 1]++;
return outs;
}
if (W[${m.portSet}] !== 1) ${DROP}
const op = ${rdPort};
if (op >= RADIX) ${DROP}
${egress}
if (W[${m.egDrop.base}] === 1) ${DROP}
CNT[2]++;
return [[deparse(frame, len, pe, true), op]];`;
}

/** Compiles a checked SoftNPU program. Throws P4Error (P4_CHECK) for what it cannot compile. */
export function compileP4(checked: CheckedProgram): CompiledP4 {
  const { parser, ingress, egress } = checked.main;
  const where = checked.main.args[0]?.decl.loc ?? { file: '', line: 1, col: 1 };
  if (!parser || !ingress || !egress) return compileError(where, 'the program needs SoftNPU(parser(), ingress(), egress()) main');
  const g = new Gen(checked);
  const types = ingress.params.map((p) => p.type);
  if (types.length !== 3 || types.some((t) => t.kind !== 'struct')) return compileError(ingress.decl.loc, 'the ingress control takes (inout H hdr, inout ingress_metadata_t, inout egress_metadata_t)');
  const [hdr, ig, eg] = types.map((t, i) => g.storage.aggregate(t, ingress.params[i]!.name, ingress.decl.loc) as StructNode) as [StructNode, StructNode, StructNode];
  const meta: Meta = { igPort: member(ig, 'port', ig.name), egPort: member(eg, 'port', eg.name), egDrop: member(eg, 'drop', eg.name), egBcast: member(eg, 'broadcast', eg.name), portSet: 0 };
  meta.portSet = Number(g.storage.field({ kind: 'bool' }, ingress.decl.loc).base);
  meta.egPort.flag = Number(meta.portSet);
  const parse = parserCode(g, parser, [hdr, ig]);
  const ing = controlCode(g, ingress, 'ING', [hdr, ig, eg]);
  const egr = egress.decl.body?.apply?.statements.length || egress.tables.size ? controlCode(g, egress, 'EGR', [hdr, ig, eg]) : '';
  // Tables that are declared but never applied still exist for the control plane.
  for (const layout of tableLayouts(checked)) {
    if (g.tableIndex.has(layout.name)) continue;
    g.tableIndex.set(layout.name, g.tables.length);
    g.tables.push({ layout, access: 'sel', constEntries: [] });
  }
  const base = Math.ceil(g.storage.size / 8) * 8;
  const hdrs = headersInOrder(hdr);
  const copyFirst = hdrs.reduce((n, h) => n + h.layout.bytes, 0) + 8;
  const nh = g.storage.headers.length;
  const source = `"use strict";
${RUNTIME_SOURCE}
const BASE = ${base}, C = ${copyFirst}, RADIX = rt.radix, CNT = rt.counters;
const W = Buffer.alloc(BASE + ${MAX_FRAME} + 64), SW = Buffer.alloc(W.length);
const hv = new Uint8Array(${nh}), hd = new Uint8Array(${nh}), ho = new Int32Array(${nh}), shv = new Uint8Array(${nh}), sho = new Int32Array(${nh});
const Z = new Uint8Array(BASE);
const CS = new Uint8Array(${Math.max(2, g.csBytes)});
${g.tables.map((t, i) => `const T${i} = rt.tables[${i}]; const SK${i} = Buffer.alloc(${t.layout.keys.reduce((n, k) => n + k.valueBytes, 0)});`).join('\n')}
${g.hoisted.join('\n')}
function more(frame, need, cp) {
const to = Math.min(frame.length, need + C);
frame.copy(W, BASE + cp, cp, to);
if (need > to) W.fill(0, BASE + to, BASE + need);
return Math.max(to, need);
}
${deparseCode(hdrs)}
return function process(port, frame) {
const len = frame.length;
if (len > ${MAX_FRAME}) ${REJECT}
W.set(Z, 0);
${g.storage.headers.map((h, i) => `hv[${i}] = 0; hd[${i}] = 0; ho[${i}] = ${h.slot};`).join(' ')}
${writeBits('W', meta.igPort.base, meta.igPort.bit, meta.igPort.width, 'port')}
let cp = len < C ? len : C;
W.set(cp === len ? frame : frame.subarray(0, cp), BASE);
let cur = 0, pe = 0;
${parse}
${ing}
${outputCode(egr, meta)}
};`;
  return { source, tables: g.tables };
}
