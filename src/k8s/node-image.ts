/**
 * The `falcon-node` image: what each pod of a topology on Kubernetes runs. Built offline, with
 * no registry and no container engine: a Debian bookworm minbase root made by mmdebstrap with
 * QEMU, qemu-img, iproute2 and tcpdump; the Node.js that runs this Falcon (Debian 12 has only
 * Node 18, and Falcon needs 20); this package's built `dist/`, `bin/`, production node_modules,
 * C sources and their static binaries (the guest agent, the impairment helper, the tap-to-switch
 * helper); and the entrypoint `/usr/local/bin/falcon-node`, which runs `dist/pod/main.js`.
 * Written as an OCI archive (src/images/oci.ts) for `ctr -n k8s.io images import`.
 *
 * Cached in the image store's cache (`cache/falcon-node/falcon-node-<hash>.tar`) by a hash of its inputs
 * (recipe version, package list, architecture, the Node binary, dist/, bin/, package.json, the
 * versions of the runtime dependencies, the C sources, the launcher); rebuilt only when one
 * changes, or with force.
 * k8s/Dockerfile builds the equivalent image with a container engine.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, copyFile, cp, link, mkdir, readdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildAgent } from '../guest/agent-build.js';
import { buildImpairHelper } from '../host/impair.js';
import { buildTapsock } from '../host/tapsock.js';
import { HostCommandError, type ProcessRunner } from '../host/process.js';
import { ImageError } from '../images/errors.js';
import { sha256File } from '../images/helpers.js';
import { ociArchitecture, writeOciArchive, type OciArchiveResult, type OciProgress } from '../images/oci.js';
import type { ImageStore } from '../images/store.js';
import { exists, pidAlive, writeFileAtomic } from '../util/fs.js';
import { acquireLock } from '../util/lock.js';
import type { Logger } from '../util/log.js';

/** Debian packages of the image (with their dependencies; no recommends). */
export const NODE_IMAGE_PACKAGES = ['qemu-system-x86', 'qemu-utils', 'iproute2', 'tcpdump', 'busybox-static', 'libstdc++6'] as const;
/** Bumped when what the builder puts in the image changes, so cached images are rebuilt. */
export const NODE_IMAGE_RECIPE_VERSION = 1;
export const NODE_IMAGE_REPOSITORY = 'falcon.local/falcon-node';
export const NODE_IMAGE_ENTRYPOINT = '/usr/local/bin/falcon-node';
/** Where this package lives in the image. */
export const NODE_IMAGE_FALCON_DIR = '/opt/falcon';
/** The node runtime the entrypoint runs (another part of src/k8s writes it). */
export const NODE_MAIN = `${NODE_IMAGE_FALCON_DIR}/dist/pod/main.js`;
/** Static binaries of the C helpers, for pods that have no compiler. */
export const NODE_IMAGE_LIBEXEC = `${NODE_IMAGE_FALCON_DIR}/libexec`;

/** The entrypoint: runs dist/pod/main.js with the image's Node, or says clearly that it is missing. k8s/falcon-node is the same file. */
export const FALCON_NODE_LAUNCHER = `#!/bin/sh
# falcon-node: the entrypoint of the falcon-node image. It runs Falcon's host layer for one node
# of a topology on Kubernetes (QEMU, the disk overlay, the exec agent and console sockets, the
# impairment helper): ${NODE_MAIN}, with the Node.js in this image.
main=${NODE_MAIN}
if [ ! -f "$main" ]; then
	echo "falcon-node: $main is missing: this image was built from a Falcon whose dist/ has no pod/main.js. Build Falcon (npm run build) from a version that has it, then rebuild the image (falcon image build-node --force)." >&2
	exit 127
fi
exec /usr/local/bin/node "$main" "$@"
`;

/** mmdebstrap hook: keeps the .debs between builds in $FALCON_DEB_CACHE. */
const MMDEBSTRAP_HOOK = `#!/bin/sh
set -eu
archives="$1/var/cache/apt/archives"
case "$MMDEBSTRAP_HOOK" in
setup)
	mkdir -p "$archives"
	find "$FALCON_DEB_CACHE" -maxdepth 1 -name '*.deb' -exec cp -p -t "$archives" {} +
	;;
customize)
	find "$archives" -maxdepth 1 -name '*.deb' -exec cp -p -n -t "$FALCON_DEB_CACHE" {} +
	;;
esac
`;

