/**
 * The lexer of the x4c dialect of P4. It also recognises the preprocessor lines
 * (`#include`, `#define`) x4c takes, as `directive` tokens, so that every token keeps
 * the file, line and column it was written at.
 */
import { fail, type Loc } from './errors.js';

/** x4c's keywords (it has no `exit`, `switch`, `enum`, `error` or `string` keyword). */
export const KEYWORDS = new Set([
  'const', 'header', 'typedef', 'control', 'struct', 'action', 'parser', 'table', 'size', 'key',
  'exact', 'ternary', 'lpm', 'range', 'actions', 'default_action', 'entries', 'in', 'inout', 'out',
  'transition', 'state', 'select', 'apply', 'package', 'extern', 'if', 'else', 'return',
  'bool', 'bit', 'varbit', 'int', 'void', 'true', 'false',
]);

/** Operators and punctuation, longest first. Some are lexed only to be refused by the parser with a clear message. */
const PUNCTUATION = [
  '&&&', '&&', '||', '==', '!=', '<=', '>=', '<<', '++', '..',
  '&', '|', '^', '~', '!', '=', '<', '>', '+', '-', '%', '*', '/', '.', ',', ';', ':', '(', ')', '{', '}', '[', ']', '?', '@',
];

export type TokenKind = 'ident' | 'keyword' | 'int' | 'punct' | 'directive' | 'eof';

/** One token. `text` is the source text (for `directive`, the directive's name, like `#include`). */
export interface Token {
  kind: TokenKind;
  text: string;
  loc: Loc;
  /** int: the value. */
  value?: bigint;
  /** int: the width of a `8w1` / `8s1` literal; absent for an unsized literal. */
  width?: number;
  /** int: true for an `s` (signed) literal. */
  signed?: boolean;
  /** directive #include: the named path and whether it was written `<path>` (else `"path"`). */
  path?: string;
  angle?: boolean;
  /** directive #define: the macro's name and the tokens of its body. */
  name?: string;
  body?: Token[];
}

const isIdentStart = (c: string | undefined): boolean => c !== undefined && /[A-Za-z_]/.test(c);
const isIdentChar = (c: string | undefined): boolean => c !== undefined && /[A-Za-z0-9_]/.test(c);

class Lexer {
  private pos = 0;
  private line = 1;
  private col = 1;
  /** True until something other than whitespace is seen on the current line: where a directive may start. */
  private lineStart = true;

  constructor(
    private readonly text: string,
    private readonly file: string,
  ) {}

  loc(): Loc {
    return { file: this.file, line: this.line, col: this.col };
  }

  private peek(n = 0): string | undefined {
    return this.text[this.pos + n];
  }

  private advance(n = 1): void {
    for (let i = 0; i < n; i++) {
      if (this.text[this.pos] === '\n') {
        this.line++;
        this.col = 1;
        this.lineStart = true;
      } else this.col++;
      this.pos++;
    }
  }

  /** Skips whitespace and comments; in a directive, stops at the end of its line (a `\` newline continues it). */
  skipSpace(inDirective: boolean): void {
    for (;;) {
      const c = this.peek();
      if (c === undefined) return;
      if (inDirective && c === '\\' && (this.peek(1) === '\n' || (this.peek(1) === '\r' && this.peek(2) === '\n'))) {
        this.advance(this.peek(1) === '\r' ? 3 : 2);
      } else if (c === '\n') {
        if (inDirective) return;
        this.advance();
      } else if (c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v') {
        this.advance();
      } else if (c === '/' && this.peek(1) === '/') {
        while (this.peek() !== undefined && this.peek() !== '\n') this.advance();
      } else if (c === '/' && this.peek(1) === '*') {
        this.blockComment();
      } else return;
    }
  }

  private blockComment(): void {
    const start = this.loc();
    const keepLineStart = this.lineStart;
    this.advance(2);
    while (!(this.peek() === '*' && this.peek(1) === '/')) {
      if (this.peek() === undefined) fail('P4_SYNTAX', start, 'this /* comment is never closed', 'end it with */');
      this.advance();
    }
    this.advance(2);
    // Only a comment that starts and ends before anything else on its line leaves a directive possible after it.
    this.lineStart = keepLineStart && this.line === start.line;
  }

