/**
 * Loading a P4 program into a running switch, as scadm's load-program does: a `LoadProgram`
 * request (management UART, control socket, `$topo npu NODE load FILE`) hands the switch P4
 * source; the switch compiles it and swaps its pipeline in between two frames, or replies with
 * the compiler's errors and keeps the old one. P4 is data: its includes come from the request
 * (`files`) or Falcon's bundled headers, never from the switch host's disk, so a guest cannot
 * make the switch read a file.
 *
 * Tables: every entry of the old pipeline is offered to the new one; it is kept when the new
 * program has that table with the same action and key and parameter lengths, dropped
 * otherwise; the reply counts both. The loaded program is saved beside the tables and loaded
 * again when the switch restarts (hyperstop/hyperstart), until destroy.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { BUNDLED_INCLUDE_DIR, preprocess } from '../p4/index.js';
import { FalconError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { compileP4Pipeline, type P4Pipeline } from './p4-program.js';
import type { LoadProgramRequest } from './mgmt.js';
import { dumpTables, type Pipeline } from './pipeline.js';

/** A program as a switch keeps it. */
export interface ProgramSource {
  name: string;
  source: string;
  files: Record<string, string>;
}

/** What a LoadProgram request answers (one JSON line on the UART). */
export type LoadProgramReply =
  | { ok: true; program: string; tables: { kept: number; dropped: number } }
  | { ok: false; program: string; errors: string[] };

/** Where a loaded program's files appear to the compiler: nowhere on the disk. */
const VIRTUAL_DIR = '/falcon-loaded/program';

export function programOfRequest(r: LoadProgramRequest): ProgramSource {
  const source = r.source ?? Buffer.from(r.source_b64!, 'base64').toString('utf8');
  return { name: r.name, source, files: r.files ?? {} };
}

/** Compiles a loaded program: its includes from `files`, then the bundled headers only. */
export function compileLoaded(p: ProgramSource, radix: number): P4Pipeline {
  const file = path.join(VIRTUAL_DIR, p.name);
  const files = new Map(Object.entries(p.files).map(([k, v]) => [path.resolve(VIRTUAL_DIR, k), v]));
  const bundled = path.resolve(BUNDLED_INCLUDE_DIR);
  const read = (f: string): string => {
    const abs = path.resolve(f);
    if (abs === file) return p.source;
    const own = files.get(abs);
    if (own !== undefined) return own;
    if (abs.startsWith(bundled + path.sep)) return readFileSync(abs, 'utf8');
    throw new FalconError('P4_INCLUDE', `${f} is not among the request's files`);
  };
  return compileP4Pipeline(file, radix, { readFile: read });
}

/** Offers every entry of `from` to `to`; counts what `to` kept and what it refused. */
export function moveTables(from: Pipeline, to: Pipeline): { kept: number; dropped: number } {
  let kept = 0;
  let dropped = 0;
  const have = new Set(to.tableIds());
  for (const [table, entries] of Object.entries(dumpTables(from))) {
    for (const e of entries) {
      if (!have.has(table)) {
        dropped++;
        continue;
      }
      try {
        to.tableAdd(table, e.action_id, Uint8Array.from(e.keyset_data), Uint8Array.from(e.parameter_data));
        kept++;
      } catch {
        dropped++;
      }
    }
  }
  return { kept, dropped };
}

/** The messages of a program that did not compile, one per problem. */
export function compileErrors(e: unknown): string[] {
  const d = (e as { diagnostics?: { file: string; line: number; col: number; message: string; fix?: string }[] }).diagnostics;
  if (Array.isArray(d) && d.length) return d.map((x) => `${path.basename(x.file)}:${x.line}:${x.col}: ${x.message}${x.fix ? `; ${x.fix}` : ''}`);
  return [(e as Error).message.replaceAll(VIRTUAL_DIR + '/', '')];
}

/**
 * The program a host-side caller sends for FILE: its source and the includes it reads from
 * its own folders (the bundled headers are the switch's), found by running the preprocessor.
 */
export function programFromFile(file: string): ProgramSource {
  const abs = path.resolve(file);
  const dir = path.dirname(abs);
  const bundled = path.resolve(BUNDLED_INCLUDE_DIR);
  const files: Record<string, string> = {};
  const read = (f: string): string => {
    const text = readFileSync(f, 'utf8');
    const a = path.resolve(f);
    if (a !== abs && !a.startsWith(bundled + path.sep)) files[path.relative(dir, a)] = text;
    return text;
  };
  const source = read(abs);
  preprocess(abs, { readFile: read });
  return { name: path.basename(abs), source, files };
}

const savedSchema = z.object({ version: z.literal(1), name: z.string(), source: z.string(), files: z.record(z.string()) }).strict();

/** The program saved by the last load (undefined when none was loaded). */
export async function readSavedProgram(file: string): Promise<ProgramSource | undefined> {
  const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  });
  if (text === undefined) return undefined;
  const v = savedSchema.safeParse(JSON.parse(text));
  if (!v.success) throw new FalconError('NPU_CONFIG', `the loaded program saved in ${file} is damaged; delete the file to go back to the topology's program`);
  return { name: v.data.name, source: v.data.source, files: v.data.files };
}

export async function saveProgram(file: string, p: ProgramSource): Promise<void> {
  await writeFileAtomic(file, JSON.stringify({ version: 1, ...p }) + '\n');
}
