/**
 * The syntax tree of a P4 program in x4c's dialect. Every node has a `loc` (file, line and
 * column where it was written). The checker (check.ts) fills in the optional fields marked
 * "set by the checker": the type of every expression, what every name refers to and what
 * every call calls, so that a compiler can generate code from the tree alone.
 */
import type { Loc } from './errors.js';

export type { Loc } from './errors.js';

// ---------------------------------------------------------------------------------------------
// Types as written

/** A type as written in the source. `int` without a width is an unsized integer (constants only). */
export type TypeRef =
  | { kind: 'bit'; width: number; loc: Loc }
  | { kind: 'int'; width?: number; loc: Loc }
  | { kind: 'varbit'; width: number; loc: Loc }
  | { kind: 'bool'; loc: Loc }
  | { kind: 'void'; loc: Loc }
  | { kind: 'named'; name: string; typeArgs: TypeRef[]; loc: Loc };

/** A type after resolution (typedefs replaced). `integer` is an unsized integer literal or constant. */
export type P4Type =
  | { kind: 'bit'; width: number }
  | { kind: 'int'; width: number }
  | { kind: 'varbit'; width: number }
  | { kind: 'bool' }
  | { kind: 'integer' }
  | { kind: 'void' }
  | { kind: 'header'; name: string }
  | { kind: 'struct'; name: string }
  | { kind: 'extern'; name: string }
  | { kind: 'parser'; name: string }
  | { kind: 'control'; name: string }
  | { kind: 'table'; control: string; name: string }
  | { kind: 'action'; name: string }
  | { kind: 'list'; elements: P4Type[] }
  /** A type parameter of a generic extern method (`T` of `extract<T>`): takes any argument. */
  | { kind: 'typeParam'; name: string };

// ---------------------------------------------------------------------------------------------
// Expressions

export type BinaryOp = '+' | '-' | '%' | '&' | '|' | '^' | '<<' | '>>' | '==' | '!=' | '<' | '>' | '<=' | '>=' | '&&' | '||';
export type UnaryOp = '!' | '~';

interface ExprBase {
  loc: Loc;
  /** Set by the checker: the expression's type. */
  type?: P4Type;
}

export interface BoolLit extends ExprBase { kind: 'bool'; value: boolean }
/** `16w0x0800` (width 16), `8s1` (signed), `7` (no width: unsized). */
export interface IntLit extends ExprBase { kind: 'int'; value: bigint; width?: number; signed: boolean }
export interface NameExpr extends ExprBase {
  kind: 'name';
  name: string;
  /** Set by the checker: the declaration the name refers to. */
  ref?: NameRef;
}
/** `object.member`; `loc` is the start of the whole expression, `memberLoc` the member's name. */
export interface MemberExpr extends ExprBase { kind: 'member'; object: Expr; member: string; memberLoc: Loc }
/** `object[hi:lo]`; the checker sets `hiValue`/`loValue` (bit numbers, 0 = least significant). */
export interface SliceExpr extends ExprBase { kind: 'slice'; object: Expr; hi: Expr; lo: Expr; hiValue?: number; loValue?: number }
export interface CallExpr extends ExprBase {
  kind: 'call';
  callee: Expr;
  typeArgs: TypeRef[];
  args: Expr[];
  /** Set by the checker: what is called. */
  target?: CallTarget;
}
/** `loc` is the start of the left operand, `opLoc` the operator. */
export interface BinaryExpr extends ExprBase { kind: 'binary'; op: BinaryOp; left: Expr; right: Expr; opLoc: Loc }
export interface UnaryExpr extends ExprBase { kind: 'unary'; op: UnaryOp; operand: Expr }
/** `{a, b, c}`: the argument of `Checksum.run`. */
export interface ListExpr extends ExprBase { kind: 'list'; elements: Expr[] }

export type Expr = BoolLit | IntLit | NameExpr | MemberExpr | SliceExpr | CallExpr | BinaryExpr | UnaryExpr | ListExpr;

/** What a name refers to (set by the checker). */
export type NameRef =
  | { kind: 'param'; decl: Param }
  | { kind: 'local'; decl: VarDecl }
  | { kind: 'const'; decl: ConstDecl; value: bigint | boolean }
  | { kind: 'instance'; decl: InstanceDecl }
  | { kind: 'table'; decl: TableDecl }
  | { kind: 'action'; decl: ActionDecl };

/** What a call calls (set by the checker). `object` is the expression before the method name. */
export type CallTarget =
  | { kind: 'isValid' | 'setValid' | 'setInvalid'; object: Expr }
  | { kind: 'extern'; extern: string; method: ExternMethodDecl; object: Expr }
  | { kind: 'table'; table: TableDecl; object: Expr }
  | { kind: 'control'; control: ControlDecl; instance: InstanceDecl; object: Expr }
  | { kind: 'action'; action: ActionDecl };

// ---------------------------------------------------------------------------------------------
// Statements

