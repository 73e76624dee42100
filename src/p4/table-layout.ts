/**
 * Table layouts: what the bytes of a TableAdd's key and parameters mean for each table of
 * a checked program, in x4c's (p4rs's) encoding, and their decoding into match values.
 *
 * A key is its fields' parts concatenated in key order, each field ⌈bits/8⌉ = n bytes:
 * exact: the value little-endian (n); lpm: the value in network order then the prefix
 * length (n + 1); ternary: a care byte, then the value little-endian (1 + n; care 0 =
 * any value); range: lo then hi, each little-endian (2n). Parameters are ⌈bits/8⌉ bytes
 * each (bool: 1), little-endian, in declaration order. For one-field keys this is exactly
 * p4rs; p4rs cannot combine lpm with other fields (it takes the whole key as the prefix).
 */
import { FalconError } from '../util/errors.js';
import type { Expr, MatchKind } from './ast.js';
import type { ActionInfo, CheckedProgram, ControlInfo, TableInfo } from './checked.js';

export interface KeyFieldLayout {
  /** The key expression as written, e.g. `hdr.ipv4.dst`. */
  name: string;
  matchKind: MatchKind;
  width: number;
  bool: boolean;
  /** Bytes of the value: ⌈width/8⌉. */
  valueBytes: number;
  /** Where this field's part starts in the key, and its length. */
  offset: number;
  length: number;
}
export interface ParamLayout {
  name: string;
  width: number;
  bool: boolean;
  offset: number;
  bytes: number;
}
export interface ActionLayout {
  name: string;
  params: ParamLayout[];
  paramBytes: number;
}
export interface TableLayout {
  /** Qualified name: the top control, the instances, the table (`ingress.router.v4_idx.rtr`). */
  name: string;
  /** The control type that declares it. */
  control: string;
  keys: KeyFieldLayout[];
  keyBytes: number;
  actions: ActionLayout[];
  defaultAction: string;
  size?: number;
  constEntries: number;
}

export function exprText(e: Expr): string {
  switch (e.kind) {
    case 'name': return e.name;
    case 'member': return `${exprText(e.object)}.${e.member}`;
    case 'slice': return `${exprText(e.object)}[${exprText(e.hi)}:${exprText(e.lo)}]`;
    case 'int': return String(e.value);
    default: return e.kind;
  }
}

function partLength(kind: MatchKind, n: number): number {
  return kind === 'exact' ? n : kind === 'lpm' ? n + 1 : kind === 'ternary' ? n + 1 : 2 * n;
}

export function actionLayout(a: ActionInfo): ActionLayout {
  let offset = 0;
  const params: ParamLayout[] = [];
  for (const p of a.params) {
    if (p.direction !== 'none') continue;
    const bool = p.type.kind === 'bool';
    const width = bool ? 1 : 'width' in p.type ? p.type.width : 0;
    const bytes = Math.ceil(width / 8);
    params.push({ name: p.name, width, bool, offset, bytes });
    offset += bytes;
  }
  return { name: a.name, params, paramBytes: offset };
}

export function tableLayout(name: string, t: TableInfo): TableLayout {
  let offset = 0;
  const keys = t.keys.map((k) => {
    const bool = k.type.kind === 'bool';
    const valueBytes = Math.ceil(k.width / 8);
    const length = partLength(k.matchKind, valueBytes);
    const f: KeyFieldLayout = { name: exprText(k.expr), matchKind: k.matchKind, width: k.width, bool, valueBytes, offset, length };
    offset += length;
    return f;
  });
  return {
    name,
    control: t.control,
    keys,
    keyBytes: offset,
    actions: t.actions.map(actionLayout),
    defaultAction: t.defaultAction.action.name,
    ...(t.size !== undefined ? { size: t.size } : {}),
    constEntries: t.entries.length,
  };
}

function walk(checked: CheckedProgram, c: ControlInfo, path: string[], out: TableLayout[]): void {
  for (const t of c.tables.values()) out.push(tableLayout([...path, t.name].join('.'), t));
  for (const inst of c.instances.values()) {
    if (inst.kind !== 'control') continue;
    const sub = checked.controls.get(inst.typeName);
    if (sub) walk(checked, sub, [...path, inst.name], out);
  }
}

/** Every table of the program (ingress's, then egress's), with its key and parameter layouts. */
export function tableLayouts(checked: CheckedProgram): TableLayout[] {
  const out: TableLayout[] = [];
  for (const c of [checked.main.ingress, checked.main.egress]) if (c) walk(checked, c, [c.name], out);
  return out;
}

/** One field's match: values are network order, ⌈bits/8⌉ bytes, the value in the low bits. */
export type FieldMatch =
  | { kind: 'exact'; value: Uint8Array }
  | { kind: 'lpm'; value: Uint8Array; len: number }
  | { kind: 'ternary'; value: Uint8Array; mask: Uint8Array }
  | { kind: 'range'; lo: Uint8Array; hi: Uint8Array };

const reversed = (b: Uint8Array): Uint8Array => Uint8Array.from(b).reverse();

/** All-ones over the field's bits (network order). */
export function fullMask(f: KeyFieldLayout): Uint8Array {
  const m = new Uint8Array(f.valueBytes).fill(0xff);
  const extra = f.valueBytes * 8 - f.width;
  if (extra > 0) m[0] = 0xff >> extra;
  return m;
}

/** A TableAdd key as per-field matches; throws NPU_TABLE when its length or a prefix length is wrong. */
export function decodeKey(t: TableLayout, key: Uint8Array): FieldMatch[] {
  if (key.length !== t.keyBytes) throw new FalconError('NPU_TABLE', `table ${t.name} takes ${t.keyBytes}-byte keys, not ${key.length} bytes`);
  return t.keys.map((f) => {
    const n = f.valueBytes;
    const part = key.subarray(f.offset, f.offset + f.length);
    switch (f.matchKind) {
      case 'exact': return { kind: 'exact', value: reversed(part) };
      case 'lpm': {
        const len = part[n]!;
        if (len > f.width) throw new FalconError('NPU_TABLE', `table ${t.name}: prefix length ${len} is over ${f.width}`);
        return { kind: 'lpm', value: Uint8Array.from(part.subarray(0, n)), len };
      }
      case 'ternary': return part[0] !== 0 ? { kind: 'ternary', value: reversed(part.subarray(1)), mask: fullMask(f) } : { kind: 'ternary', value: new Uint8Array(n), mask: new Uint8Array(n) };
      case 'range': return { kind: 'range', lo: reversed(part.subarray(0, n)), hi: reversed(part.subarray(n)) };
    }
  });
}

/** An action parameter's value as generated code uses it: number (<= 48 bits), boolean, or network-order bytes. */
export type ParamValue = number | boolean | Uint8Array;

/** The action's parameters from TableAdd bytes; throws NPU_TABLE when their length is wrong. */
export function decodeParams(table: string, a: ActionLayout, p: Uint8Array): ParamValue[] {
  if (p.length !== a.paramBytes) throw new FalconError('NPU_TABLE', `action ${a.name} of table ${table} takes ${a.paramBytes} parameter bytes, not ${p.length}`);
  return a.params.map((x) => {
    if (x.bool) return p[x.offset] === 1;
    const bytes = p.subarray(x.offset, x.offset + x.bytes);
    if (x.width > 48) return reversed(bytes);
    let v = 0;
    for (let i = bytes.length - 1; i >= 0; i--) v = v * 256 + bytes[i]!;
    return x.width >= 48 ? v : v % 2 ** x.width;
  });
}
