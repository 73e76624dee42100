/**
 * `falcon image export NAME --oci FILE`: a base image as an OCI image archive in KubeVirt's
 * containerDisk layout, for nodes that run on Kubernetes. One layer:
 *
 *   disk/                     0755, 107:107 (the qemu user containerDisk consumers expect)
 *   disk/<NAME>.qcow2         the image's disk (flattened first if it had a backing file)
 *   disk/meta.json            the image's meta.json, its `disk` naming the file above
 *   disk/<kernel>, <initrd>   a direct-boot image's boot files, under their names in meta.json
 *
 * every file 0644, every mtime 0, entries sorted: the same image gives the same digest.
 */
import { copyFile, link, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Catalogue, StoredImage } from './catalogue.js';
import type { StoreContext } from './context.js';
import { ImageError } from './errors.js';
import { errno, sha256File, SHORT_WAIT_MS, writeFileSynced } from './helpers.js';
import { checkRef, ociArchitecture, writeOciArchive, type LayerCompression, type OciArchiveResult, type OciProgress } from './oci.js';
import type { ImageMeta } from './types.js';

// In oci-ref.ts, which the package's index loads without the archive writer.
import { exportRef } from './oci-ref.js';
export { EXPORT_REPOSITORY, exportRef } from './oci-ref.js';

/** The uid and gid containerDisk files belong to (KubeVirt's qemu user). */
export const CONTAINER_DISK_OWNER = { uid: 107, gid: 107 } as const;
/** The folder of a containerDisk image that holds the disk. */
export const CONTAINER_DISK_DIR = 'disk';

export interface ExportOciOptions {
  /** The reference the image is imported as; default `falcon.local/images/<name>:<sha12>` (see exportRef). */
  ref?: string;
  /** Layer compression; default gzip. */
  compression?: LayerCompression;
  /** OCI architecture of the nodes that run it; default the host's (amd64 on x86-64). */
  architecture?: string;
  signal?: AbortSignal;
  onProgress?: (p: OciProgress) => void;
}

export interface ExportOciResult extends OciArchiveResult {
  image: string;
  /** Whether the disk had a backing file and was flattened for the export. */
  flattened: boolean;
  seconds: number;
}


/** The disk's file name in the containerDisk layout: `<name>.qcow2`. */
export function containerDiskFile(name: string): string {
  return `${name}.qcow2`;
}

/** The meta.json written into the export: the same image, its disk under its exported file name. */
export function exportedMeta(meta: ImageMeta, disk: { sizeBytes: number; sha256: string } = meta): ImageMeta {
  return { ...meta, disk: containerDiskFile(meta.name), sizeBytes: disk.sizeBytes, sha256: disk.sha256 };
}

export class OciExporter {
  constructor(
    private readonly ctx: StoreContext,
    private readonly catalogue: Catalogue,
  ) {}

  async exportOci(name: string, file: string, o: ExportOciOptions = {}): Promise<ExportOciResult> {
    const started = Date.now();
    const out = await checkOutput(file);
    if (o.ref !== undefined) checkRef(o.ref);
    const img = await this.catalogue.get(name);
    this.ctx.log.log({ kind: 'step', msg: `exporting image '${name}' as an OCI containerDisk to ${out}` });
    return this.ctx.inStaging('export', name, `exporting image '${name}'`, async (stage) => {
      const layerRoot = path.join(stage, 'layer');
      const { meta, flattened } = await this.ctx.withLock(name, SHORT_WAIT_MS, o.signal, () => this.stageFiles(img, layerRoot, o.signal));
      const r = await writeOciArchive({
        runner: this.ctx.runner,
        workDir: stage,
        layers: [{ dir: layerRoot, owner: CONTAINER_DISK_OWNER, mode: 'u=rwX,go=rX' }],
        platform: { architecture: o.architecture ?? ociArchitecture(), os: 'linux' },
        config: { Labels: labels(meta) },
        ref: o.ref ?? exportRef(meta),
        annotations: { 'org.opencontainers.image.title': meta.name, ...(meta.description ? { 'org.opencontainers.image.description': meta.description } : {}) },
        out,
        compression: o.compression,
        signal: o.signal,
        onProgress: o.onProgress,
      });
      const seconds = (Date.now() - started) / 1000;
      this.ctx.log.log({ kind: 'step', msg: `exported image '${name}' as ${r.ref} (${r.digest}, ${r.size} bytes) in ${seconds.toFixed(1)} s` });
      return { ...r, image: name, flattened, seconds };
    });
  }