const MMDEBSTRAP_TIMEOUT_MS = 30 * 60_000;
const LOCK_WAIT_MS = 60 * 60_000;

export type NodeImageProgress = OciProgress | { phase: 'debian'; msg: string };

export interface NodeImageOptions {
  /** Its cache holds the image and the .debs; its runner runs the tools. */
  store: ImageStore;
  runner: ProcessRunner;
  log: Logger;
  /** Also put the archive here (a hard link or copy of the cached one, written atomically). */
  out?: string;
  /** Rebuild even when the cached image is current. */
  force?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: NodeImageProgress) => void;
  /** The falcon package to put in the image; default this one. */
  packageRoot?: string;
  /** The Node.js binary to put in the image; default the one running. */
  nodeBinary?: string;
}

export interface NodeImageResult {
  /** The cached archive. */
  path: string;
  /** `out`, when given. */
  out?: string;
  /** `falcon.local/falcon-node:<version>-<inputs12>`, which names this build alone. */
  ref: string;
  /** `ref` and `falcon.local/falcon-node:<version>` (the k8s backend's default), both in the archive. */
  refs: string[];
  digest: string;
  /** Bytes of the archive. */
  size: number;
  /** Bytes of the root file system before compression (the layer's tar). */
  uncompressedSize: number;
  /** True when the cached image was current and nothing was built. */
  cached: boolean;
  /** The hash of the inputs (the cache key). */
  inputs: string;
  seconds: number;
  packages: string[];
  nodeVersion: string;
}

/** The falcon package this module belongs to: two folders up from src/k8s and dist/k8s alike. */
export function defaultPackageRoot(): string {
  return fileURLToPath(new URL('../../', import.meta.url));
}

/** Where the image store keeps falcon-node images (and their build folders, and the lock). */
export function nodeImageCacheDir(store: Pick<ImageStore, 'cacheDir'>): string {
  return path.join(store.cacheDir, 'falcon-node');
}

/** Runtime dependencies left out of the image: tsx runs TypeScript, and the pod runs dist/'s JavaScript. */
export const NODE_IMAGE_SKIPPED_DEPENDENCIES: readonly string[] = ['tsx'];

/** An installed package the image needs: where it is, and where it goes under /opt/falcon. */
export interface RuntimeDependency {
  name: string;
  version: string;
  /** Its folder on this host. */
  dir: string;
  /** Its folder relative to /opt/falcon: `node_modules/<name>`, or nested under another's. */
  dest: string;
}

interface PackageJson {
  name?: string;
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

async function readPackageJson(dir: string): Promise<PackageJson> {
  return JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as PackageJson;
}

/** Where Node finds package `name` from `from`: `node_modules/<name>` there or in a parent folder. */
async function findPackage(from: string, name: string): Promise<string | undefined> {
  for (let d = from; ; d = path.dirname(d)) {
    const c = path.join(d, 'node_modules', name);
    if (await exists(path.join(c, 'package.json'))) return c;
    if (path.dirname(d) === d) return undefined;
  }
}

/** A dependency's folder relative to /opt/falcon; hoisted ones (in a project above) go to its node_modules. */
function destOf(packageRoot: string, dir: string): string {
  const rel = path.relative(packageRoot, dir);
  if (!rel.startsWith('..')) return rel;
  return dir.slice(dir.indexOf(`${path.sep}node_modules${path.sep}`) + 1);
}

/**
 * The installed packages the image needs, found as Node resolves them (a checkout's node_modules,
 * or an installed falcon's, hoisted into the project above it): the closure of package.json's
 * dependencies without `skip`, as `npm ci --omit=dev` installs it. Missing optional or peer
 * dependencies are skipped; a missing dependency is an error. Sorted by `dest`; a package nested
 * in another's folder is left out (it comes with that folder).
 */
export async function runtimeDependencies(packageRoot: string, skip: readonly string[] = NODE_IMAGE_SKIPPED_DEPENDENCIES): Promise<RuntimeDependency[]> {
  const found = new Map<string, RuntimeDependency>();
  const visit = async (from: string, pj: PackageJson, top: boolean): Promise<void> => {
    const optional = new Set([...Object.keys(pj.optionalDependencies ?? {}), ...Object.keys(pj.peerDependencies ?? {})]);
    for (const name of Object.keys({ ...pj.peerDependencies, ...pj.optionalDependencies, ...pj.dependencies }).sort()) {
      if (top && skip.includes(name)) continue;
      const dir = await findPackage(from, name);
      if (!dir) {
        if (optional.has(name)) continue;
        throw new ImageError('IMAGE_BUILD_FAILED', `cannot build the falcon-node image: ${name}, a dependency of ${pj.name ?? from}, is not installed; run \`npm ci\` in ${packageRoot}`);
      }
      if (found.has(dir)) continue;
      const dep = await readPackageJson(dir);
      found.set(dir, { name, version: dep.version ?? '', dir, dest: destOf(packageRoot, dir) });
      await visit(dir, dep, false);
    }
  };
  await visit(packageRoot, await readPackageJson(packageRoot), true);
  const all = [...found.values()].sort((a, b) => (a.dest < b.dest ? -1 : a.dest > b.dest ? 1 : 0));
  const byDest = new Map<string, RuntimeDependency>();
  for (const d of all) {
    const other = byDest.get(d.dest);
    if (other && other.dir !== d.dir) {
      throw new ImageError('IMAGE_BUILD_FAILED', `cannot build the falcon-node image: ${other.dir} and ${d.dir} would both be /opt/falcon/${d.dest}; install falcon with its own node_modules (npm ci in its folder)`);
    }
    byDest.set(d.dest, d);
  }
  return all.filter((d) => !all.some((p) => p !== d && d.dest.startsWith(`${p.dest}${path.sep}`)));
}

/** Files under `dir` (relative, sorted), for hashing. */
async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() || e.isSymbolicLink()) out.push(path.relative(dir, path.join(e.parentPath ?? e.path, e.name)));
  }
  return out.sort();
}

