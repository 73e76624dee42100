import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { AssignStmt, CallStmt, Expr, IfStmt, VarDecl } from '../../src/p4/ast.js';
import { P4Error, type P4Diagnostic } from '../../src/p4/errors.js';
import { loadP4Program, type CheckedProgram } from '../../src/p4/index.js';

const FILE = '/t/main.p4';

function load(src: string, extra: Record<string, string> = {}): CheckedProgram {
  const files: Record<string, string> = { [FILE]: src, ...extra };
  return loadP4Program(FILE, {
    readFile: (p) => {
      const text = files[p];
      if (text === undefined) throw new Error(`ENOENT ${p}`);
      return text;
    },
    bundledIncludeDir: '/none',
  });
}

/** Every problem the checker reports for `src`. */
function problems(src: string): P4Diagnostic[] {
  try {
    load(src);
  } catch (e) {
    if (!(e instanceof P4Error)) throw e;
    expect(e.code).toBe('P4_CHECK');
    return [...e.diagnostics];
  }
  throw new Error('expected the checker to refuse the program');
}

/** The line and column where `marker` occurs (once) in `src`; a `^` in the marker points inside it. */
function at(src: string, marker: string): { line: number; col: number } {
  const text = marker.replace('^', '');
  const found = src.indexOf(text);
  if (found < 0) throw new Error(`no ${text} in the program`);
  expect(src.indexOf(text, found + 1), `${text} occurs once`).toBe(-1);
  const i = found + Math.max(0, marker.indexOf('^'));
  const before = src.slice(0, i).split('\n');
  return { line: before.length, col: before.at(-1)!.length + 1 };
}

const PRELUDE = `extern packet_in {
  void extract<T>(out T h);
  T lookahead<T>();
  void advance(bit<32> bits);
}
extern Checksum { bit<16> run<T>(in T data); }
typedef bit<32> ip4_t;
const bit<16> ETH_IPV4 = 16w0x0800;
const int COUNT = 3;
header eth_h { bit<48> dst; bit<48> src; bit<16> etype; }
header ipv4_h { bit<4> version; bit<4> ihl; bit<8> ttl; bit<16> len; ip4_t srcaddr; ip4_t dstaddr; }
struct headers_t { eth_h eth; ipv4_h ipv4; }
struct ingress_metadata_t { bit<16> port; bool flag; }
struct egress_metadata_t { bit<16> port; bool drop; }
`;

const PARSER = `parser parse(packet_in pkt, out headers_t hdr, inout ingress_metadata_t ingress) {
  state start {
    pkt.extract(hdr.eth);
    transition select(hdr.eth.etype) {
      ETH_IPV4: ipv4;
      16w0x86dd &&& 16w0xffff: accept;
      default: accept;
    }
  }
  state ipv4 {
    pkt.extract(hdr.ipv4);
    if (hdr.ipv4.ttl == 8w0) { transition reject; }
    transition accept;
  }
}
`;

const INGRESS_BODY = `
  Checksum() csum;
  action drop() { egress.drop = true; }
  action fwd(bit<16> port) { egress.port = port; }
  table route {
    key = { hdr.ipv4.dstaddr: lpm; ingress.port: exact; }
    actions = { fwd; drop; }
    default_action = drop;
    size = 64;
    const entries = {
      (32w0x0a000000 &&& 32w0xff000000, 16w1): fwd(2);
    }
  }
  apply {
    bit<16> h = csum.run({hdr.ipv4.srcaddr, hdr.ipv4.dstaddr});
    if (hdr.ipv4.isValid()) { route.apply(); }
    else if (hdr.eth.etype[15:8] == 8w0x86) { hdr.eth.etype[7:0] = 8w0; }
    else { return; }
  }
`;

function program(parts: { prelude?: string; parser?: string; ingress?: string; egress?: string; main?: string } = {}): string {
  const sig = '(inout headers_t hdr, inout ingress_metadata_t ingress, inout egress_metadata_t egress)';
  return `${parts.prelude ?? PRELUDE}${parts.parser ?? PARSER}control ingress${sig} {${parts.ingress ?? INGRESS_BODY}}
control egress${sig} {${parts.egress ?? ''}}
${parts.main ?? 'SoftNPU(parse(), ingress(), egress()) main;'}
`;
}

