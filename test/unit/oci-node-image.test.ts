/**
 * The falcon-node image builder (src/k8s/node-image.ts) without building it: the package list
 * and mmdebstrap's arguments, the node_modules closure, the cache key and the cache, the launcher,
 * and k8s/Dockerfile saying the same as the builder. (test/e2e/oci.test.ts builds and runs it.)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ProcessRunner } from '../../src/host/process.js';
import { ImageStore } from '../../src/images/store.js';
import {
  buildNodeImage,
  FALCON_NODE_LAUNCHER,
  NODE_IMAGE_ENTRYPOINT,
  NODE_IMAGE_PACKAGES,
  NODE_IMAGE_PATH_EXCLUDES,
  NODE_MAIN,
  nodeImageCacheDir,
  nodeImageConfig,
  nodeImageInputs,
  nodeImageMmdebstrapArgs,
  nodeImageRef,
  runtimeDependencies,
} from '../../src/k8s/node-image.js';
import { memoryLogger } from '../../src/util/log.js';

const repo = path.resolve(import.meta.dirname, '../..');
const top = mkdtempSync(path.join(os.tmpdir(), 'falcon-node-image-'));
afterAll(async () => {
  await rm(top, { recursive: true, force: true });
});

/** A runner that must not be called: the cached path runs nothing. */
const noRunner: ProcessRunner = {
  run: (cmd) => Promise.reject(new Error(`unexpected command ${cmd}`)),
  spawnDetached: () => Promise.reject(new Error('unexpected spawn')),
};

/** A tiny package root with what the builder reads. */
function fakePackage(name: string): { root: string; node: string } {
  const root = path.join(top, name);
  for (const d of ['dist/cli', 'bin', 'guest-agent', 'host-helpers']) mkdirSync(path.join(root, d), { recursive: true });
  writeFileSync(path.join(root, 'dist/cli/falcon.js'), 'console.log(1)\n');
  writeFileSync(path.join(root, 'bin/falcon.js'), '#!/usr/bin/env node\n');
  writeFileSync(path.join(root, 'package.json'), '{"name":"falcon","version":"9.9.9"}\n');
  writeFileSync(path.join(root, 'guest-agent/falcon-agent.c'), 'int main(){return 0;}\n');
  writeFileSync(path.join(root, 'host-helpers/falcon-impair.c'), 'int main(){return 0;}\n');
  writeFileSync(path.join(root, 'host-helpers/falcon-tapsock.c'), 'int main(){return 0;}\n');
  const node = path.join(root, 'node-binary');
  writeFileSync(node, 'ELF');
  return { root, node };
}