/** The cache key: a sha256 over everything that goes into the image. */
export async function nodeImageInputs(o: { packageRoot: string; nodeBinary: string; architecture: string; signal?: AbortSignal }): Promise<string> {
  const h = createHash('sha256');
  const add = (k: string, v: string) => h.update(`${k}\0${v}\0`);
  add('recipe', String(NODE_IMAGE_RECIPE_VERSION));
  add('packages', NODE_IMAGE_PACKAGES.join(','));
  add('excludes', NODE_IMAGE_PATH_EXCLUDES.join(','));
  add('skipped', NODE_IMAGE_SKIPPED_DEPENDENCIES.join(','));
  add('arch', o.architecture);
  add('launcher', FALCON_NODE_LAUNCHER);
  add('hook', MMDEBSTRAP_HOOK);
  add('node', await sha256File(o.nodeBinary, o.signal));
  for (const f of ['package.json', 'guest-agent/falcon-agent.c', 'host-helpers/falcon-impair.c', 'host-helpers/falcon-tapsock.c']) {
    add(f, await sha256File(path.join(o.packageRoot, f), o.signal));
  }
  for (const d of await runtimeDependencies(o.packageRoot)) add(`dependency ${d.dest}`, d.version);
  for (const top of ['dist', 'bin']) {
    for (const f of await listFiles(path.join(o.packageRoot, top))) add(`${top}/${f}`, await sha256File(path.join(o.packageRoot, top, f), o.signal));
  }
  return h.digest('hex');
}

/**
 * The falcon-node image, built when its cached copy is missing or stale (or with `force`).
 * Concurrent builds (of any process) wait for one another.
 *
 * ```ts
 * const r = await buildNodeImage({ store, runner, log, out: '/tmp/falcon-node.tar', signal });
 * // ctr -n k8s.io images import /tmp/falcon-node.tar  -> r.ref, e.g. falcon.local/falcon-node:0.1.0-1a2b3c4d5e6f
 * ```
 */
