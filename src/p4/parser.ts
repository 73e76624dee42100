/**
 * A recursive-descent parser for x4c's dialect of P4. It stops at the first syntax error
 * (P4Error P4_SYNTAX) and names what it expected. Constructs x4c does not have (casts,
 * `exit`, header stacks, `*`, `++`, ...) are refused with a message that says so.
 */
import type {
  ActionCall, ActionDecl, BinaryOp, Block, ConstDecl, ControlDecl, Declaration, Direction, Expr, ExternDecl,
  ExternMethodDecl, FieldDecl, IfStmt, InstanceDecl, KeysetElement, MatchKind, PackageDecl, PackageInstance, Param,
  ParserDecl, SelectCase, Statement, TableDecl, TableEntry, TransitionStmt, TypeRef, VarDecl,
} from './ast.js';
import { fail, type Loc } from './errors.js';
import type { Token } from './lexer.js';

/**
 * Binary operators by precedence, lowest first: P4-16's order (p4c's grammar), where unlike C the
 * bitwise operators bind tighter than comparisons (`a & m == v` is `(a & m) == v`).
 * x4c itself has no precedence (it groups `a - b - c` as `a - (b - c)`) and no parentheses.
 */
const PRECEDENCE: BinaryOp[][] = [
  ['||'], ['&&'], ['==', '!='], ['<', '>', '<=', '>='], ['|'], ['^'], ['&'], ['<<', '>>'], ['+', '-'], ['%'],
];

/** Tokens x4c does not have as operators, with why and what to write instead. */
const REFUSED_OPERATORS: Record<string, [string, string]> = {
  '*': ['x4c has no multiplication', 'use shifts and additions'],
  '/': ['x4c has no division', 'use shifts'],
  '++': ['x4c has no ++ (bit concatenation)', 'assign the parts to slices of a wider field'],
  '?': ['x4c has no ?: conditional', 'use an if statement'],
  '..': ['x4c has no .. ranges in expressions', 'use a range table key instead'],
};

const TYPE_KEYWORDS = new Set(['bit', 'int', 'varbit', 'bool', 'void']);

export class P4Parser {
  private pos = 0;
  /** Expressions written in parentheses: their grouping is explicit. */
  private readonly parenthesized = new WeakSet<Expr>();

  constructor(private readonly tokens: Token[]) {}

  // --- token helpers ------------------------------------------------------------------------

  peek(n = 0): Token {
    return this.tokens[Math.min(this.pos + n, this.tokens.length - 1)]!;
  }

  private nextToken(): Token {
    const t = this.peek();
    if (this.pos < this.tokens.length - 1) this.pos++;
    return t;
  }

  private is(text: string, n = 0): boolean {
    const t = this.peek(n);
    return (t.kind === 'punct' || t.kind === 'keyword') && t.text === text;
  }

  private accept(text: string): Token | undefined {
    return this.is(text) ? this.nextToken() : undefined;
  }

  private describe(t: Token): string {
    if (t.kind === 'eof') return 'the end of the file';
    if (t.kind === 'ident') return `identifier ${t.text}`;
    if (t.kind === 'keyword') return `keyword ${t.text}`;
    if (t.kind === 'int') return `number ${t.text}`;
    return `'${t.text}'`;
  }

  error(t: Token, expected: string, fix?: string): never {
    return fail('P4_SYNTAX', t.loc, `found ${this.describe(t)}, expected ${expected}`, fix ?? `write ${expected} here`);
  }

  private expect(text: string, context = ''): Token {
    const t = this.peek();
    if (this.is(text)) return this.nextToken();
    return this.error(t, `'${text}'${context}`);
  }

  /** An identifier; `apply` counts as one after a dot (table.apply). */
  private ident(what: string): Token {
    const t = this.peek();
    if (t.kind === 'ident') return this.nextToken();
    if (t.kind === 'keyword') {
      fail('P4_SYNTAX', t.loc, `${t.text} is a keyword in x4c and cannot be used as ${what}`, 'choose another name');
    }
    return this.error(t, what);
  }

  // --- program ------------------------------------------------------------------------------

  parseProgram(): Declaration[] {
    const decls: Declaration[] = [];
    while (this.peek().kind !== 'eof') decls.push(this.declaration());
    return decls;
  }

