/**
 * The checker: resolves every name and type, lays headers out, and refuses what x4c does
 * not accept, listing every problem with its position (P4Error P4_CHECK). Its result, a
 * CheckedProgram (see checked.ts), is what a compiler turns into code.
 */
import type {
  ActionDecl, ConstDecl, ControlDecl, Declaration, Expr, ExternDecl, ExternMethodDecl, HeaderDecl, KeysetElement, Loc, P4Type, PackageDecl,
  PackageInstance, Param, ParserDecl, Program, StructDecl, TableDecl, TypeRef, TypedefDecl,
} from './ast.js';
import { BodyChecker, controlScope, isValueType, POISON, sameType, Scope, typeToString, type Ctx } from './check-body.js';
import type {
  ActionInfo, CheckedProgram, ControlInfo, FieldLayout, InstanceInfo, MainInfo, ParserInfo, ResolvedParam, TableInfo,
} from './checked.js';
import { P4Error } from './errors.js';

export type * from './checked.js';
export { typeToString } from './check-body.js';

type TypeDecl = HeaderDecl | StructDecl | TypedefDecl | ExternDecl | ParserDecl | ControlDecl | PackageDecl;

const BUILTIN_LOC: Loc = { file: '<built-in>', line: 1, col: 1 };
const NO_ACTION_DECL: ActionDecl = { name: 'NoAction', params: [], body: { kind: 'block', statements: [], loc: BUILTIN_LOC }, loc: BUILTIN_LOC };

class ProgramChecker extends BodyChecker {
  private readonly types = new Map<string, TypeDecl>();
  private readonly typedefs = new Map<string, P4Type>();
  private readonly resolving = new Set<string>();
  private readonly parsers = new Map<string, ParserInfo>();
  private readonly packages = new Map<string, PackageDecl>();
  private readonly globals = new Scope();
  readonly noAction: ActionInfo = { name: 'NoAction', decl: NO_ACTION_DECL, params: [], builtin: true };

  constructor(private readonly program: Program) {
    super();
  }

  run(): CheckedProgram {
    const decls = this.program.declarations;
    this.collectTypes(decls);
    for (const d of decls) {
      if (d.kind === 'header') this.layoutHeader(d);
      if (d.kind === 'struct') this.checkStruct(d);
      if (d.kind === 'typedef') this.resolveTypedef(d.name);
      if (d.kind === 'const') this.globalConst(d);
      if (d.kind === 'extern') this.checkExtern(d);
    }
    this.checkStructCycles();
    for (const d of decls) if (d.kind === 'parser') this.parsers.set(d.name, this.parserInfo(d));
    for (const d of decls) if (d.kind === 'control') this.controls.set(d.name, this.controlSignature(d));
    for (const d of decls) if (d.kind === 'package') this.checkPackage(d);
    for (const d of decls) if (d.kind === 'parser' && d.states) this.checkParserBody(d, this.parsers.get(d.name)!);
    for (const d of decls) if (d.kind === 'control' && d.body) this.checkControlBody(d, this.controls.get(d.name)!);
    this.checkControlCycles();
    const main = this.checkMain(decls.filter((d): d is PackageInstance => d.kind === 'packageInstance'));
    if (this.diagnostics.length) throw new P4Error('P4_CHECK', this.sorted());
    return {
      program: this.program, headers: this.headers, structs: this.structs, typedefs: this.typedefs, constants: this.constants,
      externs: this.externs, parsers: this.parsers, controls: this.controls, packages: this.packages, main: main!, noAction: this.noAction,
    };
  }

  private sorted(): typeof this.diagnostics {
    const order = (f: string): number => {
      const i = this.program.files.indexOf(f);
      return i < 0 ? this.program.files.length : i;
    };
    return [...this.diagnostics].sort((a, b) => order(a.file) - order(b.file) || a.line - b.line || a.col - b.col);
  }

  // --- types --------------------------------------------------------------------------------

