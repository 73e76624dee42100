/**
 * The image store: base images (`<root>/<name>/meta.json` + `disk.qcow2` [+ kernel, initrd]),
 * a download cache (`<root>/cache/`), per-topology node disks (`<root>/topo/<topology>/<node>.qcow2`)
 * and staging (`<root>/.tmp/`). Every image is assembled in staging and renamed into place under
 * a per-name lock, so a half-made image is never visible and a failure leaves nothing behind.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants, createReadStream } from 'node:fs';
import { chmod, copyFile, link, mkdir, open, readdir, readFile, realpath, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { HostCommandError, type ProcessRunner } from '../host/process.js';
import { QemuImg, type QemuImgInfo } from '../host/qemu-img.js';
import type { Logger } from '../util/log.js';
import { download, type DownloadProgress } from './download.js';
import { acquireLock } from '../util/lock.js';
import { exists, pidAlive, writeFileAtomic } from '../util/fs.js';
import { imageNameProblem, parseImageMeta } from './meta.js';
import { builtinRecipes } from './recipes/index.js';
import type { BootMethod, ExecMethod, ImageMeta, LoginInfo, Recipe } from './types.js';
import { FalconError } from '../util/errors.js';

/** In `topo/<topology>/`: the falcon dir of the topology whose node disks these are. */
const OWNER_FILE = 'owner';

export const DEFAULT_IMAGE_DIR = '/var/lib/falcon/images';
const GiB = 1024 ** 3;
/** How long user commands wait for another process holding an image's lock. */
const SHORT_WAIT_MS = 30_000;
/** How long launch waits for another process that is building the image it needs. */
const BUILD_WAIT_MS = 60 * 60_000;
const XZ_TIMEOUT_MS = 60 * 60_000;
/** Formats qemu-img can read and Falcon accepts on import (converted to qcow2). */
const IMPORT_FORMATS = ['qcow2', 'raw', 'vmdk', 'vdi', 'vhdx', 'vpc', 'qed'];

export type ImageErrorCode =
  | 'IMAGE_INVALID_NAME'
  | 'IMAGE_NOT_FOUND'
  | 'IMAGE_EXISTS'
  | 'IMAGE_IN_USE'
  | 'IMAGE_NOT_AN_IMAGE'
  | 'IMAGE_CHECKSUM'
  | 'IMAGE_NO_SPACE'
  | 'IMAGE_BAD_OPTION'
  | 'IMAGE_UNKNOWN_RECIPE'
  | 'IMAGE_DAMAGED';

