/**
 * Expressions to JavaScript. Values of up to 48 bits are JS numbers (bool: booleans); wider
 * ones are byte ranges `{arr, off}` (network order) that are compared and copied, never
 * turned into BigInt, so IPv6 addresses cost no allocation.
 */
import type { CallExpr, Expr, P4Type } from '../ast.js';
import type { Binding, Gen, Scope } from './context.js';
import { compileError, NUMBER_BITS, typeWidth, type FieldLoc, type Node, type VarNode } from './storage.js';

/** A number or boolean value. */
export interface Val {
  code: string;
  /** Bits, or undefined for an unsized integer. */
  width: number | undefined;
  bool: boolean;
}
/** A value wider than 48 bits: `n` bytes at `arr[off]`. */
export interface Wide {
  arr: string;
  off: string;
  n: number;
}

export const isWideType = (t: P4Type | undefined): boolean => t !== undefined && t.kind !== 'bool' && (typeWidth(t) ?? 0) > NUMBER_BITS;

/** `base + k`, folded when base is a number. */
export function at(base: string, k: number): string {
  if (/^\d+$/.test(base)) return String(Number(base) + k);
  const m = /^(.*) \+ (\d+)$/.exec(base);
  if (m) return `${m[1]} + ${Number(m[2]) + k}`;
  return k === 0 ? base : `${base} + ${k}`;
}

export function mask(w: number): string {
  return String(2 ** w - 1);
}

/** Reads `n` (<= 6) whole bytes at `A[o]` as a number. */
function readBytes(arr: string, o: string, n: number): string {
  const b = (k: number) => `${arr}[${at(o, k)}]`;
  if (n === 1) return b(0);
  if (n === 2) return `(${b(0)} << 8 | ${b(1)})`;
  if (n === 3) return `(${b(0)} << 16 | ${b(1)} << 8 | ${b(2)})`;
  if (n === 4) return `((${b(0)} << 24 | ${b(1)} << 16 | ${b(2)} << 8 | ${b(3)}) >>> 0)`;
  if (n === 6) return `((${b(0)} << 8 | ${b(1)}) * 4294967296 + ((${b(2)} << 24 | ${b(3)} << 16 | ${b(4)} << 8 | ${b(5)}) >>> 0))`;
  return `rdn(${arr}, ${o}, ${n})`;
}

/** Reads `w` bits starting `bit` bits after `arr[o]`'s MSB. */
export function readBits(arr: string, o: string, bit: number, w: number): string {
  const b0 = bit >> 3;
  const bi = bit & 7;
  const span = ((bit + w - 1) >> 3) - b0 + 1;
  if (bi === 0 && w % 8 === 0 && w <= NUMBER_BITS) return readBytes(arr, at(o, b0), span);
  if (span <= 4) return `((${readBytes(arr, at(o, b0), span)} >>> ${span * 8 - bi - w}) & ${mask(w)})`;
  return `rdb(${arr}, ${o}, ${bit}, ${w})`;
}

/** Writes number `v` as `n` whole bytes at `arr[o]`. */
function writeBytes(arr: string, o: string, n: number, v: string): string {
  if (n === 1) return `${arr}[${o}] = ${v};`;
  if (n === 2) return `w16(${arr}, ${o}, ${v});`;
  if (n === 4) return `w32(${arr}, ${o}, ${v});`;
  if (n === 6) return `w48(${arr}, ${o}, ${v});`;
  return `wrn(${arr}, ${o}, ${n}, ${v});`;
}

