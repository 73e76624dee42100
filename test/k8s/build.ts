/**
 * The Kubernetes binaries, built from Debian's `kubernetes` source package (1.20.2) with Debian's
 * Go, and cached like the image store's downloads:
 *   ${FALCON_IMAGE_DIR:-/var/lib/falcon/images}/cache/k8s/<version>/
 *     bin/{kube-apiserver,kubelet,kube-scheduler,kube-controller-manager}
 *     pause.tar        the pause image (OCI layout), from build/pause/linux/pause.c, gcc -static
 *     manifest.json    the source's version and sha256, the recipe, every file's size and sha256
 *   cache/k8s/src/     the downloaded source package (kept: a rebuild needs no download)
 *   cache/k8s/apt/     a private apt sources folder and lists with deb-src (the system's apt is
 *                      left as it is)
 * Built only when missing or stale (another recipe, a file missing or of another size), under a
 * lock so two runs never build at once.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { acquireLock, LockBusyError } from '../../src/util/lock.js';
import { buildPauseImage } from './images.js';
import { BUILD_PACKAGES, RUNTIME_PACKAGES, ensurePackages } from './packages.js';
import { run, tail, type Log } from './run.js';

export const K8S_VERSION = '1.20.2';
/** Bump when what is built or how changes: caches made by another recipe are rebuilt. */
export const BUILD_RECIPE = 1;
export const BINARIES = ['kube-apiserver', 'kubelet', 'kube-scheduler', 'kube-controller-manager'] as const;
export type Binary = (typeof BINARIES)[number];

export interface Manifest {
  version: string;
  recipe: number;
  debianVersion: string;
  source: { file: string; sha256: string; size: number };
  built: string;
  buildSeconds: number;
  go: string;
  pauseRef: string;
  files: Record<string, { size: number; sha256: string }>;
}

export interface K8sBinaries {
  dir: string;
  bin: Record<Binary, string>;
  pauseTar: string;
  pauseRef: string;
  manifest: Manifest;
  /** True when this call built them. */
  built: boolean;
}

export function cacheRoot(): string {
  return path.join(process.env.FALCON_IMAGE_DIR || '/var/lib/falcon/images', 'cache', 'k8s');
}

function versionDir(root: string): string {
  return path.join(root, K8S_VERSION);
}

function describe(dir: string, m: Manifest): K8sBinaries {
  const bin = Object.fromEntries(BINARIES.map((b) => [b, path.join(dir, 'bin', b)])) as Record<Binary, string>;
  return { dir, bin, pauseTar: path.join(dir, 'pause.tar'), pauseRef: m.pauseRef, manifest: m, built: false };
}

/** Why the cache at `dir` can't be used, or undefined when it can. */
export function staleReason(dir: string): string | undefined {
  let m: Manifest;
  try {
    m = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
  } catch {
    return existsSync(dir) ? 'no readable manifest.json' : 'not built yet';
  }
  if (m.recipe !== BUILD_RECIPE) return `built by recipe ${m.recipe}, the harness has recipe ${BUILD_RECIPE}`;
  if (m.version !== K8S_VERSION) return `holds ${m.version}, want ${K8S_VERSION}`;
  for (const [f, want] of Object.entries(m.files)) {
    let size: number;
    try {
      size = statSync(path.join(dir, f)).size;
    } catch {
      return `${f} is missing`;
    }
    if (size !== want.size) return `${f} is ${size} bytes, the manifest says ${want.size}`;
  }
  return undefined;
}

/** The cached binaries when they are fresh, else undefined. */
export function cachedBinaries(root = cacheRoot()): K8sBinaries | undefined {
  const dir = versionDir(root);
  if (staleReason(dir)) return undefined;
  return describe(dir, JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest);
}