  private collectTypes(decls: Declaration[]): void {
    for (const d of decls) {
      if (d.kind === 'const' || d.kind === 'packageInstance') continue;
      const old = this.types.get(d.name);
      if (old) {
        this.error(d.loc, `${d.name} is declared twice (first as ${old.kind} at ${old.loc.file}:${old.loc.line}:${old.loc.col})`, 'rename one of them');
        continue;
      }
      this.types.set(d.name, d);
      if (d.kind === 'extern') this.externs.set(d.name, d);
      if (d.kind === 'package') this.packages.set(d.name, d);
    }
  }

  resolveType(t: TypeRef, typeParams?: ReadonlySet<string>): P4Type | undefined {
    switch (t.kind) {
      case 'bit': case 'varbit': return { kind: t.kind, width: t.width };
      case 'int': return t.width === undefined ? { kind: 'integer' } : { kind: 'int', width: t.width };
      case 'bool': case 'void': return { kind: t.kind };
      case 'named': break;
    }
    if (typeParams?.has(t.name)) return { kind: 'typeParam', name: t.name };
    const d = this.types.get(t.name);
    if (!d) return this.error(t.loc, `unknown type ${t.name}`, 'declare it (header, struct, typedef, extern), or #include the file that does');
    if (t.typeArgs.length && d.kind !== 'parser' && d.kind !== 'control') this.error(t.typeArgs[0]!.loc, `${t.name} takes no type arguments`, 'remove the <...>');
    switch (d.kind) {
      case 'typedef': return this.resolveTypedef(d.name);
      case 'package': return this.error(t.loc, `package ${t.name} is not a type of values`, 'instantiate it at the top level');
      default: return { kind: d.kind, name: d.name };
    }
  }

  private resolveTypedef(name: string): P4Type | undefined {
    const done = this.typedefs.get(name);
    if (done) return done;
    const d = this.types.get(name) as TypedefDecl;
    if (this.resolving.has(name)) return this.error(d.loc, `typedef ${name} refers to itself`, 'give it a real type, like bit<16>');
    this.resolving.add(name);
    const t = this.resolveType(d.type);
    this.resolving.delete(name);
    if (t && !isValueType(t)) return this.error(d.type.loc, `typedef ${name} names ${typeToString(t)}, which is not a type of values`, 'typedef bit<N>, bool, a header or a struct');
    if (t) this.typedefs.set(name, t);
    return t;
  }

  private layoutHeader(d: HeaderDecl): void {
    const fields: FieldLayout[] = [];
    let offset = 0;
    let varbit: string | undefined;
    const names = new Set<string>();
    for (const f of d.fields) {
      if (names.has(f.name)) this.error(f.loc, `header ${d.name} has two fields named ${f.name}`, 'rename one');
      names.add(f.name);
      const t = this.resolveType(f.type);
      if (!t) continue;
      f.resolved = t;
      if (t.kind !== 'bit' && t.kind !== 'int' && t.kind !== 'varbit') {
        this.error(f.type.loc, `header field ${f.name} has type ${typeToString(t)}`, 'header fields are bit<N>, int<N> or varbit<N>; put other types in a struct');
        continue;
      }
      if (varbit) this.error(f.loc, `field ${f.name} comes after the varbit field ${varbit}`, 'make the varbit field the last one');
      if (t.kind === 'varbit') varbit ??= f.name;
      fields.push({ name: f.name, type: t, width: t.width, offset, loc: f.loc });
      offset += t.width;
    }
    const fixedBits = varbit ? fields.find((f) => f.name === varbit)!.offset : offset;
    if (offset % 8 !== 0 || fixedBits % 8 !== 0) {
      this.error(d.loc, `header ${d.name} is ${offset} bits, not a whole number of bytes`, `add ${8 - (offset % 8 || 8)} bits of padding (or fix a field's width)`);
    }
    this.headers.set(d.name, { name: d.name, decl: d, fields, bits: offset, bytes: Math.ceil(offset / 8), fixedBits, ...(varbit ? { varbit } : {}) });
  }

