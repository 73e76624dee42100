/**
 * What x4c's preprocessor does: `#include` (each file once) and `#define NAME value`.
 * The result is one token stream in which every token keeps the file, line and column it
 * was written at; a macro's tokens take the position of the name they replace.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fail, type Loc } from './errors.js';
import { lex, type Token } from './lexer.js';

/** Falcon's bundled include folder (core.p4, softnpu.p4), next to this module in src/ and in dist/. */
export const BUNDLED_INCLUDE_DIR = fileURLToPath(new URL('./include/', import.meta.url));

export interface PreprocessOptions {
  /** Reads a file; throws if it does not exist. Defaults to reading from disk as UTF-8. */
  readFile?: (path: string) => string;
  /** Folders searched after the program's own folder and before the bundled include folder. */
  includePaths?: string[];
  /** Replaces the bundled include folder (tests). */
  bundledIncludeDir?: string;
}

export interface Preprocessed {
  /** The program's tokens, directives done, ending with one `eof`. */
  tokens: Token[];
  /** Every file read, the program first. */
  files: string[];
}

interface State {
  readFile: (path: string) => string;
  searchDirs: string[];
  included: Set<string>;
  files: string[];
  macros: Map<string, { body: Token[]; loc: Loc }>;
  out: Token[];
}

const defaultRead = (path: string): string => readFileSync(path, 'utf8');

/** Preprocesses the program in `file`. Throws P4Error (P4_SYNTAX, P4_INCLUDE). */
export function preprocess(file: string, options: PreprocessOptions = {}): Preprocessed {
  const state: State = {
    readFile: options.readFile ?? defaultRead,
    searchDirs: [dirname(file), ...(options.includePaths ?? []), options.bundledIncludeDir ?? BUNDLED_INCLUDE_DIR],
    included: new Set(),
    files: [],
    macros: new Map(),
    out: [],
  };
  let text: string;
  try {
    text = state.readFile(file);
  } catch (e) {
    return fail('P4_INCLUDE', { file, line: 1, col: 1 }, `cannot read the program: ${(e as Error).message}`, 'check the path');
  }
  includeText(state, file, text);
  state.out.push({ kind: 'eof', text: '', loc: state.out.at(-1)?.loc ?? { file, line: 1, col: 1 } });
  return { tokens: state.out, files: state.files };
}

function includeText(state: State, file: string, text: string): void {
  state.included.add(resolve(file));
  state.files.push(file);
  for (const t of lex(text, file)) {
    if (t.kind === 'eof') break;
    if (t.kind === 'directive') directive(state, file, t);
    else expand(state, t, new Set());
  }
}

function expand(state: State, t: Token, active: Set<string>): void {
  const macro = t.kind === 'ident' ? state.macros.get(t.text) : undefined;
  if (!macro || active.has(t.text)) {
    state.out.push(t);
    return;
  }
  const inner = new Set(active).add(t.text);
  for (const b of macro.body) expand(state, { ...b, loc: t.loc }, inner);
}

function directive(state: State, file: string, t: Token): void {
  if (t.text === '#define') {
    const name = t.name!;
    const old = state.macros.get(name);
    const same = old && old.body.map((b) => b.text).join(' ') === t.body!.map((b) => b.text).join(' ');
    if (old && !same) {
      fail('P4_SYNTAX', t.loc, `macro ${name} is already defined (at ${old.loc.file}:${old.loc.line}:${old.loc.col}) with another value`, 'give one of them another name');
    }
    if (!old) state.macros.set(name, { body: t.body!, loc: t.loc });
    return;
  }
  const path = t.path!;
  const found = findInclude(state, file, path);
  if (!found) {
    const where = [...new Set(isAbsolute(path) ? [path] : [dirname(file), ...state.searchDirs])].join(', ');
    fail('P4_INCLUDE', t.loc, `cannot find include file ${path} (looked in ${where})`, 'check the name, or pass the folder in includePaths');
  }
  if (state.included.has(resolve(found.path))) return;
  includeText(state, found.path, found.text);
}

function findInclude(state: State, file: string, path: string): { path: string; text: string } | undefined {
  const candidates = isAbsolute(path) ? [path] : [dirname(file), ...state.searchDirs].map((d) => join(d, path));
  for (const candidate of candidates) {
    if (state.included.has(resolve(candidate))) return { path: candidate, text: '' };
    try {
      return { path: candidate, text: state.readFile(candidate) };
    } catch {
      // Not in this folder: try the next one.
    }
  }
  return undefined;
}