describe('what goes into the image', () => {
  it('Debian packages, no documentation, merged /usr without usrmerge', () => {
    expect(NODE_IMAGE_PACKAGES).toEqual(['qemu-system-x86', 'qemu-utils', 'iproute2', 'tcpdump', 'busybox-static', 'libstdc++6']);
    const args = nodeImageMmdebstrapArgs('/w/hook.sh', '/w/root');
    expect(args).toContain('--variant=minbase');
    expect(args).toContain(`--include=${NODE_IMAGE_PACKAGES.join(',')}`);
    expect(args).toContain('--dpkgopt=path-exclude=/usr/share/doc/*');
    for (const x of NODE_IMAGE_PATH_EXCLUDES) expect(args).toContain(`--dpkgopt=path-exclude=${x}`);
    expect(args).toContain('--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr');
    expect(args).toContain('--setup-hook=/w/hook.sh');
    expect(args.slice(-3)).toEqual(['--', 'bookworm', '/w/root']);
  });

  it('node_modules: the runtime closure without tsx, resolved as Node does', async () => {
    const pkg = (dir: string, j: Record<string, unknown>) => {
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ version: '1.0.0', ...j }));
    };
    // An installed falcon: its own node_modules for a conflicting version, the rest hoisted above.
    const proj = path.join(top, 'proj');
    const root = path.join(proj, 'node_modules', 'falcon');
    pkg(root, { name: 'falcon', dependencies: { a: '1', tsx: '1', shared: '1' }, optionalDependencies: { absent: '1' }, devDependencies: { vitest: '1' } });
    pkg(path.join(proj, 'node_modules', 'a'), { name: 'a', dependencies: { b: '2' } });
    pkg(path.join(proj, 'node_modules', 'a', 'node_modules', 'b'), { name: 'b', version: '2.0.0', dependencies: { c: '1' } });
    pkg(path.join(proj, 'node_modules', 'c'), { name: 'c' });
    pkg(path.join(root, 'node_modules', 'shared'), { name: 'shared', version: '3.0.0' });
    pkg(path.join(proj, 'node_modules', 'tsx'), { name: 'tsx', dependencies: { esbuild: '1' } });
    pkg(path.join(proj, 'node_modules', 'esbuild'), { name: 'esbuild', optionalDependencies: { '@esbuild/linux-x64': '1', '@esbuild/darwin-arm64': '1' } });
    pkg(path.join(proj, 'node_modules', '@esbuild', 'linux-x64'), { name: '@esbuild/linux-x64' });
    const deps = await runtimeDependencies(root);
    // b is nested in a's folder and comes with it; vitest (dev) and the missing optional are not there.
    expect(deps.map((d) => `${d.dest}@${d.version}`)).toEqual(['node_modules/a@1.0.0', 'node_modules/c@1.0.0', 'node_modules/shared@3.0.0']);
    expect(deps.find((d) => d.name === 'shared')!.dir).toBe(path.join(root, 'node_modules', 'shared'));
    expect((await runtimeDependencies(root, [])).map((d) => d.dest)).toEqual([
      'node_modules/@esbuild/linux-x64', 'node_modules/a', 'node_modules/c', 'node_modules/esbuild', 'node_modules/shared', 'node_modules/tsx',
    ]);
    pkg(path.join(proj, 'node_modules', 'c'), { name: 'c', dependencies: { gone: '1' } });
    await expect(runtimeDependencies(root)).rejects.toMatchObject({ code: 'IMAGE_BUILD_FAILED', message: expect.stringMatching(/gone, a dependency of c, is not installed; run `npm ci`/) });
  });

  it("this package's closure has the CLI's dependencies and no tsx or esbuild", async () => {
    const dirs = (await runtimeDependencies(repo)).map((d) => d.dest);
    for (const d of ['commander', 'zod', 'ws', 'cli-progress']) expect(dirs).toContain(`node_modules/${d}`);
    expect(dirs.filter((d) => /tsx|esbuild/.test(d))).toEqual([]);
  });

  it('the config runs the entrypoint; references carry the version and the inputs', () => {
    expect(nodeImageConfig('ab'.repeat(32), '0.1.0')).toMatchObject({ Entrypoint: [NODE_IMAGE_ENTRYPOINT], Labels: { 'io.falcon.version': '0.1.0' } });
    expect(nodeImageRef('0.1.0', '1234567890abcdef')).toBe('falcon.local/falcon-node:0.1.0-1234567890ab');
  });
});

describe('the launcher', () => {
  it('k8s/falcon-node is the launcher the builder installs', () => {
    expect(readFileSync(path.join(repo, 'k8s/falcon-node'), 'utf8')).toBe(FALCON_NODE_LAUNCHER);
    expect(statSync(path.join(repo, 'k8s/falcon-node')).mode & 0o111).not.toBe(0);
  });

  it('without node-main it exits 127 and says what is missing and how to fix it', () => {
    const file = path.join(top, 'falcon-node');
    writeFileSync(file, FALCON_NODE_LAUNCHER, { mode: 0o755 });
    const r = spawnSync('sh', [file, 'run'], { encoding: 'utf8' });
    expect(r.status).toBe(127);
    expect(r.stderr).toContain(`${NODE_MAIN} is missing`);
    expect(r.stderr).toContain('falcon image build-node --force');
    execFileSync('sh', ['-n', path.join(repo, 'k8s/falcon-node')]);
  });
});

