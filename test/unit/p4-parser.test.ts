import { describe, expect, it } from 'vitest';
import type { BinaryExpr, ControlDecl, Declaration, Expr, IfStmt, ParserDecl, TransitionStmt } from '../../src/p4/ast.js';
import { P4Error } from '../../src/p4/errors.js';
import { parseP4 } from '../../src/p4/index.js';

const FILE = '/t/main.p4';

function parse(src: string): Declaration[] {
  return parseP4(FILE, { readFile: (p) => (p === FILE ? src : (() => { throw new Error('ENOENT'); })()), bundledIncludeDir: '/none' }).declarations;
}

/** The line and column where `marker` first occurs in `src`. */
function at(src: string, marker: string): { line: number; col: number } {
  const i = src.indexOf(marker);
  if (i < 0) throw new Error(`no ${marker}`);
  const before = src.slice(0, i).split('\n');
  return { line: before.length, col: before.at(-1)!.length + 1 };
}

/** The single syntax problem reported for `src`. */
function syntaxError(src: string): { line: number; col: number; message: string; fix: string } {
  try {
    parse(src);
  } catch (e) {
    if (!(e instanceof P4Error)) throw e;
    expect(e.code).toBe('P4_SYNTAX');
    expect(e.diagnostics).toHaveLength(1);
    return e.diagnostics[0]!;
  }
  throw new Error('expected a syntax error');
}

/** Strips locations and checker fields so shapes compare readably. */
function shape(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(shape);
  if (typeof x !== 'object' || x === null) return x;
  return Object.fromEntries(Object.entries(x).filter(([k]) => !['loc', 'opLoc', 'memberLoc', 'stateLoc', 'typeLoc'].includes(k)).map(([k, v]) => [k, shape(v)]));
}

const control = (src: string): ControlDecl => parse(src).find((d): d is ControlDecl => d.kind === 'control')!;
const applyStmts = (body: string) => control(`control c(inout h_t h) { apply { ${body} } }`).body!.apply!.statements;
const expr = (src: string): Expr => (applyStmts(`x = ${src};`)[0] as { value: Expr }).value;

