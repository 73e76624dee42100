#!/usr/bin/env node
// The `falcon` command. An installed package runs its built JavaScript (dist/). In a repository
// checkout, where dist/ may be missing or older than the sources, it runs the TypeScript sources
// through tsx instead, so `node bin/falcon.js` always runs the current code.
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const built = path.join(root, 'dist/cli/falcon.js');
const src = path.join(root, 'src');

/** Newest modification time of the files under a folder. */
function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) t = Math.max(t, statSync(path.join(e.parentPath ?? e.path, e.name)).mtimeMs);
  }
  return t;
}

if (existsSync(built) && (!existsSync(src) || newest(src) <= statSync(built).mtimeMs)) {
  await import(built);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(path.join(src, 'cli/falcon.ts'));
}
