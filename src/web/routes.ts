/**
 * The web view's HTTP routes, behind the token: the page, its assets, the live view and the
 * actions (exec, hyperstop, hyperstart, reboot, captures, impairment). Everything it touches comes in the
 * context, so tests drive it with a fake topology.
 */
import { createReadStream } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CaptureOptions, CaptureResult } from '../runner/capture.js';
import type { TopologyInfo } from '../runner/runner.js';
import type { SerialConsole } from '../runner/serial-console.js';
import type { ExecResult } from '../guest/exec-types.js';
import type { ImpairStatus } from '../runner/impairments.js';
import { IMPAIRMENT_FIELDS, type Impairment } from '../model/impair.js';
import type { Logger } from '../util/log.js';
import type { AssetStore } from './assets.js';
import type { CaptureSessions } from './captures.js';
import { WebRequestError, httpStatusOf } from './errors.js';
import type { LiveView } from './live.js';
import { authorize, sameOrigin, tokenCookie } from './token.js';

/** What the web view needs of a topology: a `Runner` has all of it. */
export interface WebTopology {
  readonly name: string;
  info(): Promise<TopologyInfo>;
  exec(node: string, command: string, opts: { timeoutMs?: number }): Promise<ExecResult<string>>;
  hyperstop(nodes: string[]): Promise<void>;
  hyperstart(nodes: string[]): Promise<void>;
  reboot(node: string): Promise<void>;
  capture(endpoint: string, opts: CaptureOptions): Promise<CaptureResult>;
  /** The node's serial console (its socket here, or its pod's on a cluster). */
  console(node: string): Promise<SerialConsole>;
  impair(target: string, impairment: Impairment): Promise<ImpairStatus>;
  clearImpairment(target: string): Promise<ImpairStatus>;
  impairments(target?: string): Promise<ImpairStatus[]>;
}

export interface RouteContext {
  topo: WebTopology;
  token: string;
  /** The port the server listens on (names the cookie, checks Host). */
  port: () => number;
  live: LiveView;
  captures: CaptureSessions;
  assets: AssetStore;
  log: Logger;
}

/** The longest exec the page may ask for, and its default. */
const MAX_EXEC_S = 3600;
const DEFAULT_EXEC_S = 60;
const MAX_BODY = 64 * 1024;

// The page loads only its own files; xterm.js sets inline styles.
const CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