  private declaration(): Declaration {
    const t = this.peek();
    if (t.kind === 'ident') return this.packageInstance();
    if (t.kind === 'keyword') {
      switch (t.text) {
        case 'const': return this.constDecl();
        case 'header': case 'struct': return this.headerOrStruct();
        case 'typedef': return this.typedef();
        case 'extern': return this.externDecl();
        case 'parser': return this.parserDecl();
        case 'control': return this.controlDecl();
        case 'package': return this.packageDecl();
      }
    }
    if (t.kind === 'punct' && t.text === '@') fail('P4_SYNTAX', t.loc, 'x4c has no annotations', 'remove the @annotation');
    return this.error(t, 'a declaration (const, header, struct, typedef, extern, parser, control, package or the package instance)');
  }

  // --- types --------------------------------------------------------------------------------

  parseType(): TypeRef {
    const t = this.peek();
    if (t.kind === 'ident') {
      this.nextToken();
      const typeArgs: TypeRef[] = [];
      if (this.accept('<')) {
        do typeArgs.push(this.parseType());
        while (this.accept(','));
        this.expect('>', ' to close the type arguments');
      }
      return { kind: 'named', name: t.text, typeArgs, loc: t.loc };
    }
    if (t.kind !== 'keyword' || !TYPE_KEYWORDS.has(t.text)) return this.error(t, 'a type');
    this.nextToken();
    switch (t.text) {
      case 'bool': return { kind: 'bool', loc: t.loc };
      case 'void': return { kind: 'void', loc: t.loc };
      case 'int': return this.is('<') ? { kind: 'int', width: this.width(t.text), loc: t.loc } : { kind: 'int', loc: t.loc };
      case 'varbit':
        if (!this.is('<')) fail('P4_SYNTAX', this.peek().loc, 'varbit needs its maximum width', 'write varbit<N>');
        return { kind: 'varbit', width: this.width(t.text), loc: t.loc };
      default:
        // bit without a width is bit<1> (P4-16 7.1.6.2), as in x4c.
        return { kind: 'bit', width: this.is('<') ? this.width(t.text) : 1, loc: t.loc };
    }
  }

  private width(type: string): number {
    this.expect('<');
    const t = this.peek();
    if (t.kind !== 'int' || t.width !== undefined) {
      fail('P4_SYNTAX', t.loc, `the width of ${type}<...> must be an integer literal, found ${this.describe(t)}`, `write ${type}<8>, for example`);
    }
    this.nextToken();
    if (t.value! < 1n || t.value! > 4096n) fail('P4_SYNTAX', t.loc, `width ${t.value} is out of range`, 'use a width from 1 to 4096');
    this.expect('>', ` to close ${type}<...>`);
    return Number(t.value);
  }

  /** A declaration's name; refuses header stacks (`h[4] name`) which x4c lacks. */
  private declName(what: string): Token {
    if (this.is('[')) fail('P4_SYNTAX', this.peek().loc, 'x4c does not support header stacks', 'declare each header separately (h0, h1, ...)');
    return this.ident(what);
  }

  // --- global declarations ------------------------------------------------------------------

  constDecl(): ConstDecl {
    const start = this.expect('const');
    const type = this.parseType();
    const name = this.declName('a constant name');
    this.expect('=', ` after const ${name.text}`);
    const value = this.parseExpr();
    this.expect(';', ' after the constant');
    return { kind: 'const', name: name.text, type, value, loc: start.loc };
  }

  private headerOrStruct(): Declaration {
    const start = this.nextToken();
    const name = this.ident(`a ${start.text} name`);
    this.expect('{', ` to open ${start.text} ${name.text}`);
    const fields: FieldDecl[] = [];
    while (!this.accept('}')) {
      if (this.peek().kind === 'eof') this.error(this.peek(), `'}' to close ${start.text} ${name.text}`);
      const type = this.parseType();
      const field = this.declName('a field name');
      this.expect(';', ' after the field');
      fields.push({ name: field.text, type, loc: field.loc });
    }
    return { kind: start.text as 'header' | 'struct', name: name.text, fields, loc: start.loc };
  }

  private typedef(): Declaration {
    const start = this.expect('typedef');
    const type = this.parseType();
    const name = this.declName('the typedef name');
    this.expect(';', ' after the typedef');
    return { kind: 'typedef', name: name.text, type, loc: start.loc };
  }

