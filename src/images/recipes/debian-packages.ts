/**
 * Debian packages for the built-in recipes: resolve with apt-cache, download with
 * `apt-get download` into a cache kept between builds, unpack with `dpkg-deb -x`.
 * Nothing is installed on the host and nothing needs root except a first `apt-get update`.
 */
import { mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { HostCommandError, type ProcessRunner } from '../../host/process.js';
import type { Logger } from '../../util/log.js';
import { ImageError } from '../errors.js';

export interface DebContext {
  /** Download cache; .debs go to `<cacheDir>/debs`. */
  cacheDir: string;
  runner: ProcessRunner;
  log: Logger;
  signal?: AbortSignal;
}

/** One binary package, as apt's candidate version. */
export interface DebPackage {
  name: string;
  version: string;
  arch: string;
  /** Size in bytes from the package index, to check cached files. */
  size: number;
  /** The file name `apt-get download` gives it: name_version_arch.deb with ':' as %3a. */
  fileName: string;
  /** Control fields of the candidate (Depends, Filename, ...). */
  fields: Record<string, string>;
}

const APT_TIMEOUT_MS = 10 * 60_000;

/** Parses one deb822 stanza (the first) into fields; continuation lines are joined with '\n'. */
export function parseControl(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  let key: string | undefined;
  for (const line of text.split('\n')) {
    if (line === '') {
      if (key !== undefined) break; // end of the first stanza
      continue;
    }
    if (/^[ \t]/.test(line)) {
      if (key !== undefined) fields[key] += `\n${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    key = line.slice(0, colon);
    fields[key] = line.slice(colon + 1).trim();
  }
  return fields;
}

/** The file name apt-get download writes: the epoch's ':' is URL-encoded. */
export function debFileName(name: string, version: string, arch: string): string {
  return `${name}_${version.replace(/:/g, '%3a')}_${arch}.deb`;
}

function isNotFound(err: unknown): boolean {
  return (
    err instanceof HostCommandError &&
    /No packages found|Unable to locate package|has no installation candidate/i.test(err.stderr + err.stdout)
  );
}

/** One `apt-get update` per process, shared by concurrent lookups. */
let listsUpdate: Promise<void> | undefined;

/**
 * Resolves `name` to apt's candidate version. If apt does not know the package (empty package
 * lists, as in fresh containers), runs `apt-get update` once and tries again.
 */
export async function resolvePackage(ctx: DebContext, name: string): Promise<DebPackage> {
  const show = () =>
    ctx.runner.run('apt-cache', ['show', '--no-all-versions', name], {
      timeoutMs: 60_000,
      signal: ctx.signal,
    });
  let out: string;
  try {
    out = (await show()).stdout;
  } catch (err) {
    if (!isNotFound(err)) throw notFound(name, err);
    // A failed update is not cached: the next build tries again.
    listsUpdate ??= updateLists(ctx).catch((e: unknown) => {
      listsUpdate = undefined;
      throw e;
    });
    await listsUpdate;
    try {
      out = (await show()).stdout;
    } catch (err2) {
      throw notFound(name, err2);
    }
  }
  const f = parseControl(out);
  if (!f.Package || !f.Version || !f.Architecture) {
    throw new ImageError('IMAGE_BUILD_FAILED', `Package ${name}: apt-cache show gave no Package/Version/Architecture fields. Check the apt sources.`);
  }
  return {
    name: f.Package,
    version: f.Version,
    arch: f.Architecture,
    size: Number(f.Size ?? 0),
    fileName: debFileName(f.Package, f.Version, f.Architecture),
    fields: f,
  };
}

function notFound(name: string, cause: unknown): Error {
  if (!isNotFound(cause)) return cause instanceof Error ? cause : new ImageError('IMAGE_BUILD_FAILED', String(cause));
  return new ImageError(
    'IMAGE_BUILD_FAILED',
    `Debian package ${name} is not known to apt on this host. Fix: make sure /etc/apt/sources.list(.d) ` +
      `has Debian bookworm main (and bookworm-security), then run 'apt-get update' as root.`,
    { cause },
  );
}

async function updateLists(ctx: DebContext): Promise<void> {
  ctx.log.log({ kind: 'step', msg: 'apt package lists are missing a package: running apt-get update' });
  try {
    await ctx.runner.run('apt-get', ['update'], { timeoutMs: APT_TIMEOUT_MS, signal: ctx.signal });
  } catch (err) {
    throw new ImageError(
      'IMAGE_BUILD_FAILED',
      `apt-get update failed, so Debian packages for the image cannot be found. ` +
        `Fix: run 'apt-get update' as root and check the apt sources and network.`,
      { cause: err },
    );
  }
}

/**
 * The versioned kernel package behind a metapackage such as `linux-image-amd64`
 * (e.g. linux-image-6.1.0-56-amd64), and the kernel release string it installs.
 */
export async function resolveKernelPackage(
  ctx: DebContext,
  meta = 'linux-image-amd64',
): Promise<{ pkg: DebPackage; release: string }> {
  const m = await resolvePackage(ctx, meta);
  const dep = (m.fields.Depends ?? '')
    .split(',')
    .map((d) => d.trim().split(/[\s(|]/)[0]!)
    .find((d) => /^linux-image-\d/.test(d));
  if (!dep) {
    throw new ImageError('IMAGE_BUILD_FAILED', `Package ${meta} ${m.version} depends on no linux-image-<version> package (Depends: ${m.fields.Depends ?? 'none'}).`);
  }
  const pkg = await resolvePackage(ctx, dep);
  return { pkg, release: dep.slice('linux-image-'.length) };
}

async function cachedSize(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}

/**
 * Makes sure each package's .deb is in `<cacheDir>/debs`, downloading the missing ones with
 * `apt-get download` (which checks the index's hashes). Returns the paths, in order.
 */
export async function downloadDebs(ctx: DebContext, pkgs: readonly DebPackage[]): Promise<string[]> {
  const dir = join(ctx.cacheDir, 'debs');
  await mkdir(dir, { recursive: true });
  const paths = pkgs.map((p) => join(dir, p.fileName));
  const missing: DebPackage[] = [];
  for (const [i, p] of pkgs.entries()) {
    const size = await cachedSize(paths[i]!);
    if (size !== undefined && (p.size === 0 || size === p.size)) continue;
    missing.push(p);
  }
  const totalBytes = missing.reduce((a, p) => a + p.size, 0);
  if (missing.length === 0) {
    ctx.log.log({ kind: 'step', level: 'debug', msg: `all ${pkgs.length} Debian packages are in the cache ${dir}` });
    return paths;
  }
  ctx.log.log({
    kind: 'step',
    msg: `downloading ${missing.length} Debian package(s), ${(totalBytes / 1e6).toFixed(1)} MB: ${missing.map((p) => p.name).join(' ')}`,
  });
  let doneBytes = 0;
  for (const p of missing) {
    // A private directory per download, so a concurrent build never sees a partial file.
    const tmp = await mkdtemp(join(dir, '.dl-'));
    try {
      await ctx.runner.run(
        'apt-get',
        // The sandbox user _apt cannot write to a root-owned cache dir; this is a plain download.
        ['download', '-q', '-o', 'APT::Sandbox::User=root', `${p.name}=${p.version}`],
        { cwd: tmp, timeoutMs: APT_TIMEOUT_MS, signal: ctx.signal },
      );
      const got = (await readdir(tmp)).filter((f) => f.endsWith('.deb'));
      const file = got.includes(p.fileName) ? p.fileName : got[0];
      if (!file) throw new ImageError('IMAGE_BUILD_FAILED', `apt-get download ${p.name}=${p.version} wrote no .deb file`);
      await rename(join(tmp, file), join(dir, p.fileName));
    } catch (err) {
      throw new ImageError(
      'IMAGE_BUILD_FAILED',
        `Could not download Debian package ${p.name} ${p.version}. Fix: check that apt can reach its mirror ` +
          `('apt-get download ${p.name}' by hand), or run 'apt-get update' if the lists are stale.`,
        { cause: err },
      );
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
    doneBytes += p.size;
    ctx.log.log({ kind: 'progress', what: 'Debian packages', done: Math.round(doneBytes / 1e6), total: Math.round(totalBytes / 1e6), unit: 'MB' });
  }
  return paths;
}

/** Unpacks a .deb's files (not its scripts) under `dest`. */
export async function extractDeb(ctx: DebContext, deb: string, dest: string): Promise<void> {
  await mkdir(dest, { recursive: true });
  await ctx.runner.run('dpkg-deb', ['-x', deb, dest], { timeoutMs: 5 * 60_000, signal: ctx.signal });
}

/** Resolves, downloads (or reuses) and unpacks packages; returns each package's record. */
export async function fetchPackages(ctx: DebContext, names: readonly string[]): Promise<DebPackage[]> {
  const pkgs: DebPackage[] = [];
  for (const n of names) pkgs.push(await resolvePackage(ctx, n));
  await downloadDebs(ctx, pkgs);
  return pkgs;
}

/** Path of a package's .deb in the cache (after downloadDebs). */
export function debPath(ctx: Pick<DebContext, 'cacheDir'>, pkg: DebPackage): string {
  return join(ctx.cacheDir, 'debs', pkg.fileName);
}
