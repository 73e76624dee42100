/**
 * Node disks (`<root>/topo/<topology>/<node>.qcow2`), their extra disks
 * (`<root>/topo/<topology>/<node>.<disk>.qcow2`, blank qcow2 files declared with `disk()`), and
 * which falcon dir owns a topology's disks. One folder per topology, so destroy removes all.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { chmod, copyFile, link, mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { DiskSpec, NodeSpec } from '../model/spec.js';
import { exists, writeFileAtomic } from '../util/fs.js';
import type { Catalogue } from './catalogue.js';
import type { StoreContext } from './context.js';
import { ImageError } from './errors.js';
import { BUILD_WAIT_MS, checkSegment, errno, formatBytes, GiB, noSpace } from './helpers.js';

/** In `topo/<topology>/`: the falcon dir of the topology whose node disks these are. */
const OWNER_FILE = 'owner';

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

/** An extra disk of a node with its file: what `info` lists and what qemuArgs attaches. */
export interface ExtraDisk extends DiskSpec {
  path: string;
}

export interface ExtraDiskOptions {
  topology: string;
  node: string;
  disk: Pick<DiskSpec, 'name' | 'sizeGiB'>;
  signal?: AbortSignal;
}

/** Disk names (model/devices.ts) never hold a ".", so `<node>.<disk>` never is another node's file. */
const DISK_NAME_RE = /^[a-z0-9][a-z0-9_-]*$/;

export class NodeDisks {
  constructor(
    private readonly ctx: StoreContext,
    private readonly catalogue: Catalogue,
  ) {}

  nodeDiskPath(topology: string, node: string): string {
    checkSegment(topology, 'topology name');
    checkSegment(node, 'node name');
    return path.join(this.ctx.topoDir, topology, `${node}.qcow2`);
  }

  async createNodeDisk(o: NodeDiskOptions): Promise<string> {
    const disk = this.nodeDiskPath(o.topology, o.node);
    const img = await this.catalogue.get(o.image);
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
    await mkdir(this.ctx.topoDir, { recursive: true, mode: 0o700 });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (await exists(disk)) {
      throw new ImageError(
        'IMAGE_EXISTS',
        `node disk ${disk} already exists: topology '${o.topology}' seems to be launched already; destroy it first`,
      );
    }
    const tmp = `${disk}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    const qemuImg = this.ctx.qemuImg;
    // Under the image's lock so the image can't be removed or rebuilt halfway.
    return this.ctx.withLock(o.image, BUILD_WAIT_MS, o.signal, async () => {
      try {
        if (o.mode === 'overlay') {
          await qemuImg.createOverlay(tmp, img.disk, { backingFormat: 'qcow2', sizeBytes, signal: o.signal });
        } else {
          // Images are standalone qcow2 files, so a file copy is a full copy: a reflink where the
          // file system has them (instant), else the kernel's copy, faster than qemu-img convert.
          await copyFile(img.disk, tmp, fsConstants.COPYFILE_FICLONE);
          await chmod(tmp, 0o600);
          if (sizeBytes !== undefined) await qemuImg.resize(tmp, sizeBytes, { format: 'qcow2', signal: o.signal });
        }
        // link() fails if the disk appeared meanwhile, where rename() would silently replace it.
        await link(tmp, disk);
        return disk;
      } catch (err) {
        if (errno(err) === 'EEXIST') {
          throw new ImageError('IMAGE_EXISTS', `node disk ${disk} was created by someone else meanwhile; destroy topology '${o.topology}' first`);
        }
        throw noSpace(err, `creating the disk of node '${o.node}'`, this.ctx.root);
      } finally {
        await rm(tmp, { force: true });
      }
    });
  }

  extraDiskPath(topology: string, node: string, disk: string): string {
    checkSegment(topology, 'topology name');
    checkSegment(node, 'node name');
    if (!DISK_NAME_RE.test(disk)) throw new ImageError('IMAGE_INVALID_NAME', `invalid disk name '${disk}' of node '${node}': use lowercase letters, digits, "_" and "-"`);
    return path.join(this.ctx.topoDir, topology, `${node}.${disk}.qcow2`);
  }

  /** The node's extra disks in declaration order, with their paths (nothing is created). */
  extraDisks(topology: string, node: Pick<NodeSpec, 'name' | 'disks'>): ExtraDisk[] {
    return (node.disks ?? []).map((d) => ({ ...d, path: this.extraDiskPath(topology, node.name, d.name) }));
  }

  async createExtraDisk(o: ExtraDiskOptions): Promise<{ path: string; created: boolean }> {
    const disk = this.extraDiskPath(o.topology, o.node, o.disk.name);
    const { sizeGiB } = o.disk;
    if (!Number.isInteger(sizeGiB) || sizeGiB < 1) {
      throw new ImageError('IMAGE_BAD_OPTION', `disk '${o.disk.name}' of node '${o.node}' must be a whole number of GiB from 1, got ${sizeGiB}`);
    }
    await mkdir(this.ctx.topoDir, { recursive: true, mode: 0o700 });
    await mkdir(path.dirname(disk), { recursive: true, mode: 0o700 });
    if (await exists(disk)) {
      await this.warnIfResized(disk, o);
      return { path: disk, created: false };
    }
    const tmp = `${disk}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await this.ctx.qemuImg.create(tmp, sizeGiB * GiB, { signal: o.signal });
      await chmod(tmp, 0o600);
      // link() fails if the disk appeared meanwhile, where rename() would replace its data.
      await link(tmp, disk);
      return { path: disk, created: true };
    } catch (err) {
      if (errno(err) === 'EEXIST') return { path: disk, created: false };
      throw noSpace(err, `creating disk '${o.disk.name}' of node '${o.node}'`, this.ctx.root);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** A kept disk is never resized behind the guest's back; say so when the declaration changed. */
  private async warnIfResized(disk: string, o: ExtraDiskOptions): Promise<void> {
    const size = await this.ctx.qemuImg.info(disk, { format: 'qcow2', signal: o.signal }).then(
      (i) => i.virtualSize,
      () => undefined,
    );
    if (size === undefined || size === o.disk.sizeGiB * GiB) return;
    this.ctx.log.log({
      kind: 'warn',
      msg: `disk '${o.disk.name}' of node '${o.node}' is kept at ${size % GiB ? formatBytes(size) : `${size / GiB} GiB`} although ${o.disk.sizeGiB} GiB are declared: existing disks keep their size and data; destroy the topology to make it anew`,
    });
  }

  async removeTopologyDisks(topology: string, owner?: string): Promise<boolean> {
    checkSegment(topology, 'topology name');
    const current = await this.topologyDiskOwner(topology);
    if (owner !== undefined && current !== undefined && current !== owner) return false;
    await rm(path.join(this.ctx.topoDir, topology), { recursive: true, force: true });
    return true;
  }

  async topologyDiskOwner(topology: string): Promise<string | undefined> {
    checkSegment(topology, 'topology name');
    return (await readFile(path.join(this.ctx.topoDir, topology, OWNER_FILE), 'utf8').catch(() => undefined))?.trim() || undefined;
  }

  async claimTopologyDisks(topology: string, owner: string): Promise<void> {
    checkSegment(topology, 'topology name');
    const dir = path.join(this.ctx.topoDir, topology);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(path.join(dir, OWNER_FILE), owner + '\n');
  }
}
