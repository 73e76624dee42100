/**
 * The checker of statements and expressions (of parser states, actions and apply blocks).
 * Types follow x4c: the two sides of an operator or an assignment have the same type and
 * width, and an unsized literal like `0` goes only where its width is given by a declaration
 * (a variable's or constant's initializer, a select case, a table entry, an action argument).
 */
import type {
  ActionDecl, Block, CallExpr, ConstDecl, ControlDecl, Expr, ExternDecl, ExternMethodDecl, IfStmt, KeysetElement, Loc,
  MemberExpr, NameRef, P4Type, SliceExpr, Statement, TransitionTarget, TypeRef, VarDecl,
} from './ast.js';
import type { ConstInfo, ControlInfo, HeaderLayout, ResolvedParam, StructInfo } from './checked.js';
import type { P4Diagnostic } from './errors.js';

export interface Binding {
  ref: NameRef;
  type: P4Type;
}

/** A lexical scope of value names. */
export class Scope {
  private readonly names = new Map<string, Binding>();
  constructor(readonly parent?: Scope) {}
  lookup(name: string): Binding | undefined {
    return this.names.get(name) ?? this.parent?.lookup(name);
  }
  /** Declares `name`; returns the binding it clashes with in this same scope, if any. */
  declare(name: string, b: Binding): Binding | undefined {
    const old = this.names.get(name);
    if (!old) this.names.set(name, b);
    return old;
  }
}

/** Where a block is: what it may contain depends on it. */
export interface Ctx {
  where: 'parser' | 'action' | 'apply' | 'global' | 'control';
  scope: Scope;
  control?: ControlInfo;
  /** In a parser: its state names. */
  states?: Set<string>;
}

/** How a value may meet a declared type: exactly, or also as a fitting unsized literal, or also zero-extended. */
export type Conversion = 'exact' | 'literal' | 'widen';

const ARITH = new Set(['+', '-', '%', '&', '|', '^']);
const VERBS: Record<string, string> = {
  '+': 'add', '-': 'subtract', '%': 'take the remainder of', '&': 'and', '|': 'or', '^': 'xor', '==': 'compare', '!=': 'compare',
  '<': 'compare', '>': 'compare', '<=': 'compare', '>=': 'compare', '<<': 'shift', '>>': 'shift', '&&': 'and', '||': 'or',
};
export const BOOL: P4Type = { kind: 'bool' };
export const VOID: P4Type = { kind: 'void' };
export const INTEGER: P4Type = { kind: 'integer' };
/** The type of a name whose declared type was wrong (already reported): its uses report nothing more. */
export const POISON: P4Type = { kind: 'void' };

/** A type as people write it: `bit<8>`, `header ethernet_h`, `an unsized integer`. */
export function typeToString(t: P4Type): string {
  switch (t.kind) {
    case 'bit': case 'int': case 'varbit': return `${t.kind}<${t.width}>`;
    case 'bool': case 'void': return t.kind;
    case 'integer': return 'an unsized integer';
    case 'list': return `list {${t.elements.map(typeToString).join(', ')}}`;
    case 'typeParam': return t.name;
    case 'table': return `table ${t.name}`;
    default: return `${t.kind} ${t.name}`;
  }
}

export function sameType(a: P4Type, b: P4Type): boolean {
  if (a.kind !== b.kind) return false;
  if ('width' in a && 'width' in b) return a.width === b.width;
  if (a.kind === 'list' && b.kind === 'list') return a.elements.length === b.elements.length && a.elements.every((e, i) => sameType(e, b.elements[i]!));
  if ('name' in a && 'name' in b) return a.name === b.name;
  return true;
}

/** Types a value (a variable, a field, an argument) can have. */
export function isValueType(t: P4Type): boolean {
  return ['bit', 'int', 'varbit', 'bool', 'integer', 'header', 'struct', 'list'].includes(t.kind);
}

const fitsWidth = (v: bigint, t: P4Type): boolean =>
  t.kind === 'bit' ? v >= 0n && v < 1n << BigInt(t.width) : t.kind === 'int' ? v >= -(1n << BigInt(t.width - 1)) && v < 1n << BigInt(t.width - 1) : false;

