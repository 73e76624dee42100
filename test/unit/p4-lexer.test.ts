import { describe, expect, it } from 'vitest';
import { P4Error } from '../../src/p4/errors.js';
import { lex, type Token } from '../../src/p4/lexer.js';
import { BUNDLED_INCLUDE_DIR, preprocess } from '../../src/p4/preprocess.js';

/** The P4Error thrown by `f` (fails the test if none). */
function p4Error(f: () => unknown): P4Error {
  try {
    f();
  } catch (e) {
    if (e instanceof P4Error) return e;
    throw e;
  }
  throw new Error('expected a P4Error');
}

const texts = (ts: Token[]): string[] => ts.filter((t) => t.kind !== 'eof').map((t) => t.text);

describe('p4 lexer', () => {
  it('tells keywords, identifiers and punctuation apart, longest operator first', () => {
    const ts = lex('header h_t { bit<8> x; } a &&& b && c & d << 2 >= <= != == ! ~ ^ | || % exit', 'a.p4');
    expect(ts.slice(0, 3).map((t) => [t.kind, t.text])).toEqual([['keyword', 'header'], ['ident', 'h_t'], ['punct', '{']]);
    expect(texts(ts).slice(10)).toEqual(['a', '&&&', 'b', '&&', 'c', '&', 'd', '<<', '2', '>=', '<=', '!=', '==', '!', '~', '^', '|', '||', '%', 'exit']);
    // x4c has no exit keyword: it is an identifier (the parser refuses it as a statement).
    expect(ts.at(-2)!.kind).toBe('ident');
    expect(ts.at(-1)!.kind).toBe('eof');
  });

  it('lexes >> as two > tokens, so nested type arguments close', () => {
    expect(texts(lex('lookahead<bit<16>>()', 'a.p4'))).toEqual(['lookahead', '<', 'bit', '<', '16', '>', '>', '(', ')']);
  });

  it('reads integer literals with widths, signs and bases', () => {
    const ts = lex('16w0x0800 8w1 0x1F 0b101 0o17 42 8s5 128w0xfd000099000000000000000000000001', 'a.p4');
    const ints = ts.filter((t) => t.kind === 'int').map((t) => [t.value, t.width, t.signed]);
    expect(ints).toEqual([
      [0x800n, 16, false], [1n, 8, false], [31n, undefined, undefined], [5n, undefined, undefined], [15n, undefined, undefined],
      [42n, undefined, undefined], [5n, 8, true], [0xfd000099000000000000000000000001n, 128, false],
    ]);
  });

  it('gives every token its 1-based line and column, skipping comments', () => {
    const ts = lex('const // one\n  /* two\n lines */ bit<4>\n\tX', 'dir/a.p4');
    expect(ts.map((t) => [t.text, t.loc.line, t.loc.col])).toEqual([
      ['const', 1, 1], ['bit', 3, 11], ['<', 3, 14], ['4', 3, 15], ['>', 3, 16], ['X', 4, 2], ['', 4, 3],
    ]);
    expect(ts[0]!.loc.file).toBe('dir/a.p4');
  });

  it('refuses a malformed number, at its position', () => {
    const e = p4Error(() => lex('const bit<32> E = 0z1701D;', 'a.p4'));
    expect(e.code).toBe('P4_SYNTAX');
    expect(e.diagnostics).toEqual([expect.objectContaining({ file: 'a.p4', line: 1, col: 19, message: 'malformed integer literal 0z1701D' })]);
    expect(e.message).toMatch(/^a\.p4:1:19: malformed integer literal 0z1701D; write a decimal/);
  });

  it('refuses an unknown character and an unclosed comment, at their positions', () => {
    expect(p4Error(() => lex('a\n  $b', 'a.p4')).diagnostics[0]).toMatchObject({ line: 2, col: 3, message: 'unexpected character "$"' });
    expect(p4Error(() => lex('a /* never\nclosed', 'a.p4')).diagnostics[0]).toMatchObject({ line: 1, col: 3, message: 'this /* comment is never closed' });
  });

  it('lexes #include and #define lines as directives', () => {
    const ts = lex('#include <core.p4>\n  #include "my/h.p4"\n#define PORT 16w7\n#define LIST { \\\n  a, b }\nx', 'a.p4');
    expect(ts[0]).toMatchObject({ kind: 'directive', text: '#include', path: 'core.p4', angle: true, loc: { line: 1, col: 1 } });
    expect(ts[1]).toMatchObject({ kind: 'directive', path: 'my/h.p4', angle: false, loc: { line: 2, col: 3 } });
    expect(ts[2]).toMatchObject({ kind: 'directive', text: '#define', name: 'PORT' });
    expect(ts[2]!.body!.map((t) => [t.text, t.loc.line, t.loc.col])).toEqual([['16w7', 3, 14]]);
    expect(ts[3]!.body!.map((t) => t.text)).toEqual(['{', 'a', ',', 'b', '}']);
    expect(ts[4]).toMatchObject({ kind: 'ident', text: 'x', loc: { line: 6, col: 1 } });
  });

  it('refuses what x4c\'s preprocessor does not take', () => {
    expect(p4Error(() => lex('#define f(x) (x == 1)', 'a.p4')).diagnostics[0]).toMatchObject({ line: 1, col: 10, message: 'function-like macro f(...) is not supported' });
    expect(p4Error(() => lex('\n#ifdef X', 'a.p4')).diagnostics[0]).toMatchObject({ line: 2, col: 1, message: "x4c's preprocessor has no #ifdef" });
    expect(p4Error(() => lex('a #define X 1', 'a.p4')).diagnostics[0]).toMatchObject({ line: 1, col: 3, message: 'a # directive must start its line' });
    expect(p4Error(() => lex('#include <a.p4> x', 'a.p4')).diagnostics[0]).toMatchObject({ line: 1, col: 17, message: 'unexpected x after #include' });
    expect(p4Error(() => lex('#include <a.p4', 'a.p4')).diagnostics[0]).toMatchObject({ line: 1, col: 1, message: 'the #include file name is not closed with >' });
    expect(p4Error(() => lex('#include core.p4', 'a.p4')).diagnostics[0]).toMatchObject({ line: 1, col: 10, message: '#include needs a file name' });
  });
});

