/**
 * `$topo web`: one page for one running topology, served on 127.0.0.1 behind a random token.
 * HTTP for the page and actions (routes.ts); websockets for the live view (`/ws/view`) and the
 * node consoles (`/ws/console/NODE`: binary frames are console bytes both ways, text frames
 * carry the console's state as JSON).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { FalconError } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { AssetStore } from './assets.js';
import { CaptureSessions } from './captures.js';
import { ConsoleHub, consoleConnector, type ConsoleConnector } from './console-hub.js';
import { LiveView } from './live.js';
import { admit, webRoutes, type WebTopology } from './routes.js';
import { newToken } from './token.js';

export interface WebServerOptions {
  /** Default 0: any free port. */
  port?: number;
  log?: Logger;
  /** Default: a fresh random one. */
  token?: string;
  /** How often the topology is read for the live view; default 1000 ms. */
  pollMs?: number;
  /** The consoles; default the nodes' console sockets. */
  consoles?: ConsoleConnector;
}

export interface WebServer {
  /** The URL to open, with the token: `http://127.0.0.1:PORT/?token=...`. Print it; never log it. */
  readonly url: string;
  readonly port: number;
  readonly token: string;
  /** Closes websockets, consoles, captures and the server. Idempotent. */
  close(): Promise<void>;
}

const HOST = '127.0.0.1';

function refuse(socket: Duplex, status: 403 | 404, why: string): void {
  socket.end(`HTTP/1.1 ${status} ${status === 403 ? 'Forbidden' : 'Not Found'}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${status} ${why}\n`);
}

/**
 * Serve the web view of `topo` on 127.0.0.1.
 * @throws FalconError WEB_SERVER when the port cannot be listened on.
 */
export async function startWebServer(topo: WebTopology, o: WebServerOptions = {}): Promise<WebServer> {
  const log = o.log ?? silentLogger;
  const port = o.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new FalconError('WEB_SERVER', `web: --port takes a port number from 0 to 65535 (0: any free port), not ${port}`);
  const token = o.token ?? newToken();
  const assets = await AssetStore.open();
  const hub = new ConsoleHub(o.consoles ?? consoleConnector((n) => topo.console(n)), log);
  const live = new LiveView(() => topo.info(), log, o.pollMs ?? 1000, (v) => hub.refresh(v.info.nodes.filter((n) => n.status === 'running').map((n) => n.name)));
  const captures = new CaptureSessions((e, opts) => topo.capture(e, opts), log);
  let listening = 0;
  const ctx = { topo, token, port: () => listening, live, captures, assets, log };
  const server = http.createServer(webRoutes(ctx));
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });

  server.on('upgrade', (req, socket, head) => {
    const a = admit(req, ctx);
    if (!a.ok) return refuse(socket, 403, a.why ?? 'forbidden');
    const p = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    const m = /^\/ws\/console\/([^/]+)$/.exec(p);
    if (p !== '/ws/view' && !m) return refuse(socket, 404, `no websocket at ${p}`);
    void (async () => {
      const node = m ? decodeURIComponent(m[1]!) : undefined;
      if (node !== undefined) {
        const { view } = await live.current();
        if (!view.nodes.some((n) => n.kind === 'node' && n.name === node)) return refuse(socket, 404, `topology "${topo.name}" has no node "${node}"`);
      }
      wss.handleUpgrade(req, socket, head, (ws) => (node === undefined ? viewSocket(ws) : consoleSocket(ws, node)));
    })().catch((e: unknown) => refuse(socket, 404, (e as Error).message));
  });

  const viewSocket = (ws: WebSocket) => {
    const off = live.subscribe((json) => ws.send(json));
    ws.on('close', off);
  };

  const consoleSocket = (ws: WebSocket, node: string) => {
    const viewer = hub.attach(node, {
      output: (data) => ws.send(data, { binary: true }),
      state: (state, message) => ws.send(JSON.stringify({ type: 'state', state, message })),
    });
    ws.on('message', (data, isBinary) => {
      if (isBinary) viewer.input(Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[]));
    });
    ws.on('close', () => void viewer.detach());
  };

  await live.current();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        new FalconError(
          'WEB_SERVER',
          e.code === 'EADDRINUSE' ? `web: port ${port} on ${HOST} is taken; choose another with --port N, or --port 0 for any free one` : `web: cannot listen on ${HOST}:${port}: ${e.message}`,
          { cause: e },
        ),
      ),
    );
    server.listen(port, HOST, () => resolve());
  });
  listening = (server.address() as AddressInfo).port;
  live.start();
  log.log({ kind: 'step', level: 'debug', msg: `web: the view of topology "${topo.name}" listens on http://${HOST}:${listening}/` });

  let closing: Promise<void> | undefined;
  return {
    url: `http://${HOST}:${listening}/?token=${token}`,
    port: listening,
    token,
    close: () =>
      (closing ??= (async () => {
        live.stop();
        for (const ws of wss.clients) ws.terminate();
        wss.close();
        await Promise.all([hub.close(), captures.close()]);
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        log.log({ kind: 'step', level: 'debug', msg: `web: the view of topology "${topo.name}" is closed` });
      })()),
  };
}
