import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as falcon from '../../src/index.js';
import { ERROR_CODES, FalconError, isFalconError } from '../../src/util/errors.js';

describe('FalconError', () => {
  it('carries a stable code, a message and a cause', () => {
    const cause = new Error('low level');
    const e = new FalconError('NODE_NOT_FOUND', 'topology "duo" has no node "x"', { cause });
    expect(e).toBeInstanceOf(Error);
    expect(e.code).toBe('NODE_NOT_FOUND');
    expect(e.message).toBe('topology "duo" has no node "x"');
    expect(e.cause).toBe(cause);
    expect(isFalconError(e)).toBe(true);
  });

  it('isFalconError holds for an error of another copy of the package, where instanceof does not', async () => {
    const other = (await import('../../src/util/errors.ts?copy=2' as string)) as typeof import('../../src/util/errors.js');
    expect(other.FalconError).not.toBe(FalconError);
    const e = new other.FalconError('TIMEOUT', 'x');
    expect(e instanceof FalconError).toBe(false);
    expect(isFalconError(e)).toBe(true);
  });

  it('isFalconError is false for other errors and values', () => {
    expect(isFalconError(new Error('x'))).toBe(false);
    expect(isFalconError(Object.assign(new Error('x'), { code: 'TIMEOUT' }))).toBe(false);
    expect(isFalconError(undefined)).toBe(false);
    expect(isFalconError('TIMEOUT')).toBe(false);
  });

  it('every error class the package exports is a FalconError with a documented code', () => {
    const classes = Object.entries(falcon).filter(
      ([name, v]) => typeof v === 'function' && /^[A-Z]\w*Error$/.test(name) && name !== 'FalconError',
    ) as [string, typeof FalconError][];
    expect(classes.length).toBeGreaterThan(10);
    for (const [name, cls] of classes) expect(cls.prototype instanceof FalconError, name).toBe(true);
    expect(Object.keys(ERROR_CODES).length).toBeGreaterThan(20);
  });

  it('docs/reference.md has a row for every code, with when it happens and the fix', () => {
    const doc = readFileSync(new URL('../../docs/reference.md', import.meta.url), 'utf8');
    for (const [code, { when, fix }] of Object.entries(ERROR_CODES)) expect(doc, code).toContain(`| \`${code}\` | ${when} | ${fix} |`);
    const documented = [...doc.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
    expect(documented.filter((c) => !(c! in ERROR_CODES))).toEqual([]);
  });
});