export abstract class BodyChecker {
  readonly diagnostics: P4Diagnostic[] = [];
  readonly headers = new Map<string, HeaderLayout>();
  readonly structs = new Map<string, StructInfo>();
  readonly constants = new Map<string, ConstInfo>();
  readonly externs = new Map<string, ExternDecl>();
  readonly controls = new Map<string, ControlInfo>();

  abstract resolveType(t: TypeRef, typeParams?: ReadonlySet<string>): P4Type | undefined;
  abstract externParams(ext: ExternDecl, m: ExternMethodDecl): ResolvedParam[];

  /** Records a problem; returns undefined so a check can `return this.error(...)`. */
  error(loc: Loc, message: string, fix: string): undefined {
    this.diagnostics.push({ file: loc.file, line: loc.line, col: loc.col, message, fix });
    return undefined;
  }

  // --- constants ----------------------------------------------------------------------------

  /** The compile-time value of an expression, if it has one (literals, constants, operators on them). */
  constValue(e: Expr): bigint | boolean | undefined {
    if (e.kind === 'int') return e.value;
    if (e.kind === 'bool') return e.value;
    if (e.kind === 'name') return e.ref?.kind === 'const' ? e.ref.value : undefined;
    if (e.kind === 'unary') {
      const v = this.constValue(e.operand);
      if (e.op === '!') return typeof v === 'boolean' ? !v : undefined;
      return typeof v === 'bigint' && e.type && 'width' in e.type ? ~v & ((1n << BigInt(e.type.width)) - 1n) : undefined;
    }
    if (e.kind !== 'binary') return undefined;
    const a = this.constValue(e.left);
    const b = this.constValue(e.right);
    if (typeof a !== 'bigint' || typeof b !== 'bigint') return undefined;
    const ops: Record<string, () => bigint | boolean | undefined> = {
      '+': () => a + b, '-': () => a - b, '%': () => (b === 0n ? undefined : a % b), '&': () => a & b, '|': () => a | b, '^': () => a ^ b,
      '<<': () => a << b, '>>': () => a >> b, '==': () => a === b, '!=': () => a !== b, '<': () => a < b, '>': () => a > b, '<=': () => a <= b, '>=': () => a >= b,
    };
    const v = ops[e.op]?.();
    // A sized result wraps at its width.
    if (typeof v === 'bigint' && e.type?.kind === 'bit') return BigInt.asUintN(e.type.width, v);
    return v;
  }

  /**
   * Whether a value of type `from` (expression `e`) may go where `to` is declared; reports a
   * problem at `loc` if not. `what` says where (`assign`, `pass`, ...) for the message.
   */
  convert(e: Expr, from: P4Type, to: P4Type, mode: Conversion, what: string): boolean {
    if (sameType(from, to) || to.kind === 'typeParam') return true;
    if (from.kind === 'integer' && (to.kind === 'bit' || to.kind === 'int')) {
      const v = this.constValue(e);
      if (mode === 'exact') {
        this.error(e.loc, `cannot ${what} an unsized integer to ${typeToString(to)}: x4c needs the width on both sides`, `write ${to.width}${to.kind === 'bit' ? 'w' : 's'}${typeof v === 'bigint' ? v : '<value>'}`);
        return false;
      }
      if (typeof v !== 'bigint') return !this.error(e.loc, 'this unsized integer is not a compile-time constant', 'give it a width');
      if (!fitsWidth(v, to)) return !this.error(e.loc, `${v} does not fit in ${typeToString(to)}`, `use a value that fits in ${to.width} bits`);
      return true;
    }
    if (mode === 'widen' && from.kind === 'bit' && to.kind === 'bit' && from.width < to.width) return true;
    const message = what === 'initialise' ? `cannot initialise ${typeToString(to)} with ${typeToString(from)}` : `cannot ${what} ${typeToString(from)} to ${typeToString(to)}`;
    this.error(e.loc, message, mode === 'widen' ? 'use a value of the same type, or a narrower bit<N>' : 'use a value of the same type and width (x4c converts none)');
    return false;
  }

