/**
 * OCI image archives, written without a registry or a container engine: an image layout
 * (`oci-layout`, `index.json`, `blobs/sha256/...`) packed in one tar that `ctr images import`,
 * umoci (after unpacking the tar) and `skopeo copy oci-archive:` accept.
 *
 * The JSON (index, manifest, config with its diff_ids) is written here; each layer is a tar of a
 * directory made by the host's GNU tar, deterministically (`--sort=name`, `--mtime=@0`, fixed or
 * numeric owners, no atime/ctime), then gzipped by Node's zlib while both sha256s are taken in
 * the same pass. The same inputs therefore give the same bytes and the same digests, so
 * containerd's content store and a node's image cache see a re-export as the image they have.
 *
 * GNU tar rather than a tar writer of our own or umoci: it handles multi-GiB files, long names,
 * hard links and every file type of a root file system correctly and fast, and its options pin
 * every field that would otherwise vary; umoci would need a runtime bundle and writes its own
 * JSON with timestamps and history, which we want to control (and it is not on every host).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { ProcessRunner } from '../host/process.js';
import { ImageError } from './errors.js';
import { sha256File } from './helpers.js';
export { repoComponent } from './oci-ref.js';

export const OCI_MEDIA_TYPES = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layerTar: 'application/vnd.oci.image.layer.v1.tar',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

/** `oci-layout`'s content. */
export const OCI_LAYOUT = { imageLayoutVersion: '1.0.0' } as const;

/** containerd's annotation for the full image name an index entry is imported as. */
export const ANNOTATION_CONTAINERD_NAME = 'io.containerd.image.name';
/** The OCI annotation for an index entry's reference (we put the tag there, as umoci expects). */
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';

export interface OciPlatform {
  architecture: string;
  os: string;
  variant?: string;
}

/** A content descriptor: what a manifest or index says about a blob. */
export interface OciDescriptor {
  mediaType: string;
  /** `sha256:<hex>` */
  digest: string;
  size: number;
  platform?: OciPlatform;
  annotations?: Record<string, string>;
}

/** The runtime part of an image config (only what we set). */
export interface OciRuntimeConfig {
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  WorkingDir?: string;
  Labels?: Record<string, string>;
}

export type LayerCompression = 'gzip' | 'none';

/** One layer to make: the contents of `dir` (its entries, not `dir` itself). */
export interface LayerSource {
  dir: string;
  /** Every entry owned by this uid:gid (containerDisk's 107:107); default: the files' own, numeric. */
  owner?: { uid: number; gid: number };
  /** A mode applied to every entry, in tar's `--mode` syntax (e.g. `u=rwX,go=rX`). */
  mode?: string;
  /** Paths (relative to `dir`, tar patterns) left out, e.g. `dev/*`. */
  exclude?: string[];
}

export interface OciProgress {
  /** tar of a layer, its compression, then the archive. */
  phase: 'layer' | 'compress' | 'archive';
  done: number;
  total?: number;
}

export interface OciArchiveOptions {
  runner: ProcessRunner;
  /** Scratch space (the layout is assembled here); the caller removes it. */
  workDir: string;
  layers: LayerSource[];
  platform: OciPlatform;
  config?: OciRuntimeConfig;
  /** Full reference the image is imported as, `registry/repo:tag`. */
  ref: string;
  /** More references for the same image (another tag), each its own index entry. */
  extraRefs?: string[];
  /** On the manifest (they are part of its digest). */
  annotations?: Record<string, string>;
  /** The archive to write; written to a temp file beside it, then renamed. */
  out: string;
  compression?: LayerCompression;
  /** zlib level for gzip layers, 1..9; default 6. */
  gzipLevel?: number;
  signal?: AbortSignal;
  onProgress?: (p: OciProgress) => void;
}