  private checkStruct(d: StructDecl): void {
    const fields: { name: string; type: P4Type; loc: Loc }[] = [];
    const names = new Set<string>();
    for (const f of d.fields) {
      if (names.has(f.name)) this.error(f.loc, `struct ${d.name} has two fields named ${f.name}`, 'rename one');
      names.add(f.name);
      const t = this.resolveType(f.type);
      if (!t) continue;
      f.resolved = t;
      if (!isValueType(t) || t.kind === 'integer') {
        this.error(f.type.loc, `struct field ${f.name} cannot have type ${typeToString(t)}`, 'use bit<N>, bool, a header or a struct');
        continue;
      }
      fields.push({ name: f.name, type: t, loc: f.loc });
    }
    this.structs.set(d.name, { name: d.name, decl: d, fields });
  }

  private checkStructCycles(): void {
    const visit = (name: string, path: string[]): boolean => {
      if (path.includes(name)) return true;
      const s = this.structs.get(name);
      return !!s?.fields.some((f) => f.type.kind === 'struct' && visit(f.type.name, [...path, name]));
    };
    for (const [name, s] of this.structs) if (visit(name, []) && s.fields.length) this.error(s.decl.loc, `struct ${name} contains itself`, 'remove the cycle');
  }

  private globalConst(d: ConstDecl): void {
    const info = this.checkConstDecl(d, { where: 'global', scope: this.globals });
    if (this.constants.has(d.name)) {
      this.error(d.loc, `constant ${d.name} is declared twice`, 'rename one of them');
      return;
    }
    if (!info) return;
    this.constants.set(d.name, info);
    this.globals.declare(d.name, { ref: { kind: 'const', decl: d, value: info.value }, type: info.type });
  }

  private checkExtern(d: ExternDecl): void {
    const seen = new Set<string>();
    for (const m of d.methods) {
      const key = `${m.name}/${m.params.length}`;
      if (seen.has(key)) this.error(m.loc, `extern ${d.name} has two methods ${m.name} with ${m.params.length} parameters`, 'x4c tells overloads apart by their number of parameters');
      seen.add(key);
      this.resolveType(m.returnType, new Set(m.typeParams));
      this.externParams(d, m);
    }
  }

  externParams(_ext: ExternDecl, m: ExternMethodDecl): ResolvedParam[] {
    return this.params(m.params, new Set(m.typeParams));
  }

  private params(params: Param[], typeParams: ReadonlySet<string>): ResolvedParam[] {
    const seen = new Set<string>();
    return params.map((p) => {
      if (seen.has(p.name)) this.error(p.loc, `parameter ${p.name} is declared twice`, 'rename one');
      seen.add(p.name);
      const type = p.resolved ?? this.resolveType(p.type, typeParams) ?? POISON;
      p.resolved = type;
      return { name: p.name, direction: p.direction, type, decl: p };
    });
  }

  // --- parsers ------------------------------------------------------------------------------

  private parserInfo(d: ParserDecl): ParserInfo {
    const info: ParserInfo = { name: d.name, decl: d, params: this.params(d.params, new Set(d.typeParams)), states: new Map() };
    for (const s of d.states ?? []) {
      if (s.name === 'accept' || s.name === 'reject') this.error(s.loc, `state ${s.name} is built in`, 'give your state another name');
      else if (info.states.has(s.name)) this.error(s.loc, `parser ${d.name} has two states named ${s.name}`, 'rename one');
      else info.states.set(s.name, s);
    }
    if (d.states && !info.states.has('start')) this.error(d.loc, `parser ${d.name} has no start state`, 'add state start { ... }');
    return info;
  }

