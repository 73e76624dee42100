/**
 * Dev helper: build a built-in recipe into a directory, without the image store.
 *   npx tsx scripts/try-image.ts tiny OUTDIR [CACHEDIR] [--agent PATH]
 * Prints the recipe result and the build time.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createProcessRunner } from '../src/host/process.js';
import { consoleLogger } from '../src/util/log.js';
import { getRecipe } from '../src/images/recipes/index.js';
import { createTinyRecipe } from '../src/images/recipes/tiny.js';
import { createDebian12Recipe } from '../src/images/recipes/debian12.js';

const args = process.argv.slice(2);
const agentAt = args.indexOf('--agent');
const agent = agentAt >= 0 ? resolve(args.splice(agentAt, 2)[1]!) : undefined;
const [name, out, cache] = args;
if (!name || !out) {
  console.error('usage: tsx scripts/try-image.ts RECIPE OUTDIR [CACHEDIR] [--agent PATH]');
  process.exit(2);
}
const log = consoleLogger(process.env.FALCON_LOG ? undefined : 'debug');
const runner = createProcessRunner(log);
const provider = agent ? async () => agent : undefined;
const recipe =
  name === 'tiny' && provider ? createTinyRecipe({ agent: provider })
  : name === 'debian-12' && provider ? createDebian12Recipe({ agent: provider })
  : getRecipe(name);
const outDir = resolve(out);
await rm(outDir, { recursive: true, force: true });
await mkdir(outDir, { recursive: true });
const workDir = await mkdtemp(join(tmpdir(), 'falcon-try-'));
const cacheDir = resolve(cache ?? join(tmpdir(), 'falcon-try-cache'));
await mkdir(cacheDir, { recursive: true });
const t0 = Date.now();
try {
  const result = await recipe.build({ outDir, workDir, cacheDir, runner, log });
  console.log(JSON.stringify(result, null, 2));
  console.log(`built ${name} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
} finally {
  await rm(workDir, { recursive: true, force: true });
}