/** An error a user can hit in the image store; `code` is for programs, the message for people. */
export class ImageError extends FalconError {
  override name = 'ImageError';
  constructor(
    override readonly code: ImageErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

export interface ImageStoreOptions {
  /** Default: $FALCON_IMAGE_DIR, else /var/lib/falcon/images. */
  root?: string;
  runner: ProcessRunner;
  log: Logger;
  /** Where FALCON_IMAGE_DIR is read from; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Built-in recipes; default the real ones (tests inject small ones). */
  recipes?: Record<string, Recipe>;
}

/** An image as found in the store, with absolute paths of its files. */
export interface StoredImage {
  name: string;
  dir: string;
  disk: string;
  kernel?: string;
  initrd?: string;
  meta: ImageMeta;
}

export interface NodeDiskUse {
  topology: string;
  node: string;
  disk: string;
}

export interface ImageInspection extends StoredImage {
  info: QemuImgInfo;
  /** Node disks whose backing chain includes this image. */
  usedBy: NodeDiskUse[];
  builtin: boolean;
  /** Set when a built-in recipe is newer than the one that built this image. */
  staleRecipe?: { built: number; current: number };
}

export type StoreProgress =
  | { phase: 'download'; done: number; total?: number }
  | { phase: 'convert'; percent: number };

/** How an imported or pulled image boots and runs commands. */
export interface ImportOptions {
  /** Direct kernel boot: host path of the kernel, copied into the image. */
  kernel?: string;
  initrd?: string;
  /** Kernel command line for direct boot. Default `console=ttyS0 root=/dev/vda rw`. */
  cmdline?: string;
  /** Firmware boot (ignored with `kernel`). Default bios. */
  firmware?: 'bios' | 'uefi';
  /** Default serial-login: an image from elsewhere has no falcon-agent. */
  exec?: ExecMethod;
  login?: LoginInfo;
  description?: string;
  signal?: AbortSignal;
  onProgress?: (p: StoreProgress) => void;
}

export interface PullOptions extends ImportOptions {
  /** Expected SHA-256 of the downloaded file (hex, optionally prefixed `sha256:`). */
  sha256?: string;
}

export interface BuildOptions {
  /** Store the result under this name; default the recipe's name. */
  name?: string;
  /** Replace an existing image of that name (refused while a topology uses it). */
  force?: boolean;
  signal?: AbortSignal;
}

export interface NodeDiskOptions {
  topology: string;
  node: string;
  image: string;
  /** overlay: qcow2 on top of the image (instant); copy: full standalone copy. */
  mode: 'overlay' | 'copy';
  /** Virtual size of the node's disk; at least the image's. Default the image's. */
  sizeGiB?: number;
  signal?: AbortSignal;
}

export interface SnapshotOptions {
  /** A stopped node's disk (an overlay or copy). */
  diskPath: string;
  newName: string;
  /** The image the node was launched from: its boot and exec settings are copied. */
  parent: ImageMeta;
  description?: string;
  signal?: AbortSignal;
}

export interface CommitOptions {
  /** Boot/exec settings and kernel/initrd files are taken from the parent. */
  parent: ImageMeta;
  description?: string;
  signal?: AbortSignal;
}

/** A new image being assembled in staging, which QEMU or qemu-img writes `disk` into. */
export interface StagedImage {
  name: string;
  /** Staging directory of the image (becomes `<root>/<name>` on commit). */
  dir: string;
  /** Where the disk must be written: a qcow2 file in `dir`. */
  disk: string;
  commit(o: CommitOptions): Promise<StoredImage>;
  /** Throws the staged files away and releases the name. Safe to call twice. */
  discard(): Promise<void>;
}

export class ImageStore {
  readonly root: string;
  readonly qemuImg: QemuImg;
  private readonly runner: ProcessRunner;
  private readonly log: Logger;
  private readonly recipes: Record<string, Recipe>;
  private readonly ensuring = new Map<string, Promise<StoredImage>>();
  private readonly staged = new Map<string, StagedImage>();

  constructor(o: ImageStoreOptions) {
    const env = o.env ?? process.env;
    this.root = path.resolve(o.root ?? (env.FALCON_IMAGE_DIR || DEFAULT_IMAGE_DIR));
    this.runner = o.runner;
    this.log = o.log;
    this.recipes = o.recipes ?? builtinRecipes;
    this.qemuImg = new QemuImg(o.runner);
  }

  // ---- paths ---------------------------------------------------------------------------------

  get cacheDir(): string {
    return path.join(this.root, 'cache');
  }
  get topoDir(): string {
    return path.join(this.root, 'topo');
  }
  private get tmpDir(): string {
    return path.join(this.root, '.tmp');
  }
  private get locksDir(): string {
    return path.join(this.root, '.locks');
  }

  imageDir(name: string): string {
    checkName(name);
    return path.join(this.root, name);
  }

  /** `<root>/topo/<topology>/<node>.qcow2` */
  nodeDiskPath(topology: string, node: string): string {
    checkSegment(topology, 'topology name');
    checkSegment(node, 'node name');
    return path.join(this.topoDir, topology, `${node}.qcow2`);
  }

  /** Names of the built-in recipes. */
  builtinNames(): string[] {
    return Object.keys(this.recipes).sort();
  }

  isBuiltin(name: string): boolean {
    return Object.hasOwn(this.recipes, name);
  }

  // ---- reading -------------------------------------------------------------------------------

  /** All complete images, sorted by name. Directories without a valid meta.json are skipped. */
  async list(): Promise<StoredImage[]> {
    let entries;
    try {
      entries = await readdir(this.root, { withFileTypes: true });
    } catch (err) {
      if (errno(err) === 'ENOENT') return [];
      throw err;
    }
    const out: StoredImage[] = [];
    for (const e of entries) {
      if (!e.isDirectory() || imageNameProblem(e.name) !== undefined) continue;
      try {
        const img = await this.read(e.name);
        if (img) out.push(img);
      } catch (err) {
        this.log.log({ kind: 'warn', msg: (err as Error).message });
      }
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** True when a complete image of that name exists. */
  async has(name: string): Promise<boolean> {
    checkName(name);
    try {
      await stat(path.join(this.root, name, 'meta.json'));
      return true;
    } catch (err) {
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return false;
      throw err;
    }
  }

  /** The image, or an error that lists the images there are and how to get one. */
  async get(name: string): Promise<StoredImage> {
    checkName(name);
    const img = await this.read(name);
    if (!img) throw await this.notFound(name);
    return img;
  }

  /** Everything known about an image, including which node disks use it. */
  async inspect(name: string, signal?: AbortSignal): Promise<ImageInspection> {
    const img = await this.get(name);
    const info = await this.qemuImg.info(img.disk, { format: 'qcow2', signal });
    const usedBy = await this.usersOf(img, signal);
    const r: ImageInspection = { ...img, info, usedBy, builtin: this.isBuiltin(name) };
    const stale = this.staleRecipe(img.meta);
    if (stale) r.staleRecipe = stale;
    return r;
  }

  /** Node disks (under topo/) whose backing chain includes the image. */
  async usersOf(img: StoredImage, signal?: AbortSignal): Promise<NodeDiskUse[]> {
    const target = await realOrResolved(img.disk);
    const uses: NodeDiskUse[] = [];
    let topologies: string[];
    try {
      topologies = (await readdir(this.topoDir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
    } catch (err) {
      if (errno(err) === 'ENOENT') return [];
      throw err;
    }
    for (const topology of topologies.sort()) {
      const files = (await readdir(path.join(this.topoDir, topology))).filter((f) => f.endsWith('.qcow2')).sort();
      for (const f of files) {
        const disk = path.join(this.topoDir, topology, f);
        const backing = await this.backingFiles(disk, signal);
        for (const b of backing) {
          if ((await realOrResolved(b)) === target) {
            uses.push({ topology, node: f.slice(0, -'.qcow2'.length), disk });
            break;
          }
        }
      }
    }
    return uses;
  }

  /** Absolute paths of every backing file in a disk's chain (empty for a standalone disk). */
  private async backingFiles(disk: string, signal?: AbortSignal): Promise<string[]> {
    try {
      const chain = await this.qemuImg.infoChain(disk, { signal });
      return chain.map((i) => i.fullBackingFilename).filter((x): x is string => !!x);
    } catch (err) {
      // A chain with a missing member can't be walked; the first link still counts.
      try {
        const i = await this.qemuImg.info(disk, { signal });
        return i.fullBackingFilename ? [i.fullBackingFilename] : [];
      } catch {
        this.log.log({ kind: 'warn', msg: `cannot read node disk ${disk}: ${firstLine(err)}` });
        return [];
      }
    }
  }

  private async read(name: string): Promise<StoredImage | undefined> {
    const dir = path.join(this.root, name);
    const metaPath = path.join(dir, 'meta.json');
    let text: string;
    try {
      text = await readFile(metaPath, 'utf8');
    } catch (err) {
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return undefined;
      throw err;
    }
    let meta: ImageMeta;
    try {
      meta = parseImageMeta(text);
    } catch (err) {
      throw new ImageError(
        'IMAGE_DAMAGED',
        `image '${name}' has a damaged ${metaPath} (${firstLine(err)}); remove it with \`falcon image rm ${name} --force\` and build or import it again`,
      );
    }
    if (meta.name !== name) {
      throw new ImageError(
        'IMAGE_DAMAGED',
        `image directory ${dir} holds metadata for '${meta.name}'; rename the directory back or remove it with \`falcon image rm ${name} --force\``,
      );
    }
    return this.describe(dir, meta);
  }

  private describe(dir: string, meta: ImageMeta): StoredImage {
    const img: StoredImage = { name: meta.name, dir, disk: path.join(dir, meta.disk), meta };
    if (meta.boot.method === 'direct') {
      img.kernel = path.join(dir, meta.boot.kernel);
      if (meta.boot.initrd) img.initrd = path.join(dir, meta.boot.initrd);
    }
    return img;
  }

  private async notFound(name: string): Promise<ImageError> {
    const have = (await this.list().catch(() => [])).map((i) => i.name);
    const there = have.length ? `Images there: ${have.join(', ')}.` : 'It has no images yet.';
    const builtins = this.builtinNames();
    let how: string;
    if (this.isBuiltin(name)) {
      how = `'${name}' is a built-in image: build it with \`falcon image build ${name}\`.`;
    } else {
      const example = builtins.includes('tiny') ? 'tiny' : (builtins[0] ?? 'tiny');
      how =
        (builtins.length ? `Build a built-in image with \`falcon image build ${example}\` (built-ins: ${builtins.join(', ')}), or add` : 'Add') +
        ` your own with \`falcon image import ${name} FILE\` or \`falcon image pull ${name} URL\`.`;
    }
    return new ImageError('IMAGE_NOT_FOUND', `image '${name}' is not in the image store ${this.root}. ${there} ${how}`);
  }

  private staleRecipe(meta: ImageMeta): { built: number; current: number } | undefined {
    if (!meta.recipe || !Object.hasOwn(this.recipes, meta.recipe.name)) return undefined;
    const current = this.recipes[meta.recipe.name]!.version;
    return meta.recipe.version < current ? { built: meta.recipe.version, current } : undefined;
  }

  // ---- building ------------------------------------------------------------------------------

  /** Runs a built-in recipe and stores its result. */
  async build(recipeName: string, o: BuildOptions = {}): Promise<StoredImage> {
    const recipe = this.recipe(recipeName);
    const name = o.name ?? recipeName;
    checkName(name);
    return this.withLock(name, SHORT_WAIT_MS, o.signal, async () => {
      if (await this.has(name)) {
        if (!o.force) {
          throw new ImageError(
            'IMAGE_EXISTS',
            `image '${name}' already exists in ${this.root}; rebuild it with \`falcon image build ${recipeName} --force\` or remove it first with \`falcon image rm ${name}\``,
          );
        }
        await this.refuseIfUsed(await this.get(name), 'rebuild', o.signal);
      }
      return this.buildLocked(recipe, name, !!o.force, o.signal);
    });
  }

  /**
   * The image `name`, building it first if it is a missing built-in (what launch uses). Concurrent
   * calls share one build; another process building it is waited for.
   */
  async ensure(name: string, signal?: AbortSignal): Promise<StoredImage> {
    checkName(name);
    const running = this.ensuring.get(name);
    if (running) return running;
    const p = this.ensureOnce(name, signal).finally(() => this.ensuring.delete(name));
    this.ensuring.set(name, p);
    return p;
  }

  private async ensureOnce(name: string, signal?: AbortSignal): Promise<StoredImage> {
    const existing = await this.read(name);
    if (existing) {
      const stale = this.staleRecipe(existing.meta);
      if (stale) {
        this.log.log({
          kind: 'warn',
          msg: `image '${name}' was built by version ${stale.built} of its recipe, the current one is ${stale.current}; rebuild it with \`falcon image build ${existing.meta.recipe!.name} --force\``,
        });
      }
      return existing;
    }
    if (!this.isBuiltin(name)) throw await this.notFound(name);
    return this.withLock(name, BUILD_WAIT_MS, signal, async () => {
      const built = await this.read(name); // another process may have built it while we waited
      return built ?? this.buildLocked(this.recipe(name), name, false, signal);
    });
  }

  private recipe(name: string): Recipe {
    if (!this.isBuiltin(name)) {
      const list = this.builtinNames();
      throw new ImageError(
        'IMAGE_UNKNOWN_RECIPE',
        `there is no built-in image recipe '${name}'; built-ins: ${list.length ? list.join(', ') : 'none'}. ` +
          `For other images use \`falcon image import ${name} FILE\` or \`falcon image pull ${name} URL\`.`,
      );
    }
    return this.recipes[name]!;
  }

  private async buildLocked(recipe: Recipe, name: string, replace: boolean, signal?: AbortSignal): Promise<StoredImage> {
    const started = Date.now();
    this.log.log({ kind: 'step', msg: `building image '${name}' (recipe ${recipe.name} v${recipe.version}): ${recipe.description}` });
    return this.inStaging('build', name, `building image '${name}'`, async (stage) => {
      const outDir = path.join(stage, 'image');
      const workDir = path.join(stage, 'work');
      await mkdir(outDir, { mode: 0o700 });
      await mkdir(workDir, { mode: 0o700 });
      await mkdir(this.cacheDir, { recursive: true, mode: 0o700 });
      const res = await recipe.build({ outDir, workDir, cacheDir: this.cacheDir, runner: this.runner, log: this.log, signal });
      await rm(workDir, { recursive: true, force: true });
      const meta = await this.finishImageDir(outDir, name, {
        disk: res.disk,
        boot: res.boot,
        exec: res.exec,
        login: res.login,
        description: res.description,
        recipe: { name: recipe.name, version: recipe.version },
        signal,
      });
      const img = await this.publish(outDir, meta, replace);
      this.log.log({ kind: 'step', msg: `built image '${name}' in ${((Date.now() - started) / 1000).toFixed(1)} s` });
      return img;
    });
  }

  // ---- import and pull -----------------------------------------------------------------------

  /** Adds a disk image file (qcow2, raw or raw.xz; also vmdk/vdi/vhdx) under `name`. */
  async import(name: string, file: string, o: ImportOptions = {}): Promise<StoredImage> {
    checkName(name);
    await checkImportOptions(o);
    let st;
    try {
      st = await stat(file);
    } catch (err) {
      throw new ImageError('IMAGE_NOT_AN_IMAGE', `cannot import ${file}: ${firstLine(err)}`);
    }
    if (!st.isFile()) throw new ImageError('IMAGE_NOT_AN_IMAGE', `cannot import ${file}: it is not a regular file`);
    return this.withLock(name, SHORT_WAIT_MS, o.signal, async () => {
      await this.refuseIfExists(name);
      return this.inStaging('import', name, `importing image '${name}'`, async (stage) => {
        const imageDir = path.join(stage, 'image');
        await mkdir(imageDir, { mode: 0o700 });
        const meta = await this.importInto(stage, imageDir, name, file, o, o.description ?? `imported from ${path.resolve(file)}`);
        return this.publish(imageDir, meta, false);
      });
    });
  }

  /** Downloads an image over HTTP(S), verifies its checksum, then imports it. */
  async pull(name: string, url: string, o: PullOptions = {}): Promise<StoredImage> {
    checkName(name);
    await checkImportOptions(o);
    const expected = o.sha256 === undefined ? undefined : normalizeSha256(o.sha256);
    return this.withLock(name, SHORT_WAIT_MS, o.signal, async () => {
      await this.refuseIfExists(name);
      return this.inStaging('pull', name, `pulling image '${name}'`, async (stage) => {
        const file = path.join(stage, 'download');
        this.log.log({ kind: 'step', msg: `downloading ${url}` });
        const got = await download(url, file, {
          signal: o.signal,
          log: this.log,
          what: `image '${name}'`,
          onProgress: o.onProgress ? (p: DownloadProgress) => o.onProgress!({ phase: 'download', ...p }) : undefined,
        });
        if (expected === undefined) {
          this.log.log({
            kind: 'warn',
            msg: `no --sha256 given for ${url}, so the download is not verified; its sha256 is ${got.sha256}`,
          });
        } else if (got.sha256 !== expected) {
          throw new ImageError(
            'IMAGE_CHECKSUM',
            `checksum mismatch for ${url}: expected sha256 ${expected}, got ${got.sha256}; the download was discarded and nothing was added to the store. Check the URL and the checksum.`,
          );
        }
        const imageDir = path.join(stage, 'image');
        await mkdir(imageDir, { mode: 0o700 });
        const meta = await this.importInto(stage, imageDir, name, file, o, o.description ?? `pulled from ${url}`, url);
        return this.publish(imageDir, meta, false);
      });
    });
  }

  private async importInto(
    stage: string,
    imageDir: string,
    name: string,
    file: string,
    o: ImportOptions,
    description: string,
    label = file,
  ): Promise<ImageMeta> {
    let src = file;
    if (await hasXzMagic(file)) {
      src = path.join(stage, 'decompressed.raw');
      this.log.log({ kind: 'step', msg: `decompressing ${label}` });
      try {
        // The runner buffers stdout, so a fixed shell script redirects it to the file instead.
        await this.runner.run('sh', ['-c', 'exec xz --decompress --stdout --threads=0 -- "$1" > "$2"', 'sh', file, src], {
          timeoutMs: XZ_TIMEOUT_MS,
          signal: o.signal,
        });
      } catch (err) {
        if (isNoSpace(err) || o.signal?.aborted) throw err;
        throw new ImageError('IMAGE_NOT_AN_IMAGE', `cannot import ${label}: it looks like xz data but does not decompress (${firstLine(err, true)})`, {
          cause: err,
        });
      }
    }
    let info: QemuImgInfo;
    try {
      info = await this.qemuImg.info(src, { signal: o.signal });
    } catch (err) {
      if (o.signal?.aborted) throw err;
      throw new ImageError('IMAGE_NOT_AN_IMAGE', `${label} is not a disk image qemu-img can read (${firstLine(err, true)})`, { cause: err });
    }
    if (!IMPORT_FORMATS.includes(info.format)) {
      throw new ImageError('IMAGE_NOT_AN_IMAGE', `${label} is a '${info.format}' image; Falcon imports ${IMPORT_FORMATS.join(', ')} and raw.xz`);
    }
    if (info.backingFilename) {
      throw new ImageError(
        'IMAGE_NOT_AN_IMAGE',
        `${label} depends on a backing file (${info.backingFilename}); flatten it first: qemu-img convert -O qcow2 ${label} standalone.qcow2`,
      );
    }
    if (info.format === 'raw') await checkRawLooksLikeDisk(src, label);
    this.log.log({ kind: 'step', msg: `converting ${label} (${info.format}, ${formatBytes(info.virtualSize)}) to qcow2` });
    await this.qemuImg.convert(src, path.join(imageDir, 'disk.qcow2'), {
      srcFormat: info.format,
      signal: o.signal,
      onProgress: o.onProgress ? (percent) => o.onProgress!({ phase: 'convert', percent }) : undefined,
    });
    if (src !== file) await rm(src, { force: true });
    let boot: BootMethod;
    if (o.kernel) {
      await copyFile(o.kernel, path.join(imageDir, 'kernel'));
      if (o.initrd) await copyFile(o.initrd, path.join(imageDir, 'initrd'));
      boot = { method: 'direct', kernel: 'kernel', cmdline: o.cmdline ?? 'console=ttyS0 root=/dev/vda rw' };
      if (o.initrd) boot.initrd = 'initrd';
    } else {
      boot = { method: 'firmware', firmware: o.firmware ?? 'bios' };
    }
    const exec = o.exec ?? 'serial-login';
    return this.finishImageDir(imageDir, name, {
      disk: 'disk.qcow2',
      boot,
      exec,
      login: o.login ?? (exec === 'serial-login' ? { user: 'root' } : undefined),
      description,
      signal: o.signal,
    });
  }

  // ---- removal -------------------------------------------------------------------------------

  /** Removes an image; refused while a topology's node disk is backed by it, unless `force`. */
  async remove(name: string, o: { force?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    checkName(name);
    await this.withLock(name, SHORT_WAIT_MS, o.signal, async () => {
      const dir = path.join(this.root, name);
      let img: StoredImage | undefined;
      try {
        img = await this.read(name);
      } catch (err) {
        if (!(o.force && err instanceof ImageError && err.code === 'IMAGE_DAMAGED')) throw err;
      }
      if (!img && !(o.force && (await exists(dir)))) throw await this.notFound(name);
      if (img && !o.force) await this.refuseIfUsed(img, 'remove', o.signal);
      else if (img) {
        const users = await this.usersOf(img, o.signal);
        if (users.length) {
          this.log.log({
            kind: 'warn',
            msg: `removing image '${name}' although ${describeUsers(users)} use it: those node disks no longer work; destroy their topologies`,
          });
        }
      }
      await this.discardDir(dir);
      this.log.log({ kind: 'step', msg: `removed image '${name}'` });
    });
  }

  private async refuseIfUsed(img: StoredImage, action: 'remove' | 'rebuild', signal?: AbortSignal): Promise<void> {
    const users = await this.usersOf(img, signal);
    if (!users.length) return;
    const topologies = [...new Set(users.map((u) => u.topology))];
    throw new ImageError(
      'IMAGE_IN_USE',
      `cannot ${action} image '${img.name}': ${describeUsers(users)} use it as their base. ` +
        `Destroy ${topologies.length > 1 ? 'those topologies' : `topology '${topologies[0]}'`} first` +
        (action === 'remove' ? `, or use \`falcon image rm ${img.name} --force\` (which breaks those node disks)` : '') +
        '.',
    );
  }

  private async refuseIfExists(name: string): Promise<void> {
    if (await this.has(name)) {
      throw new ImageError(
        'IMAGE_EXISTS',
        `image '${name}' already exists in ${this.root}; choose another name or remove it first with \`falcon image rm ${name}\``,
      );
    }
  }

  // ---- node disks ----------------------------------------------------------------------------

  /** Creates a node's disk from an image and returns its path. */
  async createNodeDisk(o: NodeDiskOptions): Promise<string> {
    const disk = this.nodeDiskPath(o.topology, o.node);
    const img = await this.get(o.image);
    let sizeBytes: number | undefined;
    if (o.sizeGiB !== undefined) {
      if (!Number.isFinite(o.sizeGiB) || o.sizeGiB <= 0) {
        throw new ImageError('IMAGE_BAD_OPTION', `disk size for node '${o.node}' must be a positive number of GiB, got ${o.sizeGiB}`);
      }
      sizeBytes = Math.ceil((o.sizeGiB * GiB) / 512) * 512;
      if (sizeBytes < img.meta.virtualSizeBytes) {
        throw new ImageError(
          'IMAGE_BAD_OPTION',
          `disk size ${o.sizeGiB} GiB for node '${o.node}' is smaller than image '${o.image}' (${formatBytes(img.meta.virtualSizeBytes)}); ` +
            `disks can only grow: give at least ${Math.ceil((img.meta.virtualSizeBytes / GiB) * 100) / 100} GiB or leave the size out`,
        );
      }
      if (sizeBytes === img.meta.virtualSizeBytes) sizeBytes = undefined;
    }
    const dir = path.dirname(disk);
    await mkdir(this.topoDir, { recursive: true, mode: 0o700 });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (await exists(disk)) {
      throw new ImageError(
        'IMAGE_EXISTS',
        `node disk ${disk} already exists: topology '${o.topology}' seems to be launched already; destroy it first`,
      );
    }
    const tmp = `${disk}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    // Under the image's lock so the image can't be removed or rebuilt halfway.
    return this.withLock(o.image, BUILD_WAIT_MS, o.signal, async () => {
      try {
        if (o.mode === 'overlay') {
          await this.qemuImg.createOverlay(tmp, img.disk, { backingFormat: 'qcow2', sizeBytes, signal: o.signal });
        } else {
          // Images are standalone qcow2 files, so a file copy is a full copy: a reflink where the
          // file system has them (instant), else the kernel's copy, faster than qemu-img convert.
          await copyFile(img.disk, tmp, fsConstants.COPYFILE_FICLONE);
          await chmod(tmp, 0o600);
          if (sizeBytes !== undefined) await this.qemuImg.resize(tmp, sizeBytes, { format: 'qcow2', signal: o.signal });
        }
        // link() fails if the disk appeared meanwhile, where rename() would silently replace it.
        await link(tmp, disk);
        return disk;
      } catch (err) {
        if (errno(err) === 'EEXIST') {
          throw new ImageError('IMAGE_EXISTS', `node disk ${disk} was created by someone else meanwhile; destroy topology '${o.topology}' first`);
        }
        throw noSpace(err, `creating the disk of node '${o.node}'`, this.root);
      } finally {
        await rm(tmp, { force: true });
      }
    });
  }

  /**
   * Removes the topology's node disks. With `owner`, only when the folder was claimed by that
   * owner (or by nobody): a same-named topology of another falcon dir keeps its disks.
   */
  async removeTopologyDisks(topology: string, owner?: string): Promise<boolean> {
    checkSegment(topology, 'topology name');
    const current = await this.topologyDiskOwner(topology);
    if (owner !== undefined && current !== undefined && current !== owner) return false;
    await rm(path.join(this.topoDir, topology), { recursive: true, force: true });
    return true;
  }

  /** Who (a falcon dir) claimed `topo/<topology>/`, if anyone. */
  async topologyDiskOwner(topology: string): Promise<string | undefined> {
    checkSegment(topology, 'topology name');
    return (await readFile(path.join(this.topoDir, topology, OWNER_FILE), 'utf8').catch(() => undefined))?.trim() || undefined;
  }

  /** Claim `topo/<topology>/` for `owner` (a falcon dir), so other same-named topologies keep out. */
  async claimTopologyDisks(topology: string, owner: string): Promise<void> {
    checkSegment(topology, 'topology name');
    const dir = path.join(this.topoDir, topology);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(path.join(dir, OWNER_FILE), owner + '\n');
  }

  // ---- snapshots -----------------------------------------------------------------------------

  /**
   * Makes a standalone image from a (stopped) node's disk: flattened with `qemu-img convert`, so it
   * depends on neither the base image nor the node. Boot/exec settings come from `parent`.
   */
  async snapshotFromDisk(o: SnapshotOptions): Promise<StoredImage> {
    const staged = await this.stageImage(o.newName, o.signal);
    try {
      this.log.log({ kind: 'step', msg: `snapshotting ${o.diskPath} as image '${o.newName}'` });
      try {
        await this.qemuImg.convert(o.diskPath, staged.disk, { srcFormat: 'qcow2', signal: o.signal });
      } catch (err) {
        if (err instanceof HostCommandError && /lock/i.test(err.stderr)) {
          throw new ImageError(
            'IMAGE_IN_USE',
            `cannot snapshot ${o.diskPath}: a running VM has it open; stop the node first (or snapshot it through the runner, which pauses it)`,
            { cause: err },
          );
        }
        throw err;
      }
      return await staged.commit({ parent: o.parent, description: o.description, signal: o.signal });
    } catch (err) {
      await staged.discard();
      throw noSpace(err, `snapshotting into image '${o.newName}'`, this.root);
    }
  }

  /**
   * Reserves `newName` and returns a staging area whose `disk` someone (QEMU's backup job, or
   * qemu-img) writes; `commit` then adds the image atomically. The name stays locked until
   * commit or discard.
   */
  async stageImage(newName: string, signal?: AbortSignal): Promise<StagedImage> {
    checkName(newName);
    const release = await this.lock(newName, SHORT_WAIT_MS, signal);
    let stage: string;
    try {
      await this.refuseIfExists(newName);
      stage = await this.makeStaging('snapshot', newName);
      await mkdir(path.join(stage, 'image'), { mode: 0o700 });
    } catch (err) {
      await release();
      throw err;
    }
    const dir = path.join(stage, 'image');
    let done = false;
    const finish = async () => {
      if (done) return;
      done = true;
      this.staged.delete(newName);
      await rm(stage, { recursive: true, force: true });
      await release();
    };
    const staged: StagedImage = {
      name: newName,
      dir,
      disk: path.join(dir, 'disk.qcow2'),
      commit: async (c) => {
        if (done) throw new Error(`staged image '${newName}' was already committed or discarded`);
        try {
          const parent = c.parent;
          let boot = parent.boot;
          if (boot.method === 'direct') {
            const from = this.imageDir(parent.name);
            try {
              await copyFile(path.join(from, boot.kernel), path.join(dir, boot.kernel));
              if (boot.initrd) await copyFile(path.join(from, boot.initrd), path.join(dir, boot.initrd));
            } catch (err) {
              throw new ImageError(
                'IMAGE_NOT_FOUND',
                `cannot snapshot into '${newName}': the kernel/initrd of parent image '${parent.name}' are missing (${firstLine(err)}); the parent image must still exist`,
              );
            }
            boot = { ...boot };
          }
          const meta = await this.finishImageDir(dir, newName, {
            disk: 'disk.qcow2',
            boot,
            exec: parent.exec,
            login: parent.login,
            parent: parent.name,
            description: c.description ?? `snapshot of a node launched from '${parent.name}'`,
            signal: c.signal,
          });
          return await this.publish(dir, meta, false);
        } catch (err) {
          throw noSpace(err, `committing image '${newName}'`, this.root);
        } finally {
          await finish();
        }
      },
      discard: finish,
    };
    this.staged.set(newName, staged);
    return staged;
  }

  /** Reserves `newName` and returns the path its disk must be written to (see stageImage). */
  async stagingPathFor(newName: string, signal?: AbortSignal): Promise<string> {
    return (await this.stageImage(newName, signal)).disk;
  }

  /** Commits a disk written to `stagingPathFor(newName)` as a new image. */
  async commitStaged(newName: string, o: CommitOptions): Promise<StoredImage> {
    const s = this.staged.get(newName);
    if (!s) throw new Error(`no staged image '${newName}': call stagingPathFor('${newName}') first`);
    return s.commit(o);
  }

  /** Throws away a disk staged with `stagingPathFor`. */
  async discardStaged(newName: string): Promise<void> {
    await this.staged.get(newName)?.discard();
  }

  // ---- internals -----------------------------------------------------------------------------

  /**
   * Turns a staged directory into a complete image directory: the disk becomes `disk.qcow2`
   * (converted if the recipe made another format), boot files are checked, meta.json written.
   */
  private async finishImageDir(
    dir: string,
    name: string,
    o: {
      disk: string;
      boot: BootMethod;
      exec: ExecMethod;
      login?: LoginInfo;
      description?: string;
      parent?: string;
      recipe?: { name: string; version: number };
      signal?: AbortSignal;
    },
  ): Promise<ImageMeta> {
    const diskFile = path.resolve(dir, o.disk);
    if (path.dirname(diskFile) !== dir) throw new Error(`image disk '${o.disk}' must be a file directly in ${dir}`);
    let info = await this.qemuImg.info(diskFile, { signal: o.signal });
    if (info.backingFilename) {
      throw new Error(`the disk of image '${name}' depends on a backing file (${info.backingFilename}); images must be standalone`);
    }
    const finalDisk = path.join(dir, 'disk.qcow2');
    if (info.format !== 'qcow2') {
      const tmp = path.join(dir, 'disk.qcow2.converting');
      await this.qemuImg.convert(diskFile, tmp, { srcFormat: info.format, signal: o.signal });
      await rm(diskFile, { force: true });
      await rename(tmp, finalDisk);
      info = await this.qemuImg.info(finalDisk, { format: 'qcow2', signal: o.signal });
    } else if (diskFile !== finalDisk) {
      await rename(diskFile, finalDisk);
    }
    if (o.boot.method === 'direct') {
      for (const f of [o.boot.kernel, o.boot.initrd]) {
        if (f === undefined) continue;
        if (f.includes('/') || !(await exists(path.join(dir, f)))) {
          throw new Error(`image '${name}': boot file '${f}' is not a file in the image directory`);
        }
      }
    }
    const st = await stat(finalDisk);
    const meta: ImageMeta = {
      version: 1,
      name,
      disk: 'disk.qcow2',
      boot: o.boot,
      exec: o.exec,
      ...(o.login ? { login: o.login } : {}),
      ...(o.parent ? { parent: o.parent } : {}),
      ...(o.recipe ? { recipe: o.recipe } : {}),
      sizeBytes: st.size,
      virtualSizeBytes: info.virtualSize,
      sha256: await sha256File(finalDisk, o.signal),
      createdAt: new Date().toISOString(),
      ...(o.description ? { description: o.description } : {}),
    };
    await writeFileSynced(path.join(dir, 'meta.json'), JSON.stringify(meta, null, 2) + '\n');
    return meta;
  }

  /** Renames a complete staged image directory into place. */
  private async publish(stagedDir: string, meta: ImageMeta, replace: boolean): Promise<StoredImage> {
    const final = path.join(this.root, meta.name);
    if (replace && (await exists(final))) {
      const trash = await this.makeStaging('trash', meta.name);
      await rm(trash, { recursive: true });
      await rename(final, trash);
      await rename(stagedDir, final);
      await rm(trash, { recursive: true, force: true });
    } else {
      try {
        await rename(stagedDir, final);
      } catch (err) {
        if (errno(err) === 'EEXIST' || errno(err) === 'ENOTEMPTY') {
          throw new ImageError('IMAGE_EXISTS', `image '${meta.name}' already exists in ${this.root}; remove it first with \`falcon image rm ${meta.name}\``);
        }
        throw err;
      }
    }
    this.log.log({ kind: 'step', msg: `image '${meta.name}' is ready (${formatBytes(meta.sizeBytes)} on disk, ${formatBytes(meta.virtualSizeBytes)} virtual)` });
    return this.describe(final, meta);
  }

  /** Moves a directory out of sight first, so a crash mid-delete leaves no half image. */
  private async discardDir(dir: string): Promise<void> {
    const trash = await this.makeStaging('trash', path.basename(dir));
    await rm(trash, { recursive: true });
    await rename(dir, trash);
    await rm(trash, { recursive: true, force: true });
  }

  /** Runs `fn` with a fresh staging dir, always removed afterwards; maps ENOSPC to a clear error. */
  private async inStaging<T>(kind: string, name: string, what: string, fn: (stage: string) => Promise<T>): Promise<T> {
    const stage = await this.makeStaging(kind, name);
    try {
      return await fn(stage);
    } catch (err) {
      throw noSpace(err, what, this.root);
    } finally {
      await rm(stage, { recursive: true, force: true });
    }
  }

  /** Creates `.tmp/<kind>-<name>-<pid>-<random>`; also clears staging left by dead processes. */
  private async makeStaging(kind: string, name: string): Promise<string> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    await mkdir(this.tmpDir, { recursive: true, mode: 0o700 });
    await this.cleanStaleStaging();
    const dir = path.join(this.tmpDir, `${kind}-${name}-${process.pid}-${randomBytes(4).toString('hex')}`);
    await mkdir(dir, { mode: 0o700 });
    return dir;
  }

  private async cleanStaleStaging(): Promise<void> {
    for (const entry of await readdir(this.tmpDir).catch(() => [] as string[])) {
      const m = /-(\d+)-[0-9a-f]{8}$/.exec(entry);
      if (m && !pidAlive(Number(m[1]))) {
        this.log.log({ kind: 'step', level: 'debug', msg: `removing staging ${entry} left by a dead process` });
        await rm(path.join(this.tmpDir, entry), { recursive: true, force: true });
      }
    }
  }

  private async lock(name: string, waitMs: number, signal?: AbortSignal): Promise<() => Promise<void>> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    await mkdir(this.locksDir, { recursive: true, mode: 0o700 });
    return acquireLock(path.join(this.locksDir, `${name}.lock`), { what: `image '${name}'`, waitMs, signal, log: this.log });
  }

  private async withLock<T>(name: string, waitMs: number, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    const release = await this.lock(name, waitMs, signal);
    try {
      return await fn();
    } finally {
      await release();
    }
  }
}

// ---- helpers -----------------------------------------------------------------------------------

function checkName(name: string): void {
  const problem = imageNameProblem(name);
  if (problem) throw new ImageError('IMAGE_INVALID_NAME', `invalid image name '${name}': ${problem}`);
}

function checkSegment(s: string, what: string): void {
  if (!s || s.length > 200 || s.includes('/') || s.includes('\0') || s.startsWith('.')) {
    throw new ImageError('IMAGE_INVALID_NAME', `invalid ${what} '${s}': it must be non-empty, not start with '.', and contain no '/'`);
  }
}

async function checkImportOptions(o: ImportOptions): Promise<void> {
  if (o.kernel && o.firmware) {
    throw new ImageError('IMAGE_BAD_OPTION', `choose one way to boot: a kernel (direct boot) or ${o.firmware} firmware, not both`);
  }
  if (!o.kernel && (o.initrd || o.cmdline !== undefined)) {
    throw new ImageError('IMAGE_BAD_OPTION', 'an initrd or kernel command line needs a kernel too: add --kernel FILE');
  }
  for (const [flag, f] of [
    ['kernel', o.kernel],
    ['initrd', o.initrd],
  ] as const) {
    if (f === undefined) continue;
    const st = await stat(f).catch(() => undefined);
    if (!st?.isFile()) throw new ImageError('IMAGE_BAD_OPTION', `--${flag} ${f}: no such file`);
  }
}

function normalizeSha256(s: string): string {
  const v = s.trim().toLowerCase().replace(/^sha256:/, '');
  if (!/^[0-9a-f]{64}$/.test(v)) {
    throw new ImageError('IMAGE_BAD_OPTION', `'${s}' is not a SHA-256 checksum: give 64 hex digits (as printed by sha256sum)`);
  }
  return v;
}

async function hasXzMagic(file: string): Promise<boolean> {
  const head = await readHead(file, 0, 6);
  return head.equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]));
}

