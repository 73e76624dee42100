/**
 * The parser to JavaScript: a loop over a state number, each state a `case`. `accept`
 * leaves the loop, `reject` (and a state that ends without a transition, and an extract
 * past the end of the frame) returns no output. A select is an if-chain on its values.
 */
import type { Expr, KeysetElement, TransitionStmt } from '../ast.js';
import type { ParserInfo } from '../checked.js';
import { Scope, type Gen } from './context.js';
import { isWideType, value, wide, constBytes } from './expr.js';
import { block } from './stmt.js';
import { compileError, REJECT, typeWidth, type Node } from './storage.js';

function target(state: string, index: Map<string, number>, loc: Expr['loc']): string {
  if (state === 'accept') return 'break parse;';
  if (state === 'reject') return REJECT;
  const i = index.get(state);
  if (i === undefined) return compileError(loc, `there is no state ${state}`);
  return `st = ${i}; continue parse;`;
}

function caseCond(g: Gen, k: KeysetElement, sel: { name: string; expr: Expr }): string {
  if (k.kind === 'default' || k.kind === 'dontcare') return 'true';
  const w = typeWidth(sel.expr.type) ?? 32;
  if (isWideType(sel.expr.type)) {
    if (k.kind !== 'value' || k.value.kind !== 'int') return compileError(k.loc, 'select on a wide value takes integer cases');
    const c = constBytes(g, k.value.value, Math.ceil(w / 8));
    return `eqb(${sel.name}.arr, ${sel.name}.off, ${c}, 0, ${Math.ceil(w / 8)})`;
  }
  const num = (e: Expr) => (e.kind === 'int' ? String(Number(BigInt.asUintN(w, e.value))) : e.kind === 'name' && e.ref?.kind === 'const' ? String(Number(BigInt.asUintN(w, BigInt(e.ref.value as bigint)))) : compileError(e.loc, 'select cases take constants'));
  if (k.kind === 'value') return `${sel.name} === ${num(k.value)}`;
  const m = num(k.mask);
  if (w > 32) return `and48(${sel.name}, ${m}) === and48(${num(k.value)}, ${m})`;
  return `((${sel.name} & ${m}) >>> 0) === ((${num(k.value)} & ${m}) >>> 0)`;
}

function transition(g: Gen, s: TransitionStmt, sc: Scope, index: Map<string, number>): string {
  const n = s.next;
  if (n.kind === 'state') return target(n.name, index, n.loc);
  const sels = n.exprs.map((e) => {
    const name = g.fresh('s');
    if (isWideType(e.type)) {
      const w = wide(g, e, sc);
      return { name, expr: e, decl: `const ${name} = { arr: ${w.arr}, off: ${w.off} };` };
    }
    return { name, expr: e, decl: `const ${name} = ${value(g, e, sc).code};` };
  });
  const out = [`{`, ...sels.map((x) => x.decl)];
  for (const c of n.cases) {
    const conds = c.keys.length === 1 && sels.length > 1 && (c.keys[0]!.kind === 'default' || c.keys[0]!.kind === 'dontcare') ? ['true'] : c.keys.map((k, i) => caseCond(g, k, sels[i]!));
    out.push(`if (${conds.join(' && ')}) { ${target(c.state, index, c.stateLoc)} }`);
  }
  out.push(REJECT, '}');
  return out.join('\n');
}

/** The parser's code, run inside `process` (locals frame, len, cur, cp, pe are in scope). */
export function parserCode(g: Gen, p: ParserInfo, bindings: Node[]): string {
  const sc = new Scope(undefined, undefined, undefined, true);
  const params = p.decl.params;
  sc.bind(params[0]!, { kind: 'pkt' });
  params.slice(1).forEach((q, i) => sc.bind(q, bindings[i]!));
  const names = [...p.states.keys()];
  if (!p.states.has('start')) return compileError(p.decl.loc, `parser ${p.name} has no start state`);
  names.sort((a, b) => (a === 'start' ? -1 : b === 'start' ? 1 : 0));
  const index = new Map(names.map((n, i) => [n, i]));
  g.transition = (s, scope) => transition(g, s, scope, index);
  const cases = names.map((n, i) => `case ${i}: {\n${block(g, p.states.get(n)!.body, sc)}\n}\n${REJECT}`);
  g.transition = undefined;
  return `let st = 0, guard = 0;\nparse: for (;;) {\nif (++guard > 1024) ${REJECT}\nswitch (st) {\n${cases.join('\n')}\ndefault: ${REJECT}\n}\n}`;
}
