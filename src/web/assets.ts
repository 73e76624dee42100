/**
 * The page's files: its own (src/web/assets, copied beside the built code) and the libraries it
 * uses, served from their installed packages (dependencies of falcon, so installed with it): no
 * build step, no network.
 */
import { readFile, readdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FalconError } from '../util/errors.js';

export interface Asset {
  body: Buffer;
  type: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** Where the page's own files are (beside this module, in src/ and in dist/). */
export const ASSETS_DIR = fileURLToPath(new URL('./assets/', import.meta.url));

/** The library files the page imports, by the name it uses under /vendor/. */
export function vendorFiles(): Record<string, string> {
  const require = createRequire(import.meta.url);
  const root = (pkg: string) => path.dirname(require.resolve(`${pkg}/package.json`));
  try {
    const xterm = root('@xterm/xterm');
    const fit = root('@xterm/addon-fit');
    // cytoscape exports no package.json; its CommonJS entry sits beside the ES module.
    const cyto = path.dirname(require.resolve('cytoscape'));
    return {
      'xterm.mjs': path.join(xterm, 'lib/xterm.mjs'),
      'xterm.css': path.join(xterm, 'css/xterm.css'),
      'addon-fit.mjs': path.join(fit, 'lib/addon-fit.mjs'),
      'cytoscape.mjs': path.join(cyto, 'cytoscape.esm.min.mjs'),
    };
  } catch (e) {
    throw new FalconError('WEB_SERVER', `the web view's libraries (@xterm/xterm, @xterm/addon-fit, cytoscape) are not installed: ${(e as Error).message}; run npm install in the falcon package`, { cause: e });
  }
}

/** Reads assets by URL path (`/assets/app.js`, `/vendor/xterm.mjs`); only files it knows, so no path escapes. */
export class AssetStore {
  private readonly cache = new Map<string, Asset>();

  private constructor(
    private readonly files: Map<string, string>,
  ) {}

  /** The store for `dir` (default the shipped assets) and the vendor libraries. */
  static async open(dir = ASSETS_DIR, vendor = vendorFiles()): Promise<AssetStore> {
    const files = new Map<string, string>();
    for (const name of await readdir(dir)) files.set(`/assets/${name}`, path.join(dir, name));
    for (const [name, file] of Object.entries(vendor)) files.set(`/vendor/${name}`, file);
    return new AssetStore(files);
  }

  /** The asset at URL path `p`, or undefined. */
  async get(p: string): Promise<Asset | undefined> {
    const file = this.files.get(p);
    if (!file) return undefined;
    let a = this.cache.get(p);
    if (!a) {
      a = { body: await readFile(file), type: TYPES[path.extname(file)] ?? 'application/octet-stream' };
      this.cache.set(p, a);
    }
    return a;
  }
}
