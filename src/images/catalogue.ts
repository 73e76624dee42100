/** The catalogue: which images the store holds, what they are, who uses them, and removal. */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { QemuImgInfo } from '../host/qemu-img.js';
import { exists } from '../util/fs.js';
import type { StoreContext } from './context.js';
import { ImageError } from './errors.js';
import { checkName, errno, firstLine, realOrResolved, SHORT_WAIT_MS } from './helpers.js';
import { imageNameProblem, parseImageMeta } from './meta.js';
import type { ImageMeta } from './types.js';

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

export class Catalogue {
  constructor(private readonly ctx: StoreContext) {}

  /** All complete images, sorted by name. Directories without a valid meta.json are skipped. */
  async list(): Promise<StoredImage[]> {
    let entries;
    try {
      entries = await readdir(this.ctx.root, { withFileTypes: true });
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
        this.ctx.log.log({ kind: 'warn', msg: (err as Error).message });
      }
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  async has(name: string): Promise<boolean> {
    checkName(name);
    try {
      await stat(path.join(this.ctx.root, name, 'meta.json'));
      return true;
    } catch (err) {
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return false;
      throw err;
    }
  }

  async get(name: string): Promise<StoredImage> {
    checkName(name);
    const img = await this.read(name);
    if (!img) throw await this.notFound(name);
    return img;
  }

  async inspect(name: string, signal?: AbortSignal): Promise<ImageInspection> {
    const img = await this.get(name);
    const info = await this.ctx.qemuImg.info(img.disk, { format: 'qcow2', signal });
    const usedBy = await this.usersOf(img, signal);
    await this.ctx.loadRecipes();
    const r: ImageInspection = { ...img, info, usedBy, builtin: this.ctx.isBuiltin(name) };
    const stale = this.staleRecipe(img.meta);
    if (stale) r.staleRecipe = stale;
    return r;
  }

  /** Node disks (under topo/) whose backing chain includes the image. */
  async usersOf(img: StoredImage, signal?: AbortSignal): Promise<NodeDiskUse[]> {
    const target = await realOrResolved(img.disk);
    const uses: NodeDiskUse[] = [];
    const topoDir = this.ctx.topoDir;
    let topologies: string[];
    try {
      topologies = (await readdir(topoDir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
    } catch (err) {
      if (errno(err) === 'ENOENT') return [];
      throw err;
    }
    for (const topology of topologies.sort()) {
      // Boot disks only (`<node>.qcow2`): extra disks (`<node>.<disk>.qcow2`) are blank, never backed.
      const files = (await readdir(path.join(topoDir, topology))).filter((f) => /^[^.]+\.qcow2$/.test(f)).sort();
      for (const f of files) {
        const disk = path.join(topoDir, topology, f);
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
      const chain = await this.ctx.qemuImg.infoChain(disk, { signal });
      return chain.map((i) => i.fullBackingFilename).filter((x): x is string => !!x);
    } catch (err) {
      // A chain with a missing member can't be walked; the first link still counts.
      try {
        const i = await this.ctx.qemuImg.info(disk, { signal });
        return i.fullBackingFilename ? [i.fullBackingFilename] : [];
      } catch {
        this.ctx.log.log({ kind: 'warn', msg: `cannot read node disk ${disk}: ${firstLine(err)}` });
        return [];
      }
    }
  }

  /** The image, or undefined when there is none of that name; damaged metadata throws. */
  async read(name: string): Promise<StoredImage | undefined> {
    const dir = path.join(this.ctx.root, name);
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
    return describeImage(dir, meta);
  }

  /** IMAGE_NOT_FOUND, listing the images there are and how to get one. */
  async notFound(name: string): Promise<ImageError> {
    const have = (await this.list().catch(() => [])).map((i) => i.name);
    const there = have.length ? `Images there: ${have.join(', ')}.` : 'It has no images yet.';
    const builtins = this.ctx.builtinNames();
    let how: string;
    if (this.ctx.isBuiltin(name)) {
      how = `'${name}' is a built-in image: build it with \`falcon image build ${name}\`.`;
    } else {
      const example = builtins.includes('tiny') ? 'tiny' : (builtins[0] ?? 'tiny');
      how =
        (builtins.length ? `Build a built-in image with \`falcon image build ${example}\` (built-ins: ${builtins.join(', ')}), or add` : 'Add') +
        ` your own with \`falcon image import ${name} FILE\` or \`falcon image pull ${name} URL\`.`;
    }
    return new ImageError('IMAGE_NOT_FOUND', `image '${name}' is not in the image store ${this.ctx.root}. ${there} ${how}`);
  }

  staleRecipe(meta: ImageMeta): { built: number; current: number } | undefined {
    if (!meta.recipe || !Object.hasOwn(this.ctx.recipes, meta.recipe.name)) return undefined;
    const current = this.ctx.recipes[meta.recipe.name]!.version;
    return meta.recipe.version < current ? { built: meta.recipe.version, current } : undefined;
  }

  /** Removes an image; refused while a topology's node disk is backed by it, unless `force`. */
  async remove(name: string, o: { force?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    checkName(name);
    await this.ctx.withLock(name, SHORT_WAIT_MS, o.signal, async () => {
      const dir = path.join(this.ctx.root, name);
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
          this.ctx.log.log({
            kind: 'warn',
            msg: `removing image '${name}' although ${describeUsers(users)} use it: those node disks no longer work; destroy their topologies`,
          });
        }
      }
      await this.ctx.discardDir(dir);
      this.ctx.log.log({ kind: 'step', msg: `removed image '${name}'` });
    });
  }

  async refuseIfUsed(img: StoredImage, action: 'remove' | 'rebuild', signal?: AbortSignal): Promise<void> {
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

  async refuseIfExists(name: string): Promise<void> {
    if (await this.has(name)) {
      throw new ImageError(
        'IMAGE_EXISTS',
        `image '${name}' already exists in ${this.ctx.root}; choose another name or remove it first with \`falcon image rm ${name}\``,
      );
    }
  }
}

/** A StoredImage from an image directory and its metadata. */
export function describeImage(dir: string, meta: ImageMeta): StoredImage {
  const img: StoredImage = { name: meta.name, dir, disk: path.join(dir, meta.disk), meta };
  if (meta.boot.method === 'direct') {
    img.kernel = path.join(dir, meta.boot.kernel);
    if (meta.boot.initrd) img.initrd = path.join(dir, meta.boot.initrd);
  }
  return img;
}

function describeUsers(users: NodeDiskUse[]): string {
  const shown = users.slice(0, 5).map((u) => `${u.topology}/${u.node}`);
  return `node disk${users.length > 1 ? 's' : ''} ${shown.join(', ')}${users.length > 5 ? ` and ${users.length - 5} more` : ''}`;
}