describe('p4 checker: a valid program', () => {
  const src = program();
  const c = load(src);

  it('lays headers out: field widths, bit offsets, bytes', () => {
    const ipv4 = c.headers.get('ipv4_h')!;
    expect(ipv4.fields.map((f) => [f.name, f.width, f.offset])).toEqual([
      ['version', 4, 0], ['ihl', 4, 4], ['ttl', 8, 8], ['len', 16, 16], ['srcaddr', 32, 32], ['dstaddr', 32, 64],
    ]);
    expect([ipv4.bits, ipv4.bytes, ipv4.fixedBits, ipv4.varbit]).toEqual([96, 12, 96, undefined]);
    expect(ipv4.fields[4]!.type).toEqual({ kind: 'bit', width: 32 });
    expect(c.headers.get('eth_h')!.bytes).toBe(14);
  });

  it('resolves typedefs, struct fields and constants', () => {
    expect(c.typedefs.get('ip4_t')).toEqual({ kind: 'bit', width: 32 });
    expect(c.structs.get('headers_t')!.fields.map((f) => f.type)).toEqual([{ kind: 'header', name: 'eth_h' }, { kind: 'header', name: 'ipv4_h' }]);
    expect(c.constants.get('ETH_IPV4')).toMatchObject({ type: { kind: 'bit', width: 16 }, value: 0x800n });
    expect(c.constants.get('COUNT')).toMatchObject({ type: { kind: 'integer' }, value: 3n });
  });

  it('records the parser, its states and the package instance', () => {
    expect([...c.parsers.get('parse')!.states.keys()]).toEqual(['start', 'ipv4']);
    expect(c.parsers.get('parse')!.params.map((p) => [p.name, p.direction, p.type])).toEqual([
      ['pkt', 'none', { kind: 'extern', name: 'packet_in' }], ['hdr', 'out', { kind: 'struct', name: 'headers_t' }],
      ['ingress', 'inout', { kind: 'struct', name: 'ingress_metadata_t' }],
    ]);
    expect(c.main).toMatchObject({ packageName: 'SoftNPU', instanceName: 'main' });
    expect([c.main.parser!.name, c.main.ingress!.name, c.main.egress!.name]).toEqual(['parse', 'ingress', 'egress']);
  });

  it('records tables with key widths, actions, the default action and entries', () => {
    const ingress = c.controls.get('ingress')!;
    expect([...ingress.actions.keys()]).toEqual(['drop', 'fwd']);
    expect([...ingress.instances.values()].map((i) => [i.name, i.kind, i.typeName])).toEqual([['csum', 'extern', 'Checksum']]);
    const t = ingress.tables.get('route')!;
    expect(t.keys.map((k) => [k.matchKind, k.width])).toEqual([['lpm', 32], ['exact', 16]]);
    expect(t.actions.map((a) => a.name)).toEqual(['fwd', 'drop']);
    expect(t.defaultAction.action.name).toBe('drop');
    expect(t.size).toBe(64);
    expect(t.entries.map((e) => [e.keys.map((k) => k.kind), e.action.name])).toEqual([[['mask', 'value'], 'fwd']]);
    expect(ingress.actions.get('fwd')!.params.map((p) => [p.name, p.type])).toEqual([['port', { kind: 'bit', width: 16 }]]);
  });

  it('annotates the tree: expression types, name references, call targets, slice bounds', () => {
    const apply = c.controls.get('ingress')!.decl.body!.apply!.statements;
    const h = apply[0] as VarDecl;
    expect(h.resolved).toEqual({ kind: 'bit', width: 16 });
    expect(h.init!.type).toEqual({ kind: 'bit', width: 16 });
    expect(h.init!.kind === 'call' && h.init!.target).toMatchObject({ kind: 'extern', extern: 'Checksum', method: { name: 'run' } });
    const ifs = apply[1] as IfStmt;
    expect(ifs.cond.kind === 'call' && ifs.cond.target?.kind).toBe('isValid');
    expect(ifs.cond.type).toEqual({ kind: 'bool' });
    const applyCall = (ifs.then.statements[0] as CallStmt).call;
    expect(applyCall.target).toMatchObject({ kind: 'table', table: { name: 'route' } });
    const elseIf = ifs.otherwise as IfStmt;
    const assign = elseIf.then.statements[0] as AssignStmt;
    expect(assign.target).toMatchObject({ kind: 'slice', hiValue: 7, loValue: 0, type: { kind: 'bit', width: 8 } });
    const hdr = (assign.target as { object: { object: { object: Expr } } }).object.object.object;
    expect(hdr).toMatchObject({ kind: 'name', name: 'hdr', ref: { kind: 'param', decl: { name: 'hdr', direction: 'inout' } } });
    const fwd = c.controls.get('ingress')!.actions.get('fwd')!.decl.body.statements[0] as AssignStmt;
    expect(fwd.value).toMatchObject({ kind: 'name', ref: { kind: 'param', decl: { name: 'port', direction: 'none' } }, type: { kind: 'bit', width: 16 } });
  });

  it('resolves select cases on constants', () => {
    const start = c.parsers.get('parse')!.states.get('start')!.body.statements[1]!;
    expect(start.kind === 'transition' && start.next.kind === 'select' && start.next.cases[0]!.keys[0]).toMatchObject({ kind: 'value', value: { ref: { kind: 'const', value: 0x800n } } });
  });
});

