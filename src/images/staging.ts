/**
 * Staging and commits: every new image is assembled in a staging directory and renamed into
 * place (publish) once its disk, boot files and meta.json are complete. Snapshots of node disks
 * go through the same path.
 */
import { copyFile, mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { HostCommandError } from '../host/process.js';
import { FalconError } from '../util/errors.js';
import { exists } from '../util/fs.js';
import { describeImage, type Catalogue, type StoredImage } from './catalogue.js';
import type { StoreContext } from './context.js';
import { ImageError } from './errors.js';
import { checkName, errno, firstLine, formatBytes, noSpace, sha256File, SHORT_WAIT_MS, writeFileSynced } from './helpers.js';
import type { BootMethod, ExecMethod, ImageMeta, LoginInfo } from './types.js';

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

/** What finishImageDir records besides sizes, checksum and time. */
export interface FinishOptions {
  disk: string;
  boot: BootMethod;
  exec: ExecMethod;
  login?: LoginInfo;
  description?: string;
  parent?: string;
  recipe?: { name: string; version: number };
  packages?: string[];
  signal?: AbortSignal;
}

export class Staging {
  private readonly staged = new Map<string, StagedImage>();

  constructor(
    private readonly ctx: StoreContext,
    private readonly catalogue: Catalogue,
  ) {}

  /**
   * Makes a standalone image from a (stopped) node's disk: flattened with `qemu-img convert`, so it
   * depends on neither the base image nor the node. Boot/exec settings come from `parent`.
   */
  async snapshotFromDisk(o: SnapshotOptions): Promise<StoredImage> {
    const staged = await this.stageImage(o.newName, o.signal);
    try {
      this.ctx.log.log({ kind: 'step', msg: `snapshotting ${o.diskPath} as image '${o.newName}'` });
      try {
        await this.ctx.qemuImg.convert(o.diskPath, staged.disk, { srcFormat: 'qcow2', signal: o.signal });
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
      throw noSpace(err, `snapshotting into image '${o.newName}'`, this.ctx.root);
    }
  }

  /** See ImageStore.stageImage. */
  async stageImage(newName: string, signal?: AbortSignal): Promise<StagedImage> {
    checkName(newName);
    const release = await this.ctx.lock(newName, SHORT_WAIT_MS, signal);
    let stage: string;
    try {
      await this.catalogue.refuseIfExists(newName);
      stage = await this.ctx.makeStaging('snapshot', newName);
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
        if (done) throw new FalconError('INTERNAL', `staged image '${newName}' was already committed or discarded; stage it again`);
        try {
          const parent = c.parent;
          let boot = parent.boot;
          if (boot.method === 'direct') {
            const from = this.ctx.imageDir(parent.name);
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
          throw noSpace(err, `committing image '${newName}'`, this.ctx.root);
        } finally {
          await finish();
        }
      },
      discard: finish,
    };
    this.staged.set(newName, staged);
    return staged;
  }

  /** The image staged under `newName` by stageImage, if any. */
  get(newName: string): StagedImage | undefined {
    return this.staged.get(newName);
  }

  /**
   * Turns a staged directory into a complete image directory: the disk becomes `disk.qcow2`
   * (converted if the recipe made another format), boot files are checked, meta.json written.
   */
  async finishImageDir(dir: string, name: string, o: FinishOptions): Promise<ImageMeta> {
    const diskFile = path.resolve(dir, o.disk);
    if (path.dirname(diskFile) !== dir) {
      throw new ImageError('IMAGE_BUILD_FAILED', `image '${name}': its disk '${o.disk}' must be a file directly in ${dir}`);
    }
    const qemuImg = this.ctx.qemuImg;
    let info = await qemuImg.info(diskFile, { signal: o.signal });
    if (info.backingFilename) {
      throw new ImageError(
        'IMAGE_BUILD_FAILED',
        `the disk of image '${name}' depends on a backing file (${info.backingFilename}); images must be standalone: flatten it with qemu-img convert`,
      );
    }
    const finalDisk = path.join(dir, 'disk.qcow2');
    if (info.format !== 'qcow2') {
      const tmp = path.join(dir, 'disk.qcow2.converting');
      await qemuImg.convert(diskFile, tmp, { srcFormat: info.format, signal: o.signal });
      await rm(diskFile, { force: true });
      await rename(tmp, finalDisk);
      info = await qemuImg.info(finalDisk, { format: 'qcow2', signal: o.signal });
    } else if (diskFile !== finalDisk) {
      await rename(diskFile, finalDisk);
    }
    if (o.boot.method === 'direct') {
      for (const f of [o.boot.kernel, o.boot.initrd]) {
        if (f === undefined) continue;
        if (f.includes('/') || !(await exists(path.join(dir, f)))) {
          throw new ImageError('IMAGE_BUILD_FAILED', `image '${name}': boot file '${f}' is not a file in the image directory ${dir}`);
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
      ...(o.packages?.length ? { packages: o.packages } : {}),
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
  async publish(stagedDir: string, meta: ImageMeta, replace: boolean): Promise<StoredImage> {
    const final = path.join(this.ctx.root, meta.name);
    if (replace && (await exists(final))) {
      const trash = await this.ctx.makeStaging('trash', meta.name);
      await rm(trash, { recursive: true });
      await rename(final, trash);
      await rename(stagedDir, final);
      await rm(trash, { recursive: true, force: true });
    } else {
      try {
        await rename(stagedDir, final);
      } catch (err) {
        if (errno(err) === 'EEXIST' || errno(err) === 'ENOTEMPTY') {
          throw new ImageError('IMAGE_EXISTS', `image '${meta.name}' already exists in ${this.ctx.root}; remove it first with \`falcon image rm ${meta.name}\``);
        }
        throw err;
      }
    }
    this.ctx.log.log({ kind: 'step', msg: `image '${meta.name}' is ready (${formatBytes(meta.sizeBytes)} on disk, ${formatBytes(meta.virtualSizeBytes)} virtual)` });
    return describeImage(final, meta);
  }
}