/** A statement writing number `v` (already within range) as `w` bits at `bit` after `arr[o]`. */
export function writeBits(arr: string, o: string, bit: number, w: number, v: string, asExpr = false): string {
  if (bit % 8 === 0 && w % 8 === 0) return writeBytes(arr, at(o, bit >> 3), w / 8, v);
  if (asExpr) return `wrb(${arr}, ${o}, ${bit}, ${w}, ${v});`;
  const b0 = bit >> 3;
  const span = ((bit + w - 1) >> 3) - b0 + 1;
  if (span <= 3) {
    // Read-modify-write of the bytes the field spans; 24 bits keep the arithmetic in int32.
    const s = span * 8 - (bit & 7) - w;
    const keep = (2 ** (span * 8) - 1) ^ ((2 ** w - 1) * 2 ** s);
    const p = at(o, b0);
    return `{ const t_ = (${readBytes(arr, p, span)} & ${keep}) | ((${v}) << ${s}); ${writeSpan(arr, p, span)} }`;
  }
  return `wrb(${arr}, ${o}, ${bit}, ${w}, ${v});`;
}

function writeSpan(arr: string, p: string, span: number): string {
  if (span === 1) return `${arr}[${p}] = t_;`;
  if (span === 2) return `${arr}[${p}] = t_ >>> 8; ${arr}[${at(p, 1)}] = t_ & 255;`;
  return `${arr}[${p}] = t_ >>> 16; ${arr}[${at(p, 1)}] = (t_ >>> 8) & 255; ${arr}[${at(p, 2)}] = t_ & 255;`;
}

export function readLoc(l: FieldLoc): string {
  if (l.bool) return `(W[${l.base}] === 1)`;
  // A metadata field owns its bytes and its high bits stay zero: read them whole.
  if (l.own) return readBits('W', l.base, 0, l.bit + l.width);
  return readBits('W', l.base, l.bit, l.width);
}

/** Wraps a number to `w` bits. */
export function wrapTo(code: string, w: number | undefined): string {
  if (w === undefined) return code;
  if (w < 32) return `((${code}) & ${mask(w)})`;
  if (w === 32) return `((${code}) >>> 0)`;
  return `wrap(${code}, ${2 ** w})`;
}

/** The declaration a name refers to, bound in scope; or the constant's value. */
export function lookupName(e: Expr & { kind: 'name' }, sc: Scope): Binding | { kind: 'const'; value: bigint | boolean } {
  const ref = e.ref;
  if (!ref) return compileError(e.loc, `${e.name} was not resolved by the checker`);
  if (ref.kind === 'const') return { kind: 'const', value: ref.value };
  const b = sc.get(ref.decl);
  if (!b) return compileError(e.loc, `${e.name} has no storage here (a ${ref.kind} used outside its block?)`);
  return b;
}

/** What an lvalue-like expression (name, member, slice of a field) denotes. */
export function resolve(e: Expr, sc: Scope): Binding | { kind: 'const'; value: bigint | boolean } {
  if (e.kind === 'name') return lookupName(e, sc);
  if (e.kind === 'member') {
    const o = resolve(e.object, sc);
    if (o.kind === 'struct') {
      const m = o.members.get(e.member);
      if (!m) return compileError(e.loc, `${o.name} has no member ${e.member}`);
      return m;
    }
    if (o.kind === 'header') {
      const f = o.layout.fields.find((x) => x.name === e.member);
      if (!f) return compileError(e.loc, `header ${o.layout.name} has no field ${e.member}`);
      return { kind: 'loc', base: `ho[${o.h}]`, bit: f.offset, width: f.width, bool: f.type.kind === 'bool', hdr: o.h };
    }
    return compileError(e.loc, `${e.member} is not a member of a header or struct`);
  }
  if (e.kind === 'slice') {
    const o = resolve(e.object, sc);
    if (o.kind !== 'loc') return compileError(e.loc, 'only a slice of a header or struct field can be assigned here');
    const hi = e.hiValue!;
    const lo = e.loValue!;
    return { kind: 'loc', base: o.base, bit: o.bit + (o.width - 1 - hi), width: hi - lo + 1, bool: false, ...(o.flag !== undefined ? { flag: o.flag } : {}), ...(o.hdr !== undefined ? { hdr: o.hdr } : {}) };
  }
  return compileError(e.loc, 'expected a name, a member or a slice');
}

export function isNodeValue(b: Binding | { kind: 'const' }): b is FieldLoc | VarNode {
  return b.kind === 'loc' || b.kind === 'var';
}