describe('p4 parser: declarations', () => {
  it('parses headers, structs, typedefs and constants, with types and positions', () => {
    const src = 'typedef bit<128> addr_t;\nheader eth_h {\n  bit<48> dst;\n  varbit<320> opts;\n  bit flag;\n}\nstruct s_t { eth_h e; bool b; addr_t a; int<8> i; }\nconst bit<16> ETH = 16w0x0800;\nconst int N = 4;';
    const d = parse(src);
    expect(shape(d)).toEqual([
      { kind: 'typedef', name: 'addr_t', type: { kind: 'bit', width: 128 } },
      { kind: 'header', name: 'eth_h', fields: [
        { name: 'dst', type: { kind: 'bit', width: 48 } }, { name: 'opts', type: { kind: 'varbit', width: 320 } }, { name: 'flag', type: { kind: 'bit', width: 1 } },
      ] },
      { kind: 'struct', name: 's_t', fields: [
        { name: 'e', type: { kind: 'named', name: 'eth_h', typeArgs: [] } }, { name: 'b', type: { kind: 'bool' } },
        { name: 'a', type: { kind: 'named', name: 'addr_t', typeArgs: [] } }, { name: 'i', type: { kind: 'int', width: 8 } },
      ] },
      { kind: 'const', name: 'ETH', type: { kind: 'bit', width: 16 }, value: { kind: 'int', value: 0x800n, width: 16, signed: false } },
      { kind: 'const', name: 'N', type: { kind: 'int' }, value: { kind: 'int', value: 4n, signed: false } },
    ]);
    expect(d[1]!.loc).toEqual({ file: FILE, line: 2, col: 1 });
    expect((d[1] as { fields: { loc: unknown }[] }).fields[1]!.loc).toEqual({ file: FILE, ...at(src, 'opts') });
  });

  it('parses extern objects with generic and overloaded methods', () => {
    const d = parse('extern packet_in {\n void extract<T>(out T h);\n void extract<T>(out T h, in bit<32> n);\n T lookahead<T>();\n void advance(bit<32> bits);\n}');
    expect(shape(d[0])).toMatchObject({
      kind: 'extern', name: 'packet_in',
      methods: [
        { name: 'extract', typeParams: ['T'], returnType: { kind: 'void' }, params: [{ direction: 'out', name: 'h', type: { kind: 'named', name: 'T' } }] },
        { name: 'extract', params: [{ direction: 'out' }, { direction: 'in', type: { kind: 'bit', width: 32 } }] },
        { name: 'lookahead', returnType: { kind: 'named', name: 'T' } },
        { name: 'advance', params: [{ direction: 'none' }] },
      ],
    });
  });

  it('parses parser and control declarations without bodies, packages and the package instance (trailing commas too)', () => {
    const d = parse('parser P<H>(packet_in p, out H h);\ncontrol C<H>(inout H h,);\npackage Pkg<H>(P<H> p, C<H> c);\nSoftNPU(parse(), ingress(), egress(),) main;');
    expect(shape(d)).toEqual([
      { kind: 'parser', name: 'P', typeParams: ['H'], params: [
        { direction: 'none', type: { kind: 'named', name: 'packet_in', typeArgs: [] }, name: 'p' },
        { direction: 'out', type: { kind: 'named', name: 'H', typeArgs: [] }, name: 'h' },
      ] },
      { kind: 'control', name: 'C', typeParams: ['H'], params: [{ direction: 'inout', type: { kind: 'named', name: 'H', typeArgs: [] }, name: 'h' }] },
      { kind: 'package', name: 'Pkg', typeParams: ['H'], params: [
        { type: { kind: 'named', name: 'P', typeArgs: [{ kind: 'named', name: 'H', typeArgs: [] }] }, name: 'p' },
        { type: { kind: 'named', name: 'C', typeArgs: [{ kind: 'named', name: 'H', typeArgs: [] }] }, name: 'c' },
      ] },
      { kind: 'packageInstance', typeName: 'SoftNPU', args: [{ name: 'parse' }, { name: 'ingress' }, { name: 'egress' }], name: 'main' },
    ]);
  });

  it('parses parser states with extract, if, transition and select (values, masks, tuples, _ and default)', () => {
    const src = `parser p(packet_in pkt, out h_t h) {
  state start {
    pkt.extract(h.eth);
    if (h.eth.t == 16w0x0901) { transition sc; }
    transition select(h.eth.t, h.eth.u) {
      (16w0x0800, _): v4;
      (16w0x8100 &&& 16w0xff00, 8w1): vlan;
      default: accept;
    }
  }
  state v4 { transition select(h.x) { 1: accept; _: reject; } }
}`;
    const p = parse(src)[0] as ParserDecl;
    expect(p.states!.map((s) => s.name)).toEqual(['start', 'v4']);
    const start = p.states![0]!.body.statements;
    expect(shape(start[0])).toMatchObject({ kind: 'call', call: { callee: { kind: 'member', member: 'extract', object: { kind: 'name', name: 'pkt' } }, args: [{ kind: 'member', member: 'eth' }] } });
    expect(shape((start[1] as IfStmt).then.statements[0])).toEqual({ kind: 'transition', next: { kind: 'state', name: 'sc' } });
    const sel = (start[2] as TransitionStmt).next;
    expect(sel.kind).toBe('select');
    if (sel.kind !== 'select') return;
    expect(sel.exprs).toHaveLength(2);
    expect(shape(sel.cases.map((c) => [c.keys.map((k) => k.kind), c.state]))).toEqual([[['value', 'dontcare'], 'v4'], [['mask', 'value'], 'vlan'], [['default'], 'accept']]);
    expect(sel.cases[1]!.stateLoc).toEqual({ file: FILE, ...at(src, 'vlan;') });
    const v4 = (p.states![1]!.body.statements[0] as TransitionStmt).next;
    expect(v4.kind === 'select' && v4.cases.map((c) => c.keys[0]!.kind)).toEqual(['value', 'dontcare']);
  });

  it('parses a control: instances, variables, constants, actions, tables with every property, and apply', () => {
    const c = control(`control ingress(inout h_t hdr, inout egress_metadata_t egress) {
  Checksum() csum;
  router() r;
  bit<16> scratch;
  const bit<8> K = 8w3;
  action fwd(bit<16> port) { egress.port = port; }
  table t {
    key = { hdr.ipv4.dst: lpm; hdr.x: exact; hdr.y[7:0]: ternary; hdr.z: range; }
    actions = { fwd; drop; }
    default_action = fwd(16w1);
    size = 1024;
    const entries = {
      (32w0x0a000000 &&& 32w0xff000000, 1, _, 5): fwd(16w2);
      (32w1, 2, 8w1 &&& 8w1, 6): drop();
    }
  }
  apply { t.apply(); r.apply(hdr, egress); }
}`);
    const b = c.body!;
    expect(shape(b.locals)).toEqual([
      { kind: 'instance', typeName: 'Checksum', args: [], name: 'csum' },
      { kind: 'instance', typeName: 'router', args: [], name: 'r' },
      { kind: 'var', name: 'scratch', type: { kind: 'bit', width: 16 } },
      { kind: 'const', name: 'K', type: { kind: 'bit', width: 8 }, value: { kind: 'int', value: 3n, width: 8, signed: false } },
    ]);
    expect(b.actions.map((a) => [a.name, a.params.map((p) => p.name)])).toEqual([['fwd', ['port']]]);
    const t = b.tables[0]!;
    expect(t.keys.map((k) => [k.expr.kind, k.matchKind])).toEqual([['member', 'lpm'], ['member', 'exact'], ['slice', 'ternary'], ['member', 'range']]);
    expect(t.actions.map((a) => a.name)).toEqual(['fwd', 'drop']);
    expect(shape(t.defaultAction)).toEqual({ name: 'fwd', args: [{ kind: 'int', value: 1n, width: 16, signed: false }] });
    expect(t.size).toMatchObject({ value: 1024 });
    expect(t.entries!.map((e) => [e.keys.map((k) => k.kind), e.action.name, e.action.args.length])).toEqual([
      [['mask', 'value', 'dontcare', 'value'], 'fwd', 1], [['value', 'value', 'mask', 'value'], 'drop', 0],
    ]);
    expect(b.apply!.statements).toHaveLength(2);
  });

  it('parses a single-key entry with a mask, and default_action without parentheses', () => {
    const t = control('control c() { table t { key = { a: lpm; } actions = { f; } default_action = NoAction; const entries = { 128w1 &&& 128w0xff : f(16w1); } } apply {} }').body!.tables[0]!;
    expect(t.entries![0]!.keys.map((k) => k.kind)).toEqual(['mask']);
    expect(shape(t.defaultAction)).toEqual({ name: 'NoAction', args: [] });
  });
});