  // --- statements ---------------------------------------------------------------------------

  checkBlock(block: Block, ctx: Ctx): void {
    const inner: Ctx = { ...ctx, scope: new Scope(ctx.scope) };
    block.statements.forEach((s, i) => {
      if (s.kind === 'transition' && i < block.statements.length - 1) {
        this.error(block.statements[i + 1]!.loc, 'this statement comes after a transition and is never run', 'end the block with the transition');
      }
      this.checkStatement(s, inner);
    });
  }

  checkStatement(s: Statement, ctx: Ctx): void {
    switch (s.kind) {
      case 'block': return this.checkBlock(s, ctx);
      case 'var': return this.checkVar(s, ctx);
      case 'const': return this.checkLocalConst(s, ctx);
      case 'assign': return this.checkAssign(s.target, s.value, ctx);
      case 'call': this.checkExpr(s.call, ctx); return;
      case 'if': return this.checkIf(s, ctx);
      case 'return':
        if (ctx.where === 'parser') this.error(s.loc, 'a parser state has no return', 'end the state with a transition');
        else if (s.value) this.error(s.value.loc, 'actions and apply blocks return no value', 'write return; alone');
        return;
      case 'transition': return this.checkTransition(s.next, s.loc, ctx);
    }
  }

  checkVar(v: VarDecl, ctx: Ctx): void {
    const type = this.resolveType(v.type);
    if (type) {
      v.resolved = type;
      if (!isValueType(type) || type.kind === 'integer') this.error(v.type.loc, `a variable cannot have type ${typeToString(type)}`, 'use bit<N>, bool, a header or a struct');
    }
    if (v.init) {
      const t = this.checkValue(v.init, ctx);
      // x4c takes a narrower bit<N> initializer (zero-extended), as sidecar-lite's `bit<16> x = slots;` with slots: bit<8>.
      if (t && type) this.convert(v.init, t, type, 'widen', 'initialise');
    }
    this.declare(ctx.scope, v.name, v.loc, { ref: { kind: 'local', decl: v }, type: type ?? POISON });
  }

  checkLocalConst(c: ConstDecl, ctx: Ctx): void {
    const info = this.checkConstDecl(c, ctx);
    if (info) this.declare(ctx.scope, c.name, c.loc, { ref: { kind: 'const', decl: c, value: info.value }, type: info.type });
  }

  /** Types a constant's declaration and computes its value. */
  checkConstDecl(c: ConstDecl, ctx: Ctx): ConstInfo | undefined {
    const type = this.resolveType(c.type);
    const vt = this.checkValue(c.value, ctx);
    if (!type || !vt) return undefined;
    c.resolved = type;
    if (!['bit', 'int', 'bool', 'integer'].includes(type.kind)) return this.error(c.type.loc, `a constant cannot have type ${typeToString(type)}`, 'use bit<N>, int<N>, int or bool');
    if (type.kind === 'integer' ? vt.kind !== 'integer' : !this.convert(c.value, vt, type, 'literal', 'initialise')) {
      if (type.kind === 'integer') this.error(c.value.loc, `cannot initialise an int constant with ${typeToString(vt)}`, 'use an unsized integer');
      return undefined;
    }
    const value = this.constValue(c.value);
    if (value === undefined) return this.error(c.value.loc, `the value of constant ${c.name} is not known at compile time`, 'use literals and other constants');
    return { name: c.name, decl: c, type, value };
  }

  declare(scope: Scope, name: string, loc: Loc, b: Binding): void {
    const old = scope.declare(name, b);
    if (old) this.error(loc, `${name} is declared twice in the same scope`, 'rename one of them');
  }

  private checkIf(s: IfStmt, ctx: Ctx): void {
    const t = this.checkValue(s.cond, ctx);
    if (t && t.kind !== 'bool') this.error(s.cond.loc, `the condition is ${typeToString(t)}, not bool`, 'compare it, like x == 8w0');
    this.checkBlock(s.then, ctx);
    if (s.otherwise?.kind === 'if') this.checkIf(s.otherwise, ctx);
    else if (s.otherwise) this.checkBlock(s.otherwise, ctx);
  }