describe('p4 preprocessor', () => {
  const files = (map: Record<string, string>) => (path: string): string => {
    const text = map[path];
    if (text === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    return text;
  };

  it('includes files in place, each once, from the program\'s folder, the include paths, then the bundled folder', () => {
    const readFile = files({
      '/p/main.p4': '#include <core.p4>\n#include "lib.p4"\n#include <core.p4>\nmain_tok',
      '/p/lib.p4': '#include "/p/lib.p4"\nlib_tok',
      '/extra/core.p4': 'extra_core_tok',
      '/bundled/core.p4': 'bundled_core_tok',
    });
    const r = preprocess('/p/main.p4', { readFile, includePaths: ['/extra'], bundledIncludeDir: '/bundled' });
    expect(texts(r.tokens)).toEqual(['extra_core_tok', 'lib_tok', 'main_tok']);
    expect(r.files).toEqual(['/p/main.p4', '/extra/core.p4', '/p/lib.p4']);
    const r2 = preprocess('/p/main.p4', { readFile, bundledIncludeDir: '/bundled' });
    expect(texts(r2.tokens)[0]).toBe('bundled_core_tok');
    expect(r2.tokens[0]!.loc).toEqual({ file: '/bundled/core.p4', line: 1, col: 1 });
  });

  it('looks in the including file\'s own folder first', () => {
    const readFile = files({ '/p/main.p4': '#include "sub/a.p4"', '/p/sub/a.p4': '#include "b.p4"', '/p/sub/b.p4': 'sub_b', '/p/b.p4': 'top_b' });
    expect(texts(preprocess('/p/main.p4', { readFile, bundledIncludeDir: '/none' }).tokens)).toEqual(['sub_b']);
  });

  it('replaces #define names from their definition on, with the position of the use', () => {
    const readFile = files({ '/p/a.p4': 'PORT\n#define PORT 16w7\n#define P2 PORT\nx = P2;' });
    const ts = preprocess('/p/a.p4', { readFile, bundledIncludeDir: '/none' }).tokens;
    expect(ts.map((t) => [t.text, t.loc.line, t.loc.col])).toEqual([['PORT', 1, 1], ['x', 4, 1], ['=', 4, 3], ['16w7', 4, 5], [';', 4, 7], ['', 4, 7]]);
  });

  it('refuses a macro defined twice with different values', () => {
    const readFile = files({ '/p/a.p4': '#define A 1\n#define A 1\n#define A 2' });
    const e = p4Error(() => preprocess('/p/a.p4', { readFile, bundledIncludeDir: '/none' }));
    expect(e.diagnostics[0]).toMatchObject({ file: '/p/a.p4', line: 3, col: 1 });
    expect(e.diagnostics[0]!.message).toContain('macro A is already defined (at /p/a.p4:1:1)');
  });

  it('reports an include it cannot find, at the #include, with where it looked', () => {
    const readFile = files({ '/p/a.p4': '\n  #include <nope.p4>' });
    const e = p4Error(() => preprocess('/p/a.p4', { readFile, includePaths: ['/x'], bundledIncludeDir: '/b' }));
    expect(e.code).toBe('P4_INCLUDE');
    expect(e.diagnostics[0]).toMatchObject({ line: 2, col: 3, message: 'cannot find include file nope.p4 (looked in /p, /x, /b)' });
    expect(p4Error(() => preprocess('/p/missing.p4', { readFile })).code).toBe('P4_INCLUDE');
  });

  it('bundles its include folder next to the module (src/p4/include, dist/p4/include once built)', () => {
    expect(BUNDLED_INCLUDE_DIR.replaceAll('\\', '/')).toMatch(/\/p4\/include\/$/);
  });
});