describe('p4 parser: statements and expressions', () => {
  it('parses variables, assignments to fields and slices, calls, if / else if / else and return', () => {
    const s = applyStmts('bit<16> a = 16w1; headers_t copy; const bool B = true; h.x[7:0] = 8w1; h.y = h.z; h.v.setValid(); if (a == 16w1) { return; } else if (B) { h.y = 2; } else { f(); }');
    expect(s.map((x) => x.kind)).toEqual(['var', 'var', 'const', 'assign', 'assign', 'call', 'if']);
    expect(shape(s[1])).toEqual({ kind: 'var', name: 'copy', type: { kind: 'named', name: 'headers_t', typeArgs: [] } });
    expect(shape((s[3] as { target: unknown }).target)).toMatchObject({ kind: 'slice', hi: { value: 7n }, lo: { value: 0n } });
    const ifs = s[6] as IfStmt;
    expect(ifs.then.statements[0]!.kind).toBe('return');
    expect(ifs.otherwise?.kind).toBe('if');
    expect((ifs.otherwise as IfStmt).otherwise?.kind).toBe('block');
  });

  it('follows P4-16 precedence, left to right, with parentheses', () => {
    const show = (x: Expr): string => x.kind === 'binary' ? `(${show(x.left)} ${x.op} ${show(x.right)})` : x.kind === 'unary' ? `${x.op}${show(x.operand)}` : x.kind === 'name' ? x.name : '?';
    expect(show(expr('a == b && c != d || !e && f < g'))).toBe('(((a == b) && (c != d)) || (!e && (f < g)))');
    expect(show(expr('a + b + c'))).toBe('((a + b) + c)');
    expect(show(expr('(a - b) - c'))).toBe('((a - b) - c)');
    expect(show(expr('a - (b - c)'))).toBe('(a - (b - c))');
    expect(show(expr('((a & m) == v)'))).toBe('((a & m) == v)');
    expect(show(expr('((a << b) >> (c % d)) ^ ~e'))).toBe('(((a << b) >> (c % d)) ^ ~e)');
  });

  it('refuses an operator chain that x4c (right to left, no precedence) would read otherwise', () => {
    const src = 'control c() { apply { x = a - b - c; } }';
    expect(syntaxError(src)).toMatchObject({
      ...at(src, '- c'),
      message: 'x4c groups a chain of operators from the right without precedence (a - b - c is a - (b - c) there), so - - here is ambiguous',
    });
    const src2 = 'control c() { apply { if (a & m == v) {} } }';
    expect(syntaxError(src2)).toMatchObject({ ...at(src2, '=='), message: expect.stringContaining('so & == here') });
  });

  it('keeps the operator\'s position and each member\'s position', () => {
    const src = 'control c() { apply { x = hdr.ipv4.ttl + 8w1; } }';
    const e = (control(src).body!.apply!.statements[0] as { value: BinaryExpr }).value;
    expect(e.opLoc).toEqual({ file: FILE, ...at(src, '+') });
    expect(e.loc).toEqual({ file: FILE, ...at(src, 'hdr') });
    expect(e.left.kind === 'member' && e.left.memberLoc).toEqual({ file: FILE, ...at(src, 'ttl') });
  });

  it('parses generic calls, lists, table apply and boolean literals', () => {
    expect(shape(expr('pkt.lookahead<bit<16>>()'))).toMatchObject({ kind: 'call', typeArgs: [{ kind: 'bit', width: 16 }], args: [] });
    expect(shape(expr('a < b'))).toMatchObject({ kind: 'binary', op: '<' });
    expect(shape(expr('csum.run({h.a, h.b, 16w1,})'))).toMatchObject({ kind: 'call', args: [{ kind: 'list', elements: [{}, {}, {}] }] });
    expect(shape(expr('true'))).toEqual({ kind: 'bool', value: true });
    expect(shape(applyStmts('t.apply();')[0])).toMatchObject({ kind: 'call', call: { callee: { kind: 'member', member: 'apply' } } });
  });
});