  private checkAssign(target: Expr, value: Expr, ctx: Ctx): void {
    const tt = this.checkExpr(target, ctx);
    const vt = this.checkValue(value, ctx);
    if (tt && !this.assignable(target, ctx)) return;
    if (tt && vt) this.convert(value, vt, tt, 'exact', 'assign');
  }

  /** Reports (and returns false) if `e` cannot be written: an `in` parameter, action data, a constant. */
  assignable(e: Expr, ctx: Ctx, verb = 'assign to'): boolean {
    if (e.kind === 'member' || e.kind === 'slice') {
      if (e.kind === 'member' && e.object.type && !['header', 'struct'].includes(e.object.type.kind)) {
        return !this.error(e.loc, `cannot ${verb} ${e.member}`, 'assign to a variable or a field');
      }
      return this.assignable(e.object, ctx, verb);
    }
    if (e.kind !== 'name') return !this.error(e.loc, `cannot ${verb} this expression`, 'assign to a variable, a field or a slice');
    const ref = e.ref;
    if (ref?.kind === 'param' && ref.decl.direction === 'in') return !this.error(e.loc, `cannot ${verb} ${e.name}: it is an in parameter`, 'make it inout or out');
    if (ref?.kind === 'param' && ref.decl.direction === 'none' && ctx.where === 'action') {
      return !this.error(e.loc, `cannot ${verb} ${e.name}: it is action data, read-only`, 'copy it to a variable first');
    }
    if (ref?.kind === 'const') return !this.error(e.loc, `cannot ${verb} ${e.name}: it is a constant`, 'use a variable');
    if (ref && ref.kind !== 'param' && ref.kind !== 'local') return !this.error(e.loc, `cannot ${verb} ${e.name}`, 'assign to a variable or a field');
    return true;
  }

  private checkTransition(next: TransitionTarget, loc: Loc, ctx: Ctx): void {
    if (ctx.where !== 'parser') {
      this.error(loc, 'transition belongs in a parser state', 'use return to leave an action or apply block');
      return;
    }
    if (next.kind === 'state') {
      this.checkState(next.name, next.loc, ctx);
      return;
    }
    const types = next.exprs.map((e) => this.checkValue(e, ctx));
    next.exprs.forEach((e, i) => {
      const t = types[i];
      if (t && !['bit', 'int', 'bool'].includes(t.kind)) this.error(e.loc, `cannot select on ${typeToString(t)}`, 'select on fields of type bit<N> or bool');
    });
    if (next.exprs.length === 0) this.error(next.loc, 'select needs at least one expression', 'write select(hdr.ethernet.ether_type)');
    for (const c of next.cases) {
      this.checkKeyset(c.keys, types, next.exprs.length, c.loc, ctx, 'select');
      this.checkState(c.state, c.stateLoc, ctx);
    }
  }

  private checkState(name: string, loc: Loc, ctx: Ctx): void {
    if (name === 'accept' || name === 'reject' || ctx.states?.has(name)) return;
    this.error(loc, `there is no state ${name}`, `use accept, reject or one of the parser's states (${[...(ctx.states ?? [])].join(', ')})`);
  }

  /** Checks a keyset against the key types; `count` keys. Returns nothing: problems are reported. */
  checkKeyset(keys: KeysetElement[], types: (P4Type | undefined)[], count: number, loc: Loc, ctx: Ctx, what: 'select' | 'entry'): void {
    const whole = keys.length === 1 && (keys[0]!.kind === 'default' || keys[0]!.kind === 'dontcare');
    if (what === 'select' && whole) return;
    if (keys.length !== count) {
      this.error(loc, `this ${what === 'select' ? 'case' : 'entry'} has ${keys.length} key value${keys.length === 1 ? '' : 's'}, ${count} expected`, `write ${count} values${count > 1 ? ' in parentheses' : ''}`);
      return;
    }
    keys.forEach((k, i) => {
      const t = types[i];
      if (k.kind === 'default') this.error(k.loc, 'default stands for the whole keyset', what === 'select' ? 'write default: state; or use _ for one value' : 'use _ for one value');
      if (k.kind !== 'value' && k.kind !== 'mask') return;
      this.checkKeyValue(k.value, t, ctx);
      if (k.kind === 'mask') this.checkKeyValue(k.mask, t, ctx);
    });
  }