export interface OciArchiveResult {
  /** The archive written. */
  path: string;
  /** Its size in bytes. */
  size: number;
  /** The manifest's digest: what containerd shows as the image's digest. */
  digest: string;
  ref: string;
  /** `ref` and the extra references. */
  refs: string[];
  manifest: OciDescriptor;
  config: OciDescriptor;
  layers: OciDescriptor[];
  diffIds: string[];
}

const TAR_TIMEOUT_MS = 60 * 60_000;
/** tar reports a checkpoint every this many 10 KiB records (10 MiB), as the records written so far. */
const CHECKPOINT_RECORDS = 1024;
const RECORD_BYTES = 10240;

// ---- JSON ------------------------------------------------------------------------------------

export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The descriptor of a blob held in memory. */
export function descriptorOf(mediaType: string, blob: Buffer, extra: Partial<OciDescriptor> = {}): OciDescriptor {
  return { mediaType, digest: `sha256:${sha256Hex(blob)}`, size: blob.length, ...extra };
}

/** JSON bytes with the keys in the order given: stable, so digests are too. */
function jsonBytes(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

/** The image config: platform, runtime config and the uncompressed layers' digests. No timestamps. */
export function imageConfigJson(platform: OciPlatform, diffIds: readonly string[], config: OciRuntimeConfig = {}): Buffer {
  return jsonBytes({
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config,
    rootfs: { type: 'layers', diff_ids: diffIds },
  });
}

export function manifestJson(config: OciDescriptor, layers: readonly OciDescriptor[], annotations?: Record<string, string>): Buffer {
  return jsonBytes({
    schemaVersion: 2,
    mediaType: OCI_MEDIA_TYPES.manifest,
    config: plain(config),
    layers: layers.map(plain),
    ...(annotations && Object.keys(annotations).length ? { annotations: sortedRecord(annotations) } : {}),
  });
}

/**
 * index.json: one entry per reference, all for the same manifest, each named in full for
 * containerd (`ctr images import` then needs no --base-name, which it ignores when the name is
 * there) and by its tag for OCI tools (umoci's `--image DIR:TAG`).
 */
export function indexJson(manifest: OciDescriptor, platform: OciPlatform, refs: readonly string[]): Buffer {
  return jsonBytes({
    schemaVersion: 2,
    mediaType: OCI_MEDIA_TYPES.index,
    manifests: refs.map((ref) => ({
      ...plain(manifest),
      platform,
      annotations: { [ANNOTATION_CONTAINERD_NAME]: ref, [ANNOTATION_REF_NAME]: refTag(ref) },
    })),
  });
}

function plain(d: OciDescriptor): OciDescriptor {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size, ...(d.annotations ? { annotations: sortedRecord(d.annotations) } : {}) };
}

function sortedRecord(r: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

// ---- names -----------------------------------------------------------------------------------

/** OCI's architecture for a Node `process.arch`. */
export function ociArchitecture(arch: string = process.arch): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return map[arch] ?? arch;
}

const REF_RE = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+:[\w][\w.-]{0,127}$/;

/** Why `ref` is not a `registry/repository:tag` reference we can import, or undefined. */
export function refProblem(ref: string): string | undefined {
  if (ref.length > 255) return 'it is longer than 255 characters';
  if (!REF_RE.test(ref)) {
    return 'a reference is registry/repository:tag in lower case (e.g. falcon.local/images/tiny:v1): a registry-style name, since a bare name breaks the CRI';
  }
  return undefined;
}

export function checkRef(ref: string): void {
  const problem = refProblem(ref);
  if (problem) throw new ImageError('IMAGE_BAD_OPTION', `invalid image reference '${ref}': ${problem}`);
}

/** The tag of `registry/repo:tag`. */
export function refTag(ref: string): string {
  return ref.slice(ref.lastIndexOf(':') + 1);
}


// ---- layers ----------------------------------------------------------------------------------