  private externDecl(): ExternDecl {
    const start = this.expect('extern');
    const name = this.ident('an extern name');
    if (!this.is('{')) this.error(this.peek(), `'{' (x4c has extern objects only: extern ${name.text} { methods })`);
    this.nextToken();
    const methods: ExternMethodDecl[] = [];
    while (!this.accept('}')) {
      const returnType = this.parseType();
      const mname = this.ident('a method name');
      const typeParams = this.is('<') ? this.typeParams() : [];
      const params = this.params();
      this.expect(';', ' after the method');
      methods.push({ name: mname.text, returnType, typeParams, params, loc: mname.loc });
    }
    return { kind: 'extern', name: name.text, methods, loc: start.loc };
  }

  private typeParams(): string[] {
    this.expect('<');
    const names: string[] = [];
    do names.push(this.ident('a type parameter name').text);
    while (this.accept(','));
    this.expect('>', ' to close the type parameters');
    return names;
  }

  /** `(dir type name, ...)`; x4c takes a trailing comma. */
  private params(): Param[] {
    this.expect('(');
    const params: Param[] = [];
    while (!this.accept(')')) {
      const start = this.peek();
      let direction: Direction = 'none';
      if (this.is('in') || this.is('out') || this.is('inout')) direction = this.nextToken().text as Direction;
      const type = this.parseType();
      const name = this.ident('a parameter name');
      params.push({ direction, type, name: name.text, loc: start.loc });
      if (!this.is(')')) this.expect(',', ' or \')\' after the parameter');
    }
    return params;
  }

  private parserDecl(): ParserDecl {
    const start = this.expect('parser');
    const name = this.ident('a parser name');
    const typeParams = this.is('<') ? this.typeParams() : [];
    const params = this.params();
    const decl: ParserDecl = { kind: 'parser', name: name.text, typeParams, params, loc: start.loc };
    if (this.accept(';')) return decl;
    this.expect('{', ` to open parser ${name.text}`);
    decl.states = [];
    while (!this.accept('}')) {
      const st = this.peek();
      if (!this.is('state')) this.error(st, `state or '}' to close parser ${name.text}`, 'x4c parsers hold states only');
      this.nextToken();
      const sname = this.ident('a state name');
      decl.states.push({ name: sname.text, body: this.block(), loc: st.loc });
    }
    return decl;
  }

  private controlDecl(): ControlDecl {
    const start = this.expect('control');
    const name = this.ident('a control name');
    const typeParams = this.is('<') ? this.typeParams() : [];
    const params = this.params();
    const decl: ControlDecl = { kind: 'control', name: name.text, typeParams, params, loc: start.loc };
    if (this.accept(';')) return decl;
    this.expect('{', ` to open control ${name.text}`);
    const body: NonNullable<ControlDecl['body']> = { locals: [], actions: [], tables: [] };
    decl.body = body;
    while (!this.accept('}')) this.controlMember(name.text, body);
    return decl;
  }

  private controlMember(control: string, body: NonNullable<ControlDecl['body']>): void {
    const t = this.peek();
    if (this.is('action')) body.actions.push(this.actionDecl());
    else if (this.is('table')) body.tables.push(this.tableDecl());
    else if (this.is('const')) body.locals.push(this.constDecl());
    else if (this.is('apply')) {
      if (body.apply) fail('P4_SYNTAX', t.loc, `control ${control} has a second apply block`, 'merge them into one');
      this.nextToken();
      body.apply = this.block();
    } else if (t.kind === 'ident' && this.is('(', 1)) body.locals.push(this.instanceDecl());
    else if (t.kind === 'ident' || (t.kind === 'keyword' && TYPE_KEYWORDS.has(t.text))) body.locals.push(this.varDecl());
    else this.error(t, `action, table, apply, a declaration or '}' to close control ${control}`);
  }

  private instanceDecl(): InstanceDecl {
    const type = this.nextToken();
    const args = this.args();
    const name = this.ident('the instance name');
    this.expect(';', ' after the instance');
    return { kind: 'instance', typeName: type.text, typeLoc: type.loc, args, name: name.text, loc: type.loc };
  }

  varDecl(): VarDecl {
    const start = this.peek();
    const type = this.parseType();
    const name = this.declName('a variable name');
    const decl: VarDecl = { kind: 'var', name: name.text, type, loc: start.loc };
    if (this.accept('=')) decl.init = this.parseExpr();
    this.expect(';', ' after the variable');
    return decl;
  }

