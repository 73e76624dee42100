import { describe, expect, it } from 'vitest';
import { authorize, cookieName, cookieValue, newToken, sameOrigin, tokenCookie, tokensEqual } from '../../src/web/token.js';

describe('web token', () => {
  it('is 32 base64url characters and fresh each time', () => {
    const a = newToken();
    expect(a).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(newToken()).not.toBe(a);
  });

  it('compares equal only for the same string, whatever the lengths', () => {
    expect(tokensEqual('abc', 'abc')).toBe(true);
    expect(tokensEqual('abc', 'abd')).toBe(false);
    expect(tokensEqual('abc', 'abcd')).toBe(false);
    expect(tokensEqual('', 'abc')).toBe(false);
  });

  it('is accepted from the query (marked so) or from the port\'s cookie, nothing else', () => {
    const t = 'T0k3n';
    expect(authorize({ url: `/?token=${t}`, headers: {} }, t, 8080)).toEqual({ ok: true, fromQuery: true });
    expect(authorize({ url: '/api/view', headers: { cookie: `a=b; ${cookieName(8080)}=${t}` } }, t, 8080)).toEqual({ ok: true, fromQuery: false });
    expect(authorize({ url: '/api/view', headers: { cookie: `${cookieName(8081)}=${t}` } }, t, 8080).ok).toBe(false);
    expect(authorize({ url: '/?token=wrong', headers: {} }, t, 8080).ok).toBe(false);
    expect(authorize({ url: '/', headers: {} }, t, 8080).ok).toBe(false);
    expect(authorize({ url: '/', headers: { authorization: `Bearer ${t}` } }, t, 8080).ok).toBe(false);
  });

  it('cookie: parsed from a Cookie header; set HttpOnly, SameSite=Strict, for the port', () => {
    expect(cookieValue('x=1; falcon_web_1=a%20b ; y=2', 'falcon_web_1')).toBe('a b');
    expect(cookieValue(undefined, 'x')).toBeUndefined();
    expect(cookieValue('falcon_web_10=z', 'falcon_web_1')).toBeUndefined();
    expect(tokenCookie('abc', 4000)).toBe('falcon_web_4000=abc; Path=/; HttpOnly; SameSite=Strict');
  });

  it('same origin: Host must be this server on the loopback, and Origin too when sent', () => {
    expect(sameOrigin({ headers: { host: '127.0.0.1:9000' } }, 9000)).toBe(true);
    expect(sameOrigin({ headers: { host: 'localhost:9000', origin: 'http://localhost:9000' } }, 9000)).toBe(true);
    expect(sameOrigin({ headers: { host: 'evil.example:9000' } }, 9000)).toBe(false);
    expect(sameOrigin({ headers: { host: '127.0.0.1:9001' } }, 9000)).toBe(false);
    expect(sameOrigin({ headers: { host: '127.0.0.1:9000', origin: 'http://evil.example' } }, 9000)).toBe(false);
  });
});