/** GNU tar's arguments for a deterministic layer of `src`'s entries into `out`. */
export function layerTarArgs(src: LayerSource, entries: readonly string[], out: string): string[] {
  const args = [
    '--create',
    `--file=${out}`,
    `--directory=${src.dir}`,
    '--format=posix',
    // No atime/ctime or pid-named extended headers: only what the file is.
    '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
    '--sort=name',
    '--mtime=@0',
    '--numeric-owner',
    '--no-acls',
    '--no-xattrs',
    '--no-selinux',
    `--checkpoint=${CHECKPOINT_RECORDS}`,
    '--checkpoint-action=echo=checkpoint %u',
  ];
  if (src.owner) args.push(`--owner=${src.owner.uid}`, `--group=${src.owner.gid}`);
  if (src.mode) args.push(`--mode=${src.mode}`);
  // Anchored: `dev/*` is the top-level dev/'s contents, not any folder named dev.
  if (src.exclude?.length) args.push('--anchored', ...src.exclude.map((x) => `--exclude=${x}`));
  // The top level in byte order (--sort=name orders what is below); `--` so no name is an option.
  args.push('--', ...entries);
  return args;
}

/** Bytes under `dir` (files' apparent sizes), for progress. */
export async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += (await stat(path.join(e.parentPath ?? e.path, e.name)).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

/** Tars one layer source into `out` with GNU tar, reporting progress from its checkpoints. */
export async function tarLayer(runner: ProcessRunner, src: LayerSource, out: string, o: { signal?: AbortSignal; onProgress?: (p: OciProgress) => void } = {}): Promise<void> {
  const entries = (await readdir(src.dir)).sort(byteOrder);
  if (!entries.length) throw new ImageError('IMAGE_BAD_OPTION', `cannot make an image layer of ${src.dir}: it is empty`);
  const total = o.onProgress ? await treeBytes(src.dir) : undefined;
  o.onProgress?.({ phase: 'layer', done: 0, total });
  await runner.run('tar', layerTarArgs(src, entries, out), {
    timeoutMs: TAR_TIMEOUT_MS,
    signal: o.signal,
    env: { ...process.env, LC_ALL: 'C' },
    onStderr: (chunk) => {
      const n = /checkpoint (\d+)\s*$/.exec(chunk.toString('utf8').trimEnd());
      if (n) o.onProgress?.({ phase: 'layer', done: Number(n[1]) * RECORD_BYTES, total });
    },
  });
  const size = (await stat(out)).size;
  o.onProgress?.({ phase: 'layer', done: size, total: size });
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** A pass-through that hashes and counts what flows through it. */
class HashTap extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  constructor(private readonly onBytes?: (n: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onBytes?.(this.bytes);
    cb(null, chunk);
  }
}

/**
 * Turns a layer tar into a blob in `blobsDir` (named by its digest): gzipped, or the tar itself.
 * Returns its descriptor and diff_id (the sha256 of the uncompressed tar). The tar is consumed.
 */
export async function layerBlob(
  tarFile: string,
  blobsDir: string,
  o: { compression?: LayerCompression; gzipLevel?: number; signal?: AbortSignal; onProgress?: (p: OciProgress) => void } = {},
): Promise<{ descriptor: OciDescriptor; diffId: string }> {
  const total = (await stat(tarFile)).size;
  if ((o.compression ?? 'gzip') === 'none') {
    const hex = await sha256File(tarFile, o.signal);
    await rename(tarFile, path.join(blobsDir, hex));
    return { descriptor: { mediaType: OCI_MEDIA_TYPES.layerTar, digest: `sha256:${hex}`, size: total }, diffId: `sha256:${hex}` };
  }
  let last = 0;
  const raw = new HashTap((n) => {
    if (n - last >= 8 << 20 || n === total) {
      last = n;
      o.onProgress?.({ phase: 'compress', done: n, total });
    }
  });
  const packed = new HashTap();
  const tmp = path.join(blobsDir, `.layer-${randomBytes(4).toString('hex')}`);
  o.onProgress?.({ phase: 'compress', done: 0, total });
  try {
    await pipeline(
      createReadStream(tarFile, { highWaterMark: 1 << 20, signal: o.signal }),
      raw,
      createGzip({ level: o.gzipLevel ?? 6 }),
      packed,
      createWriteStream(tmp, { mode: 0o644 }),
    );
    const hex = packed.hash.digest('hex');
    await rename(tmp, path.join(blobsDir, hex));
    await rm(tarFile, { force: true });
    return {
      descriptor: { mediaType: OCI_MEDIA_TYPES.layerGzip, digest: `sha256:${hex}`, size: packed.bytes },
      diffId: `sha256:${raw.hash.digest('hex')}`,
    };
  } finally {
    await rm(tmp, { force: true });
  }
}

// ---- the archive -----------------------------------------------------------------------------

/** Writes a JSON blob into `blobsDir` and returns its descriptor. */
async function putBlob(blobsDir: string, mediaType: string, data: Buffer): Promise<OciDescriptor> {
  const d = descriptorOf(mediaType, data);
  await writeFile(path.join(blobsDir, d.digest.slice('sha256:'.length)), data, { mode: 0o644 });
  return d;
}

/**
 * Makes an OCI image archive of `layers` at `out`: the layout in `workDir`, then one tar of it
 * written beside `out` and renamed over it, so `out` is either complete or absent.
 */
export async function writeOciArchive(o: OciArchiveOptions): Promise<OciArchiveResult> {
  const refs = [...new Set([o.ref, ...(o.extraRefs ?? [])])];
  refs.forEach(checkRef);
  const layout = path.join(o.workDir, 'oci');
  const blobs = path.join(layout, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true, mode: 0o755 });
  const layers: OciDescriptor[] = [];
  const diffIds: string[] = [];
  for (const [i, src] of o.layers.entries()) {
    const tarFile = path.join(o.workDir, `layer-${i}.tar`);
    await tarLayer(o.runner, src, tarFile, { signal: o.signal, onProgress: o.onProgress });
    const b = await layerBlob(tarFile, blobs, { compression: o.compression, gzipLevel: o.gzipLevel, signal: o.signal, onProgress: o.onProgress });
    layers.push(b.descriptor);
    diffIds.push(b.diffId);
  }
  const config = await putBlob(blobs, OCI_MEDIA_TYPES.config, imageConfigJson(o.platform, diffIds, o.config));
  const manifest = await putBlob(blobs, OCI_MEDIA_TYPES.manifest, manifestJson(config, layers, o.annotations));
  await writeFile(path.join(layout, 'index.json'), indexJson(manifest, o.platform, refs), { mode: 0o644 });
  await writeFile(path.join(layout, 'oci-layout'), jsonBytes(OCI_LAYOUT), { mode: 0o644 });
  const size = await packLayout(o, layout);
  return { path: path.resolve(o.out), size, digest: manifest.digest, ref: o.ref, refs, manifest, config, layers, diffIds };
}

/** Tars the layout (deterministically, owned by root) to a temp file beside `out`, then renames it. */
async function packLayout(o: OciArchiveOptions, layout: string): Promise<number> {
  const out = path.resolve(o.out);
  const tmp = path.join(path.dirname(out), `.${path.basename(out)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  try {
    const total = await treeBytes(layout);
    o.onProgress?.({ phase: 'archive', done: 0, total });
    const src: LayerSource = { dir: layout, owner: { uid: 0, gid: 0 }, mode: 'u=rwX,go=rX' };
    await tarLayer(o.runner, src, tmp, { signal: o.signal });
    const size = (await stat(tmp)).size;
    await rename(tmp, out);
    o.onProgress?.({ phase: 'archive', done: total, total });
    return size;
  } finally {
    await rm(tmp, { force: true });
  }
}