/** The binaries, built first when missing or stale. */
export async function ensureBinaries(o: { log: Log; root?: string; force?: boolean }): Promise<K8sBinaries> {
  const root = o.root ?? cacheRoot();
  const fresh = !o.force && cachedBinaries(root);
  if (fresh) return fresh;
  mkdirSync(root, { recursive: true, mode: 0o700 });
  const lockPath = path.join(root, 'build.lock');
  const what = `the Kubernetes ${K8S_VERSION} build cache`;
  let release: () => Promise<void>;
  try {
    release = await acquireLock(lockPath, { what, purpose: 'k8s build', waitMs: 0 });
  } catch (err) {
    if (!(err instanceof LockBusyError)) throw err;
    o.log(`another run (pid ${err.pid}) is building the binaries; waiting for it (up to 90 min)`);
    release = await acquireLock(lockPath, { what, purpose: 'k8s build', waitMs: 90 * 60_000 });
  }
  try {
    // Another run may have built it while we waited.
    const now = !o.force && cachedBinaries(root);
    if (now) return now;
    o.log(`Kubernetes ${K8S_VERSION} binaries: ${staleReason(versionDir(root)) ?? 'rebuild asked for'}; building them from Debian's source package`);
    return await build(root, o.log);
  } finally {
    await release();
  }
}

/** The deb-src stanza for the system's main Debian archive (same URIs and Signed-By). */
export function debSrcStanza(): string {
  const codename = /^VERSION_CODENAME=(\S+)$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? 'bookworm';
  const files = ['/etc/apt/sources.list.d/debian.sources'];
  for (const f of existsSync('/etc/apt/sources.list.d') ? readdirSync('/etc/apt/sources.list.d') : [])
    if (f.endsWith('.sources')) files.push(path.join('/etc/apt/sources.list.d', f));
  for (const f of files) {
    if (!existsSync(f)) continue;
    for (const stanza of readFileSync(f, 'utf8').split(/\n\s*\n/)) {
      const field = (k: string) => new RegExp(`^${k}:\\s*(.+)$`, 'mi').exec(stanza)?.[1]?.trim();
      const types = field('Types')?.split(/\s+/) ?? [];
      const suites = field('Suites')?.split(/\s+/) ?? [];
      const uris = field('URIs');
      if (!types.includes('deb') || !suites.includes(codename) || !uris) continue;
      const signed = field('Signed-By');
      return `Types: deb-src\nURIs: ${uris}\nSuites: ${codename}\nComponents: main\n${signed ? `Signed-By: ${signed}\n` : ''}`;
    }
  }
  if (existsSync('/etc/apt/sources.list')) {
    for (const line of readFileSync('/etc/apt/sources.list', 'utf8').split('\n')) {
      const m = /^deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s/.exec(line.trim());
      if (m && m[3] === codename) {
        const signed = /signed-by=(\S+?)[\s\]]/.exec(m[1] ?? '')?.[1];
        return `Types: deb-src\nURIs: ${m[2]}\nSuites: ${codename}\nComponents: main\n${signed ? `Signed-By: ${signed}\n` : ''}`;
      }
    }
  }
  throw new Error(`found no apt source for Debian ${codename} in /etc/apt to derive a deb-src entry from`);
}

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** apt-get with a private sources folder and lists: the system's apt configuration is untouched. */
function privateApt(root: string): string[] {
  const sources = path.join(root, 'apt', 'sources');
  const lists = path.join(root, 'apt', 'lists');
  mkdirSync(sources, { recursive: true });
  mkdirSync(path.join(lists, 'partial'), { recursive: true });
  writeFileSync(path.join(sources, 'debian-src.sources'), debSrcStanza());
  return [
    '-o', `Dir::Etc::sourceparts=${sources}`,
    '-o', 'Dir::Etc::sourcelist=/dev/null',
    '-o', `Dir::State::Lists=${lists}`,
    '-o', 'Dir::Cache::pkgcache=',
    '-o', 'Dir::Cache::srcpkgcache=',
  ];
}

