/** Node disks (`<root>/topo/<topology>/<node>.qcow2`) and which falcon dir owns a topology's disks. */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { chmod, copyFile, link, mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
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