  /**
   * Puts the image's files under `<layerRoot>/disk/`: hard links to the store's files where it
   * can (instant, and a later rebuild of the image cannot change them), copies otherwise.
   */
  private async stageFiles(img: StoredImage, layerRoot: string, signal?: AbortSignal): Promise<{ meta: ImageMeta; flattened: boolean }> {
    // Read again under the lock: a rebuild may have replaced the image since `get`.
    const cur = await this.catalogue.get(img.name);
    const dir = path.join(layerRoot, CONTAINER_DISK_DIR);
    await mkdir(dir, { recursive: true, mode: 0o755 });
    const disk = path.join(dir, containerDiskFile(cur.name));
    const info = await this.ctx.qemuImg.info(cur.disk, { signal });
    let meta = exportedMeta(cur.meta);
    const flattened = info.backingFilename !== undefined;
    if (flattened) {
      this.ctx.log.log({ kind: 'step', msg: `image '${cur.name}': its disk has a backing file (${info.backingFilename}); flattening it for the export` });
      await this.ctx.qemuImg.convert(cur.disk, disk, { srcFormat: info.format, signal });
      meta = exportedMeta(cur.meta, { sizeBytes: (await stat(disk)).size, sha256: await sha256File(disk, signal) });
    } else {
      await linkOrCopy(cur.disk, disk);
    }
    if (cur.meta.boot.method === 'direct') {
      await linkOrCopy(cur.kernel!, path.join(dir, cur.meta.boot.kernel));
      if (cur.meta.boot.initrd) await linkOrCopy(cur.initrd!, path.join(dir, cur.meta.boot.initrd));
    }
    await writeFileSynced(path.join(dir, 'meta.json'), JSON.stringify(meta, null, 2) + '\n');
    return { meta, flattened };
  }
}

function labels(meta: ImageMeta): Record<string, string> {
  return {
    'io.falcon.image.name': meta.name,
    'io.falcon.image.disk': `/${CONTAINER_DISK_DIR}/${meta.disk}`,
    'io.falcon.image.disk.sha256': meta.sha256,
    'io.falcon.image.boot': meta.boot.method === 'direct' ? 'direct' : meta.boot.firmware,
  };
}

/** The absolute output path; its folder must exist and it must not be a folder. */
async function checkOutput(file: string): Promise<string> {
  if (!file) throw new ImageError('IMAGE_BAD_OPTION', 'export needs a file to write the OCI archive to (--oci FILE)');
  const out = path.resolve(file);
  const dirStat = await stat(path.dirname(out)).catch(() => undefined);
  if (!dirStat?.isDirectory()) throw new ImageError('IMAGE_BAD_OPTION', `cannot write ${out}: the folder ${path.dirname(out)} does not exist`);
  if ((await stat(out).catch(() => undefined))?.isDirectory()) {
    throw new ImageError('IMAGE_BAD_OPTION', `cannot write the OCI archive to ${out}: it is a folder; give a file name such as ${path.join(out, 'image.tar')}`);
  }
  return out;
}

/** A hard link (same file system), else a copy. */
export async function linkOrCopy(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch (err) {
    if (!['EXDEV', 'EPERM', 'EMLINK', 'ENOTSUP', 'EOPNOTSUPP'].includes(errno(err) ?? '')) throw err;
    await copyFile(from, to);
  }
}