  private checkParserBody(d: ParserDecl, info: ParserInfo): void {
    const scope = new Scope(this.globals);
    for (const p of info.params) this.declare(scope, p.name, p.decl.loc, { ref: { kind: 'param', decl: p.decl }, type: p.type });
    const ctx: Ctx = { where: 'parser', scope, states: new Set(info.states.keys()) };
    for (const s of d.states ?? []) {
      const last = s.body.statements.at(-1);
      if (last?.kind !== 'transition') this.error(last?.loc ?? s.loc, `state ${s.name} does not end with a transition`, 'end it with transition accept; (or reject, or another state)');
      this.checkBlock(s.body, ctx);
    }
  }

  // --- controls -----------------------------------------------------------------------------

  private controlSignature(d: ControlDecl): ControlInfo {
    return { name: d.name, decl: d, params: this.params(d.params, new Set(d.typeParams)), actions: new Map(), tables: new Map(), instances: new Map(), variables: new Map() };
  }

  private checkControlBody(d: ControlDecl, info: ControlInfo): void {
    const body = d.body!;
    const actions = new Map<string, ActionDecl>();
    for (const a of body.actions) {
      if (actions.has(a.name)) this.error(a.loc, `control ${d.name} has two actions named ${a.name}`, 'rename one');
      else actions.set(a.name, a);
    }
    const scope = controlScope(this, this.globals, info, actions, d);
    if (!actions.has('NoAction')) scope.declare('NoAction', { ref: { kind: 'action', decl: NO_ACTION_DECL }, type: { kind: 'action', name: 'NoAction' } });
    const ctx: Ctx = { where: 'control', scope, control: info };
    for (const l of body.locals) this.controlLocal(l, ctx, info);
    for (const a of body.actions) {
      const params = this.params(a.params, new Set());
      for (const p of params) {
        if (p.type.kind !== 'bit' && p.type.kind !== 'int' && p.type.kind !== 'bool' && p.direction === 'none') {
          this.error(p.decl.type.loc, `action parameter ${p.name} has type ${typeToString(p.type)}`, 'action data is bit<N>, int<N> or bool');
        }
      }
      info.actions.set(a.name, { name: a.name, decl: a, params, builtin: false });
    }
    for (const a of body.actions) {
      const aScope = new Scope(scope);
      for (const p of info.actions.get(a.name)!.params) this.declare(aScope, p.name, p.decl.loc, { ref: { kind: 'param', decl: p.decl }, type: p.type });
      this.checkBlock(a.body, { ...ctx, where: 'action', scope: aScope });
    }
    for (const t of body.tables) {
      const table = this.checkTable(t, info, ctx);
      if (table) info.tables.set(t.name, table);
    }
    // A control without an apply block does nothing (x4c takes `control egress(...) { }`).
    if (body.apply) this.checkBlock(body.apply, { ...ctx, where: 'apply' });
  }

  private controlLocal(l: NonNullable<ControlDecl['body']>['locals'][number], ctx: Ctx, info: ControlInfo): void {
    if (l.kind === 'var') {
      this.checkVar(l, ctx);
      info.variables.set(l.name, l);
      return;
    }
    if (l.kind === 'const') {
      this.checkLocalConst(l, ctx);
      info.variables.set(l.name, l);
      return;
    }
    const d = this.types.get(l.typeName);
    const kind = d?.kind === 'extern' ? 'extern' : d?.kind === 'control' ? 'control' : undefined;
    if (!kind) {
      this.error(l.typeLoc, d ? `cannot instantiate ${d.kind} ${l.typeName}` : `unknown type ${l.typeName}`, 'instantiate an extern (Checksum() csum;) or a control (router() r;)');
    } else if (kind === 'control' && !(d as ControlDecl).body) {
      this.error(l.typeLoc, `control ${l.typeName} is declared without a body`, 'instantiate a control that has one');
    }
    if (l.args.length) this.error(l.args[0]!.loc, 'x4c instances take no constructor arguments', `write ${l.typeName}() ${l.name};`);
    const type: P4Type = kind ? { kind, name: l.typeName } : POISON;
    this.declare(ctx.scope, l.name, l.loc, { ref: { kind: 'instance', decl: l }, type });
    if (kind) info.instances.set(l.name, { name: l.name, decl: l, kind, typeName: l.typeName } satisfies InstanceInfo);
  }