export async function buildNodeImage(o: NodeImageOptions): Promise<NodeImageResult> {
  const started = Date.now();
  const packageRoot = path.resolve(o.packageRoot ?? defaultPackageRoot());
  const nodeBinary = o.nodeBinary ?? process.execPath;
  if (o.out && !(await stat(path.dirname(path.resolve(o.out))).catch(() => undefined))?.isDirectory()) {
    throw new ImageError('IMAGE_BAD_OPTION', `cannot write the falcon-node image to ${path.resolve(o.out)}: the folder ${path.dirname(path.resolve(o.out))} does not exist`);
  }
  await checkPackage(packageRoot, o.log);
  const architecture = ociArchitecture();
  o.log.log({ kind: 'step', msg: 'falcon-node image: hashing its inputs (dist/, the Node binary, the package list)' });
  const inputs = await nodeImageInputs({ packageRoot, nodeBinary, architecture, signal: o.signal });
  const dir = nodeImageCacheDir(o.store);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const release = await acquireLock(path.join(dir, 'falcon-node.lock'), { what: 'the falcon-node image', waitMs: LOCK_WAIT_MS, signal: o.signal, log: o.log, purpose: 'build' });
  try {
    let r = o.force ? undefined : await readCached(dir, inputs);
    if (r) o.log.log({ kind: 'step', msg: `falcon-node image ${r.ref} is current (inputs ${inputs.slice(0, 12)}): ${r.path}` });
    else r = await buildFresh({ ...o, packageRoot, nodeBinary }, dir, inputs, architecture);
    if (o.out) r = { ...r, out: await placeCopy(r.path, o.out) };
    return { ...r, seconds: (Date.now() - started) / 1000 };
  } finally {
    await release();
  }
}

/** dist/ must exist; warn when the sources are newer than it (the image would hold old code). */
async function checkPackage(root: string, log: Logger): Promise<void> {
  for (const f of ['dist/cli/falcon.js', 'bin/falcon.js', 'package.json', 'guest-agent/falcon-agent.c', 'host-helpers/falcon-impair.c', 'host-helpers/falcon-tapsock.c']) {
    if (!(await exists(path.join(root, f)))) {
      const fix = f.startsWith('dist/') ? `dist/ holds this package's built JavaScript: run \`npm run build\` in ${root} first` : 'the falcon package is incomplete: reinstall it';
      throw new ImageError('IMAGE_BUILD_FAILED', `cannot build the falcon-node image: ${path.join(root, f)} is missing; ${fix}.`);
    }
  }
  if (!(await exists(path.join(root, 'src')))) return;
  const newest = async (d: string) => {
    let t = 0;
    for (const f of await listFiles(d)) t = Math.max(t, (await stat(path.join(d, f)).catch(() => ({ mtimeMs: 0 }))).mtimeMs);
    return t;
  };
  if ((await newest(path.join(root, 'src'))) > (await newest(path.join(root, 'dist')))) {
    log.log({ kind: 'warn', msg: `falcon-node image: ${root}/src has changes newer than dist/, which is what goes into the image; run \`npm run build\` first to include them` });
  }
}

function cachePaths(dir: string, inputs: string): { tar: string; json: string } {
  const base = path.join(dir, `falcon-node-${inputs.slice(0, 16)}`);
  return { tar: `${base}.tar`, json: `${base}.json` };
}

async function readCached(dir: string, inputs: string): Promise<NodeImageResult | undefined> {
  const p = cachePaths(dir, inputs);
  try {
    const r = JSON.parse(await readFile(p.json, 'utf8')) as NodeImageResult;
    const st = await stat(p.tar);
    if (r.inputs !== inputs || st.size !== r.size) return undefined;
    return { ...r, path: p.tar, cached: true };
  } catch {
    return undefined;
  }
}

