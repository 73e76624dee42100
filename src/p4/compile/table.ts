/**
 * A table apply: the key built from the frame (a number for one exact field of <= 48 bits
 * or one LPM field of <= 32 bits, else a selector buffer `SKi` holding each field's value
 * in network order), the lookup, and a switch over the hit entry's action index with each
 * action inlined; a miss runs the default action with its arguments. Constant entries are
 * turned into matches here, for the runtime table to hold.
 */
import type { Expr, KeysetElement } from '../ast.js';
import type { ActionInfo, TableInfo } from '../checked.js';
import { fullMask, tableLayout, type FieldMatch, type KeyFieldLayout, type ParamValue } from '../table-layout.js';
import type { ConstEntry, Gen, Scope } from './context.js';
import { isWideType, value, wide, writeBits } from './expr.js';
import { compileError, NUMBER_BITS, typeWidth } from './storage.js';

/** Inlines an action: with argument expressions (a default action), or with a hit entry's data. */
export interface ActionInliner {
  call(g: Gen, sc: Scope, a: ActionInfo, args: Expr[]): string;
  fromEntry(g: Gen, sc: Scope, a: ActionInfo, entry: string): string;
}

/** The qualified layout of a table (registering it the first time it is applied). */
export function useTable(g: Gen, t: TableInfo, name: string): number {
  let i = g.tableIndex.get(name);
  if (i === undefined) {
    const layout = tableLayout(name, t);
    const k = layout.keys;
    const one = k.length === 1 ? k[0]! : undefined;
    const access = one && one.matchKind === 'exact' && one.width <= NUMBER_BITS ? 'n' : one && one.matchKind === 'lpm' && one.width <= 32 ? 'lpm' : 'sel';
    i = g.tables.length;
    g.tables.push({ layout, access });
    g.tableIndex.set(name, i);
  }
  return i;
}

function keyCode(g: Gen, t: TableInfo, i: number, access: string, sc: Scope): { pre: string; arg: string } {
  const layout = g.tables[i]!.layout;
  if (access !== 'sel') return { pre: '', arg: value(g, t.keys[0]!.expr, sc).code };
  const sk = `SK${i}`;
  let off = 0;
  const parts: string[] = [];
  t.keys.forEach((k, j) => {
    const f = layout.keys[j]!;
    const n = f.valueBytes;
    if (isWideType(k.type)) {
      const s = wide(g, k.expr, sc);
      parts.push(`cpb(${sk}, ${off}, ${s.arr}, ${s.off}, ${n});`);
    } else if (f.bool) {
      parts.push(`${sk}[${off}] = ${value(g, k.expr, sc).code} ? 1 : 0;`);
    } else {
      parts.push(writeBits(sk, String(off), n * 8 - f.width, f.width, value(g, k.expr, sc).code));
    }
    off += n;
  });
  return { pre: parts.join(' '), arg: sk };
}

export function tableApply(g: Gen, sc: Scope, t: TableInfo, name: string, inline: ActionInliner): string {
  const i = useTable(g, t, name);
  const use = g.tables[i]!;
  if (use.constEntries === undefined) use.constEntries = t.entries.map((e) => constEntry(g, t, use.layout.keys, e));
  const { pre, arg } = keyCode(g, t, i, use.access, sc);
  const e = g.fresh('e');
  const method = use.access === 'n' ? 'getN' : use.access === 'lpm' ? 'lpmN' : 'get';
  const cases = t.actions.map((a, j) => `case ${j}: {\n${inline.fromEntry(g, sc, a, e)}\nbreak;\n}`).join('\n');
  const miss = inline.call(g, sc, t.defaultAction.action, t.defaultAction.args);
  // An empty table (common: programs declare tables a deployment does not use) costs no key.
  return `{\nlet ${e};\nif (T${i}.n !== 0) {\n${pre}\n${e} = T${i}.${method}(${arg});\n}\nif (${e} === undefined) {\n${miss}\n} else switch (${e}.a) {\n${cases}\n}\n}`;
}

function constValue(e: Expr): bigint | boolean {
  if (e.kind === 'int') return e.value;
  if (e.kind === 'bool') return e.value;
  if (e.kind === 'name' && e.ref?.kind === 'const') return e.ref.value;
  return compileError(e.loc, 'table entries and default actions take constants');
}

function bytesOf(v: bigint, n: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = BigInt.asUintN(n * 8, v);
  for (let i = n - 1; i >= 0; i--) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return out;
}

function popcount(m: Uint8Array): number {
  let c = 0;
  for (const b of m) for (let x = b; x; x >>= 1) c += x & 1;
  return c;
}

function keyMatch(f: KeyFieldLayout, k: KeysetElement): FieldMatch {
  const n = f.valueBytes;
  if (k.kind === 'dontcare' || k.kind === 'default') return { kind: 'ternary', value: new Uint8Array(n), mask: new Uint8Array(n) };
  const v = bytesOf(BigInt(constValue(k.value) as bigint), n);
  if (k.kind === 'mask') {
    const m = bytesOf(BigInt(constValue(k.mask) as bigint), n);
    if (f.matchKind === 'lpm') return { kind: 'lpm', value: v, len: popcount(m) };
    return { kind: 'ternary', value: v, mask: m };
  }
  if (f.matchKind === 'lpm') return { kind: 'lpm', value: v, len: f.width };
  if (f.matchKind === 'ternary') return { kind: 'ternary', value: v, mask: fullMask(f) };
  if (f.matchKind === 'range') return { kind: 'range', lo: v, hi: v };
  return { kind: 'exact', value: v };
}

function constEntry(g: Gen, t: TableInfo, keys: KeyFieldLayout[], e: TableInfo['entries'][number]): ConstEntry {
  void g;
  const matches = keys.map((f, j) => keyMatch(f, e.keys[j]!));
  const action = t.actions.findIndex((a) => a === e.action || a.name === e.action.name);
  if (action < 0) return compileError(e.loc, `action ${e.action.name} is not an action of table ${t.name}`);
  const data = e.action.params.filter((p) => p.direction === 'none');
  const params = data.map((p, j): ParamValue => {
    const v = constValue(e.args[j]!);
    if (typeof v === 'boolean') return v;
    const w = typeWidth(p.type) ?? 1;
    return w > 48 ? bytesOf(v, Math.ceil(w / 8)) : Number(BigInt.asUintN(w, v));
  });
  return { matches, action, params };
}