describe('p4 checker: more that it takes', () => {
  it('takes nested control instances applied with arguments, NoAction and an empty control', () => {
    const c = load(program({
      prelude: `${PRELUDE}control inner(inout headers_t hdr, in bit<16> port, out bool hit) {
  table t { key = { port: exact; } actions = { yes; } default_action = NoAction; }
  action yes() { hit = true; }
  apply { hit = false; t.apply(); }
}
`,
      ingress: `
  inner() i;
  apply { bool hit = false; i.apply(hdr, ingress.port, hit); if (hit) { egress.drop = true; } }
`,
    }));
    const call = (c.controls.get('ingress')!.decl.body!.apply!.statements[1] as CallStmt).call;
    expect(call.target).toMatchObject({ kind: 'control', control: { name: 'inner' }, instance: { name: 'i' } });
    expect(c.controls.get('inner')!.tables.get('t')!.defaultAction.action).toMatchObject({ name: 'NoAction', builtin: true });
    expect(c.controls.get('egress')!.tables.size).toBe(0);
  });

  it('takes a narrower initializer (zero-extended, as x4c does), unsized literals where a width is declared, lookahead<T>', () => {
    const c = load(program({
      parser: `parser parse(packet_in pkt, out headers_t hdr, inout ingress_metadata_t ingress) {
  state start {
    bit<16> t = pkt.lookahead<bit<16>>();
    pkt.advance(32);
    transition select(t) { 0x0800: accept; _: reject; }
  }
}
`,
      ingress: `
  action a(bit<8> small) { bit<16> wide = small; bit<16> zero = 0; egress.port = wide + zero; }
  table t { key = { hdr.eth.etype: ternary; } actions = { a; } default_action = a(7); const entries = { 0x0800 &&& 0xff00: a(1); _: a(2); } }
  apply { t.apply(); }
`,
    }));
    const t = (c.parsers.get('parse')!.states.get('start')!.body.statements[0] as VarDecl).init!;
    expect(t.type).toEqual({ kind: 'bit', width: 16 });
  });

  it('lays out a header ending in a varbit field and extracts it with its length', () => {
    const c = load(program({
      prelude: `${PRELUDE.replace('void extract<T>(out T h);', 'void extract<T>(out T h);\n  void extract<T>(out T h, in bit<32> bits);')}header opt_h { bit<8> len; varbit<32> data; }\nstruct more_t { opt_h opt; }\n`,
      parser: PARSER.replace('pkt.extract(hdr.ipv4);', 'pkt.extract(hdr.ipv4);\n    more_t m;\n    pkt.extract(m.opt, 32w16);'),
    }));
    const opt = c.headers.get('opt_h')!;
    expect([opt.bits, opt.bytes, opt.fixedBits, opt.varbit]).toEqual([40, 5, 8, 'data']);
    expect(opt.fields[1]).toMatchObject({ name: 'data', type: { kind: 'varbit', width: 32 }, offset: 8 });
  });

  it('reports positions in included files (problems sorted by file, the program first, then line and column)', () => {
    const src = '#include "defs.p4"\nheader h_t { bit<7> x; }\n';
    const e = (() => {
      try {
        load(src, { '/t/defs.p4': 'struct s_t {\n  nope_t f;\n}\n' });
      } catch (err) {
        return err as P4Error;
      }
      throw new Error('expected an error');
    })();
    expect(e.diagnostics.map((d) => [d.file, d.line, d.col, d.message])).toEqual([
      [FILE, 1, 1, 'the program has no package instance'], [FILE, 2, 1, 'header h_t is 7 bits, not a whole number of bytes'], ['/t/defs.p4', 2, 3, 'unknown type nope_t'],
    ]);
  });
});

