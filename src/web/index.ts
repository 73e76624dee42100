/**
 * The web view of a running topology (`$topo web`): the live graph, consoles, exec, power and
 * captures in a browser, on 127.0.0.1 behind a token. See docs/web.md.
 */
export { startWebServer } from './server.js';
export type { WebServer, WebServerOptions } from './server.js';
export type { WebTopology } from './routes.js';
export { WebRequestError } from './errors.js';
export { webView } from './view.js';
export type { WebView, ViewEdge, ViewNode, ViewEndpoint } from './view.js';