/** The bytes of a constant as a hoisted Uint8Array (network order). */
export function constBytes(g: Gen, v: bigint, n: number): string {
  const bytes: number[] = [];
  let x = v;
  for (let i = 0; i < n; i++) {
    bytes.unshift(Number(x & 0xffn));
    x >>= 8n;
  }
  return g.hoist('K', `new Uint8Array([${bytes.join(',')}])`);
}

/** A wide (> 48-bit) value as a byte range. */
export function wide(g: Gen, e: Expr, sc: Scope): Wide {
  const n = Math.ceil((typeWidth(e.type) ?? 0) / 8);
  if (e.kind === 'int') return { arr: constBytes(g, e.value, n), off: '0', n };
  if (e.kind === 'slice' && isWideType(e.object.type) && e.object.kind !== 'slice') {
    const o = wide(g, e.object, sc);
    const skip = o.n * 8 - 1 - e.hiValue!;
    if (skip % 8 !== 0 || (e.hiValue! - e.loValue! + 1) % 8 !== 0) compileError(e.loc, `a slice wider than ${NUMBER_BITS} bits must start and end on byte boundaries`);
    return { arr: o.arr, off: at(o.off, skip / 8), n };
  }
  if (e.kind === 'name' || e.kind === 'member' || e.kind === 'slice') {
    const b = resolve(e, sc);
    if (b.kind === 'const') return { arr: constBytes(g, BigInt(b.value as bigint), n), off: '0', n };
    if (b.kind === 'var') return { arr: b.js, off: '0', n };
    if (b.kind === 'loc') {
      if (b.bit % 8 !== 0) compileError(e.loc, `a ${b.width}-bit field that does not start on a byte boundary is not supported`);
      return { arr: 'W', off: at(b.base, b.bit >> 3), n };
    }
  }
  return compileError(e.loc, `only names, fields and constants are supported for values wider than ${NUMBER_BITS} bits (bit<${n * 8}>)`);
}

/** True when `e` is a wide value wide() can address as bytes (no arithmetic). */
function isWideRef(e: Expr): boolean {
  return e.kind === 'int' || e.kind === 'name' || e.kind === 'member' || (e.kind === 'slice' && isWideType(e.object.type));
}

/**
 * A wide value with arithmetic, as BigInt code: the slow path, only for expressions that
 * compute on values wider than 48 bits (comparisons and copies of fields stay bytes).
 */
export function bigValue(g: Gen, e: Expr, sc: Scope): string {
  const w = typeWidth(e.type);
  if (e.kind === 'int') return `${BigInt.asUintN(w ?? 128, e.value)}n`;
  if (!isWideType(e.type)) return `BigInt(${value(g, e, sc).code})`;
  if (isWideRef(e)) {
    const r = wide(g, e, sc);
    return `rbig(${r.arr}, ${r.off}, ${r.n})`;
  }
  if (e.kind === 'unary' && e.op === '~') return `BigInt.asUintN(${w}, ~${bigValue(g, e.operand, sc)})`;
  if (e.kind === 'binary' && ['+', '-', '&', '|', '^', '%', '<<', '>>'].includes(e.op)) {
    const a = bigValue(g, e.left, sc);
    const b = bigValue(g, e.right, sc);
    return `BigInt.asUintN(${w}, ${a} ${e.op} ${b})`;
  }
  return compileError(e.loc, `this ${e.kind} on a bit<${w}> value is not supported`);
}