  checkKeyValue(e: Expr, t: P4Type | undefined, ctx: Ctx): void {
    const vt = this.checkValue(e, ctx);
    if (!vt || !t) return;
    if (this.constValue(e) === undefined) this.error(e.loc, 'a key value must be known at compile time', 'use a literal or a constant');
    else this.convert(e, vt, t, 'literal', 'match');
  }

  // --- expressions --------------------------------------------------------------------------

  /** Checks `e` where a value is needed (not a table, an action, an instance). */
  checkValue(e: Expr, ctx: Ctx): P4Type | undefined {
    const t = this.checkExpr(e, ctx);
    if (t && !isValueType(t)) return this.error(e.loc, `${typeToString(t)} is not a value`, t.kind === 'void' ? 'this call returns nothing' : 'call one of its methods');
    return t;
  }

  checkExpr(e: Expr, ctx: Ctx): P4Type | undefined {
    const t = this.exprType(e, ctx);
    if (t === POISON) return undefined;
    if (t) e.type = t;
    return t;
  }

  private exprType(e: Expr, ctx: Ctx): P4Type | undefined {
    switch (e.kind) {
      case 'bool': return BOOL;
      case 'int': return this.intType(e.value, e.width, e.signed, e.loc);
      case 'name': return this.nameType(e, ctx);
      case 'member': return this.memberType(e, ctx);
      case 'slice': return this.sliceType(e, ctx);
      case 'call': return this.callType(e, ctx);
      case 'binary': return this.binaryType(e, ctx);
      case 'unary': {
        const t = this.checkValue(e.operand, ctx);
        if (!t) return undefined;
        if (e.op === '!' && t.kind !== 'bool') return this.error(e.loc, `! needs a bool, not ${typeToString(t)}`, 'use ~ to invert bits');
        if (e.op === '~' && t.kind !== 'bit' && t.kind !== 'int') return this.error(e.loc, `~ needs bit<N>, not ${typeToString(t)}`, 'use ! for bool');
        return t;
      }
      case 'list': {
        const ts = e.elements.map((x) => this.checkValue(x, ctx));
        return ts.every((t) => t) ? { kind: 'list', elements: ts as P4Type[] } : undefined;
      }
    }
  }

  private intType(value: bigint, width: number | undefined, signed: boolean, loc: Loc): P4Type | undefined {
    if (width === undefined) return INTEGER;
    const t: P4Type = { kind: signed ? 'int' : 'bit', width };
    if (width < 1) return this.error(loc, 'a literal needs a width of at least 1', 'write 1w1, for example');
    // An `s` literal is a bit pattern: 8s255 is -1.
    if (value >= 1n << BigInt(width)) return this.error(loc, `${value} does not fit in ${width} bits`, `use a wider literal or a smaller value`);
    return t;
  }

  private nameType(e: Expr & { kind: 'name' }, ctx: Ctx): P4Type | undefined {
    const b = ctx.scope.lookup(e.name);
    if (!b) {
      const isType = this.headers.has(e.name) || this.structs.has(e.name);
      return this.error(e.loc, isType ? `${e.name} is a type, not a value` : `unknown name ${e.name}`, 'declare it, or check the spelling');
    }
    e.ref = b.ref;
    return b.type;
  }