  private actionDecl(): ActionDecl {
    const start = this.expect('action');
    const name = this.ident('an action name');
    const params = this.params();
    return { name: name.text, params, body: this.block(), loc: start.loc };
  }

  private packageDecl(): PackageDecl {
    const start = this.expect('package');
    const name = this.ident('a package name');
    const typeParams = this.is('<') ? this.typeParams() : [];
    this.expect('(');
    const params: PackageDecl['params'] = [];
    while (!this.accept(')')) {
      const type = this.parseType();
      const pname = this.ident('a package parameter name');
      params.push({ type, name: pname.text, loc: type.loc });
      if (!this.is(')')) this.expect(',', " or ')' after the package parameter");
    }
    this.expect(';', ' after the package declaration');
    return { kind: 'package', name: name.text, typeParams, params, loc: start.loc };
  }

  private packageInstance(): PackageInstance {
    const type = this.nextToken();
    if (!this.is('(')) this.error(this.peek(), `'(' (a top-level ${type.text} starts the package instance, like SoftNPU(parse(), ingress(), egress()) main;)`);
    this.nextToken();
    const args: PackageInstance['args'] = [];
    while (!this.accept(')')) {
      const arg = this.ident('the name of a parser or control');
      this.expect('(', ` after ${arg.text} (write ${arg.text}())`);
      this.expect(')', ' (x4c passes no constructor arguments)');
      args.push({ name: arg.text, loc: arg.loc });
      if (!this.is(')')) this.expect(',', " or ')' after the argument");
    }
    const name = this.ident('the package instance name (main)');
    this.expect(';', ' after the package instance');
    return { kind: 'packageInstance', typeName: type.text, args, name: name.text, loc: type.loc };
  }

  // --- tables -------------------------------------------------------------------------------

  private tableDecl(): TableDecl {
    const start = this.expect('table');
    const name = this.ident('a table name');
    this.expect('{', ` to open table ${name.text}`);
    const table: TableDecl = { name: name.text, keys: [], actions: [], loc: start.loc };
    const seen = new Map<string, Loc>();
    while (!this.accept('}')) {
      const t = this.peek();
      const prop = t.text === 'const' && this.peek(1).text === 'entries' ? 'const entries' : t.text;
      const first = seen.get(prop);
      if (first) fail('P4_SYNTAX', t.loc, `table ${name.text} has a second ${prop} (the first is at line ${first.line})`, 'keep one');
      seen.set(prop, t.loc);
      this.tableProperty(table, t);
    }
    return table;
  }

  private tableProperty(table: TableDecl, t: Token): void {
    if (this.accept('key')) {
      this.expect('=');
      this.expect('{');
      while (!this.accept('}')) table.keys.push(this.tableKey());
    } else if (this.accept('actions')) {
      this.expect('=');
      this.expect('{');
      while (!this.accept('}')) {
        const a = this.ident('an action name');
        this.expect(';', ' after the action name');
        table.actions.push({ name: a.text, loc: a.loc });
      }
    } else if (this.accept('default_action')) {
      this.expect('=');
      table.defaultAction = this.actionCall();
      this.expect(';', ' after the default action');
    } else if (this.accept('size')) {
      this.expect('=');
      const n = this.peek();
      if (n.kind !== 'int') this.error(n, 'the table size, an integer literal');
      this.nextToken();
      this.expect(';', ' after the size');
      table.size = { value: Number(n.value), loc: n.loc };
    } else if (this.accept('const')) {
      this.expect('entries', ' (x4c tables take const entries only)');
      this.expect('=');
      this.expect('{');
      table.entries = [];
      while (!this.accept('}')) table.entries.push(this.tableEntry());
    } else if (this.is('entries')) {
      fail('P4_SYNTAX', t.loc, 'x4c takes table entries only as const entries', 'write const entries = { ... }');
    } else {
      this.error(t, `key, actions, default_action, const entries, size or '}' to close table ${table.name}`);
    }
  }

  private tableKey(): TableDecl['keys'][number] {
    const start = this.peek();
    const expr = this.parseExpr();
    this.expect(':', ' after the key');
    const mk = this.peek();
    if (!['exact', 'ternary', 'lpm', 'range'].includes(mk.text) || mk.kind !== 'keyword') {
      this.error(mk, 'a match kind: exact, ternary, lpm or range');
    }
    this.nextToken();
    this.expect(';', ' after the match kind');
    return { expr, matchKind: mk.text as MatchKind, loc: start.loc };
  }