/** Code of a statement assigning value expression `e` to node `dst`. */
export function assignTo(g: Gen, dst: Node, e: Expr, sc: Scope): string {
  if (dst.kind === 'header' || dst.kind === 'struct') return assignAggregate(dst, resolve(e, sc) as Node, e);
  // Marks: egress.port assigned; a header's bytes changed (the in-place deparse writes back only those).
  const flag = dst.kind === 'loc' ? (dst.flag !== undefined ? ` W[${dst.flag}] = 1;` : '') + (dst.hdr !== undefined ? ` hd[${dst.hdr}] = 1;` : '') : '';
  if (!dst.bool && dst.width > NUMBER_BITS) {
    if (!isWideRef(e)) {
      const [arr, off] = dst.kind === 'var' ? [dst.js, '0'] : ['W', at(dst.base, dst.bit >> 3)];
      if (dst.kind === 'loc' && dst.bit % 8 !== 0) compileError(e.loc, `a ${dst.width}-bit destination must start on a byte boundary`);
      return `wbig(${arr}, ${off}, ${Math.ceil(dst.width / 8)}, ${bigValue(g, e, sc)});${flag}`;
    }
    const s = wide(g, e, sc);
    if (dst.kind === 'var') return `cpb(${dst.js}, 0, ${s.arr}, ${s.off}, ${s.n});`;
    if (dst.bit % 8 !== 0) compileError(e.loc, `a ${dst.width}-bit destination must start on a byte boundary`);
    return `cpb(W, ${at(dst.base, dst.bit >> 3)}, ${s.arr}, ${s.off}, ${s.n});${flag}`;
  }
  const v = value(g, e, sc);
  let code = v.code;
  if (!dst.bool && (v.width === undefined || v.width > dst.width)) code = wrapTo(code, dst.width);
  if (dst.kind === 'var') return `${dst.js} = ${code};`;
  if (dst.bool) return `W[${dst.base}] = ${code === 'true' ? '1' : code === 'false' ? '0' : `${code} ? 1 : 0`};${flag}`;
  const src = e.kind === 'member' || e.kind === 'name' ? resolve(e, sc) : undefined;
  if (src?.kind === 'loc' && !src.bool && src.width === dst.width && src.bit % 8 === 0 && dst.bit % 8 === 0 && dst.width % 8 === 0 && dst.width > 32) {
    return `cpb(W, ${at(dst.base, dst.bit >> 3)}, W, ${at(src.base, src.bit >> 3)}, ${dst.width / 8});${flag}`;
  }
  if (dst.own) return writeBits('W', dst.base, 0, dst.bit + dst.width, code) + flag;
  return writeBits('W', dst.base, dst.bit, dst.width, code) + flag;
}

function assignAggregate(dst: Node, src: Node, e: Expr): string {
  if (dst.kind === 'header' && src.kind === 'header') {
    return `cpb(W, ho[${dst.h}], W, ho[${src.h}], ${dst.layout.bytes}); hv[${dst.h}] = hv[${src.h}]; hd[${dst.h}] = 1;`;
  }
  if (dst.kind === 'struct' && src.kind === 'struct') {
    return [...dst.members].map(([k, d]) => {
      const s = src.members.get(k)!;
      if (d.kind === 'loc' && s.kind === 'loc') return `cpb(W, ${d.base}, W, ${s.base}, ${Math.ceil((d.bit + d.width) / 8)});`;
      return assignAggregate(d, s, e);
    }).join(' ');
  }
  return compileError(e.loc, 'this assignment of a header or struct is not supported');
}

/** A number or boolean expression. */
export function value(g: Gen, e: Expr, sc: Scope): Val {
  const width = e.type?.kind === 'integer' ? undefined : typeWidth(e.type);
  const bool = e.type?.kind === 'bool';
  switch (e.kind) {
    case 'bool': return { code: String(e.value), width: 1, bool: true };
    case 'int': return { code: String(width !== undefined ? Number(BigInt.asUintN(width, e.value)) : Number(e.value)), width, bool: false };
    case 'name': case 'member': return nameValue(e, sc, width, bool);
    case 'slice': return sliceValue(g, e, sc);
    case 'unary': {
      const o = value(g, e.operand, sc);
      if (e.op === '!') return { code: `!${o.code}`, width: 1, bool: true };
      const w = o.width ?? 32;
      if (w > 32) return { code: `(${2 ** w - 1} - ${o.code})`, width: w, bool: false };
      return { code: wrapTo(`~${o.code}`, w), width: w, bool: false };
    }
    case 'binary': return binary(g, e, sc);
    case 'call': return callValue(g, e, sc);
    default: return compileError(e.loc, `a ${e.kind} is not a value here`);
  }
}

