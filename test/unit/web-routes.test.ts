/**
 * The web view's server against a fake topology: the token check on every route and websocket,
 * the live view, exec, power actions, captures, and a log without the token.
 */
import { ConsoleNotRunningError } from '../../src/guest/console.ts';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { FalconError } from '../../src/util/errors.js';
import { TopologyValidationError } from '../../src/model/errors.js';
import { formatImpairment, impairmentProblems, type DirectedImpairment, type Impairment } from '../../src/model/impair.js';
import type { ImpairStatus } from '../../src/runner/impairments.js';
import { memoryLogger } from '../../src/util/log.js';
import { pcapGlobalHeader, pcapRecordOf } from '../../src/host/pcap.js';
import type { TopologyInfo } from '../../src/runner/runner.js';
import type { CaptureOptions } from '../../src/runner/capture.js';
import { startWebServer, type WebServer, type WebView } from '../../src/web/index.js';
import type { WebTopology } from '../../src/web/routes.js';
import { cookieName } from '../../src/web/token.js';

const end = (node: string, i: number) => ({ node, index: 0, ifname: `tap${i}`, altname: `fake_${node}_vn_sim0`, mac: `02:00:00:00:00:0${i}` });

function fakeTopology() {
  const status: Record<string, 'running' | 'stopped'> = { violin: 'running', piano: 'running' };
  const calls: string[] = [];
  const files: string[] = [];
  let impairment: DirectedImpairment = { ab: { delayMs: 100, lossPct: 20 }, ba: { delayMs: 100, lossPct: 20 } };
  // What each target names on the one link, as the runner resolves them.
  const TARGETS: Record<string, ('ab' | 'ba')[]> = { 'links[0]': ['ab', 'ba'], 'violin--piano': ['ab', 'ba'], 'violin:0--piano:0': ['ab', 'ba'], 'violin:0': ['ab'], 'piano:0': ['ba'] };
  const resolve = (target: string) => {
    const dirs = TARGETS[target];
    if (!dirs) throw new FalconError('IMPAIR_TARGET', `topology "fake": "${target}" names no link or endpoint; the links that can be impaired are: violin:0--piano:0`);
    return dirs;
  };
  const impStatus = (): ImpairStatus => ({
    link: 'violin:0--piano:0',
    index: 0,
    source: impairment.ab || impairment.ba ? 'runtime' : 'none',
    ...(impairment.ab || impairment.ba ? { path: 'userspace' as const, reason: 'no netem here' } : {}),
    directions: (['ab', 'ba'] as const).map((d) => ({ direction: d === 'ab' ? 'violin:0 -> piano:0' : 'piano:0 -> violin:0', impairment: impairment[d] ?? null, text: formatImpairment(impairment[d]) })),
  });
  const setImp = (target: string, imp: Impairment | null) => {
    for (const d of resolve(target)) {
      if (imp) impairment[d] = imp;
      else delete impairment[d];
    }
    impairment = { ...impairment };
    return impStatus();
  };
  const topo: WebTopology = {
    name: 'fake',
    async info(): Promise<TopologyInfo> {
      return {
        name: 'fake',
        falconDir: '/nowhere/.falcon',
        nodes: Object.entries(status).map(([name, s], i) => ({ name, id: i, image: 'tiny', cores: 1, memoryMiB: 256, radix: 1, mounts: [], disks: [], devices: [], reservedNics: [], status: s })),
        links: [{ kind: 'link', a: end('violin', 1), b: end('piano', 2), ...(impairment.ab || impairment.ba ? { impairment } : {}) }],
        interfaces: [],
        switches: [],
      };
    },
    async exec(node, command) {
      calls.push(`exec ${node} ${command}`);
      if (!(node in status)) throw new FalconError('NODE_NOT_FOUND', `topology "fake" has no node "${node}"`);
      return { exitCode: 3, signal: null, stdout: 'out\n', stderr: 'err\n', durationMs: 1 };
    },
    async hyperstop(nodes) {
      calls.push(`hyperstop ${nodes.join(',')}`);
      for (const n of nodes) status[n] = 'stopped';
    },
    async hyperstart(nodes) {
      calls.push(`hyperstart ${nodes.join(',')}`);
      for (const n of nodes) status[n] = 'running';
    },
    async reboot(node) {
      calls.push(`reboot ${node}`);
    },
    async capture(endpoint: string, o: CaptureOptions) {
      if (endpoint !== 'violin:0') throw new FalconError('CAPTURE_ENDPOINT', `topology "fake" has no endpoint ${endpoint}`);
      files.push(o.output as string);
      await writeFile(o.output as string, Buffer.concat([pcapGlobalHeader(), pcapRecordOf({ timeUs: 1n, origLen: 4, data: Buffer.from('abcd') })]));
      o.onReady?.();
      await new Promise<void>((resolve) => (o.signal?.aborted ? resolve() : o.signal?.addEventListener('abort', () => resolve())));
      return { frames: 1, endpoints: [endpoint] };
    },
    async console() {
      throw new ConsoleNotRunningError('fake', '/nonexistent/console.sock');
    },
    async impair(target, imp) {
      calls.push(`impair ${target} ${JSON.stringify(imp)}`);
      resolve(target);
      const problems = impairmentProblems(imp, target);
      if (problems.length) throw new TopologyValidationError('fake', problems);
      return setImp(target, imp);
    },
    async clearImpairment(target) {
      calls.push(`clear ${target}`);
      return setImp(target, null);
    },
    async impairments(target) {
      if (target !== undefined) resolve(target);
      return [impStatus()];
    },
  };
  return { topo, status, calls, files };
}