  private memberType(e: MemberExpr, ctx: Ctx): P4Type | undefined {
    const ot = this.checkExpr(e.object, ctx);
    if (!ot) return undefined;
    const fields = ot.kind === 'header' ? this.headers.get(ot.name)?.fields : ot.kind === 'struct' ? this.structs.get(ot.name)?.fields : undefined;
    if (fields) {
      const f = fields.find((x) => x.name === e.member);
      if (f) return f.type;
      const methods = ot.kind === 'header' && ['isValid', 'setValid', 'setInvalid'].includes(e.member);
      if (methods) return this.error(e.memberLoc, `${e.member} is a method`, `call it: ${e.member}()`);
      return this.error(e.memberLoc, `${typeToString(ot)} has no field ${e.member}`, `use one of: ${fields.map((x) => x.name).join(', ') || '(it has no fields)'}`);
    }
    return this.error(e.memberLoc, `${typeToString(ot)} has no field ${e.member}`, ot.kind === 'extern' || ot.kind === 'table' || ot.kind === 'control' ? `call its method: ${e.member}(...)` : 'only headers and structs have fields');
  }

  private sliceType(e: SliceExpr, ctx: Ctx): P4Type | undefined {
    const ot = this.checkValue(e.object, ctx);
    const hiT = this.checkValue(e.hi, ctx);
    const loT = this.checkValue(e.lo, ctx);
    if (!ot || !hiT || !loT) return undefined;
    if (ot.kind !== 'bit' && ot.kind !== 'int') return this.error(e.loc, `cannot slice ${typeToString(ot)}`, 'slice a bit<N> field');
    const hi = this.constValue(e.hi);
    const lo = this.constValue(e.lo);
    if (typeof hi !== 'bigint' || typeof lo !== 'bigint') {
      return this.error((typeof hi !== 'bigint' ? e.hi : e.lo).loc, 'slice bounds must be integers known at compile time', 'write literals, like x[15:8]');
    }
    if (hi >= BigInt(ot.width) || lo < 0n) return this.error(e.hi.loc, `slice [${hi}:${lo}] is outside ${typeToString(ot)} (bits ${ot.width - 1} to 0)`, 'use bit numbers within the field');
    if (lo > hi) return this.error(e.lo.loc, `slice [${hi}:${lo}] has its low bound above its high bound`, `write [${lo}:${hi}]`);
    e.hiValue = Number(hi);
    e.loValue = Number(lo);
    return { kind: 'bit', width: Number(hi - lo) + 1 };
  }

  private binaryType(e: Expr & { kind: 'binary' }, ctx: Ctx): P4Type | undefined {
    const l = this.checkValue(e.left, ctx);
    const r = this.checkValue(e.right, ctx);
    if (!l || !r) return undefined;
    const bad = (fix: string): undefined => this.error(e.opLoc, `cannot ${VERBS[e.op]} ${typeToString(l)} and ${typeToString(r)}`, fix);
    if (e.op === '&&' || e.op === '||') return l.kind === 'bool' && r.kind === 'bool' ? BOOL : bad(`${e.op} takes two bools`);
    const numeric = (t: P4Type): boolean => t.kind === 'bit' || t.kind === 'int' || t.kind === 'integer';
    if (e.op === '<<' || e.op === '>>') {
      if (!numeric(l) || (r.kind !== 'bit' && r.kind !== 'integer')) return bad('shift a bit<N> value by a bit<M> or a literal amount');
      return l;
    }
    const isEq = e.op === '==' || e.op === '!=';
    const okKind = isEq ? numeric(l) || l.kind === 'bool' : numeric(l);
    if (!okKind) return bad(isEq ? 'compare bit<N>, int<N> or bool values (headers field by field)' : `${e.op} takes bit<N> or int<N> values`);
    if (l.kind === 'integer' && r.kind === 'integer') return ARITH.has(e.op) ? INTEGER : BOOL;
    if (l.kind === 'integer' || r.kind === 'integer') {
      const sized = l.kind === 'integer' ? r : l;
      const lit = l.kind === 'integer' ? e.left : e.right;
      const v = this.constValue(lit);
      if (!('width' in sized)) return bad('use values of the same type');
      return bad(`x4c needs the width on both sides: write ${sized.width}${sized.kind === 'int' ? 's' : 'w'}${typeof v === 'bigint' ? v : '<value>'}`);
    }
    if (!sameType(l, r)) return bad('both sides must have the same type and width (x4c converts none)');
    return ARITH.has(e.op) ? l : BOOL;
  }

