/**
 * Errors of the P4 front end: every problem carries its position in the original source
 * (after #include), what is wrong and how to fix it.
 */
import { FalconError, type FalconErrorCode } from '../util/errors.js';

/** Where a token or node comes from: the file as named to the front end, 1-based line and column. */
export interface Loc {
  file: string;
  line: number;
  col: number;
}

/** One problem: its position, what is wrong, and what to do about it. */
export interface P4Diagnostic extends Loc {
  message: string;
  fix: string;
}

/**
 * P4_SYNTAX: the lexer or parser stopped at the first problem.
 * P4_INCLUDE: an #include could not be found or read.
 * P4_CHECK: the checker found problems; all of them are listed.
 */
export type P4ErrorCode = Extract<FalconErrorCode, 'P4_SYNTAX' | 'P4_INCLUDE' | 'P4_CHECK'>;

/** `file:line:col: what is wrong; fix`. */
export function formatDiagnostic(d: P4Diagnostic): string {
  return `${d.file}:${d.line}:${d.col}: ${d.message}; ${d.fix}`;
}

/** The error the P4 front end throws; `diagnostics` lists every problem found, in source order. */
export class P4Error extends FalconError {
  override name = 'P4Error';
  readonly diagnostics: readonly P4Diagnostic[];
  constructor(code: P4ErrorCode, diagnostics: P4Diagnostic[]) {
    const lines = diagnostics.map(formatDiagnostic);
    const message = lines.length === 1 ? lines[0]! : `${lines.length} problems in the P4 program:\n${lines.join('\n')}`;
    super(code, message);
    this.diagnostics = diagnostics;
  }
}

/** Throws a P4Error with one diagnostic at `loc`. */
export function fail(code: P4ErrorCode, loc: Loc, message: string, fix: string): never {
  throw new P4Error(code, [{ file: loc.file, line: loc.line, col: loc.col, message, fix }]);
}