async function readHead(file: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, offset);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/**
 * qemu-img calls any file "raw", so a raw import must show a partition table or file system
 * somewhere a disk has one; otherwise it is most likely not an image at all.
 */
async function checkRawLooksLikeDisk(file: string, label: string): Promise<void> {
  const { size } = await stat(file);
  const at = async (offset: number, bytes: number[] | string) => {
    const want = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : Buffer.from(bytes);
    return offset + want.length <= size && (await readHead(file, offset, want.length)).equals(want);
  };
  const found =
    size >= 512 &&
    ((await at(510, [0x55, 0xaa])) || // MBR / boot sector (also FAT)
      (await at(512, 'EFI PART')) || // GPT
      (await at(1080, [0x53, 0xef])) || // ext2/3/4
      (await at(0, 'XFSB')) ||
      (await at(0x10040, '_BHRfS_M')) || // Btrfs
      (await at(0x8001, 'CD001')) || // ISO 9660
      (await at(0, 'hsqs'))); // SquashFS
  if (!found) {
    throw new ImageError(
      'IMAGE_NOT_AN_IMAGE',
      `${label} does not look like a disk image: it has no partition table (MBR/GPT) and no file system qemu-img or Falcon recognises. ` +
        'Give a qcow2 image, a raw disk image or a raw.xz.',
    );
  }
}

