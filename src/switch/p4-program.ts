/**
 * A P4 program as a {@link Pipeline}: front end (src/p4), compiler (src/p4/compile.ts),
 * the generated function instantiated once, and its tables (p4-tables.ts) behind the
 * p4rs-shaped table operations.
 *
 * ```ts
 * const p = compileP4Pipeline('/path/router.p4', 4);
 * p.tableAdd('ingress.router.rtr', 'forward', key, params);
 * p.processPacket(1, frame);
 * ```
 */
import { dirname, resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { FalconError } from '../util/errors.js';
import { loadP4Program } from '../p4/index.js';
import { compileP4, P4_COUNTERS, type CompiledP4 } from '../p4/compile.js';
import type { TableLayout } from '../p4/table-layout.js';
import type { PacketOut, Pipeline } from './pipeline.js';
import { P4Table } from './p4-tables.js';

export interface P4PipelineOptions {
  /** Reads a file (the program and its includes); defaults to the disk. */
  readFile?: (path: string) => string;
  /** Folders searched for #include after the program's own folder. */
  includePaths?: string[];
}

/** A P4 program given inline: its text, and the file name it is known by (for includes and messages). */
export interface P4Source {
  source: string;
  file?: string;
}

export interface P4Pipeline extends Pipeline {
  /** Every table's key and parameter layout. */
  tableLayouts(): TableLayout[];
  /** The generated JavaScript (for debugging). */
  readonly generated: string;
  clearTables(): void;
}

type Process = (port: number, frame: Buffer) => PacketOut[];

/** Compiles a P4 program (a file path, or inline source) into a pipeline with `radix` ports. Throws P4Error for a bad program. */
export function compileP4Pipeline(program: string | P4Source, radix: number, options: P4PipelineOptions = {}): P4Pipeline {
  const read = options.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  let file: string;
  let readFile = read;
  if (typeof program === 'string') {
    file = resolve(program);
  } else {
    file = resolve(program.file ?? 'program.p4');
    readFile = (p) => (resolve(p) === file ? program.source : read(p));
  }
  const checked = loadP4Program(file, { readFile, ...(options.includePaths ? { includePaths: options.includePaths } : {}) });
  return instantiate(compileP4(checked), radix, dirname(file));
}

function instantiate(c: CompiledP4, radix: number, where: string): P4Pipeline {
  const tables = c.tables.map((t) => new P4Table(t.layout, t.constEntries ?? []));
  const byName = new Map(tables.map((t) => [t.name, t]));
  const counters = new Float64Array(P4_COUNTERS.length);
  let process: Process;
  try {
    // The compiler's output is our own code, compiled once per load.
    process = new Function('rt', c.source)({ tables, radix, counters }) as Process;
  } catch (e) {
    throw new FalconError('INTERNAL', `the P4 compiler generated invalid code for the program in ${where}: ${(e as Error).message}`, { cause: e });
  }
  const table = (name: string): P4Table => {
    const t = byName.get(name);
    if (!t) throw new FalconError('NPU_TABLE', `there is no table "${name}"; the program has ${[...byName.keys()].join(', ') || 'no tables'}`);
    return t;
  };
  return {
    generated: c.source,
    processPacket: process,
    tableAdd(name, action, key, params, prio) {
      table(name).add(action, key, params, prio);
    },
    tableRemove(name, key) {
      table(name).remove(key);
    },
    tableIds: () => [...byName.keys()],
    tableEntries: (name) => byName.get(name)?.entries(),
    tableLayouts: () => tables.map((t) => t.layout),
    counters: () => Object.fromEntries(P4_COUNTERS.map((n, i) => [n, counters[i]!])),
    clearTables() {
      for (const t of tables) t.clear();
    },
  };
}