async function downloadSource(root: string, log: Log): Promise<{ dsc: string; orig: string; debianVersion: string; sha256: string; size: number }> {
  const apt = privateApt(root);
  const src = path.join(root, 'src');
  mkdirSync(src, { recursive: true });
  log('apt-get update (deb-src, private lists)');
  await run('apt-get', [...apt, 'update', '-q'], { timeoutMs: 10 * 60_000 });
  log('apt-get source --download-only kubernetes');
  const t = Date.now();
  await run('apt-get', [...apt, 'source', '--download-only', 'kubernetes'], { cwd: src, timeoutMs: 30 * 60_000 });
  const dscs = readdirSync(src).filter((f) => /^kubernetes_.*\.dsc$/.test(f)).sort();
  const dsc = dscs.at(-1);
  if (!dsc) throw new Error(`apt-get source left no kubernetes_*.dsc in ${src}`);
  const text = readFileSync(path.join(src, dsc), 'utf8');
  const debianVersion = /^Version:\s*(\S+)$/m.exec(text)?.[1] ?? '?';
  const upstream = /(?:really)?([0-9]+\.[0-9]+\.[0-9]+)-[^-]*$/.exec(debianVersion)?.[1];
  if (upstream !== K8S_VERSION) throw new Error(`Debian's kubernetes source is ${debianVersion} (upstream ${upstream}); the harness is made for ${K8S_VERSION}`);
  const sums = /^Checksums-Sha256:\n((?: .+\n)+)/m.exec(text)?.[1] ?? '';
  const orig = / ([0-9a-f]{64}) (\d+) (\S+\.orig\.tar\.\w+)$/m.exec(sums);
  if (!orig) throw new Error(`${dsc} lists no orig tarball`);
  const file = path.join(src, orig[3]!);
  const sum = await sha256(file);
  if (sum !== orig[1]) throw new Error(`${file}: sha256 ${sum}, the .dsc says ${orig[1]}`);
  for (const f of readdirSync(src)) if (f.startsWith('kubernetes_') && !text.includes(f) && f !== dsc) rmSync(path.join(src, f), { force: true });
  log(`source ${orig[3]} (${(Number(orig[2]) / 1e6).toFixed(1)} MB, sha256 ${sum.slice(0, 12)}…) in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  return { dsc: path.join(src, dsc), orig: file, debianVersion, sha256: sum, size: Number(orig[2]) };
}

/** make, with a progress line every 30 s and the output in a log file. */
function make(tree: string, what: string[], env: NodeJS.ProcessEnv, logFile: string, log: Log): Promise<void> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const fd = openSync(logFile, 'a', 0o600);
    const child = spawn('make', [`WHAT=${what.join(' ')}`], { cwd: tree, env, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    const ticker = setInterval(() => {
      const done = existsSync(path.join(tree, '_output/bin')) ? readdirSync(path.join(tree, '_output/bin')).filter((b) => (BINARIES as readonly string[]).includes(b)) : [];
      log(`building… ${Math.round((Date.now() - started) / 1000)} s${done.length ? ` (done: ${done.join(', ')})` : ''}`);
    }, 30_000);
    const timer = setTimeout(() => child.kill('SIGKILL'), 90 * 60_000);
    child.on('error', reject);
    child.on('exit', (code, sig) => {
      clearInterval(ticker);
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`make failed (${code ?? sig}); the end of ${logFile}:\n${tail(logFile, 25)}`));
    });
  });
}

async function build(root: string, log: Log): Promise<K8sBinaries> {
  const started = Date.now();
  await ensurePackages([...RUNTIME_PACKAGES, ...BUILD_PACKAGES], log);
  const source = await downloadSource(root, log);
  const work = path.join(root, `.k8s-build-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true, mode: 0o700 });
  const buildLog = path.join(root, 'build.log');
  writeFileSync(buildLog, '', { mode: 0o600 });
  try {
    const tree = path.join(work, 'kubernetes');
    log('unpacking with dpkg-source (Debian\'s patches applied)');
    await run('dpkg-source', ['-x', source.dsc, tree], { cwd: work, timeoutMs: 10 * 60_000 });
    // As debian/rules does: GOPATH=<tree>/.go with k8s.io/kubernetes -> the tree.
    mkdirSync(path.join(tree, '.go/src/k8s.io'), { recursive: true });
    await run('ln', ['-sfn', '../../..', path.join(tree, '.go/src/k8s.io/kubernetes')]);
    const env = {
      ...process.env,
      GOPATH: path.join(tree, '.go'),
      CGO_ENABLED: '0',
      GOCACHE: path.join(work, 'gocache'),
      HOME: path.join(work, 'home'),
      PATH: `/usr/lib/go/bin:${process.env.PATH ?? '/usr/bin:/bin'}`,
    };
    const { stdout: goVersion } = await run('go', ['version'], { env });
    log(`make WHAT="${BINARIES.map((b) => `cmd/${b}`).join(' ')}" with ${goVersion.trim()} on ${os.cpus().length} cores (log: ${buildLog})`);
    const what = BINARIES.map((b) => `cmd/${b}`);
    try {
      await make(tree, what, env, buildLog, log);
    } catch (err) {
      // HOST-FACTS: a make that failed once can leave an empty _output/bin/prerelease-lifecycle-gen.
      log(`make failed; removing _output and trying once more: ${(err as Error).message.split('\n')[0]}`);
      rmSync(path.join(tree, '_output'), { recursive: true, force: true });
      await make(tree, what, env, buildLog, log);
    }
    const out = path.join(root, `.k8s-out-${process.pid}`);
    rmSync(out, { recursive: true, force: true });
    mkdirSync(path.join(out, 'bin'), { recursive: true, mode: 0o755 });
    for (const b of BINARIES) await run('cp', [path.join(tree, '_output/bin', b), path.join(out, 'bin', b)]);

    const pauseTag = /^TAG\s*\?*=\s*(\S+)/m.exec(readFileSync(path.join(tree, 'build/pause/Makefile'), 'utf8'))?.[1] ?? 'k8s';
    const pauseRef = `falcon.local/pause:${pauseTag}`;
    log(`pause: gcc -static build/pause/linux/pause.c, packed as ${pauseRef}`);
    const pauseBin = path.join(work, 'pause');
    await run('gcc', ['-Os', '-Wall', '-Werror', '-static', `-DVERSION=v${pauseTag}-falcon`, '-o', pauseBin, path.join(tree, 'build/pause/linux/pause.c')], { timeoutMs: 120_000 });
    await run('strip', [pauseBin]);
    await buildPauseImage(pauseBin, pauseRef, path.join(out, 'pause.tar'));

    const files: Manifest['files'] = {};
    for (const f of [...BINARIES.map((b) => `bin/${b}`), 'pause.tar']) files[f] = { size: statSync(path.join(out, f)).size, sha256: await sha256(path.join(out, f)) };
    const manifest: Manifest = {
      version: K8S_VERSION,
      recipe: BUILD_RECIPE,
      debianVersion: source.debianVersion,
      source: { file: path.basename(source.orig), sha256: source.sha256, size: source.size },
      built: new Date().toISOString(),
      buildSeconds: Math.round((Date.now() - started) / 1000),
      go: goVersion.trim(),
      pauseRef,
      files,
    };
    writeFileSync(path.join(out, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    const dir = versionDir(root);
    rmSync(dir, { recursive: true, force: true });
    renameSync(out, dir);
    log(`built and cached in ${dir} (${manifest.buildSeconds} s)`);
    return { ...describe(dir, manifest), built: true };
  } finally {
    rmSync(work, { recursive: true, force: true });
    // Ours only (others keep files in cache/k8s too): .k8s-build-<pid>, .k8s-out-<pid> of dead runs.
    for (const f of readdirSync(root)) if (/^\.k8s-(build|out)-\d+$/.test(f)) {
      const pid = Number(f.split('-').at(-1));
      if (pid === process.pid || !existsSync(`/proc/${pid}`)) rmSync(path.join(root, f), { recursive: true, force: true });
    }
  }
}