/** A hard link (or copy) of `from` at `to`, appearing atomically. */
async function placeCopy(from: string, to: string): Promise<string> {
  const out = path.resolve(to);
  if ((await stat(out).catch(() => undefined))?.isDirectory()) {
    throw new ImageError('IMAGE_BAD_OPTION', `cannot write the falcon-node image to ${out}: it is a folder; give a file name such as ${path.join(out, 'falcon-node.tar')}`);
  }
  const tmp = path.join(path.dirname(out), `.${path.basename(out)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  try {
    await link(from, tmp).catch(() => copyFile(from, tmp));
    await rename(tmp, out);
  } finally {
    await rm(tmp, { force: true });
  }
  return out;
}

type BuildInputs = NodeImageOptions & { packageRoot: string; nodeBinary: string };

async function buildFresh(o: BuildInputs, dir: string, inputs: string, architecture: string): Promise<NodeImageResult> {
  const started = Date.now();
  const work = await makeWorkDir(dir);
  try {
    const root = path.join(work, 'rootfs');
    await debianRoot(o, work, root);
    await installFalcon(o, root);
    const nodeVersion = await smokeTest(o, root);
    const version = (JSON.parse(await readFile(path.join(o.packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
    const ref = nodeImageRef(version, inputs);
    const p = cachePaths(dir, inputs);
    o.log.log({ kind: 'step', msg: `falcon-node image: writing the OCI archive ${ref}` });
    let uncompressedSize = 0;
    const r: OciArchiveResult = await writeOciArchive({
      runner: o.runner,
      workDir: work,
      layers: [{ dir: root, exclude: ['dev/*', 'proc/*', 'sys/*', 'run/*', 'tmp/*'] }],
      platform: { architecture, os: 'linux' },
      config: nodeImageConfig(inputs, version),
      ref,
      extraRefs: [`${NODE_IMAGE_REPOSITORY}:${version}`],
      annotations: { 'org.opencontainers.image.title': 'falcon-node', 'org.opencontainers.image.version': version },
      out: p.tar,
      signal: o.signal,
      onProgress: (e) => {
        if (e.phase === 'layer' && e.total === e.done) uncompressedSize = e.done;
        o.onProgress?.(e);
      },
    });
    const result: NodeImageResult = {
      path: p.tar, ref, refs: r.refs, digest: r.digest, size: r.size, uncompressedSize, cached: false, inputs,
      seconds: (Date.now() - started) / 1000, packages: [...NODE_IMAGE_PACKAGES], nodeVersion,
    };
    await writeFileAtomic(p.json, JSON.stringify(result, null, 2) + '\n', 0o644);
    await removeOlder(dir, p);
    o.log.log({ kind: 'step', msg: `built the falcon-node image ${ref} (${(r.size / 1e6).toFixed(0)} MB, ${(uncompressedSize / 1e6).toFixed(0)} MB unpacked) in ${result.seconds.toFixed(0)} s` });
    return result;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The reference that names one build: `falcon.local/falcon-node:<version>-<first 12 of the inputs hash>`. */
export function nodeImageRef(version: string, inputs: string): string {
  return `${NODE_IMAGE_REPOSITORY}:${version}-${inputs.slice(0, 12)}`;
}

export function nodeImageConfig(inputs: string, version: string): { Entrypoint: string[]; Env: string[]; WorkingDir: string; Labels: Record<string, string> } {
  return {
    Entrypoint: [NODE_IMAGE_ENTRYPOINT],
    Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    WorkingDir: '/',
    Labels: { 'io.falcon.node-image.inputs': inputs, 'io.falcon.version': version },
  };
}

/** `.build-<pid>-<random>` in the cache; ones left by dead processes are removed first. */
async function makeWorkDir(dir: string): Promise<string> {
  for (const e of await readdir(dir)) {
    const m = /^\.build-(\d+)-[0-9a-f]{8}$/.exec(e);
    if (m && !pidAlive(Number(m[1]))) await rm(path.join(dir, e), { recursive: true, force: true });
  }
  const work = path.join(dir, `.build-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(work, { mode: 0o700 });
  return work;
}

/** Older cached images go when a new one is in place. */
async function removeOlder(dir: string, keep: { tar: string; json: string }): Promise<void> {
  for (const e of await readdir(dir)) {
    const f = path.join(dir, e);
    if (/^falcon-node-[0-9a-f]{16}\.(tar|json)$/.test(e) && f !== keep.tar && f !== keep.json) await rm(f, { force: true });
  }
}

/**
 * Files of the packages that a node's pod never uses, left out as dpkg unpacks (k8s/Dockerfile
 * leaves out the same): QEMU's i386 and microvm builds (Falcon runs qemu-system-x86_64), and the
 * ISO code tables that gstreamer, a dependency of QEMU's spice server, carries.
 */
export const NODE_IMAGE_PATH_EXCLUDES: readonly string[] = [
  '/usr/bin/qemu-system-i386',
  '/usr/libexec/qemu-system-i386',
  '/usr/bin/qemu-system-x86_64-microvm',
  '/usr/share/iso-codes/*',
  '/usr/share/xml/iso-codes/*',
];

/** mmdebstrap's command line: minbase, the image's packages, no documentation. */
export function nodeImageMmdebstrapArgs(hook: string, root: string): string[] {
  return [
    '--variant=minbase',
    `--include=${NODE_IMAGE_PACKAGES.join(',')}`,
    '--dpkgopt=path-exclude=/usr/share/man/*',
    '--dpkgopt=path-exclude=/usr/share/info/*',
    '--dpkgopt=path-exclude=/usr/share/locale/*',
    '--dpkgopt=path-exclude=/usr/share/doc/*',
    '--dpkgopt=path-include=/usr/share/doc/*/copyright',
    ...NODE_IMAGE_PATH_EXCLUDES.map((p) => `--dpkgopt=path-exclude=${p}`),
    // Merged /usr as debootstrap (and so debian:bookworm-slim) does it, without usrmerge and perl.
    '--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr',
    `--setup-hook=${hook}`,
    `--customize-hook=${hook}`,
    '--',
    'bookworm',
    root,
  ];
}

async function debianRoot(o: BuildInputs, work: string, root: string): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new ImageError('IMAGE_BUILD_FAILED', 'building the falcon-node image needs root (mmdebstrap writes a root-owned tree); run it as root');
  }
  const hook = path.join(work, 'mmdebstrap-hook.sh');
  await writeFile(hook, MMDEBSTRAP_HOOK, { mode: 0o755 });
  const debCache = path.join(o.store.cacheDir, 'mmdebstrap-debs');
  await mkdir(debCache, { recursive: true });
  o.log.log({ kind: 'step', msg: `falcon-node image: mmdebstrap bookworm minbase + ${NODE_IMAGE_PACKAGES.join(', ')} (a minute or more; .debs cached in ${debCache})` });
  let last = '';
  try {
    await o.runner.run('mmdebstrap', nodeImageMmdebstrapArgs(hook, root), {
      timeoutMs: MMDEBSTRAP_TIMEOUT_MS,
      signal: o.signal,
      env: { ...process.env, FALCON_DEB_CACHE: debCache },
      onStderr: (chunk) => {
        for (const line of chunk.toString('utf8').split('\n')) {
          if (!line.startsWith('I: ') || line === last) continue;
          last = line;
          o.log.log({ kind: 'step', msg: `falcon-node image: mmdebstrap ${line.slice(3)}` });
          o.onProgress?.({ phase: 'debian', msg: line.slice(3) });
        }
      },
    });
  } catch (err) {
    if (o.signal?.aborted || !(err instanceof HostCommandError)) throw err;
    const lines = err.stderr.split('\n').filter((l) => l.startsWith('E: ')).slice(0, 5);
    throw new ImageError('IMAGE_BUILD_FAILED', `mmdebstrap failed while building the falcon-node image (exit ${err.exitCode ?? 'signal'}):\n${lines.join('\n') || err.stderr.trim().split('\n').slice(-5).join('\n')}`, { cause: err });
  }
  // What a container gets from its runtime, and what apt leaves.
  for (const p of ['etc/resolv.conf', 'etc/hostname', 'var/lib/apt/lists', 'var/cache/apt', 'var/log/apt', 'var/log/dpkg.log', 'var/log/alternatives.log']) {
    await rm(path.join(root, p), { recursive: true, force: true });
  }
  await mkdir(path.join(root, 'var/lib/apt/lists/partial'), { recursive: true });
  await writeFile(path.join(root, 'etc/machine-id'), '');
}

