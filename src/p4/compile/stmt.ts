/**
 * Statements, action calls, table applies and control applies to JavaScript. Actions and
 * nested controls are inlined in labelled blocks (`return` breaks out of the block), with
 * their parameters bound to the caller's storage (inout/out by reference, as x4c passes
 * them) or to temporaries holding the argument values.
 */
import type { ActionDecl, Block, CallExpr, Expr, IfStmt, Param, Statement } from '../ast.js';
import type { ActionInfo, ControlInfo } from '../checked.js';
import { Scope, type Binding, type Gen } from './context.js';
import { assignTo, at, isNodeValue, isWideType, resolve, value, wide, wrapTo } from './expr.js';
import { compileError, NUMBER_BITS, REJECT, typeWidth, type VarNode } from './storage.js';
import { tableApply } from './table.js';

export function block(g: Gen, b: Block, sc: Scope): string {
  const inner = sc.child();
  return b.statements.map((s) => statement(g, s, inner)).join('\n');
}

export function statement(g: Gen, s: Statement, sc: Scope): string {
  switch (s.kind) {
    case 'block': return `{\n${block(g, s, sc)}\n}`;
    case 'assign': return assignTo(g, resolve(s.target, sc) as never, s.value, sc);
    case 'if': return ifStmt(g, s, sc);
    case 'return':
      if (!sc.returnLabel) return compileError(s.loc, 'return outside an action or control');
      return `break ${sc.returnLabel};`;
    case 'var': return varDecl(g, s, sc);
    case 'const': {
      const b = newVar(g, s.resolved ?? s.value.type!, sc, s, s.name);
      return b.decl + (b.node.kind === 'var' ? ` ${assignTo(g, b.node, s.value, sc)}` : '');
    }
    case 'call': return callStmt(g, s.call, sc);
    case 'transition':
      if (!g.transition || !sc.parser) return compileError(s.loc, 'transition outside a parser state');
      return g.transition(s, sc);
  }
}

function ifStmt(g: Gen, s: IfStmt, sc: Scope): string {
  const cond = value(g, s.cond, sc).code;
  let out = `if (${cond}) {\n${block(g, s.then, sc)}\n}`;
  if (s.otherwise) out += s.otherwise.kind === 'if' ? ` else ${ifStmt(g, s.otherwise, sc)}` : ` else {\n${block(g, s.otherwise, sc)}\n}`;
  return out;
}

/** Declares a variable of type `t` (JS local, or W storage for headers and structs) bound to `decl`. */
function newVar(g: Gen, t: NonNullable<Expr['type']>, sc: Scope, decl: object, name: string): { decl: string; node: Binding } {
  if (t.kind === 'header' || t.kind === 'struct') {
    const node = g.storage.aggregate(t, name, (decl as { loc: never }).loc);
    sc.bind(decl, node);
    return { decl: zeroAggregate(g, node), node };
  }
  const w = typeWidth(t);
  if (w === undefined) return compileError((decl as { loc: never }).loc, `variables of type ${t.kind} are not supported`);
  const js = g.fresh(`v_${name}_`);
  const bool = t.kind === 'bool';
  const node: VarNode = { kind: 'var', js, width: w, bool };
  sc.bind(decl, node);
  if (!bool && w > NUMBER_BITS) return { decl: `const ${js} = new Uint8Array(${Math.ceil(w / 8)});`, node };
  return { decl: `let ${js} = ${bool ? 'false' : '0'};`, node };
}

function zeroAggregate(g: Gen, n: Binding): string {
  if (n.kind === 'header') {
    const slot = g.storage.headers[n.h]!.slot;
    return `hv[${n.h}] = 0; ho[${n.h}] = ${slot}; W.fill(0, ${slot}, ${slot + n.layout.bytes});`;
  }
  if (n.kind === 'struct') return [...n.members.values()].map((m) => zeroAggregate(g, m)).join(' ');
  if (n.kind === 'loc') return `W.fill(0, ${n.base}, ${at(n.base, Math.ceil((n.bit + n.width) / 8))});`;
  return '';
}

function varDecl(g: Gen, s: Statement & { kind: 'var' }, sc: Scope): string {
  const t = s.resolved;
  if (!t) return compileError(s.loc, `the type of ${s.name} was not resolved by the checker`);
  const v = newVar(g, t, sc, s, s.name);
  return s.init ? `${v.decl} ${assignTo(g, v.node as never, s.init, sc)}` : v.decl;
}

function callStmt(g: Gen, c: CallExpr, sc: Scope): string {
  const t = c.target;
  if (!t) return compileError(c.loc, 'this call was not resolved by the checker');
  switch (t.kind) {
    case 'setValid': case 'setInvalid': {
      const h = resolve(t.object, sc);
      if (h.kind !== 'header') return compileError(c.loc, `${t.kind}() of something that is not a header`);
      return `hv[${h.h}] = ${t.kind === 'setValid' ? 1 : 0};`;
    }
    case 'isValid': return '';
    case 'action': return actionCall(g, sc, actionInfo(sc, t.action, c), c.args);
    case 'table': {
      const ctl = sc.control!;
      return tableApply(g, sc, ctl.info.tables.get(t.table.name)!, [...ctl.path, t.table.name].join('.'), { call: actionCall, fromEntry: actionFromEntry });
    }
    case 'control': return controlApply(g, c, sc);
    case 'extern':
      if (t.extern === 'packet_in') return packetCall(g, c, t.method.name, sc);
      if (t.extern === 'Checksum') return `${value(g, c, sc).code};`;
      return compileError(c.loc, `extern ${t.extern} is not supported`);
  }
}

