/**
 * The shape of a checked program: what the checker hands a compiler.
 *
 * Beside these tables, the checker annotates the syntax tree in place: every expression
 * has `type`, every NameExpr `ref`, every CallExpr `target`, every SliceExpr
 * `hiValue`/`loValue`, and every Param, VarDecl, ConstDecl and FieldDecl `resolved`
 * (its type with typedefs replaced).
 */
import type {
  ActionDecl, ConstDecl, ControlDecl, Direction, Expr, ExternDecl, HeaderDecl, InstanceDecl, KeysetElement, Loc,
  MatchKind, P4Type, PackageDecl, Param, ParserDecl, Program, StateDecl, StructDecl, TableDecl, VarDecl,
} from './ast.js';

/** One header field: `offset` is in bits from the header's first bit (network order: bit 0 is the MSB of byte 0). */
export interface FieldLayout {
  name: string;
  type: P4Type;
  /** Bits; for a varbit field, its maximum. */
  width: number;
  offset: number;
  loc: Loc;
}

/** A header's wire layout. */
export interface HeaderLayout {
  name: string;
  decl: HeaderDecl;
  fields: FieldLayout[];
  /** Total bits (a multiple of 8); with a varbit field, its maximum width counts. */
  bits: number;
  bytes: number;
  /** Bits before the varbit field when there is one (it must be the last field), else `bits`. */
  fixedBits: number;
  /** The varbit field's name, if the header has one. */
  varbit?: string;
}

export interface StructInfo {
  name: string;
  decl: StructDecl;
  fields: { name: string; type: P4Type; loc: Loc }[];
}

/** A constant's type and value (an unsized `int` constant has type `integer`). */
export interface ConstInfo {
  name: string;
  decl: ConstDecl;
  type: P4Type;
  value: bigint | boolean;
}

export interface ResolvedParam {
  name: string;
  direction: Direction;
  type: P4Type;
  decl: Param;
}

export interface ParserInfo {
  name: string;
  decl: ParserDecl;
  params: ResolvedParam[];
  /** Empty for a parser declared without a body (a parser type). */
  states: Map<string, StateDecl>;
}

export interface ActionInfo {
  name: string;
  decl: ActionDecl;
  /** Parameters without a direction are action data, given by the table entry. */
  params: ResolvedParam[];
  /** True for the built-in NoAction. */
  builtin: boolean;
}

export interface TableKeyInfo {
  expr: Expr;
  matchKind: MatchKind;
  type: P4Type;
  width: number;
}

export interface TableEntryInfo {
  keys: KeysetElement[];
  action: ActionInfo;
  args: Expr[];
  loc: Loc;
}

export interface TableInfo {
  name: string;
  control: string;
  decl: TableDecl;
  keys: TableKeyInfo[];
  actions: ActionInfo[];
  defaultAction: { action: ActionInfo; args: Expr[] };
  entries: TableEntryInfo[];
  size?: number;
}

/** `Checksum() csum;` (extern) or `router() r;` (control). */
export interface InstanceInfo {
  name: string;
  decl: InstanceDecl;
  kind: 'extern' | 'control';
  typeName: string;
}

export interface ControlInfo {
  name: string;
  decl: ControlDecl;
  params: ResolvedParam[];
  actions: Map<string, ActionInfo>;
  tables: Map<string, TableInfo>;
  instances: Map<string, InstanceInfo>;
  /** Control-level variables and constants. */
  variables: Map<string, VarDecl | ConstDecl>;
}

/** The package instance, like `SoftNPU(parse(), ingress(), egress()) main;`. */
export interface MainInfo {
  packageName: string;
  instanceName: string;
  /** The arguments, in order. */
  args: (ParserInfo | ControlInfo)[];
  /** For SoftNPU: args[0], args[1], args[2]. */
  parser?: ParserInfo;
  ingress?: ControlInfo;
  egress?: ControlInfo;
}

/** A checked program: the annotated tree and its symbol tables. */
export interface CheckedProgram {
  program: Program;
  headers: Map<string, HeaderLayout>;
  structs: Map<string, StructInfo>;
  typedefs: Map<string, P4Type>;
  constants: Map<string, ConstInfo>;
  externs: Map<string, ExternDecl>;
  parsers: Map<string, ParserInfo>;
  controls: Map<string, ControlInfo>;
  packages: Map<string, PackageDecl>;
  main: MainInfo;
  /** The built-in NoAction (a control's own NoAction, if it declares one, takes precedence there). */
  noAction: ActionInfo;
}