describe('p4 parser: errors, at the first problem', () => {
  const cases: [string, string, string, string][] = [
    ['a missing semicolon', 'header h { bit<8> a }', '}', "found '}', expected ';' after the field"],
    ['a width that is not a literal', 'const bit<muffin> X = 1;', 'muffin', 'the width of bit<...> must be an integer literal, found identifier muffin'],
    ['a keyword as a name', 'header h { bit<8> key; }', 'key', 'key is a keyword in x4c and cannot be used as a field name'],
    ['a header stack', 'struct s { h_t[4] hs; }', '[', 'x4c does not support header stacks'],
    ['exit', 'control c() { apply { exit; } }', 'exit', 'x4c has no exit statement'],
    ['a cast', 'control c() { apply { x = (bit<8>) y; } }', '(bit', 'x4c has no casts'],
    ['multiplication', 'control c() { apply { x = a * b; } }', '*', 'x4c has no multiplication'],
    ['concatenation', 'control c() { apply { x = a ++ b; } }', '++', 'x4c has no ++ (bit concatenation)'],
    ['unary minus', 'control c() { apply { x = -a; } }', '-a', 'x4c has no unary minus'],
    ['indexing', 'control c() { apply { x = a[3]; } }', '[', 'x4c has no indexing (header stacks or single bits)'],
    ['a nested block', 'control c() { apply { { x = a; } } }', '{ x', 'x4c has no nested blocks'],
    ['an empty statement', 'control c() { apply { ; } }', '; }', 'x4c has no empty statement'],
    ['an if without braces', 'control c() { apply { if (a) x = b; } }', 'x =', "found identifier x, expected '{' (x4c needs braces around the statements of if)"],
    ['entries that are not const', 'control c() { table t { entries = {} } apply {} }', 'entries', 'x4c takes table entries only as const entries'],
    ['an unknown table property', 'control c() { table t { counters = x; } apply {} }', 'counters', 'found identifier counters, expected key, actions, default_action, const entries, size or \'}\' to close table t'],
    ['a table property twice', 'control c() { table t { size = 1; size = 2; } apply {} }', 'size = 2', 'table t has a second size (the first is at line 1)'],
    ['a bad match kind', 'control c() { table t { key = { a: fuzzy; } } apply {} }', 'fuzzy', 'found identifier fuzzy, expected a match kind: exact, ternary, lpm or range'],
    ['an assignment to a call', 'control c() { apply { f() = 1; } }', '=', 'the left side of = must be a variable, a field or a slice'],
    ['a statement that is neither assignment nor call', 'control c() { apply { h.x; } }', ';', "found ';', expected '=' or a call's '('"],
    ['a second apply block', 'control c() { apply {} apply {} }', 'apply {} }', 'control c has a second apply block'],
    ['something else in a parser', 'parser p() { bit<8> x; }', 'bit', 'found keyword bit, expected state or \'}\' to close parser p'],
    ['an annotation', '@pragma header h {}', '@', 'x4c has no annotations'],
    ['a stray token at the top', 'header h {} ;', ';', "found ';', expected a declaration (const, header, struct, typedef, extern, parser, control, package or the package instance)"],
    ['a package instance argument with parameters', 'SoftNPU(parse(1)) main;', '1', "found number 1, expected ')' (x4c passes no constructor arguments)"],
    ['an unclosed block at the end', 'control c() { apply { x = 1;', '', "found the end of the file, expected '}' to close the block"],
  ];
  it.each(cases)('refuses %s', (_what, src, marker, message) => {
    const d = syntaxError(src);
    const want = marker === '' ? { line: 1, col: src.length } : at(src, marker);
    expect({ line: d.line, col: d.col, message: d.message }).toEqual({ ...want, message });
    expect(d.fix.length).toBeGreaterThan(0);
  });

  it('formats the error as file:line:col: what; fix', () => {
    try {
      parse('header h {\n  bit<8> a\n}');
    } catch (e) {
      expect((e as P4Error).message).toBe("/t/main.p4:3:1: found '}', expected ';' after the field; write ';' after the field here");
      return;
    }
    throw new Error('expected an error');
  });
});