  private checkControlCycles(): void {
    const visit = (name: string, path: string[]): boolean => {
      if (path.includes(name)) return true;
      const c = this.controls.get(name);
      return !!c && [...c.instances.values()].some((i) => i.kind === 'control' && visit(i.typeName, [...path, name]));
    };
    for (const [name, c] of this.controls) if (visit(name, [])) this.error(c.decl.loc, `control ${name} instantiates itself`, 'remove the cycle');
  }

  // --- tables -------------------------------------------------------------------------------

  private checkTable(t: TableDecl, control: ControlInfo, ctx: Ctx): TableInfo | undefined {
    const keys = this.tableKeys(t, ctx);
    const actions: ActionInfo[] = [];
    const listed = new Set<string>();
    for (const a of t.actions) {
      const info = this.actionByName(a.name, control);
      if (listed.has(a.name)) this.error(a.loc, `table ${t.name} lists action ${a.name} twice`, 'remove one');
      listed.add(a.name);
      if (!info) this.error(a.loc, `table ${t.name} names action ${a.name}, which control ${control.name} does not have`, `declare action ${a.name}(...) { ... } in the control`);
      else actions.push(info);
    }
    if (!t.defaultAction) return this.error(t.loc, `table ${t.name} has no default_action`, 'x4c needs one: default_action = NoAction; (or an action of the table)');
    const def = this.actionByName(t.defaultAction.name, control);
    if (!def) return this.error(t.defaultAction.loc, `default action ${t.defaultAction.name} does not exist in control ${control.name}`, 'name an action of the table, or NoAction');
    // x4c takes a default action that is not in the table's actions (sidecar-lite's `default_action = drop;`).
    this.actionArgs(t.defaultAction.args, def, t.defaultAction.loc, ctx, 'default action');
    const entries = (t.entries ?? []).flatMap((e) => {
      this.checkKeyset(e.keys, keys.map((k) => k?.type), t.keys.length, e.loc, ctx, 'entry');
      e.keys.forEach((k, i) => this.checkEntryMatch(k, t.keys[i]?.matchKind, keys[i]?.width));
      const action = actions.find((a) => a.name === e.action.name);
      if (!action) return this.error(e.action.loc, `entry action ${e.action.name} is not in table ${t.name}'s actions`, 'use one of the table\'s actions') ?? [];
      this.actionArgs(e.action.args, action, e.action.loc, ctx, 'entry action');
      return [{ keys: e.keys, action, args: e.action.args, loc: e.loc }];
    });
    if (t.size && t.size.value < 1) this.error(t.size.loc, 'a table size must be at least 1', 'give the number of entries');
    if (keys.some((k) => !k)) return undefined;
    return {
      name: t.name, control: control.name, decl: t, keys: keys as TableInfo['keys'], actions,
      defaultAction: { action: def, args: t.defaultAction.args }, entries, ...(t.size ? { size: t.size.value } : {}),
    };
  }

  private tableKeys(t: TableDecl, ctx: Ctx): (TableInfo['keys'][number] | undefined)[] {
    const lpm = t.keys.filter((k) => k.matchKind === 'lpm');
    if (lpm.length > 1) this.error(lpm[1]!.loc, `table ${t.name} has more than one lpm key`, 'keep one lpm key; match the others exact or ternary');
    return t.keys.map((k) => {
      if (k.expr.kind !== 'name' && k.expr.kind !== 'member' && k.expr.kind !== 'slice') {
        return this.error(k.expr.loc, 'a table key must be a field or a variable', 'x4c matches on fields, like hdr.ipv4.dst');
      }
      const type = this.checkValue(k.expr, ctx);
      if (!type) return undefined;
      if (type.kind !== 'bit' && type.kind !== 'int' && type.kind !== 'bool') {
        return this.error(k.expr.loc, `cannot match on ${typeToString(type)}`, 'match on fields of type bit<N> or bool');
      }
      return { expr: k.expr, matchKind: k.matchKind, type, width: type.kind === 'bool' ? 1 : type.width };
    });
  }