  private actionCall(): ActionCall {
    const name = this.ident('an action name');
    const args = this.is('(') ? this.args() : [];
    return { name: name.text, args, loc: name.loc };
  }

  private tableEntry(): TableEntry {
    const start = this.peek();
    const keys = this.keyset();
    this.expect(':', ' after the entry\'s keys');
    const action = this.actionCall();
    this.expect(';', ' after the entry');
    return { keys, action, loc: start.loc };
  }

  /** A keyset: `default`, `_`, `expr`, `expr &&& mask`, or a parenthesised tuple of those. */
  private keyset(): KeysetElement[] {
    const t = this.peek();
    if (t.kind === 'ident' && t.text === 'default') {
      this.nextToken();
      return [{ kind: 'default', loc: t.loc }];
    }
    if (!this.is('(')) return [this.keysetElement()];
    this.nextToken();
    const elements: KeysetElement[] = [];
    do elements.push(this.keysetElement());
    while (this.accept(','));
    this.expect(')', ' to close the keyset');
    return elements;
  }

  private keysetElement(): KeysetElement {
    const t = this.peek();
    if (t.kind === 'ident' && (t.text === '_' || t.text === 'default')) {
      this.nextToken();
      return { kind: t.text === '_' ? 'dontcare' : 'default', loc: t.loc };
    }
    const value = this.parseExpr();
    if (this.accept('&&&')) return { kind: 'mask', value, mask: this.parseExpr(), loc: t.loc };
    if (this.is('..')) fail('P4_SYNTAX', this.peek().loc, 'x4c has no a..b ranges in keysets', 'use a range key in a table');
    return { kind: 'value', value, loc: t.loc };
  }

  // --- statements ---------------------------------------------------------------------------

  block(): Block {
    const start = this.expect('{');
    const statements: Statement[] = [];
    while (!this.accept('}')) {
      if (this.peek().kind === 'eof') this.error(this.peek(), "'}' to close the block");
      statements.push(this.statement());
    }
    return { kind: 'block', statements, loc: start.loc };
  }

  private statement(): Statement {
    const t = this.peek();
    if (t.kind === 'keyword') {
      if (TYPE_KEYWORDS.has(t.text)) return this.varDecl();
      switch (t.text) {
        case 'const': return this.constDecl();
        case 'if': return this.ifStmt();
        case 'return': return this.returnStmt();
        case 'transition': return this.transition();
      }
    }
    if (t.kind === 'punct' && t.text === '{') fail('P4_SYNTAX', t.loc, 'x4c has no nested blocks', 'remove the braces');
    if (t.kind === 'punct' && t.text === ';') fail('P4_SYNTAX', t.loc, 'x4c has no empty statement', 'remove the ;');
    if (t.kind === 'ident') {
      if (t.text === 'exit' && this.is(';', 1)) fail('P4_SYNTAX', t.loc, 'x4c has no exit statement', 'use return (in an action or apply block)');
      if (this.peek(1).kind === 'ident') return this.varDecl();
      return this.exprStatement();
    }
    return this.error(t, 'a statement');
  }

  private exprStatement(): Statement {
    const start = this.peek();
    const expr = this.postfix();
    if (this.is('=')) {
      const eq = this.nextToken();
      if (expr.kind !== 'name' && expr.kind !== 'member' && expr.kind !== 'slice') {
        fail('P4_SYNTAX', eq.loc, 'the left side of = must be a variable, a field or a slice', 'assign to a field like hdr.ipv4.ttl');
      }
      const value = this.parseExpr();
      this.expect(';', ' after the assignment');
      return { kind: 'assign', target: expr, value, loc: start.loc };
    }
    if (expr.kind !== 'call') this.error(this.peek(), "'=' or a call's '('", 'a statement is an assignment or a call');
    this.expect(';', ' after the call');
    return { kind: 'call', call: expr, loc: start.loc };
  }

  private ifStmt(): IfStmt {
    const start = this.expect('if');
    this.expect('(', ' after if');
    const cond = this.parseExpr();
    this.expect(')', ' to close the condition');
    const stmt: IfStmt = { kind: 'if', cond, then: this.bracedBlock('if'), loc: start.loc };
    if (this.accept('else')) stmt.otherwise = this.is('if') ? this.ifStmt() : this.bracedBlock('else');
    return stmt;
  }

