/**
 * The state of one compilation: storage, fresh names, hoisted constants, the tables found,
 * and lexical scopes that bind declarations (params, locals, instances) to storage. A
 * nested control instance is inlined, so the same declaration is bound anew in each copy.
 */
import type { TransitionStmt } from '../ast.js';
import type { CheckedProgram, ControlInfo, InstanceInfo } from '../checked.js';
import type { FieldMatch, ParamValue, TableLayout } from '../table-layout.js';
import { Storage, type Node } from './storage.js';

export type Binding = Node | { kind: 'pkt' } | { kind: 'checksum' } | { kind: 'control'; info: ControlInfo; path: string[]; inst: InstanceInfo };

/** The control a block belongs to: its checked info and qualified path (`ingress.router`). */
export interface ControlCtx {
  info: ControlInfo;
  path: string[];
}

export class Scope {
  private readonly map = new Map<object, Binding>();
  constructor(
    readonly parent: Scope | undefined,
    readonly control: ControlCtx | undefined,
    /** The label `return` breaks to (an inlined control or action body). */
    readonly returnLabel: string | undefined,
    /** True in a parser state. */
    readonly parser = false,
  ) {}
  bind(decl: object, b: Binding): void {
    this.map.set(decl, b);
  }
  get(decl: object): Binding | undefined {
    return this.map.get(decl) ?? this.parent?.get(decl);
  }
  child(returnLabel = this.returnLabel, control = this.control): Scope {
    return new Scope(this, control, returnLabel, this.parser);
  }
}

/** A constant entry: its matches, action index and parameter values. */
export interface ConstEntry {
  matches: FieldMatch[];
  action: number;
  params: ParamValue[];
}

/** A table as the generated code uses it. */
export interface TableUse {
  layout: TableLayout;
  /** 'n': one exact key of <= 48 bits, looked up by number; 'lpm': one LPM key of <= 32 bits; 'sel': a selector buffer. */
  access: 'n' | 'lpm' | 'sel';
  /** Set when the table is first applied. */
  constEntries?: ConstEntry[];
}

export class Gen {
  private n = 0;
  readonly hoisted: string[] = [];
  readonly tables: TableUse[] = [];
  readonly tableIndex = new Map<string, number>();
  readonly storage: Storage;
  /** Compiles a transition statement (set while compiling the parser). */
  transition?: (s: TransitionStmt, sc: Scope) => string;
  /** Bytes of the checksum scratch buffer. */
  csBytes = 0;
  constructor(readonly checked: CheckedProgram) {
    this.storage = new Storage(checked);
  }
  fresh(prefix: string): string {
    return `${prefix}${this.n++}`;
  }
  /** A module-level constant (hoisted out of the per-frame code); returns its name. */
  hoist(prefix: string, code: string): string {
    const name = this.fresh(prefix);
    this.hoisted.push(`const ${name} = ${code};`);
    return name;
  }
}