  private checkEntryMatch(k: KeysetElement, mk: string | undefined, width: number | undefined): void {
    if (!mk) return;
    if (k.kind === 'dontcare' && mk === 'exact') this.error(k.loc, 'an exact key cannot be _', 'give its value (or make the key ternary)');
    if (k.kind === 'mask' && mk !== 'ternary' && mk !== 'lpm') this.error(k.loc, `a ${mk} key takes no &&& mask`, 'give a plain value (or make the key ternary)');
    if (k.kind === 'mask' && mk === 'lpm' && width !== undefined) {
      const m = this.constValue(k.mask);
      if (typeof m === 'bigint') {
        const inv = ~m & ((1n << BigInt(width)) - 1n);
        if ((inv & (inv + 1n)) !== 0n) this.error(k.mask.loc, 'an lpm mask must be a prefix: ones, then zeros', 'use a mask like 0xffffff00');
      }
    }
  }

  private actionByName(name: string, control: ControlInfo): ActionInfo | undefined {
    return control.actions.get(name) ?? (name === 'NoAction' ? this.noAction : undefined);
  }

  private actionArgs(args: Expr[], action: ActionInfo, loc: Loc, ctx: Ctx, what: string): void {
    const data = action.params;
    if (args.length !== data.length) {
      this.error(args[data.length]?.loc ?? loc, `${what} ${action.name} takes ${data.length} argument${data.length === 1 ? '' : 's'}, ${args.length} given`, data.length ? `write ${action.name}(${data.map((p) => p.name).join(', ')})` : `write ${action.name}`);
      return;
    }
    args.forEach((a, i) => {
      const t = this.checkValue(a, ctx);
      if (!t) return;
      if (this.constValue(a) === undefined) this.error(a.loc, `the argument of ${what} ${action.name} must be known at compile time`, 'use a literal or a constant');
      else this.convert(a, t, data[i]!.type, 'literal', 'pass');
    });
  }

  // --- package ------------------------------------------------------------------------------

  private checkPackage(d: PackageDecl): void {
    for (const p of d.params) {
      if (p.type.kind !== 'named') {
        this.error(p.type.loc, 'a package parameter is a parser or a control type', 'name a parser or control declared without a body');
        continue;
      }
      const t = this.types.get(p.type.name);
      if (!t) this.error(p.type.loc, `unknown type ${p.type.name}`, 'declare it: parser Name<H>(...); or control Name<H>(...);');
      else if (t.kind !== 'parser' && t.kind !== 'control') this.error(p.type.loc, `package parameter ${p.name} has type ${t.kind} ${t.name}`, 'use a parser or control type');
    }
  }