let web: WebServer | undefined;
afterEach(async () => {
  await web?.close();
  web = undefined;
});

/** A request with full control of the headers (fetch sets Host and Origin itself). */
function request(port: number, path: string, o: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: o.method ?? 'GET', headers: o.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

async function start() {
  const f = fakeTopology();
  const log = memoryLogger('trace');
  web = await startWebServer(f.topo, { log, pollMs: 50, consoles: async () => Promise.reject(new FalconError('CONSOLE_NOT_RUNNING', 'no console in the fake')) });
  const cookie = `${cookieName(web.port)}=${web.token}`;
  const api = async (method: string, path: string, body?: unknown) => {
    const r = await request(web!.port, path, { method, headers: { cookie, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, body: body !== undefined ? JSON.stringify(body) : undefined });
    return { status: r.status, json: JSON.parse(r.body.toString() || 'null') as Record<string, unknown> & { error?: { code: string; message: string } }, body: r.body };
  };
  return { ...f, log, cookie, api, web };
}

function wsOpen(url: string, headers: Record<string, string>): Promise<{ ws: WebSocket; messages: string[] } | { refused: number }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    const messages: string[] = [];
    ws.on('message', (d) => messages.push(d.toString()));
    ws.on('open', () => resolve({ ws, messages }));
    ws.on('unexpected-response', (_req, res) => resolve({ refused: res.statusCode! }));
    ws.on('error', () => {});
  });
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('web server routes', () => {
  it('listens on 127.0.0.1 and prints a URL with a 32-character token', async () => {
    const { web } = await start();
    expect(web.url).toBe(`http://127.0.0.1:${web.port}/?token=${web.token}`);
    expect(web.token).toMatch(/^[A-Za-z0-9_-]{32}$/);
  });

  it('refuses every route and the websockets without the token (403), and with a wrong one', async () => {
    const { web } = await start();
    for (const p of ['/', '/assets/app.js', '/vendor/xterm.mjs', '/api/view', '/api/captures', '/api/impairments', '/api/impairments/links%5B0%5D', '/nope', '/?token=wrong'])
      expect((await request(web.port, p)).status, p).toBe(403);
    expect((await request(web.port, '/api/nodes/violin/hyperstop', { method: 'POST' })).status).toBe(403);
    expect((await request(web.port, '/api/view', { headers: { cookie: `${cookieName(web.port)}=x${web.token}` } })).status).toBe(403);
    expect(await wsOpen(`ws://127.0.0.1:${web.port}/ws/view`, {})).toEqual({ refused: 403 });
    expect(await wsOpen(`ws://127.0.0.1:${web.port}/ws/console/violin`, {})).toEqual({ refused: 403 });
  });

  it('the token in the URL sets the cookie (HttpOnly, SameSite=Strict) and redirects to / without it', async () => {
    const { web, cookie } = await start();
    const r = await request(web.port, `/?token=${web.token}`);
    expect(r.status).toBe(303);
    expect(r.headers.location).toBe('/');
    expect(r.headers['set-cookie']).toEqual([`${cookie}; Path=/; HttpOnly; SameSite=Strict`]);
    const page = await request(web.port, '/', { headers: { cookie } });
    expect(page.status).toBe(200);
    expect(page.body.toString()).toContain('<script type="module" src="/assets/app.js">');
    for (const p of ['/assets/app.js', '/assets/style.css', '/vendor/xterm.mjs', '/vendor/xterm.css', '/vendor/addon-fit.mjs', '/vendor/cytoscape.mjs']) {
      const a = await request(web.port, p, { headers: { cookie } });
      expect([p, a.status]).toEqual([p, 200]);
    }
    expect((await request(web.port, '/assets/../routes.ts', { headers: { cookie } })).status).toBe(404);
  });

  it('refuses a foreign Host (DNS rebinding) or Origin even with the token', async () => {
    const { web, cookie } = await start();
    expect((await request(web.port, '/api/view', { headers: { cookie, host: `evil.example:${web.port}` } })).status).toBe(403);
    const post = await request(web.port, '/api/nodes/violin/hyperstop', { method: 'POST', headers: { cookie, origin: 'http://evil.example' } });
    expect(post.status).toBe(403);
    expect(await wsOpen(`ws://127.0.0.1:${web.port}/ws/view`, { cookie, origin: 'http://evil.example' })).toEqual({ refused: 403 });
  });

  it('/api/view: nodes with status, the link with its taps and its impairment as graph labels it', async () => {
    const { api } = await start();
    const { status, json } = await api('GET', '/api/view');
    const v = json as unknown as WebView;
    expect(status).toBe(200);
    expect(v.nodes.map((n) => [n.name, n.status])).toEqual([['violin', 'running'], ['piano', 'running']]);
    expect(v.edges).toHaveLength(1);
    expect([v.edges[0]!.fromLabel, v.edges[0]!.toLabel, v.edges[0]!.impairment]).toEqual(['tap1', 'tap2', 'delay 100ms, loss 20%']);
    expect(v.edges[0]!.lines).toContain('delay 100ms, loss 20%');
    expect(v.edges[0]!.endpoints.map((e) => e.endpoint)).toEqual(['violin:0', 'piano:0']);
  });

  it('exec answers exit status, stdout and stderr apart; bad bodies are 400/415; an unknown node 404', async () => {
    const { api, calls, web, cookie } = await start();
    const r = await api('POST', '/api/nodes/violin/exec', { command: 'sh -c "exit 3"' });
    expect([r.status, r.json.exitCode, r.json.stdout, r.json.stderr]).toEqual([200, 3, 'out\n', 'err\n']);
    expect(calls).toEqual(['exec violin sh -c "exit 3"']);
    expect((await api('POST', '/api/nodes/violin/exec', {})).status).toBe(400);
    expect((await api('POST', '/api/nodes/violin/exec', { command: 'x', timeoutSeconds: -1 })).status).toBe(400);
    const plain = await request(web.port, '/api/nodes/violin/exec', { method: 'POST', headers: { cookie, 'content-type': 'text/plain' }, body: '{"command":"x"}' });
    expect(plain.status).toBe(415);
    const unknown = await api('POST', '/api/nodes/cello/exec', { command: 'true' });
    expect([unknown.status, unknown.json.error?.code]).toEqual([404, 'NODE_NOT_FOUND']);
    expect((await api('GET', '/api/nodes/violin/exec')).status).toBe(405);
    expect((await api('GET', '/api/nothing')).status).toBe(404);
  });

  it('hyperstop, hyperstart and reboot call the topology; the view websocket pushes the change', async () => {
    const { api, calls, web, cookie } = await start();
    const o = await wsOpen(`ws://127.0.0.1:${web.port}/ws/view`, { cookie });
    if (!('ws' in o)) throw new Error(`view websocket refused: ${o.refused}`);
    const statusOf = (name: string) => (m: string) => (JSON.parse(m) as WebView).nodes.find((n) => n.name === name)?.status;
    await until('a first view', () => o.messages[0]);
    expect(statusOf('piano')(o.messages[0]!)).toBe('running');
    expect((await api('POST', '/api/nodes/piano/hyperstop')).json).toEqual({ ok: true, node: 'piano', action: 'hyperstop' });
    await until(`piano stopped in a pushed view (got ${o.messages.length})`, () => (o.messages.some((m) => statusOf('piano')(m) === 'stopped') ? true : undefined));
    await api('POST', '/api/nodes/piano/hyperstart');
    await api('POST', '/api/nodes/piano/reboot');
    expect(calls).toEqual(['hyperstop piano', 'hyperstart piano', 'reboot piano']);
    await until('piano running again', () => (statusOf('piano')(o.messages.at(-1)!) === 'running' ? true : undefined));
    o.ws.close();
  });

  it('captures: start, stop, download the pcap; a running one cannot be downloaded; unknown ones are 400/404', async () => {
    const { api, web, cookie, files } = await start();
    const s = await api('POST', '/api/captures', { endpoint: 'violin:0' });
    expect([s.status, s.json.state, s.json.endpoint]).toEqual([201, 'running', 'violin:0']);
    const id = s.json.id as string;
    expect((await api('GET', `/api/captures/${id}/pcap`)).status).toBe(409);
    const stopped = await api('POST', `/api/captures/${id}/stop`);
    expect([stopped.json.state, stopped.json.frames]).toEqual(['done', 1]);
    const pcap = await request(web.port, `/api/captures/${id}/pcap`, { headers: { cookie } });
    expect(pcap.status).toBe(200);
    expect(pcap.headers['content-disposition']).toBe(`attachment; filename="fake-violin_0-${id}.pcap"`);
    expect(pcap.body.subarray(0, 4).readUInt32LE(0)).toBe(0xa1b2c3d4);
    expect(pcap.body.length).toBe(24 + 16 + 4);
    expect((await api('GET', '/api/captures')).json).toMatchObject([{ id, state: 'done', frames: 1 }]);
    expect((await api('POST', '/api/captures', { endpoint: 'cello:9' })).status).toBe(400);
    expect((await api('GET', '/api/captures/99/pcap')).status).toBe(404);
    await web.close();
    expect(files.map((f) => existsSync(f))).toEqual([false]);
  });

  it('impairment: set on a link, one direction of it, or an endpoint calls the runner with that target and values; clear too', async () => {
    const { api, calls } = await start();
    const all = await api('GET', '/api/impairments');
    expect([all.status, (all.json as unknown as ImpairStatus[]).map((s) => s.link)]).toEqual([200, ['violin:0--piano:0']]);
    const one = await api('GET', `/api/impairments/${encodeURIComponent('links[0]')}`);
    expect([one.status, one.json.source, (one.json as unknown as ImpairStatus).directions.map((d) => d.text)]).toEqual([200, 'runtime', ['delay 100ms, loss 20%', 'delay 100ms, loss 20%']]);
    const set = await api('POST', '/api/impairments', { target: 'links[0]', delayMs: 50, jitterMs: '5', lossPct: '', rateMbit: null });
    expect([set.status, (set.json as unknown as ImpairStatus).directions.map((d) => d.text)]).toEqual([200, ['delay 50ms ±5ms', 'delay 50ms ±5ms']]);
    await api('POST', '/api/impairments', { target: 'violin--piano', direction: 'ab', rateMbit: 10 });
    await api('POST', '/api/impairments', { target: 'links[0]', direction: 'ba', lossPct: 1 });
    await api('POST', '/api/impairments', { target: 'piano:0', corruptPct: 2 });
    const cleared = await api('POST', '/api/impairments/clear', { target: 'links[0]', direction: 'ab' });
    expect((cleared.json as unknown as ImpairStatus).directions.map((d) => d.text)).toEqual(['none', 'corrupt 2%']);
    await api('POST', '/api/impairments/clear', { target: 'links[0]' });
    expect(calls).toEqual([
      'impair links[0] {"delayMs":50,"jitterMs":5}',
      'impair violin:0 {"rateMbit":10}',
      'impair piano:0 {"lossPct":1}',
      'impair piano:0 {"corruptPct":2}',
      'clear violin:0',
      'clear links[0]',
    ]);
  });

  it('impairment: the view pushes the new label; the page and graph say the same', async () => {
    const { api, web, cookie } = await start();
    const o = await wsOpen(`ws://127.0.0.1:${web.port}/ws/view`, { cookie });
    if (!('ws' in o)) throw new Error(`view websocket refused: ${o.refused}`);
    const label = (m: string) => (JSON.parse(m) as WebView).edges[0]!.impairment;
    await until('a first view', () => o.messages[0]);
    await api('POST', '/api/impairments', { target: 'violin:0', delayMs: 50 });
    await until('the per-direction label pushed', () => (o.messages.some((m) => label(m) === 'violin:0→piano:0: delay 50ms\npiano:0→violin:0: delay 100ms, loss 20%') ? true : undefined));
    await api('POST', '/api/impairments/clear', { target: 'links[0]' });
    await until('no label once cleared', () => (label(o.messages.at(-1)!) === undefined ? true : undefined));
    o.ws.close();
  });

  it('impairment: bad bodies are 400 naming the field; an unknown or unimpairable target is 400 with IMPAIR_TARGET; nothing reaches the runner', async () => {
    const { api, calls } = await start();
    const bad = async (body: unknown, path = '/api/impairments') => {
      const r = await api('POST', path, body);
      return [r.status, r.json.error?.code, r.json.error?.message];
    };
    expect(await bad({ target: 'links[0]', delayMs: 'soon' })).toEqual([400, 'WEB_REQUEST', '"delayMs" takes a number, not "soon"']);
    expect(await bad({ target: 'links[0]', delay: 5 })).toEqual([400, 'WEB_REQUEST', expect.stringMatching(/^"delay" is no impairment field; use delayMs, jitterMs/)]);
    expect(await bad({ target: 'links[0]' })).toEqual([400, 'WEB_REQUEST', expect.stringContaining('give at least one of delayMs')]);
    expect(await bad({ delayMs: 5 })).toEqual([400, 'WEB_REQUEST', expect.stringContaining('"target"')]);
    expect(await bad({ target: 'links[0]', direction: 'up', delayMs: 5 })).toEqual([400, 'WEB_REQUEST', '"direction" takes both, ab, ba, not "up"']);
    expect(await bad({ target: 'violin:0', direction: 'ba', delayMs: 5 })).toEqual([400, 'WEB_REQUEST', expect.stringContaining('goes with a link')]);
    expect(await bad({ target: 'links[7]', direction: 'ab' }, '/api/impairments/clear')).toEqual([400, 'IMPAIR_TARGET', expect.stringContaining('names no link')]);
    expect((await api('GET', '/api/impairments/cello--piano')).json.error?.code).toBe('IMPAIR_TARGET');
    expect(calls).toEqual([]);
    // Out of range: the runner's validation, with the field's path.
    expect(await bad({ target: 'links[0]', lossPct: 150 })).toEqual([400, 'TOPOLOGY_INVALID', expect.stringContaining('links[0].lossPct')]);
    expect(await bad({ target: 'cello:0', delayMs: 5 })).toEqual([400, 'IMPAIR_TARGET', expect.stringContaining('cello:0')]);
  });

  it('never logs the token, even at trace level with the token in URLs', async () => {
    const { web, log, api } = await start();
    await request(web.port, `/?token=${web.token}`);
    await request(web.port, `/api/view?token=${web.token}`);
    await api('POST', '/api/nodes/violin/exec', { command: 'true' });
    await web.close();
    const text = JSON.stringify(log.events);
    expect(text).toContain('/api/view');
    expect(text).not.toContain(web.token);
  });

  it('a port in use is a WEB_SERVER error naming it; close() ends the server', async () => {
    const { web, topo } = await start();
    await expect(startWebServer(topo, { port: web.port })).rejects.toMatchObject({ code: 'WEB_SERVER', message: expect.stringContaining(`port ${web.port}`) });
    await web.close();
    await expect(request(web.port, '/')).rejects.toThrow(/ECONNREFUSED/);
  });
});