  private bracedBlock(what: string): Block {
    if (!this.is('{')) this.error(this.peek(), `'{' (x4c needs braces around the statements of ${what})`);
    return this.block();
  }

  private returnStmt(): Statement {
    const start = this.expect('return');
    if (this.accept(';')) return { kind: 'return', loc: start.loc };
    const value = this.parseExpr();
    this.expect(';', ' after return');
    return { kind: 'return', value, loc: start.loc };
  }

  private transition(): TransitionStmt {
    const start = this.expect('transition');
    if (this.is('select')) {
      const sel = this.nextToken();
      const exprs = this.args();
      this.expect('{', ' to open the select cases');
      const cases: SelectCase[] = [];
      while (!this.accept('}')) {
        const c = this.peek();
        const keys = this.keyset();
        this.expect(':', ' after the case\'s keys');
        const state = this.ident('the name of the next state');
        this.expect(';', ' after the case');
        cases.push({ keys, state: state.text, stateLoc: state.loc, loc: c.loc });
      }
      return { kind: 'transition', next: { kind: 'select', exprs, cases, loc: sel.loc }, loc: start.loc };
    }
    const state = this.ident('select or the name of the next state');
    this.expect(';', ' after the transition');
    return { kind: 'transition', next: { kind: 'state', name: state.text, loc: state.loc }, loc: start.loc };
  }

  // --- expressions --------------------------------------------------------------------------

  /** `(expr, ...)`, for calls and select. */
  private args(): Expr[] {
    this.expect('(');
    const args: Expr[] = [];
    while (!this.accept(')')) {
      args.push(this.parseExpr());
      if (!this.is(')')) this.expect(',', " or ')' after the argument");
    }
    return args;
  }

  parseExpr(): Expr {
    const e = this.binary(0);
    this.checkGrouping(e);
    return e;
  }

  private binary(level: number): Expr {
    if (level >= PRECEDENCE.length) return this.unary();
    let left = this.binary(level + 1);
    for (;;) {
      const op = this.binaryOp(PRECEDENCE[level]!);
      if (!op) return left;
      const right = this.binary(level + 1);
      left = { kind: 'binary', op: op.op, left, right, opLoc: op.loc, loc: left.loc };
    }
  }

  /**
   * x4c reads `a - b - c` as `a - (b - c)` and has no precedence, so a chain of operators
   * written for it may mean something else here. Only a chain of one associative operator
   * (`a + b + c`) reads the same both ways; any other needs parentheses. `&&` and `||`
   * (which x4c lacks) separate chains.
   */
  private checkGrouping(e: Expr): void {
    const ops: { op: BinaryOp; loc: Loc }[] = [];
    const walk = (x: Expr): void => {
      if (x.kind !== 'binary' || this.parenthesized.has(x)) return;
      if (x.op === '&&' || x.op === '||') {
        this.checkGrouping(x.left);
        this.checkGrouping(x.right);
        return;
      }
      walk(x.left);
      ops.push({ op: x.op, loc: x.opLoc });
      walk(x.right);
    };
    walk(e);
    if (ops.length < 2) return;
    const first = ops[0]!.op;
    const odd = ops.find((o) => o.op !== first || !['+', '&', '|', '^'].includes(o.op));
    if (!odd) return;
    const second = ops[1]!;
    fail(
      'P4_SYNTAX', second.loc,
      `x4c groups a chain of operators from the right without precedence (a - b - c is a - (b - c) there), so ${ops.map((o) => o.op).join(' ')} here is ambiguous`,
      'add parentheses to say which operation comes first',
    );
  }

  /** The next token(s) if they are one of `ops`; `>>` is two adjacent `>` (so `bit<8>>` never lexes wrong). */
  private binaryOp(ops: BinaryOp[]): { op: BinaryOp; loc: Loc } | undefined {
    const t = this.peek();
    if (t.kind !== 'punct') return undefined;
    const refused = REFUSED_OPERATORS[t.text];
    if (refused) fail('P4_SYNTAX', t.loc, refused[0], refused[1]);
    const next = this.peek(1);
    const shiftRight = t.text === '>' && next.kind === 'punct' && next.text === '>' && next.loc.line === t.loc.line && next.loc.col === t.loc.col + 1;
    const text = shiftRight ? '>>' : t.text;
    if (!ops.includes(text as BinaryOp)) return undefined;
    this.nextToken();
    if (shiftRight) this.nextToken();
    return { op: text as BinaryOp, loc: t.loc };
  }

