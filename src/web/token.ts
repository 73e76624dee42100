/**
 * The web view's access token, as Jupyter does it: a random token in the URL the command prints,
 * turned into a cookie on the first valid visit so the page's own requests (assets, API,
 * websockets) carry it. Anything else on 127.0.0.1 (another user, a web page in the browser)
 * gets 403.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** A fresh token: 24 random bytes, base64url (32 characters). */
export function newToken(): string {
  return randomBytes(24).toString('base64url');
}

/** Equality in constant time (hashing first makes the lengths equal too). */
export function tokensEqual(a: string, b: string): boolean {
  const h = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(h(a), h(b));
}

/** The cookie's name: per port, since browsers share cookies across the ports of one host. */
export function cookieName(port: number): string {
  return `falcon_web_${port}`;
}

/** The value of cookie `name` in a Cookie header, if there. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return undefined;
}

export interface Authorization {
  ok: boolean;
  /** The token came in the URL: the response should set the cookie (and drop it from the URL). */
  fromQuery: boolean;
}

/**
 * Whether `req` carries the token, in the `token` query parameter or in the port's cookie.
 * `port` names the cookie.
 */
export function authorize(req: Pick<IncomingMessage, 'url' | 'headers'>, token: string, port: number): Authorization {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  const q = url.searchParams.get('token');
  if (q !== null && tokensEqual(q, token)) return { ok: true, fromQuery: true };
  const c = cookieValue(req.headers.cookie, cookieName(port));
  return { ok: c !== undefined && tokensEqual(c, token), fromQuery: false };
}

/** The Set-Cookie header value that keeps the token for this port's later requests. */
export function tokenCookie(token: string, port: number): string {
  // HttpOnly: page scripts never see it; SameSite=Strict: other sites' pages cannot send it.
  return `${cookieName(port)}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict`;
}

/**
 * True when the request's Host (and Origin, when sent) is this server on the loopback: stops DNS
 * rebinding (a foreign name resolving to 127.0.0.1) and cross-site websocket and POST requests.
 */
export function sameOrigin(req: Pick<IncomingMessage, 'headers'>, port: number): boolean {
  const hosts = [`127.0.0.1:${port}`, `localhost:${port}`];
  if (!hosts.includes(req.headers.host ?? '')) return false;
  const origin = req.headers.origin;
  return origin === undefined || hosts.some((h) => origin === `http://${h}`);
}