/** /opt/falcon (dist, bin, package.json, node_modules, C sources, static helpers), node, the launcher. */
async function installFalcon(o: BuildInputs, root: string): Promise<void> {
  o.log.log({ kind: 'step', msg: `falcon-node image: installing Falcon from ${o.packageRoot} and Node.js ${process.version}` });
  const opt = path.join(root, NODE_IMAGE_FALCON_DIR.slice(1));
  const from = (p: string) => path.join(o.packageRoot, p);
  await mkdir(opt, { recursive: true, mode: 0o755 });
  for (const p of ['dist', 'bin']) await cp(from(p), path.join(opt, p), { recursive: true, verbatimSymlinks: true });
  for (const p of ['package.json', 'guest-agent/falcon-agent.c', 'host-helpers/falcon-impair.c', 'host-helpers/falcon-tapsock.c']) {
    await mkdir(path.dirname(path.join(opt, p)), { recursive: true });
    await copyFile(from(p), path.join(opt, p));
  }
  for (const d of await runtimeDependencies(o.packageRoot)) {
    await cp(d.dir, path.join(opt, d.dest), { recursive: true, verbatimSymlinks: true, filter: (src) => path.basename(src) !== '.bin' });
  }
  await installHelpers(o, root, opt);
  const bin = path.join(root, 'usr/local/bin');
  await mkdir(bin, { recursive: true });
  await copyFile(o.nodeBinary, path.join(bin, 'node'));
  await chmod(path.join(bin, 'node'), 0o755);
  await writeFile(path.join(bin, 'falcon-node'), FALCON_NODE_LAUNCHER, { mode: 0o755 });
  await chmod(path.join(bin, 'falcon-node'), 0o755);
  await symlink(`${NODE_IMAGE_FALCON_DIR}/bin/falcon.js`, path.join(bin, 'falcon'));
}