  private checkMain(instances: PackageInstance[]): MainInfo | undefined {
    if (instances.length > 1) this.error(instances[1]!.loc, 'the program has more than one package instance', 'keep one, like SoftNPU(parse(), ingress(), egress()) main;');
    const inst = instances[0];
    if (!inst) return this.error({ file: this.program.files[0] ?? '<program>', line: 1, col: 1 }, 'the program has no package instance', 'add SoftNPU(parse(), ingress(), egress()) main;');
    const pkg = this.packages.get(inst.typeName);
    // x4c knows SoftNPU without a declaration: a parser then ingress and egress controls.
    const kinds: ('parser' | 'control')[] | undefined = pkg
      ? pkg.params.map((p) => (p.type.kind === 'named' && this.types.get(p.type.name)?.kind === 'control' ? 'control' : 'parser'))
      : inst.typeName === 'SoftNPU' ? ['parser', 'control', 'control'] : undefined;
    if (!kinds) return this.error(inst.loc, `unknown package ${inst.typeName}`, 'use SoftNPU, or declare the package');
    if (inst.args.length !== kinds.length) {
      return this.error(inst.loc, `${inst.typeName} takes ${kinds.length} arguments (${kinds.join(', ')}), ${inst.args.length} given`, `write ${inst.typeName}(${kinds.map((k) => (k === 'parser' ? 'parse()' : 'name()')).join(', ')}) ${inst.name};`);
    }
    const args = inst.args.map((a, i) => {
      const info = kinds[i] === 'parser' ? this.parsers.get(a.name) : this.controls.get(a.name);
      const other = this.types.get(a.name);
      if (!info) return this.error(a.loc, `argument ${i + 1} of ${inst.typeName} must be a ${kinds[i]}${other ? `; ${a.name} is a ${other.kind}` : `; there is no ${kinds[i]} ${a.name}`}`, `pass the name of a ${kinds[i]} declared in the program`);
      const hasBody = info.decl.kind === 'parser' ? !!info.decl.states : !!info.decl.body;
      if (!hasBody) return this.error(a.loc, `${kinds[i]} ${a.name} has no body`, `pass a ${kinds[i]} with a body`);
      return info;
    });
    if (args.some((a) => !a)) return undefined;
    const all = args as (ParserInfo | ControlInfo)[];
    const main: MainInfo = { packageName: inst.typeName, instanceName: inst.name, args: all };
    if (inst.typeName === 'SoftNPU' && !pkg) {
      Object.assign(main, { parser: all[0] as ParserInfo, ingress: all[1] as ControlInfo, egress: all[2] as ControlInfo });
      this.checkSoftNpuSignatures(main);
    }
    return main;
  }

  /** What x4c's SoftNPU pipeline passes: the parser (packet_in, out H, inout ingress_metadata_t), the controls (inout H, inout ingress_metadata_t, inout egress_metadata_t). */
  private checkSoftNpuSignatures(main: MainInfo): void {
    const parser = main.parser!;
    const h = parser.params[1]?.type;
    const headers: P4Type | undefined = h?.kind === 'struct' ? h : undefined;
    const expect = (info: ParserInfo | ControlInfo, want: [string, string, (t: P4Type) => boolean][]): void => {
      const sig = want.map(([dir, type]) => `${dir === 'none' ? '' : `${dir} `}${type}`).join(', ');
      const what = `the SoftNPU ${info.decl.kind} ${info.name} must take (${sig})`;
      if (info.params.length !== want.length) {
        this.error(info.decl.loc, `${what}; it takes ${info.params.length} parameter${info.params.length === 1 ? '' : 's'}`, 'change its parameters');
        return;
      }
      info.params.forEach((p, i) => {
        const [dir, type, ok] = want[i]!;
        if (p.direction !== dir || !ok(p.type)) this.error(p.decl.loc, `${what}; parameter ${i + 1} is ${p.direction === 'none' ? '' : `${p.direction} `}${typeToString(p.type)}`, `declare it as ${dir === 'none' ? '' : `${dir} `}${type}`);
      });
    };
    const struct = (name: string) => (t: P4Type): boolean => t.kind === 'struct' && t.name === name;
    const isHeaders = (t: P4Type): boolean => t.kind === 'struct' && (!headers || sameType(t, headers));
    const hName = headers ? typeToString(headers).replace('struct ', '') : 'a struct of headers';
    expect(parser, [['none', 'packet_in', (t) => t.kind === 'extern' && t.name === 'packet_in'], ['out', hName, isHeaders], ['inout', 'ingress_metadata_t', struct('ingress_metadata_t')]]);
    for (const c of [main.ingress!, main.egress!]) {
      expect(c, [['inout', hName, isHeaders], ['inout', 'ingress_metadata_t', struct('ingress_metadata_t')], ['inout', 'egress_metadata_t', struct('egress_metadata_t')]]);
    }
  }
}

/** Checks a parsed program; throws P4Error P4_CHECK listing every problem (in source order). */
export function checkProgram(program: Program): CheckedProgram {
  return new ProgramChecker(program).run();
}
