/**
 * The P4 front end: x4c's dialect of P4 in, a checked program (typed syntax tree, symbol
 * tables, header layouts) out, for a compiler to turn into a SoftNPU pipeline.
 *
 * ```ts
 * const checked = loadP4Program('/path/to/program.p4');
 * checked.headers.get('ethernet_h')?.fields; // [{ name: 'dst', width: 48, offset: 0 }, ...]
 * ```
 */
import type { Program } from './ast.js';
import { checkProgram, type CheckedProgram } from './check.js';
import { parseTokens } from './parser.js';
import { preprocess, type PreprocessOptions } from './preprocess.js';

export type * from './ast.js';
export type * from './checked.js';
export { P4Error, formatDiagnostic, type P4Diagnostic, type P4ErrorCode } from './errors.js';
export { lex, type Token } from './lexer.js';
export { BUNDLED_INCLUDE_DIR, preprocess, type PreprocessOptions, type Preprocessed } from './preprocess.js';
export { checkProgram, typeToString } from './check.js';
export { tableLayouts, type TableLayout, type KeyFieldLayout, type ActionLayout, type ParamLayout } from './table-layout.js';

export type P4Options = PreprocessOptions;

/** Reads, preprocesses and parses the program in `file`. Throws P4Error (P4_SYNTAX, P4_INCLUDE). */
export function parseP4(file: string, options: P4Options = {}): Program {
  const { tokens, files } = preprocess(file, options);
  return { declarations: parseTokens(tokens), files };
}

/** Checks a parsed program. Throws P4Error P4_CHECK listing every problem found. */
export function checkP4(program: Program): CheckedProgram {
  return checkProgram(program);
}

/** parseP4 then checkP4. */
export function loadP4Program(file: string, options: P4Options = {}): CheckedProgram {
  return checkP4(parseP4(file, options));
}