  // --- calls --------------------------------------------------------------------------------

  private callType(e: CallExpr, ctx: Ctx): P4Type | undefined {
    const callee = e.callee;
    if (callee.kind === 'name') return this.actionCallType(e, callee, ctx);
    if (callee.kind !== 'member') {
      e.args.forEach((a) => this.checkExpr(a, ctx));
      return this.error(callee.loc, 'this cannot be called', 'call an action, a method of a header, an extern, a table or a control instance');
    }
    const ot = this.checkExpr(callee.object, ctx);
    if (!ot) {
      e.args.forEach((a) => this.checkExpr(a, ctx));
      return undefined;
    }
    const m = callee.member;
    if (ot.kind === 'header' && (m === 'isValid' || m === 'setValid' || m === 'setInvalid')) {
      this.noTypeArgs(e);
      this.argCount(e, 0, `${m}()`);
      if (m !== 'isValid') this.assignable(callee.object, ctx, `call ${m}() on`);
      e.target = { kind: m, object: callee.object };
      return m === 'isValid' ? BOOL : VOID;
    }
    if (ot.kind === 'extern') return this.externCallType(e, callee, ot.name, ctx);
    if ((ot.kind === 'table' || ot.kind === 'control') && m === 'apply') return this.applyType(e, callee, ot, ctx);
    e.args.forEach((a) => this.checkExpr(a, ctx));
    const fix = ot.kind === 'header' ? 'headers have isValid(), setValid() and setInvalid()' : ot.kind === 'table' || ot.kind === 'control' ? 'call apply()' : 'only headers, externs, tables and control instances have methods';
    return this.error(callee.memberLoc, `${typeToString(ot)} has no method ${m}${ot.kind === 'table' && m === 'hit' ? ' (x4c has no .hit)' : ''}`, fix);
  }

  noTypeArgs(e: CallExpr): void {
    if (e.typeArgs.length) this.error(e.typeArgs[0]!.loc, 'this call takes no type arguments', 'remove the <...>');
  }

  argCount(e: CallExpr, n: number, what: string): boolean {
    if (e.args.length === n) return true;
    this.error(e.args[n]?.loc ?? e.loc, `${what} takes ${n} argument${n === 1 ? '' : 's'}, ${e.args.length} given`, `pass ${n}`);
    return false;
  }

  private actionCallType(e: CallExpr, callee: Expr & { kind: 'name' }, ctx: Ctx): P4Type | undefined {
    const t = this.checkExpr(callee, ctx);
    if (!t) {
      e.args.forEach((a) => this.checkExpr(a, ctx));
      return undefined;
    }
    if (callee.ref?.kind !== 'action') {
      e.args.forEach((a) => this.checkExpr(a, ctx));
      return this.error(callee.loc, `${callee.name} is not an action`, callee.ref?.kind === 'table' || callee.ref?.kind === 'instance' ? `write ${callee.name}.apply()` : 'call an action of this control');
    }
    if (ctx.where === 'parser') return this.error(callee.loc, 'a parser cannot call actions', 'move the work into the state');
    this.noTypeArgs(e);
    const action = callee.ref.decl;
    e.target = { kind: 'action', action };
    this.checkArgs(e, action.params.map((p) => ({ name: p.name, direction: p.direction, type: p.resolved ?? VOID, decl: p })), `action ${action.name}`, ctx, 'literal');
    return VOID;
  }

  /** Checks call arguments against parameters; out/inout arguments must be writable. */
  checkArgs(e: CallExpr, params: ResolvedParam[], what: string, ctx: Ctx, mode: Conversion): Map<string, P4Type> {
    const bound = new Map<string, P4Type>();
    const types = e.args.map((a) => this.checkValue(a, ctx));
    if (!this.argCount(e, params.length, what)) return bound;
    params.forEach((p, i) => {
      const a = e.args[i]!;
      const t = types[i];
      if (!t) return;
      if (p.direction === 'out' || p.direction === 'inout') this.assignable(a, ctx, `pass as ${p.direction} parameter ${p.name}`);
      if (p.type.kind === 'typeParam') bound.set(p.type.name, t);
      else this.convert(a, t, p.type, mode, `pass`);
    });
    return bound;
  }