async function sha256File(file: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20, signal })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function writeFileSynced(file: string, text: string): Promise<void> {
  const fh = await open(file, 'w', 0o600);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function isNoSpace(err: unknown): boolean {
  if (errno(err) === 'ENOSPC') return true;
  if (err instanceof HostCommandError) return /no space left on device/i.test(err.stderr);
  return err instanceof Error && /no space left on device|ENOSPC/i.test(err.message);
}

function noSpace(err: unknown, what: string, root: string): unknown {
  if (err instanceof ImageError || !isNoSpace(err)) return err;
  return new ImageError(
    'IMAGE_NO_SPACE',
    `no space left on the device holding ${root} while ${what}; nothing was added. Free some space, or set FALCON_IMAGE_DIR to a directory on a bigger file system.`,
    { cause: err },
  );
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function firstLine(err: unknown, preferStderr = false): string {
  if (preferStderr && err instanceof HostCommandError && err.stderr.trim()) return err.stderr.trim().split('\n')[0]!;
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}

async function realOrResolved(p: string): Promise<string> {
  return realpath(p).catch(() => path.resolve(p));
}

function describeUsers(users: NodeDiskUse[]): string {
  const shown = users.slice(0, 5).map((u) => `${u.topology}/${u.node}`);
  return `node disk${users.length > 1 ? 's' : ''} ${shown.join(', ')}${users.length > 5 ? ` and ${users.length - 5} more` : ''}`;
}

/** 1536 -> "1.5 KiB". */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}