function nameValue(e: Expr, sc: Scope, width: number | undefined, bool: boolean): Val {
  if ((width ?? 0) > NUMBER_BITS && !bool) compileError(e.loc, `a bit<${width}> value can only be compared, assigned, sliced, used as a key or checksummed`);
  const b = resolve(e, sc);
  if (b.kind === 'const') return { code: typeof b.value === 'boolean' ? String(b.value) : String(Number(width !== undefined ? BigInt.asUintN(width, b.value) : b.value)), width, bool };
  if (b.kind === 'var') return { code: b.js, width: b.width, bool: b.bool };
  if (b.kind === 'loc') return { code: readLoc(b), width: b.width, bool: b.bool };
  return compileError(e.loc, 'this is not a value');
}

function sliceValue(g: Gen, e: Expr & { kind: 'slice' }, sc: Scope): Val {
  const hi = e.hiValue!;
  const lo = e.loValue!;
  const w = hi - lo + 1;
  const ow = typeWidth(e.object.type) ?? 0;
  if (ow > NUMBER_BITS && !isWideRef(e.object)) return { code: `Number(BigInt.asUintN(${w}, ${bigValue(g, e.object, sc)} >> ${lo}n))`, width: w, bool: false };
  if (ow > NUMBER_BITS) {
    const s = wide(g, e.object, sc);
    return { code: readBits(s.arr, s.off, s.n * 8 - 1 - hi, w), width: w, bool: false };
  }
  const o = value(g, e.object, sc);
  if (ow <= 32) return { code: `((${o.code} >>> ${lo}) & ${mask(w)})`, width: w, bool: false };
  return { code: `(Math.floor(${o.code} / ${2 ** lo}) % ${2 ** w})`, width: w, bool: false };
}

const CMP = new Set(['==', '!=', '<', '>', '<=', '>=']);

function binary(g: Gen, e: Expr & { kind: 'binary' }, sc: Scope): Val {
  const lw = typeWidth(e.left.type);
  const wideCmp = isWideType(e.left.type) && CMP.has(e.op);
  if (wideCmp && (!isWideRef(e.left) || !isWideRef(e.right) || (e.op !== '==' && e.op !== '!='))) {
    const op = e.op === '==' ? '===' : e.op === '!=' ? '!==' : e.op;
    return { code: `(${bigValue(g, e.left, sc)} ${op} ${bigValue(g, e.right, sc)})`, width: 1, bool: true };
  }
  if ((e.op === '==' || e.op === '!=') && isWideType(e.left.type)) {
    const neg = e.op === '!=' ? '!' : '';
    const zero = (x: Expr) => x.kind === 'int' && x.value === 0n;
    if (zero(e.right) || zero(e.left)) {
      const s = wide(g, zero(e.right) ? e.left : e.right, sc);
      return { code: `${neg}isz(${s.arr}, ${s.off}, ${s.n})`, width: 1, bool: true };
    }
    const a = wide(g, e.left, sc);
    const b = wide(g, e.right, sc);
    return { code: `${neg}eqb(${a.arr}, ${a.off}, ${b.arr}, ${b.off}, ${a.n})`, width: 1, bool: true };
  }
  const a = value(g, e.left, sc);
  const b = value(g, e.right, sc);
  if (CMP.has(e.op)) {
    const op = e.op === '==' ? '===' : e.op === '!=' ? '!==' : e.op;
    return { code: `(${a.code} ${op} ${b.code})`, width: 1, bool: true };
  }
  if (e.op === '&&' || e.op === '||') return { code: `(${a.code} ${e.op} ${b.code})`, width: 1, bool: true };
  const w = e.type?.kind === 'integer' ? undefined : (typeWidth(e.type) ?? lw);
  return { code: arith(e.op, a.code, b.code, w), width: w, bool: false };
}

