/**
 * The web view of a running topology (`$topo web`): the live graph, consoles, exec, power and
 * captures in a browser, on 127.0.0.1 behind a token. See docs/web.md.
 */
import type { WebTopology } from './routes.js';
import type { WebServer, WebServerOptions } from './server.js';

export type { WebServer, WebServerOptions } from './server.js';
export type { WebTopology } from './routes.js';
export { WebRequestError } from './errors.js';
export { webView } from './view.js';
export type { WebView, ViewEdge, ViewNode, ViewEndpoint } from './view.js';

/**
 * Serve the web view of `topo` on 127.0.0.1 behind a token (see server.ts). The server and ws
 * load here, when a server starts: a topology program that serves no page never loads them.
 * @throws FalconError WEB_SERVER when the port cannot be listened on.
 */
export async function startWebServer(topo: WebTopology, o: WebServerOptions = {}): Promise<WebServer> {
  return (await import('./server.js')).startWebServer(topo, o);
}