export interface Block { kind: 'block'; statements: Statement[]; loc: Loc }
/** `target = value;` where target is a name, a member or a slice. */
export interface AssignStmt { kind: 'assign'; target: Expr; value: Expr; loc: Loc }
export interface CallStmt { kind: 'call'; call: CallExpr; loc: Loc }
/** `else if` is an IfStmt as `otherwise`. */
export interface IfStmt { kind: 'if'; cond: Expr; then: Block; otherwise?: Block | IfStmt; loc: Loc }
export interface ReturnStmt { kind: 'return'; value?: Expr; loc: Loc }
export interface TransitionStmt { kind: 'transition'; next: TransitionTarget; loc: Loc }
export type TransitionTarget =
  | { kind: 'state'; name: string; loc: Loc }
  | { kind: 'select'; exprs: Expr[]; cases: SelectCase[]; loc: Loc };
export interface SelectCase { keys: KeysetElement[]; state: string; stateLoc: Loc; loc: Loc }

/** One element of a select case or a const table entry. */
export type KeysetElement =
  | { kind: 'value'; value: Expr; loc: Loc }
  | { kind: 'mask'; value: Expr; mask: Expr; loc: Loc }
  | { kind: 'dontcare'; loc: Loc }
  | { kind: 'default'; loc: Loc };

export type Statement = Block | AssignStmt | CallStmt | IfStmt | ReturnStmt | TransitionStmt | VarDecl | ConstDecl;

// ---------------------------------------------------------------------------------------------
// Declarations

export interface FieldDecl { name: string; type: TypeRef; loc: Loc; /** Set by the checker. */ resolved?: P4Type }
export interface HeaderDecl { kind: 'header'; name: string; fields: FieldDecl[]; loc: Loc }
export interface StructDecl { kind: 'struct'; name: string; fields: FieldDecl[]; loc: Loc }
export interface TypedefDecl { kind: 'typedef'; name: string; type: TypeRef; loc: Loc }
export interface ConstDecl { kind: 'const'; name: string; type: TypeRef; value: Expr; loc: Loc; /** Set by the checker. */ resolved?: P4Type }
/** A local variable (in a block or a control's body). */
export interface VarDecl { kind: 'var'; name: string; type: TypeRef; init?: Expr; loc: Loc; /** Set by the checker. */ resolved?: P4Type }
/** `Checksum() csum;` or `router() r;`: an instance of an extern or a control. */
export interface InstanceDecl { kind: 'instance'; typeName: string; typeLoc: Loc; args: Expr[]; name: string; loc: Loc }

export type Direction = 'in' | 'out' | 'inout' | 'none';
export interface Param { direction: Direction; type: TypeRef; name: string; loc: Loc; /** Set by the checker. */ resolved?: P4Type }

export interface ExternMethodDecl { name: string; returnType: TypeRef; typeParams: string[]; params: Param[]; loc: Loc }
export interface ExternDecl { kind: 'extern'; name: string; methods: ExternMethodDecl[]; loc: Loc }

export interface StateDecl { name: string; body: Block; loc: Loc }
/** A parser; `states` is undefined for a declaration without a body (a parser type). */
export interface ParserDecl { kind: 'parser'; name: string; typeParams: string[]; params: Param[]; states?: StateDecl[]; loc: Loc }

export interface ActionDecl { name: string; params: Param[]; body: Block; loc: Loc }
export type MatchKind = 'exact' | 'ternary' | 'lpm' | 'range';
export interface TableKey { expr: Expr; matchKind: MatchKind; loc: Loc }
/** An action named with its arguments: `default_action = a(1);`, or an entry's action. */
export interface ActionCall { name: string; args: Expr[]; loc: Loc }
export interface TableEntry { keys: KeysetElement[]; action: ActionCall; loc: Loc }
export interface TableDecl {
  name: string;
  keys: TableKey[];
  actions: { name: string; loc: Loc }[];
  defaultAction?: ActionCall;
  entries?: TableEntry[];
  size?: { value: number; loc: Loc };
  loc: Loc;
}
/** A control; `body` is undefined for a declaration without a body (a control type). */
export interface ControlDecl {
  kind: 'control';
  name: string;
  typeParams: string[];
  params: Param[];
  body?: {
    /** Variables, constants and instances, in source order. */
    locals: (VarDecl | ConstDecl | InstanceDecl)[];
    actions: ActionDecl[];
    tables: TableDecl[];
    apply?: Block;
  };
  loc: Loc;
}

export interface PackageParam { type: TypeRef; name: string; loc: Loc }
export interface PackageDecl { kind: 'package'; name: string; typeParams: string[]; params: PackageParam[]; loc: Loc }
/** `SoftNPU(parse(), ingress(), egress()) main;` */
export interface PackageInstance { kind: 'packageInstance'; typeName: string; args: { name: string; loc: Loc }[]; name: string; loc: Loc }

export type Declaration =
  | HeaderDecl | StructDecl | TypedefDecl | ConstDecl | ExternDecl | ParserDecl | ControlDecl | PackageDecl | PackageInstance;

/** A whole program: its declarations in source order (included files in place of their #include). */
export interface Program { declarations: Declaration[]; files: string[] }