  private externCallType(e: CallExpr, callee: MemberExpr, extName: string, ctx: Ctx): P4Type | undefined {
    const ext = this.externs.get(extName)!;
    const candidates = ext.methods.filter((m) => m.name === callee.member);
    const method = candidates.find((m) => m.params.length === e.args.length) ?? candidates[0];
    if (!method) {
      e.args.forEach((a) => this.checkExpr(a, ctx));
      return this.error(callee.memberLoc, `extern ${extName} has no method ${callee.member}`, `use one of: ${[...new Set(ext.methods.map((m) => m.name))].join(', ')}`);
    }
    e.target = { kind: 'extern', extern: extName, method, object: callee.object };
    const bound = this.checkArgs(e, this.externParams(ext, method), `${extName}.${method.name}`, ctx, 'literal');
    if (extName === 'packet_in' && method.name === 'extract' && e.args[0]?.type && e.args[0].type.kind !== 'header') {
      this.error(e.args[0].loc, `extract takes a header, not ${typeToString(e.args[0].type)}`, 'pass a header, like hdr.ethernet');
    }
    if (e.typeArgs.length > method.typeParams.length) this.error(e.typeArgs[0]!.loc, `${method.name} takes ${method.typeParams.length} type arguments`, 'remove the extra ones');
    e.typeArgs.forEach((ta, i) => {
      const t = this.resolveType(ta);
      if (t && method.typeParams[i]) bound.set(method.typeParams[i]!, t);
    });
    const ret = this.resolveType(method.returnType, new Set(method.typeParams));
    if (ret?.kind !== 'typeParam') return ret;
    const t = bound.get(ret.name);
    return t ?? this.error(e.loc, `the type ${ret.name} of ${method.name}'s result is not known`, `give it: ${method.name}<type>(...)`);
  }

  private applyType(e: CallExpr, callee: MemberExpr, ot: P4Type & { kind: 'table' | 'control' }, ctx: Ctx): P4Type | undefined {
    this.noTypeArgs(e);
    const where = ctx.where === 'action' ? 'an action' : ctx.where === 'parser' ? 'a parser' : undefined;
    if (where) {
      e.args.forEach((a) => this.checkExpr(a, ctx));
      return this.error(callee.loc, `cannot apply a ${ot.kind} within ${where}`, 'apply it in the control\'s apply block');
    }
    const ref = callee.object.kind === 'name' ? callee.object.ref : undefined;
    if (ot.kind === 'table') {
      if (ref?.kind !== 'table') return this.error(callee.loc, 'apply a table by its name', `write ${ot.name}.apply()`);
      this.argCount(e, 0, `${ot.name}.apply()`);
      e.target = { kind: 'table', table: ref.decl, object: callee.object };
      return VOID;
    }
    const control = this.controls.get(ot.name);
    if (ref?.kind !== 'instance' || !control) return this.error(callee.loc, 'apply a control instance by its name', 'declare one: name() inst; then inst.apply(...)');
    e.target = { kind: 'control', control: control.decl, instance: ref.decl, object: callee.object };
    this.checkArgs(e, control.params, `control ${control.name}`, ctx, 'exact');
    return VOID;
  }
}

/** The control's names an apply block, an action and a table see. */
export function controlScope(checker: BodyChecker, parent: Scope, info: ControlInfo, actions: Map<string, ActionDecl>, d: ControlDecl): Scope {
  const scope = new Scope(parent);
  for (const p of info.params) checker.declare(scope, p.name, p.decl.loc, { ref: { kind: 'param', decl: p.decl }, type: p.type });
  for (const [name, a] of actions) checker.declare(scope, name, a.loc, { ref: { kind: 'action', decl: a }, type: { kind: 'action', name } });
  for (const t of d.body?.tables ?? []) {
    checker.declare(scope, t.name, t.loc, { ref: { kind: 'table', decl: t }, type: { kind: 'table', control: d.name, name: t.name } });
  }
  return scope;
}