/**
 * The agent, the impairment helper and the tap-to-switch helper, compiled here (the pod has no
 * compiler): in libexec under the names the store's cache gives them (`falcon-impair-<hash>`,
 * with a `falcon-impair` symlink), so copying `libexec/falcon-impair-*` to
 * `$FALCON_IMAGE_DIR/cache/bin/` lets Falcon's own code find it without compiling; and already
 * there for the default `/var/lib/falcon/images`. The pod runs `libexec/falcon-tapsock` by that
 * plain name (src/pod/wiring.ts tapsockBinary()).
 */
async function installHelpers(o: BuildInputs, root: string, opt: string): Promise<void> {
  const common = { runner: o.runner, log: o.log, signal: o.signal };
  const agent = await buildAgent({ ...common, cacheDir: path.join(o.store.cacheDir, 'agent') });
  const impair = await buildImpairHelper({ ...common, cacheDir: path.join(o.store.cacheDir, 'bin') });
  const tapsock = await buildTapsock({ ...common, cacheDir: path.join(o.store.cacheDir, 'bin') });
  const libexec = path.join(opt, 'libexec');
  await mkdir(libexec, { recursive: true, mode: 0o755 });
  const cache = path.join(root, 'var/lib/falcon/images/cache');
  for (const [bin, name, sub] of [[agent, 'falcon-agent', 'agent'], [impair, 'falcon-impair', 'bin'], [tapsock, 'falcon-tapsock', 'bin']] as const) {
    await copyFile(bin, path.join(libexec, path.basename(bin)));
    await chmod(path.join(libexec, path.basename(bin)), 0o755);
    await symlink(path.basename(bin), path.join(libexec, name));
    await mkdir(path.join(cache, sub), { recursive: true, mode: 0o700 });
    await copyFile(bin, path.join(cache, sub, path.basename(bin)));
    await chmod(path.join(cache, sub, path.basename(bin)), 0o755);
  }
}

/** Runs the image's tools in a chroot: Node, Falcon's CLI, QEMU, qemu-img, the launcher. Returns Node's version. */
async function smokeTest(o: BuildInputs, root: string): Promise<string> {
  o.log.log({ kind: 'step', msg: 'falcon-node image: checking node, falcon, qemu-system-x86_64, qemu-img and the launcher in the new root' });
  const inRoot = (args: string[], reject = true) => o.runner.run('chroot', [root, ...args], { timeoutMs: 60_000, signal: o.signal, reject, env: { ...process.env, PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root' } });
  try {
    const node = (await inRoot(['/usr/local/bin/node', '--version'])).stdout.trim();
    await inRoot(['/usr/local/bin/falcon', '--version']);
    await inRoot(['qemu-system-x86_64', '--version']);
    await inRoot(['qemu-img', '--version']);
    await inRoot(['tcpdump', '--version']);
    await inRoot(['ip', '-V']);
    const launcher = await inRoot([NODE_IMAGE_ENTRYPOINT, '--help'], false);
    const hasMain = await exists(path.join(root, NODE_MAIN.slice(1)));
    if (!hasMain && (launcher.exitCode !== 127 || !launcher.stderr.includes('is missing'))) {
      throw new ImageError('IMAGE_BUILD_FAILED', `the falcon-node launcher did not report the missing ${NODE_MAIN} (exit ${launcher.exitCode}): ${launcher.stderr.trim()}`);
    }
    if (!hasMain) o.log.log({ kind: 'warn', msg: `falcon-node image: ${NODE_MAIN} is not in dist/ yet, so the image's entrypoint exits 127 saying so` });
    return node;
  } catch (err) {
    if (err instanceof HostCommandError) {
      const why = err.stderr.trim().split('\n').slice(-3).join(' ') || err.message.split('\n')[0]!;
      throw new ImageError('IMAGE_BUILD_FAILED', `the new falcon-node root failed a check, ${err.args.slice(1).join(' ')}: ${why}`, { cause: err });
    }
    throw err;
  }
}