function actionInfo(sc: Scope, a: ActionDecl, c: CallExpr): ActionInfo {
  const info = [...(sc.control?.info.actions.values() ?? [])].find((x) => x.decl === a);
  if (!info) return compileError(c.loc, `action ${a.name} is not an action of this control`);
  return info;
}

/** Binds a callee's parameter to an argument: by reference when it is an lvalue, else to a temporary. */
function bindParam(g: Gen, callee: Scope, caller: Scope, p: Param, arg: Expr, pre: string[]): void {
  const t = p.resolved;
  if (t && (t.kind === 'header' || t.kind === 'struct')) {
    callee.bind(p, resolve(arg, caller) as Binding);
    return;
  }
  if (arg.kind === 'name' || arg.kind === 'member' || arg.kind === 'slice') {
    const r = resolve(arg, caller);
    if (isNodeValue(r) && (p.direction !== 'none' || r.kind === 'var')) {
      callee.bind(p, r);
      return;
    }
  }
  const w = typeWidth(t) ?? 1;
  const bool = t?.kind === 'bool';
  const js = g.fresh(`a_${p.name}_`);
  const node: VarNode = { kind: 'var', js, width: w, bool };
  if (isWideType(t)) {
    const s = wide(g, arg, caller);
    pre.push(`const ${js} = ${s.arr}.subarray(${s.off}, ${at(s.off, s.n)});`);
  } else {
    const v = value(g, arg, caller);
    pre.push(`let ${js} = ${bool ? v.code : wrapTo(v.code, v.width === undefined || v.width > w ? w : undefined)};`);
  }
  callee.bind(p, node);
}

/** An action inlined with its arguments (expressions in the caller's scope). */
export function actionCall(g: Gen, sc: Scope, a: ActionInfo, args: Expr[]): string {
  if (a.builtin) return '';
  const label = g.fresh('A');
  const inner = sc.child(label);
  const pre: string[] = [];
  a.decl.params.forEach((p, i) => bindParam(g, inner, sc, p, args[i]!, pre));
  return `${label}: {\n${pre.join('\n')}\n${block(g, a.decl.body, inner)}\n}`;
}

/** An action inlined with table data: directionless params read `entry.p[i]`. */
export function actionFromEntry(g: Gen, sc: Scope, a: ActionInfo, entry: string): string {
  if (a.builtin) return '';
  const label = g.fresh('A');
  const inner = sc.child(label);
  let i = 0;
  for (const p of a.decl.params) {
    if (p.direction !== 'none') return compileError(p.loc, `action ${a.name} is used by a table, so its parameters must be table data (no direction)`);
    const t = p.resolved;
    const node: VarNode = { kind: 'var', js: `${entry}.p[${i++}]`, width: typeWidth(t) ?? 1, bool: t?.kind === 'bool', readonly: true };
    inner.bind(p, node);
  }
  return `${label}: {\n${block(g, a.decl.body, inner)}\n}`;
}

/** Binds a control's instances (nested controls, Checksum) and locals in a new scope. */
export function enterControl(g: Gen, info: ControlInfo, path: string[], parent: Scope | undefined, label: string): { sc: Scope; pre: string[] } {
  const sc = new Scope(parent, { info, path }, label);
  const pre: string[] = [];
  for (const inst of info.instances.values()) {
    if (inst.kind === 'control') sc.bind(inst.decl, { kind: 'control', info: g.checked.controls.get(inst.typeName)!, path: [...path, inst.name], inst });
    else if (inst.typeName === 'Checksum') sc.bind(inst.decl, { kind: 'checksum' });
    else compileError(inst.decl.loc, `extern ${inst.typeName} is not supported`);
  }
  for (const v of info.variables.values()) pre.push(statement(g, v, sc));
  return { sc, pre };
}

function controlApply(g: Gen, c: CallExpr, sc: Scope): string {
  const t = c.target as { kind: 'control'; instance: object };
  const b = sc.get(t.instance);
  if (!b || b.kind !== 'control') return compileError(c.loc, 'this control instance has no binding');
  if (b.path.length > 32) return compileError(c.loc, `controls nested more than 32 deep (${b.path.slice(0, 4).join('.')}...): does a control apply itself?`, 'remove the cycle');
  const label = g.fresh('C');
  const { sc: inner, pre } = enterControl(g, b.info, b.path, sc, label);
  const args: string[] = [];
  b.info.decl.params.forEach((p, i) => bindParam(g, inner, sc, p, c.args[i]!, args));
  const body = b.info.decl.body?.apply;
  return `${label}: {\n${args.join('\n')}\n${pre.join('\n')}\n${body ? block(g, body, inner) : ''}\n}`;
}

function packetCall(g: Gen, c: CallExpr, method: string, sc: Scope): string {
  if (!sc.parser) return compileError(c.loc, `packet_in.${method}() outside the parser`);
  if (method === 'extract') {
    const h = resolve(c.args[0]!, sc);
    if (h.kind !== 'header') return compileError(c.loc, 'extract() of something that is not a header');
    const n = h.layout.bytes;
    return `if (cur + ${n} > len) ${REJECT} if (cur + ${n} > cp) cp = more(frame, cur + ${n}, cp); ho[${h.h}] = BASE + cur; hv[${h.h}] = 1; cur += ${n}; pe = cur;`;
  }
  if (method === 'advance') return `cur += (${value(g, c.args[0]!, sc).code}) >>> 3; if (cur > len) ${REJECT}`;
  return compileError(c.loc, `packet_in.${method}() is not supported as a statement`);
}