function send(res: ServerResponse, status: number, body: string | Buffer, type: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'content-security-policy': CSP, ...headers });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, typeof value === 'string' ? value : JSON.stringify(value), 'application/json; charset=utf-8');
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  // A JSON content type cannot be sent cross-site without a CORS preflight, which we never grant.
  if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) throw new WebRequestError(415, `${req.method} ${pathOf(req)} takes a JSON body (content-type: application/json)`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new WebRequestError(413, `the request body is larger than ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text.trim()) return {};
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    /* reported below */
  }
  throw new WebRequestError(400, `the request body is not a JSON object: ${text.slice(0, 80)}`);
}

/** The request's path, without the query (which may carry the token: never logged). */
function pathOf(req: IncomingMessage): string {
  return new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
}

function str(body: Record<string, unknown>, key: string, required: true): string;
function str(body: Record<string, unknown>, key: string, required?: false): string | undefined;
function str(body: Record<string, unknown>, key: string, required = false): string | undefined {
  const v = body[key];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string' || (required && !v.trim())) throw new WebRequestError(400, `"${key}" must be a non-empty string, not ${JSON.stringify(v)}`);
  return v;
}

function seconds(body: Record<string, unknown>, key: string, max: number): number | undefined {
  const v = body[key];
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN;
  if (!Number.isFinite(n) || n <= 0 || n > max) throw new WebRequestError(400, `"${key}" takes a number of seconds above 0 and at most ${max}, not ${JSON.stringify(v)}`);
  return n;
}

const DIRECTIONS = ['both', 'ab', 'ba'] as const;

/** The impairment fields of a body; empty ones (`""`, null) are absent, numeric strings count as numbers (form values). */
function impairmentOf(body: Record<string, unknown>): Impairment {
  const known = new Set<string>(['target', 'direction', ...IMPAIRMENT_FIELDS]);
  const stray = Object.keys(body).filter((k) => !known.has(k));
  if (stray.length) throw new WebRequestError(400, `${stray.map((k) => JSON.stringify(k)).join(', ')} ${stray.length === 1 ? 'is no impairment field' : 'are no impairment fields'}; use ${IMPAIRMENT_FIELDS.join(', ')}`);
  const imp: Impairment = {};
  for (const f of IMPAIRMENT_FIELDS) {
    const v = body[f];
    if (v === undefined || v === null || v === '') continue;
    const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() ? Number(v) : NaN;
    if (!Number.isFinite(n)) throw new WebRequestError(400, `"${f}" takes a number, not ${JSON.stringify(v)}`);
    imp[f] = n;
  }
  return imp;
}

/** A link as the impairment API names it: `links[N]`, `nodeA--nodeB` or `nodeA:i--nodeB:j`. */
function isLinkTarget(target: string): boolean {
  return /^links\[\d+\]$/.test(target) || target.indexOf('--') > 0;
}

/** Whether the request may go on: Host/Origin are this server and the token is there; `why` says what is wrong when not. */
export function admit(req: IncomingMessage, ctx: Pick<RouteContext, 'token' | 'port'>): { ok: boolean; fromQuery: boolean; why?: string } {
  if (!sameOrigin(req, ctx.port())) return { ok: false, fromQuery: false, why: `the request's Host (${req.headers.host}) or Origin (${req.headers.origin ?? 'none'}) is not this server on 127.0.0.1:${ctx.port()}` };
  const a = authorize(req, ctx.token, ctx.port());
  return a.ok ? a : { ...a, why: 'the request carries no valid token; open the URL the web command printed (it carries the token)' };
}

type Handler = (req: IncomingMessage, res: ServerResponse, params: string[]) => Promise<void>;

type Route = [method: string, path: RegExp, handler: Handler];

/** POST /api/nodes/NODE/hyperstop|hyperstart|reboot. */
function powerAction(ctx: RouteContext, verb: 'hyperstop' | 'hyperstart' | 'reboot'): Handler {
  return async (_req, res, [node]) => {
    if (verb === 'reboot') await ctx.topo.reboot(node!);
    else await ctx.topo[verb]([node!]);
    await ctx.live.poll().catch(() => {});
    sendJson(res, 200, { ok: true, node, action: verb });
  };
}

/**
 * Set or clear the impairment of `target`: `direction` `both` (default) is the target as
 * given; `ab`/`ba` on a link is the frames its `a`/`b` end sends (the `node:index` target).
 */
function impairAction(ctx: RouteContext, verb: 'set' | 'clear'): Handler {
  const { topo, live } = ctx;
  return async (req, res) => {
    const body = await readJson(req);
    const target = str(body, 'target', true);
    const direction = body.direction ?? 'both';
    if (!DIRECTIONS.includes(direction as (typeof DIRECTIONS)[number])) throw new WebRequestError(400, `"direction" takes ${DIRECTIONS.join(', ')}, not ${JSON.stringify(direction)}`);
    const imp = verb === 'set' ? impairmentOf(body) : undefined;
    if (imp && !Object.keys(imp).length) throw new WebRequestError(400, `give at least one of ${IMPAIRMENT_FIELDS.join(', ')} to set, or clear the impairment`);
    let to = target;
    if (direction !== 'both') {
      if (!isLinkTarget(target)) throw new WebRequestError(400, `"direction" ${direction} goes with a link (links[N], nodeA--nodeB); the endpoint ${target} already names one direction`);
      const [status] = await topo.impairments(target);
      const end = (await live.current()).view.info.links[status!.index]?.[direction === 'ab' ? 'a' : 'b'];
      if (!end) throw new WebRequestError(404, `topology "${topo.name}" has no link ${target}`);
      to = `${end.node}:${end.index}`;
    }
    const status = imp ? await topo.impair(to, imp) : await topo.clearImpairment(to);
    await live.poll().catch(() => {});
    sendJson(res, 200, status);
  };
}

/** POST /api/nodes/NODE/exec: exit status, stdout and stderr apart. */
function execAction(ctx: RouteContext): Handler {
  return async (req, res, [node]) => {
    const body = await readJson(req);
    const command = str(body, 'command', true);
    const timeoutS = seconds(body, 'timeoutSeconds', MAX_EXEC_S) ?? DEFAULT_EXEC_S;
    const r = await ctx.topo.exec(node!, command, { timeoutMs: timeoutS * 1000 });
    sendJson(res, 200, { node, command, exitCode: r.exitCode, signal: r.signal, stdout: r.stdout, stderr: r.stderr, durationMs: r.durationMs });
  };
}

/** The capture routes: list, start, stop, download as pcap. */
function captureRoutes(ctx: RouteContext): Route[] {
  const { topo, captures } = ctx;
  const start: Handler = async (req, res) => {
    const body = await readJson(req);
    const endpoint = str(body, 'endpoint', true);
    const durationS = seconds(body, 'durationSeconds', 24 * 3600);
    const filter = str(body, 'filter')?.split(/\s+/).filter(Boolean);
    sendJson(res, 201, await captures.start(endpoint, { durationMs: durationS !== undefined ? durationS * 1000 : undefined, filter: filter?.length ? filter : undefined }));
  };
  const download: Handler = async (_q, res, [id]) => {
    const { path, session } = captures.file(id!);
    const name = `${topo.name}-${session.endpoint.replace(/[^\w.-]/g, '_')}-${id}.pcap`;
    res.writeHead(200, {
      'content-type': 'application/vnd.tcpdump.pcap',
      'content-disposition': `attachment; filename="${name}"`,
      'content-length': String(session.bytes ?? 0),
      'cache-control': 'no-store',
    });
    await new Promise<void>((resolve, reject) => createReadStream(path).on('error', reject).on('end', resolve).pipe(res));
  };
  return [
    ['GET', /^\/api\/captures$/, async (_q, res) => sendJson(res, 200, captures.list())],
    ['POST', /^\/api\/captures$/, start],
    ['POST', /^\/api\/captures\/([^/]+)\/stop$/, async (_q, res, [id]) => sendJson(res, 200, await captures.stop(id!))],
    ['GET', /^\/api\/captures\/([^/]+)\/pcap$/, download],
  ];
}

/** Every API route. */
function apiRoutes(ctx: RouteContext): Route[] {
  const { topo, live } = ctx;
  return [
    ['GET', /^\/api\/view$/, async (_q, res) => sendJson(res, 200, (await live.current()).json)],
    ['POST', /^\/api\/nodes\/([^/]+)\/exec$/, execAction(ctx)],
    ['GET', /^\/api\/impairments$/, async (_q, res) => sendJson(res, 200, await topo.impairments())],
    ['GET', /^\/api\/impairments\/([^/]+)$/, async (_q, res, [target]) => sendJson(res, 200, (await topo.impairments(target!))[0])],
    ['POST', /^\/api\/impairments$/, impairAction(ctx, 'set')],
    ['POST', /^\/api\/impairments\/clear$/, impairAction(ctx, 'clear')],
    ['POST', /^\/api\/nodes\/([^/]+)\/hyperstop$/, powerAction(ctx, 'hyperstop')],
    ['POST', /^\/api\/nodes\/([^/]+)\/hyperstart$/, powerAction(ctx, 'hyperstart')],
    ['POST', /^\/api\/nodes\/([^/]+)\/reboot$/, powerAction(ctx, 'reboot')],
    ...captureRoutes(ctx),
  ];
}

/** The page and its assets; false when `p` is neither. The token moves from the URL to the cookie, out of the address bar and history. */
async function servePage(ctx: RouteContext, res: ServerResponse, method: string, p: string, a: { fromQuery: boolean }, cookie: Record<string, string>): Promise<number | undefined> {
  if (method === 'GET' && p === '/') {
    if (a.fromQuery) {
      res.writeHead(303, { location: '/', 'cache-control': 'no-store', ...cookie });
      res.end();
      return 303;
    }
    const page = await ctx.assets.get('/assets/index.html');
    send(res, 200, page!.body, page!.type);
    return 200;
  }
  if (method === 'GET' && (p.startsWith('/assets/') || p.startsWith('/vendor/'))) {
    const asset = await ctx.assets.get(p);
    if (asset) {
      send(res, 200, asset.body, asset.type, cookie);
      return 200;
    }
  }
  return undefined;
}

/** The request handler for node:http. */
export function webRoutes(ctx: RouteContext): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const routes = apiRoutes(ctx);
  return async (req, res) => {
    const p = pathOf(req);
    const method = req.method ?? 'GET';
    const done = (status: number) => ctx.log.log({ kind: 'step', level: 'trace', msg: `web: ${method} ${p} ${status}` });
    try {
      const a = admit(req, ctx);
      if (!a.ok) {
        send(res, 403, `403 forbidden: ${a.why}\n`, 'text/plain; charset=utf-8');
        return done(403);
      }
      const cookie: Record<string, string> = a.fromQuery ? { 'set-cookie': tokenCookie(ctx.token, ctx.port()) } : {};
      const served = await servePage(ctx, res, method, p, a, cookie);
      if (served !== undefined) return done(served);
      const matching = routes.filter(([, re]) => re.test(p));
      const route = matching.find(([m]) => m === method);
      if (!route) {
        if (matching.length) throw new WebRequestError(405, `${p} takes ${matching.map(([m]) => m).join(' or ')}, not ${method}`);
        throw new WebRequestError(404, `no route ${method} ${p}`);
      }
      if (a.fromQuery) res.setHeader('set-cookie', cookie['set-cookie']!);
      await route[2](req, res, route[1].exec(p)!.slice(1).map((s) => decodeURIComponent(s)));
      return done(res.statusCode);
    } catch (e) {
      const status = httpStatusOf(e);
      if (status >= 500) ctx.log.log({ kind: 'warn', msg: `web: ${method} ${p} failed: ${(e as Error)?.message ?? String(e)}` });
      if (res.headersSent) res.destroy();
      else sendJson(res, status, { error: { code: (e as { code?: string })?.code ?? 'INTERNAL', message: (e as Error)?.message ?? String(e) } });
      done(status);
    }
  };
}