describe('p4 checker: what it refuses, each at its position', () => {
  type Case = [string, string, string, string];
  const P = (body: string) => program({ parser: `parser parse(packet_in pkt, out headers_t hdr, inout ingress_metadata_t ingress) {\n${body}\n}\n` });
  const I = (body: string) => program({ ingress: `\n${body}\n` });
  const cases: Case[] = [
    ['an unknown type', program({ prelude: `${PRELUDE}struct bad_t { nosuch_t f; }\n` }), 'nosuch_t', 'unknown type nosuch_t'],
    ['a header that is not whole bytes', program({ prelude: `${PRELUDE}header odd_h { bit<7> x; }\n` }), 'header odd_h', 'header odd_h is 7 bits, not a whole number of bytes'],
    ['a bool header field', program({ prelude: `${PRELUDE}header b_h { bool bflag; bit<8> x; }\n` }), 'bool bflag', 'header field bflag has type bool'],
    ['a name declared twice', program({ prelude: `${PRELUDE}struct eth_h { bit<8> x; }\n` }), 'struct eth_h', 'eth_h is declared twice (first as header at /t/main.p4:10:1)'],
    ['a constant that does not fit', program({ prelude: `${PRELUDE}const bit<4> BIG = 16;\n` }), '16;', '16 does not fit in bit<4>'],
    ['a literal wider than its width', I('apply { egress.port = 16w65536; }'), '16w65536', '65536 does not fit in 16 bits'],
    ['a parser without start', P('  state first { transition accept; }'), 'parser parse', 'parser parse has no start state'],
    ['a transition to no state', P('  state start { transition nowhere; }'), 'nowhere', 'there is no state nowhere'],
    ['a state without a transition', P('  state start { pkt.extract(hdr.eth); }'), 'pkt.extract(hdr.eth)', 'state start does not end with a transition'],
    ['a statement after a transition', P('  state start { if (ingress.flag) { transition accept; ingress.flag = false; } transition reject; }'), 'ingress.flag = false', 'this statement comes after a transition and is never run'],
    ['a select case of the wrong width', P('  state start { transition select(hdr.eth.etype) { 8w1: accept; default: reject; } }'), '8w1', 'cannot match bit<8> to bit<16>'],
    ['a select case with too many values', P('  state start { transition select(hdr.eth.etype) { (1, 2): accept; default: reject; } }'), '(1, 2)', 'this case has 2 key values, 1 expected'],
    ['extracting a struct', P('  state start { pkt.extract(ingress); transition accept; }'), 'ingress);', 'extract takes a header, not struct ingress_metadata_t'],
    ['a return in a parser', P('  state start { return ; }'), 'return ;', 'a parser state has no return'],
    ['assigning widths that differ', I('apply { egress.port = hdr.ipv4.ttl; }'), 'hdr.ipv4.ttl;', 'cannot assign bit<8> to bit<16>'],
    ['assigning an unsized literal (x4c needs the width)', I('apply { egress.port = 0; }'), 'port = ^0;', 'cannot assign an unsized integer to bit<16>: x4c needs the width on both sides'],
    ['adding widths that differ', I('apply { egress.port = egress.port + hdr.ipv4.ttl; }'), '+', 'cannot add bit<16> and bit<8>'],
    ['comparing with an unsized literal', I('apply { if (egress.port == 1) { return; } }'), '== 1)', 'cannot compare bit<16> and an unsized integer'],
    ['an unknown field', I('apply { egress.port = hdr.eth.typ; }'), 'typ;', 'header eth_h has no field typ'],
    ['an unknown name', I('apply { egress.port = nothing; }'), 'nothing', 'unknown name nothing'],
    ['a slice outside its field', I('apply { hdr.eth.etype[16:9] = 8w0; }'), '16:9', 'slice [16:9] is outside bit<16> (bits 15 to 0)'],
    ['a slice with its bounds reversed', I('apply { hdr.eth.etype[0:7] = 8w0; }'), '7]', 'slice [0:7] has its low bound above its high bound'],
    ['a condition that is not bool', I('apply { if (egress.port) { return; } }'), 'egress.port)', 'the condition is bit<16>, not bool'],
    ['a transition in a control', I('apply { transition accept; }'), 'transition accept; }', 'transition belongs in a parser state'],
    ['a return value', I('apply { return true; }'), 'true', 'actions and apply blocks return no value'],
    ['assigning to an in parameter', program({ prelude: `${PRELUDE}control c(in bit<8> x) { apply { x = 8w1; } }\n` }), 'x = 8w1', 'cannot assign to x: it is an in parameter'],
    ['assigning to action data', I('action a(bit<16> p) { p = 16w1; }\napply {}'), 'p = 16w1', 'cannot assign to p: it is action data, read-only'],
    ['assigning to a constant', I('apply { ETH_IPV4 = 16w1; }'), 'ETH_IPV4 = 16w1', 'cannot assign to ETH_IPV4: it is a constant'],
    ['a table naming an action the control lacks', I('table t { key = { hdr.eth.etype: exact; } actions = { nosuch; } default_action = NoAction; }\napply { t.apply(); }'), 'nosuch', 'table t names action nosuch, which control ingress does not have'],
    ['a table without default_action', I('action a() {}\ntable t { key = { hdr.eth.etype: exact; } actions = { a; } }\napply { t.apply(); }'), 'table t', 'table t has no default_action'],
    ['a table key that is not a field', I('action a() {}\ntable t { key = { hdr.eth.isValid(): exact; } actions = { a; } default_action = a; }\napply { t.apply(); }'), 'hdr.eth.isValid()', 'a table key must be a field or a variable'],
    ['a table key of a struct', I('action a() {}\ntable t { key = { hdr.eth: exact; } actions = { a; } default_action = a; }\napply { t.apply(); }'), 'hdr.eth:', 'cannot match on header eth_h'],
    ['two lpm keys', I('action a() {}\ntable t { key = { hdr.ipv4.srcaddr: lpm; hdr.ipv4.dstaddr: lpm; } actions = { a; } default_action = a; }\napply { t.apply(); }'), 'hdr.ipv4.dstaddr: lpm', 'table t has more than one lpm key'],
    ['a default action without its arguments', I('action a(bit<8> x) {}\ntable t { key = { hdr.eth.etype: exact; } actions = { a; } default_action = a; }\napply { t.apply(); }'), 'a; }\napply', 'default action a takes 1 argument, 0 given'],
    ['an entry with a mask on an exact key', I('action a() {}\ntable t { key = { hdr.eth.etype: exact; } actions = { a; } default_action = a; const entries = { 1 &&& 3: a(); } }\napply { t.apply(); }'), '1 &&& 3', 'a exact key takes no &&& mask'],
    ['an entry with an lpm mask that is not a prefix', I('action a() {}\ntable t { key = { hdr.ipv4.dstaddr: lpm; } actions = { a; } default_action = a; const entries = { 1 &&& 0xff00ff00: a(); } }\napply { t.apply(); }'), '0xff00ff00', 'an lpm mask must be a prefix: ones, then zeros'],
    ['an entry whose value does not fit', I('action a() {}\ntable t { key = { hdr.ipv4.ttl: exact; } actions = { a; } default_action = a; const entries = { 256: a(); } }\napply { t.apply(); }'), '256', '256 does not fit in bit<8>'],
    ['an entry with an action not in the table', I('action a() {}\naction b() {}\ntable t { key = { hdr.ipv4.ttl: exact; } actions = { a; } default_action = a; const entries = { 1: b(); } }\napply { t.apply(); }'), 'b();', 'entry action b is not in table t\'s actions'],
    ['applying a table in an action', I('action a() { t.apply(); }\ntable t { key = { hdr.ipv4.ttl: exact; } actions = { a; } default_action = a; }\napply { }'), 't.apply(); }\ntable', 'cannot apply a table within an action'],
    ['.hit, which x4c lacks', I('action a() {}\ntable t { key = { hdr.ipv4.ttl: exact; } actions = { a; } default_action = a; }\napply { if (t.hit()) { return; } }'), 'hit', 'table t has no method hit (x4c has no .hit)'],
    ['a control applied with the wrong number of arguments', program({ prelude: `${PRELUDE}control inner(inout headers_t h) { apply {} }\n`, ingress: '\n  inner() i;\n  apply { i.apply(); }\n' }), 'i.apply()', 'control inner takes 1 argument, 0 given'],
    ['a control applied with an unsized literal', program({ prelude: `${PRELUDE}control inner(in bit<8> x) { apply {} }\n`, ingress: '\n  inner() i;\n  apply { i.apply(5); }\n' }), '5)', 'cannot pass an unsized integer to bit<8>: x4c needs the width on both sides'],
    ['an unknown extern method', I('Checksum() c2;\napply { c2.sum(); }'), 'c2.^sum()', 'extern Checksum has no method sum'],
    ['setValid on a struct', I('apply { ingress.setValid(); }'), 'setValid', 'struct ingress_metadata_t has no method setValid'],
    ['an instance with constructor arguments', I('Checksum(1) c2;\napply { }'), '1) c2', 'x4c instances take no constructor arguments'],
    ['an instance of a header', I('eth_h() e2;\napply { }'), 'eth_h() e2', 'cannot instantiate header eth_h'],
    ['a variable declared twice', I('apply { bit<8> v = 8w1; bit<8> v = 8w2; }'), 'bit<8> v = 8w2', 'v is declared twice in the same scope'],
    ['a narrowing initializer', I('apply { bit<8> v = egress.port; }'), 'egress.port; }', 'cannot initialise bit<8> with bit<16>'],
    ['an unknown package', program({ main: 'V1Switch(parse(), ingress(), egress()) main;' }), 'V1Switch', 'unknown package V1Switch'],
    ['a SoftNPU control with the wrong parameters', program({ main: 'control eg2(inout headers_t hdr) { }\nSoftNPU(parse(), ingress(), eg2()) main;' }), 'control eg2', 'the SoftNPU control eg2 must take (inout headers_t, inout ingress_metadata_t, inout egress_metadata_t); it takes 1 parameter'],
    ['a SoftNPU parser parameter of the wrong type', program({ parser: PARSER.replace('out headers_t hdr', 'out headers_t hdr, inout egress_metadata_t ingress2').replace(', inout ingress_metadata_t ingress)', ')') }), 'inout egress_metadata_t ingress2', 'the SoftNPU parser parse must take (packet_in, out headers_t, inout ingress_metadata_t); parameter 3 is inout struct egress_metadata_t'],
    ['a macro-made constant that does not fit', program({ prelude: `#define SMALL 4\n${PRELUDE}const bit<SMALL> TOO_BIG = 8w255;\n` }), '8w255', 'cannot initialise bit<4> with bit<8>'],
    ['a package argument of the wrong kind', program({ main: 'SoftNPU(ingress(), ingress(), egress()) main;' }), 'ingress(), ingress()', 'argument 1 of SoftNPU must be a parser; ingress is a control'],
    ['no package instance', program({ main: '' }), 'extern packet_in', 'the program has no package instance'],
  ];

  it.each(cases)('refuses %s', (_what, src, marker, message) => {
    const found = problems(src);
    const pos = at(src, marker);
    expect(found, JSON.stringify(found, null, 1)).toContainEqual(expect.objectContaining({ file: FILE, ...pos, message }));
    for (const d of found) expect(d.fix.length, d.message).toBeGreaterThan(0);
  });

  it('reports every problem at once, in source order, as file:line:col: what; fix', () => {
    const src = I('apply { egress.port = hdr.ipv4.ttl; egress.port = nothing; }');
    let e: P4Error | undefined;
    try {
      load(src);
    } catch (err) {
      e = err as P4Error;
    }
    expect(e?.diagnostics.map((d) => d.message)).toEqual(['cannot assign bit<8> to bit<16>', 'unknown name nothing']);
    const a = at(src, 'hdr.ipv4.ttl;');
    expect(e?.message.split('\n')).toEqual([
      '2 problems in the P4 program:',
      `${FILE}:${a.line}:${a.col}: cannot assign bit<8> to bit<16>; use a value of the same type and width (x4c converts none)`,
      `${FILE}:${a.line}:${at(src, 'nothing').col}: unknown name nothing; declare it, or check the spelling`,
    ]);
  });
});

describe('p4 checker: Falcon\'s own programs', () => {
  const programs = ['../../src/switch/programs/sidecar-lite.p4', '../../examples/p4/router.p4'].map((p) => fileURLToPath(new URL(p, import.meta.url)));
  it.each(programs.filter((p) => existsSync(p)))('parses and checks %s with the bundled includes', (path) => {
    const c = loadP4Program(path);
    expect(c.main.packageName).toBe('SoftNPU');
    expect(c.program.files.some((f) => f.endsWith('include/core.p4'))).toBe(true);
  });
});
