/**
 * Loads a pipeline program: a built-in one by name (`sidecar-lite`, `wire`, `sidemux`,
 * `sidecar-lite.p4`), a P4 program by path (`*.p4`, compiled by p4-program.ts), or a
 * module by path (chosen on the host, never by a guest) that exports `createPipeline(radix)`.
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { FalconError } from '../util/errors.js';
import type { Pipeline, PipelineModule } from './pipeline.js';

/** The programs built into Falcon. */
export const BUILTIN_PROGRAMS = ['sidecar-lite', 'wire', 'sidemux', 'sidecar-lite.p4'] as const;
export type BuiltinProgram = (typeof BUILTIN_PROGRAMS)[number];

const BUILTIN: Record<BuiltinProgram, () => Promise<PipelineModule>> = {
  'sidecar-lite': () => import('./programs/sidecar-lite.js'),
  wire: () => import('./programs/wire.js'),
  sidemux: () => import('./programs/sidemux.js'),
  'sidecar-lite.p4': () => p4Module(fileURLToPath(new URL('./programs/sidecar-lite.p4', import.meta.url))),
};

/** A P4 program as a module (the compiler is loaded only when a P4 program is). */
async function p4Module(file: string): Promise<PipelineModule> {
  const { compileP4Pipeline } = await import('./p4-program.js');
  return { createPipeline: (radix) => compileP4Pipeline(file, radix) };
}

function isPipeline(x: unknown): x is Pipeline {
  const p = x as Partial<Pipeline> | null;
  return !!p && ['processPacket', 'tableAdd', 'tableRemove', 'tableIds', 'tableEntries'].every((m) => typeof (p as Record<string, unknown>)[m] === 'function');
}

/**
 * Creates the pipeline of a built-in program (by name) or of a module (an absolute path, or
 * one relative to `baseDir`). `radix` = number of ports including port 0.
 */
export async function loadPipeline(program: string, radix: number, baseDir = process.cwd()): Promise<Pipeline> {
  if (!Number.isInteger(radix) || radix < 1 || radix > 65535) throw new FalconError('NPU_PROGRAM', `radix ${radix} is not a port count between 1 and 65535`);
  let mod: Partial<PipelineModule>;
  if ((BUILTIN_PROGRAMS as readonly string[]).includes(program)) {
    mod = await BUILTIN[program as BuiltinProgram]();
  } else if (program.endsWith('.p4')) {
    mod = await p4Module(path.resolve(baseDir, program));
  } else if (program.includes('/') || program.includes('.')) {
    const file = path.resolve(baseDir, program);
    try {
      mod = (await import(pathToFileURL(file).href)) as Partial<PipelineModule>;
    } catch (e) {
      throw new FalconError('NPU_PROGRAM', `pipeline program ${file} could not be loaded (${(e as Error).message}); give the path of a module that exports createPipeline(radix)`, { cause: e });
    }
  } else {
    throw new FalconError('NPU_PROGRAM', `there is no built-in pipeline program "${program}"; use one of ${BUILTIN_PROGRAMS.join(', ')} or the path of a module`);
  }
  if (typeof mod.createPipeline !== 'function') throw new FalconError('NPU_PROGRAM', `pipeline program ${program} does not export createPipeline(radix)`);
  const p = mod.createPipeline(radix);
  if (!isPipeline(p)) throw new FalconError('NPU_PROGRAM', `createPipeline of ${program} returned something that is not a Pipeline (processPacket, tableAdd, tableRemove, tableIds, tableEntries)`);
  return p;
}