  private unary(): Expr {
    const t = this.peek();
    if (this.is('!') || this.is('~')) {
      this.nextToken();
      return { kind: 'unary', op: t.text as '!' | '~', operand: this.unary(), loc: t.loc };
    }
    if (this.is('-')) fail('P4_SYNTAX', t.loc, 'x4c has no unary minus', 'write the value as a positive number');
    return this.postfix();
  }

  private postfix(): Expr {
    let expr = this.primary();
    for (;;) {
      if (this.is('.')) {
        this.nextToken();
        const m = this.peek();
        if (m.kind !== 'ident' && !(m.kind === 'keyword' && m.text === 'apply')) this.error(m, 'a member name after .');
        this.nextToken();
        expr = { kind: 'member', object: expr, member: m.text, memberLoc: m.loc, loc: expr.loc };
      } else if (this.is('[')) {
        expr = this.slice(expr);
      } else if (this.is('(')) {
        expr = { kind: 'call', callee: expr, typeArgs: [], args: this.args(), loc: expr.loc };
      } else if (this.is('<') && this.typeArgsAhead()) {
        this.nextToken();
        const typeArgs: TypeRef[] = [];
        do typeArgs.push(this.parseType());
        while (this.accept(','));
        this.expect('>');
        expr = { kind: 'call', callee: expr, typeArgs, args: this.args(), loc: expr.loc };
      } else return expr;
    }
  }

  /** True if `< type, ... > (` follows: a generic call like `pkt.lookahead<ethernet_h>()`, not a comparison. */
  private typeArgsAhead(): boolean {
    let i = 1;
    for (;;) {
      const t = this.peek(i);
      if (t.kind === 'ident' || (t.kind === 'keyword' && TYPE_KEYWORDS.has(t.text))) i++;
      else return false;
      if (this.is('<', i)) {
        // bit<8> inside the type arguments
        if (this.peek(i + 1).kind !== 'int' || !this.is('>', i + 2)) return false;
        i += 3;
      }
      if (this.is(',', i)) i++;
      else return this.is('>', i) && this.is('(', i + 1);
    }
  }

  private slice(object: Expr): Expr {
    const open = this.expect('[');
    const hi = this.parseExpr();
    if (!this.is(':')) {
      fail('P4_SYNTAX', open.loc, 'x4c has no indexing (header stacks or single bits)', 'use a slice like x[7:0]');
    }
    this.nextToken();
    const lo = this.parseExpr();
    this.expect(']', ' to close the slice');
    return { kind: 'slice', object, hi, lo, loc: object.loc };
  }

  private primary(): Expr {
    const t = this.peek();
    if (t.kind === 'int') {
      this.nextToken();
      return { kind: 'int', value: t.value!, ...(t.width !== undefined ? { width: t.width } : {}), signed: t.signed ?? false, loc: t.loc };
    }
    if (this.is('true') || this.is('false')) {
      this.nextToken();
      return { kind: 'bool', value: t.text === 'true', loc: t.loc };
    }
    if (t.kind === 'ident') {
      this.nextToken();
      return { kind: 'name', name: t.text, loc: t.loc };
    }
    if (this.is('(')) {
      const next = this.peek(1);
      if (next.kind === 'keyword' && TYPE_KEYWORDS.has(next.text)) fail('P4_SYNTAX', t.loc, 'x4c has no casts', 'use a value of the right width, like 16w1');
      this.nextToken();
      const inner = this.parseExpr();
      this.expect(')', ' to close the parenthesis');
      this.parenthesized.add(inner);
      return inner;
    }
    if (this.is('{')) return this.list();
    return this.error(t, 'an expression');
  }

  private list(): Expr {
    const open = this.expect('{');
    const elements: Expr[] = [];
    while (!this.accept('}')) {
      elements.push(this.parseExpr());
      if (!this.is('}')) this.expect(',', " or '}' after the list element");
    }
    return { kind: 'list', elements, loc: open.loc };
  }
}

/** Parses preprocessed tokens into declarations. Throws P4Error P4_SYNTAX at the first problem. */
export function parseTokens(tokens: Token[]): Declaration[] {
  return new P4Parser(tokens).parseProgram();
}