  next(inDirective = false): Token {
    this.skipSpace(inDirective);
    const loc = this.loc();
    const c = this.peek();
    if (c === undefined || (inDirective && c === '\n')) return { kind: 'eof', text: '', loc };
    if (c === '#' && this.lineStart && !inDirective) return this.directive(loc);
    this.lineStart = false;
    if (isIdentStart(c)) return this.word(loc);
    if (/[0-9]/.test(c)) return this.number(loc);
    for (const p of PUNCTUATION) {
      if (this.text.startsWith(p, this.pos)) {
        this.advance(p.length);
        return { kind: 'punct', text: p, loc };
      }
    }
    if (c === '#') fail('P4_SYNTAX', loc, 'a # directive must start its line', 'put it on a line of its own');
    return fail('P4_SYNTAX', loc, `unexpected character ${JSON.stringify(c)}`, 'remove it; x4c has no such token');
  }

  private word(loc: Loc): Token {
    const start = this.pos;
    while (isIdentChar(this.peek())) this.advance();
    const text = this.text.slice(start, this.pos);
    return { kind: KEYWORDS.has(text) ? 'keyword' : 'ident', text, loc };
  }

  private number(loc: Loc): Token {
    const start = this.pos;
    while (isIdentChar(this.peek())) this.advance();
    const text = this.text.slice(start, this.pos);
    const m = /^(?:(\d+)([ws]))?(0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|\d+)$/.exec(text);
    if (!m) {
      return fail('P4_SYNTAX', loc, `malformed integer literal ${text}`, 'write a decimal, 0x hex, 0b binary or 0o octal number, optionally with a width like 16w0x0800 or 8s1');
    }
    const digits = m[3]!;
    const value = /^0[oO]/.test(digits) ? BigInt(`0o${digits.slice(2)}`) : BigInt(digits);
    const token: Token = { kind: 'int', text, loc, value };
    if (m[1] !== undefined) {
      token.width = Number(m[1]);
      token.signed = m[2] === 's';
    }
    return token;
  }

  private directive(loc: Loc): Token {
    this.advance();
    const start = this.pos;
    while (isIdentChar(this.peek())) this.advance();
    const name = this.text.slice(start, this.pos);
    this.lineStart = false;
    if (name === 'include') return this.include(loc);
    if (name === 'define') return this.define(loc);
    return fail(
      'P4_SYNTAX', loc, `x4c's preprocessor has no #${name}`,
      'use only #include <file.p4>, #include "file.p4" and #define NAME value (files are included once by themselves)',
    );
  }

  private include(loc: Loc): Token {
    this.skipSpace(true);
    const open = this.peek();
    const close = open === '<' ? '>' : open === '"' ? '"' : undefined;
    if (close === undefined) fail('P4_SYNTAX', this.loc(), '#include needs a file name', 'write #include <file.p4> or #include "file.p4"');
    this.advance();
    const start = this.pos;
    while (this.peek() !== close) {
      if (this.peek() === undefined || this.peek() === '\n') fail('P4_SYNTAX', loc, `the #include file name is not closed with ${close}`, `end it with ${close}`);
      this.advance();
    }
    const path = this.text.slice(start, this.pos);
    this.advance();
    if (path.trim() === '') fail('P4_SYNTAX', loc, '#include names no file', 'write the file name between the brackets');
    const rest = this.next(true);
    if (rest.kind !== 'eof') fail('P4_SYNTAX', rest.loc, `unexpected ${rest.text} after #include`, 'put nothing else on an #include line');
    return { kind: 'directive', text: '#include', loc, path, angle: open === '<' };
  }

  private define(loc: Loc): Token {
    const nameTok = this.next(true);
    if (nameTok.kind !== 'ident') fail('P4_SYNTAX', nameTok.loc, '#define needs a macro name', 'write #define NAME value');
    if (this.peek() === '(') {
      fail('P4_SYNTAX', this.loc(), `function-like macro ${nameTok.text}(...) is not supported`, 'define a constant instead: #define NAME value, or const bit<N> NAME = value;');
    }
    const body: Token[] = [];
    for (let t = this.next(true); t.kind !== 'eof'; t = this.next(true)) body.push(t);
    return { kind: 'directive', text: '#define', loc, name: nameTok.text, body };
  }
}

/** Lexes one file's text into tokens (directives included), ending with an `eof` token. Throws P4Error P4_SYNTAX. */
export function lex(text: string, file: string): Token[] {
  const lexer = new Lexer(text, file);
  const tokens: Token[] = [];
  for (;;) {
    const t = lexer.next();
    tokens.push(t);
    if (t.kind === 'eof') return tokens;
  }
}
