/**
 * Table contents on disk (`.falcon/<npu>.npu-tables.json`), so they survive a switch
 * restart and hyperstop/hyperstart: the dump map with the program's name, written
 * atomically (mode 0600) after every change, and replayed with tableAdd at start.
 * Saves are serialized; a burst of changes becomes one write of the latest state.
 */
import { readFile } from 'node:fs/promises';
import { FalconError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import type { Logger } from '../util/log.js';
import { dumpTables, type Pipeline } from './pipeline.js';
import type { TableEntryJson } from './tables.js';

export interface SavedTables {
  version: 1;
  program: string;
  tables: Record<string, TableEntryJson[]>;
}

/** Reads saved tables; undefined when the file does not exist. */
export async function readSavedTables(file: string): Promise<SavedTables | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  let v: SavedTables;
  try {
    v = JSON.parse(text) as SavedTables;
  } catch (e) {
    throw new FalconError('NPU_CONFIG', `saved switch tables ${file} are not JSON (${(e as Error).message}); delete the file to start with empty tables`, { cause: e });
  }
  if (v?.version !== 1 || typeof v.tables !== 'object' || v.tables === null) throw new FalconError('NPU_CONFIG', `saved switch tables ${file} are not in the expected format; delete the file to start with empty tables`);
  return v;
}

/** Adds saved entries to a pipeline; returns how many were refused (each logged). */
export function restoreTables(p: Pipeline, saved: SavedTables, log: Logger): number {
  let refused = 0;
  for (const [table, entries] of Object.entries(saved.tables)) {
    for (const e of entries) {
      try {
        p.tableAdd(table, e.action_id, Uint8Array.from(e.keyset_data), Uint8Array.from(e.parameter_data));
      } catch (err) {
        refused++;
        log.log({ kind: 'warn', msg: `saved entry of table ${table} refused: ${(err as Error).message}` });
      }
    }
  }
  return refused;
}

/** Saves the pipeline's tables, one write at a time, the latest state winning. */
export class TableSaver {
  private running: Promise<void> | undefined;
  private again = false;

  constructor(private readonly file: string, private readonly program: string, private readonly p: Pipeline) {}

  /** Resolves once a save that started after this call has finished. */
  save(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          const data: SavedTables = { version: 1, program: this.program, tables: dumpTables(this.p) };
          await writeFileAtomic(this.file, JSON.stringify(data) + '\n');
        } while (this.again);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }
}