function arith(op: string, a: string, b: string, w: number | undefined): string {
  const big = w === undefined || w > 32;
  switch (op) {
    case '+': case '-': return wrapTo(`${a} ${op} ${b}`, w);
    case '%': return `(${a} % ${b})`;
    case '&': case '|': case '^':
      if (big) return `${op === '&' ? 'and48' : op === '|' ? 'or48' : 'xor48'}(${a}, ${b})`;
      return w === 32 ? `((${a} ${op} ${b}) >>> 0)` : `(${a} ${op} ${b})`;
    case '<<': return `shl(${a}, ${b}, ${w ?? 53})`;
    case '>>': return `shr(${a}, ${b})`;
    default: return `(${a} ${op} ${b})`;
  }
}

function callValue(g: Gen, e: CallExpr, sc: Scope): Val {
  const t = e.target;
  if (!t) return compileError(e.loc, 'this call was not resolved by the checker');
  if (t.kind === 'isValid') {
    const h = resolve(t.object, sc);
    if (h.kind !== 'header') return compileError(e.loc, 'isValid() of something that is not a header');
    return { code: `(hv[${h.h}] === 1)`, width: 1, bool: true };
  }
  if (t.kind === 'extern' && t.extern === 'Checksum' && t.method.name === 'run') return { code: checksum(g, e, sc), width: 16, bool: false };
  if (t.kind === 'extern' && t.extern === 'packet_in') return packetValue(e, t.method.name);
  return compileError(e.loc, `this call (${t.kind}) has no value in the compiler`);
}

function packetValue(e: CallExpr, method: string): Val {
  if (method === 'length') return { code: 'len', width: 32, bool: false };
  if (method === 'lookahead') {
    const w = typeWidth(e.type);
    if (w === undefined || w > 32) return compileError(e.loc, 'lookahead is supported for bit<N> up to 32 bits');
    const n = Math.ceil(w / 8);
    return { code: `(cur + ${n} > cp ? (cp = more(frame, cur + ${n}, cp)) : 0, ${readBits('W', 'BASE + cur', 0, w)})`, width: w, bool: false };
  }
  return compileError(e.loc, `packet_in.${method}() has no value`);
}

/** `csum.run({a, b, ...})`: the elements' bits concatenated into the scratch buffer CS, then the Internet checksum. */
function checksum(g: Gen, e: CallExpr, sc: Scope): string {
  const arg = e.args[0]!;
  const elems = arg.kind === 'list' ? arg.elements : [arg];
  const parts: string[] = [];
  let bit = 0;
  for (const x of elems) {
    if (x.type?.kind === 'header') {
      const h = resolve(x, sc);
      if (h.kind !== 'header' || bit % 8 !== 0) return compileError(x.loc, 'a header in a checksum must start on a byte boundary');
      parts.push(`cpb(CS, ${bit / 8}, W, ho[${h.h}], ${h.layout.bytes})`);
      bit += h.layout.bits;
      continue;
    }
    const w = typeWidth(x.type);
    if (w === undefined) return compileError(x.loc, 'checksum elements must be bit<N>, bool or headers');
    if (isWideType(x.type)) {
      if (bit % 8 !== 0) return compileError(x.loc, 'a wide checksum element must start on a byte boundary');
      const s = wide(g, x, sc);
      parts.push(`cpb(CS, ${bit / 8}, ${s.arr}, ${s.off}, ${s.n})`);
    } else {
      parts.push(writeBits('CS', '0', bit, w, value(g, x, sc).code, true).replace(/;$/, ''));
    }
    bit += w;
  }
  const bytes = Math.ceil(bit / 16) * 2;
  g.csBytes = Math.max(g.csBytes, bytes);
  if (bit % 16 !== 0) parts.unshift(`CS.fill(0, 0, ${bytes})`);
  return `(${parts.join(', ')}, csum(CS, ${bytes}))`;
}
