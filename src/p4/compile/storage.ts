/**
 * Where a compiled program keeps its per-frame state: one work buffer `W` holds every
 * header's scratch slot and every metadata field (as bytes), then a copy of the frame's
 * first bytes from `base` on. A header is a validity flag `hv[i]` and a byte offset
 * `ho[i]` into W: its scratch slot until the parser extracts it, then the frame copy.
 * Keeping everything as bytes in one buffer makes field access a constant-offset read,
 * and a broadcast's per-port copies a snapshot of W, hv and ho.
 */
import type { P4Type } from '../ast.js';
import type { CheckedProgram, HeaderLayout } from '../checked.js';
import { P4Error } from '../errors.js';
import type { Loc } from '../errors.js';

/** A field or variable that holds a bit<N> or bool value. */
export interface FieldLoc {
  kind: 'loc';
  /** JS expression of the byte offset in W the field's bit 0 is counted from. */
  base: string;
  /** Bits from `base` to the field's most significant bit. */
  bit: number;
  width: number;
  bool: boolean;
  /** Set for egress.port: assigning it also sets this W offset to 1 ("port assigned"). */
  flag?: number;
  /** A metadata field alone in its bytes (value in the low bits): read and written as whole bytes. */
  own?: boolean;
  /** The header the field belongs to (its bytes change when the field is written). */
  hdr?: number;
}
/** A JS variable (number, boolean, or Uint8Array when wider than 48 bits). */
export interface VarNode {
  kind: 'var';
  js: string;
  width: number;
  bool: boolean;
  /** Read-only (an action's table data or an argument value). */
  readonly?: boolean;
}
export interface HeaderNode {
  kind: 'header';
  h: number;
  layout: HeaderLayout;
}
export interface StructNode {
  kind: 'struct';
  name: string;
  members: Map<string, Node>;
}
export type Node = FieldLoc | VarNode | HeaderNode | StructNode;

/** Generated code: the parser drops the frame (counted). */
export const REJECT = '{ CNT[0]++; return []; }';
/** Generated code: ingress or egress drops the frame (counted). */
export const DROP = '{ CNT[1]++; return []; }';

/** Values wider than this many bits are byte arrays; narrower ones JS numbers. */
export const NUMBER_BITS = 48;

export function compileError(loc: Loc, message: string, fix = 'rewrite this construct; see the compiler notes in src/p4/compile.ts'): never {
  throw new P4Error('P4_CHECK', [{ file: loc.file, line: loc.line, col: loc.col, message, fix }]);
}

/** Bits of a value type (bool: 1), or undefined for types that are not values. */
export function typeWidth(t: P4Type | undefined): number | undefined {
  if (!t) return undefined;
  if (t.kind === 'bit' || t.kind === 'int') return t.width;
  if (t.kind === 'bool') return 1;
  return undefined;
}

export class Storage {
  /** Bytes of W before the frame copy. */
  size = 0;
  readonly headers: { layout: HeaderLayout; slot: number; name: string }[] = [];
  constructor(private readonly checked: CheckedProgram) {}

  private alloc(bytes: number): number {
    const at = this.size;
    this.size += bytes;
    return at;
  }

  header(typeName: string, name: string): HeaderNode {
    const layout = this.checked.headers.get(typeName)!;
    const h = this.headers.length;
    this.headers.push({ layout, slot: this.alloc(layout.bytes), name });
    return { kind: 'header', h, layout };
  }

  /** A metadata field or struct member of a value type: ⌈w/8⌉ bytes, value in the low bits. */
  field(t: P4Type, loc: Loc): FieldLoc {
    if (t.kind === 'bool') return { kind: 'loc', base: String(this.alloc(1)), bit: 7, width: 1, bool: true };
    const w = typeWidth(t);
    if (w === undefined) return compileError(loc, `a struct member of type ${t.kind} cannot be stored`);
    const n = Math.ceil(w / 8);
    if (w > NUMBER_BITS && w % 8 !== 0) compileError(loc, `bit<${w}>: fields wider than ${NUMBER_BITS} bits must be a whole number of bytes`);
    return { kind: 'loc', base: String(this.alloc(n)), bit: n * 8 - w, width: w, bool: false, own: true };
  }

  /** Storage for a value of a header or struct type (members allocated in declaration order). */
  aggregate(t: P4Type, name: string, loc: Loc): HeaderNode | StructNode {
    if (t.kind === 'header') return this.header(t.name, name);
    if (t.kind !== 'struct') return compileError(loc, `${name} is not a header or struct`);
    const info = this.checked.structs.get(t.name)!;
    const members = new Map<string, Node>();
    for (const f of info.fields) {
      if (f.type.kind === 'header' || f.type.kind === 'struct') members.set(f.name, this.aggregate(f.type, `${name}.${f.name}`, f.loc));
      else members.set(f.name, this.field(f.type, f.loc));
    }
    return { kind: 'struct', name: t.name, members };
  }
}

/** Header indices of a struct's headers, nested structs flattened, in declaration order (the deparse order). */
export function headersInOrder(n: Node): HeaderNode[] {
  if (n.kind === 'header') return [n];
  if (n.kind !== 'struct') return [];
  return [...n.members.values()].flatMap(headersInOrder);
}