describe('k8s/Dockerfile', () => {
  const text = readFileSync(path.join(repo, 'k8s/Dockerfile'), 'utf8');

  it('says it is equivalent and builds from debian:bookworm-slim with the same packages and excludes', () => {
    expect(text).toMatch(/equivalent to `falcon image build-node`/);
    expect(text).toMatch(/^FROM debian:bookworm-slim$/m);
    const install = /apt-get install -y --no-install-recommends \\\n\s+([^\n]+)\n/.exec(text);
    expect(install?.[1]?.replace(/\\$/, '').trim().split(/\s+/)).toEqual([...NODE_IMAGE_PACKAGES]);
    const excludes = /printf 'path-exclude=%s\\n' \\\n([\s\S]*?)> \/etc\/dpkg/.exec(text)![1]!;
    expect(excludes.split('\\\n').map((s) => s.trim().replace(/^'|'$/g, '')).filter(Boolean)).toEqual([...NODE_IMAGE_PATH_EXCLUDES]);
    expect(text).toContain(`ENTRYPOINT ["${NODE_IMAGE_ENTRYPOINT}"]`);
    expect(text).toContain('COPY k8s/falcon-node /usr/local/bin/falcon-node');
  });

  it('compiles the same C helpers into libexec under plain names (the pod runs libexec/falcon-tapsock)', () => {
    const loop = /for p in ([^;]+); do/.exec(text)![1]!.trim().split(/\s+/);
    expect(loop).toEqual(['falcon-agent', 'falcon-impair', 'falcon-tapsock']);
    expect(text).toContain('COPY --from=helpers /out/ /opt/falcon/libexec/');
    const ignore = readFileSync(path.join(repo, 'k8s/Dockerfile.dockerignore'), 'utf8');
    for (const c of ['guest-agent/falcon-agent.c', 'host-helpers/falcon-impair.c', 'host-helpers/falcon-tapsock.c']) {
      expect(text).toContain(c);
      expect(ignore).toContain(`!${c}`);
    }
  });

  it('removes from npm ci --omit=dev what the builder leaves out', async () => {
    const kept = new Set((await runtimeDependencies(repo)).map((d) => d.dest));
    const left = (await runtimeDependencies(repo, [])).map((d) => d.dest).filter((d) => !kept.has(d));
    expect(left.length).toBeGreaterThan(0);
    const removed = /rm -rf ((?:node_modules\/\S+\s*)+)/.exec(text)![1]!.trim().split(/\s+/);
    for (const d of left) expect(removed.some((r) => d === r || d.startsWith(`${r}/`)), d).toBe(true);
  });
});

describe('the cache', () => {
  it('the cache key changes with dist/, the Node binary or the package list, and only then', async () => {
    const p = fakePackage('keys');
    const key = () => nodeImageInputs({ packageRoot: p.root, nodeBinary: p.node, architecture: 'amd64' });
    const k1 = await key();
    expect(await key()).toBe(k1);
    writeFileSync(path.join(p.root, 'dist/cli/falcon.js'), 'console.log(2)\n');
    const k2 = await key();
    expect(k2).not.toBe(k1);
    writeFileSync(path.join(p.root, 'node-binary'), 'ELF2');
    expect(await key()).not.toBe(k2);
    expect(await nodeImageInputs({ packageRoot: p.root, nodeBinary: p.node, architecture: 'arm64' })).not.toBe(await key());
  });

  it('a current cached image is returned without building, and copied to --out', async () => {
    const p = fakePackage('cached');
    const log = memoryLogger();
    const store = new ImageStore({ root: path.join(top, 'store'), runner: noRunner, log, recipes: {} });
    const inputs = await nodeImageInputs({ packageRoot: p.root, nodeBinary: p.node, architecture: 'amd64' });
    const dir = nodeImageCacheDir(store);
    mkdirSync(dir, { recursive: true });
    const tar = path.join(dir, `falcon-node-${inputs.slice(0, 16)}.tar`);
    writeFileSync(tar, 'ARCHIVE');
    const ref = nodeImageRef('9.9.9', inputs);
    const json = { path: tar, ref, refs: [ref], digest: 'sha256:' + '0'.repeat(64), size: 7, uncompressedSize: 10, cached: false, inputs, seconds: 1, packages: [...NODE_IMAGE_PACKAGES], nodeVersion: 'v20' };
    writeFileSync(path.join(dir, `falcon-node-${inputs.slice(0, 16)}.json`), JSON.stringify(json));
    if (process.arch !== 'x64') return; // the key above is amd64's
    const out = path.join(top, 'copy.tar');
    const r = await buildNodeImage({ store, runner: noRunner, log, packageRoot: p.root, nodeBinary: p.node, out });
    expect(r).toMatchObject({ cached: true, path: tar, out, ref, digest: json.digest });
    expect(readFileSync(out, 'utf8')).toBe('ARCHIVE');
    // A damaged cache entry (size differs) is not taken: the build starts (and here fails at once).
    writeFileSync(tar, 'ARCHIVE, TRUNCATED');
    await expect(buildNodeImage({ store, runner: noRunner, log, packageRoot: p.root, nodeBinary: p.node })).rejects.toThrow();
  });

  it('refuses a package without dist/ and says to build it', async () => {
    const p = fakePackage('nodist');
    await rm(path.join(p.root, 'dist'), { recursive: true });
    const store = new ImageStore({ root: path.join(top, 'store2'), runner: noRunner, log: memoryLogger(), recipes: {} });
    await expect(buildNodeImage({ store, runner: noRunner, log: memoryLogger(), packageRoot: p.root, nodeBinary: p.node })).rejects.toMatchObject({
      code: 'IMAGE_BUILD_FAILED',
      message: expect.stringMatching(/npm run build/),
    });
  });
});
