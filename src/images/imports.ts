/** Import and pull: disk image files from elsewhere, their format sniffed and converted to qcow2. */
import { copyFile, mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { QemuImgInfo } from '../host/qemu-img.js';
import type { Catalogue, StoredImage } from './catalogue.js';
import type { StoreContext } from './context.js';
import { download, type DownloadProgress } from './download.js';
import { ImageError } from './errors.js';
import { checkName, firstLine, formatBytes, isNoSpace, readHead, SHORT_WAIT_MS } from './helpers.js';
import type { Staging } from './staging.js';
import type { BootMethod, ExecMethod, ImageMeta, LoginInfo } from './types.js';

const XZ_TIMEOUT_MS = 60 * 60_000;
/** Formats qemu-img can read and Falcon accepts on import (converted to qcow2). */
const IMPORT_FORMATS = ['qcow2', 'raw', 'vmdk', 'vdi', 'vhdx', 'vpc', 'qed'];

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

export class Importer {
  constructor(
    private readonly ctx: StoreContext,
    private readonly catalogue: Catalogue,
    private readonly staging: Staging,
  ) {}

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
    return this.ctx.withLock(name, SHORT_WAIT_MS, o.signal, async () => {
      await this.catalogue.refuseIfExists(name);
      return this.ctx.inStaging('import', name, `importing image '${name}'`, async (stage) => {
        const imageDir = path.join(stage, 'image');
        await mkdir(imageDir, { mode: 0o700 });
        const meta = await this.importInto(stage, imageDir, name, file, o, o.description ?? `imported from ${path.resolve(file)}`);
        return this.staging.publish(imageDir, meta, false);
      });
    });
  }

  async pull(name: string, url: string, o: PullOptions = {}): Promise<StoredImage> {
    checkName(name);
    await checkImportOptions(o);
    const expected = o.sha256 === undefined ? undefined : normalizeSha256(o.sha256);
    const log = this.ctx.log;
    return this.ctx.withLock(name, SHORT_WAIT_MS, o.signal, async () => {
      await this.catalogue.refuseIfExists(name);
      return this.ctx.inStaging('pull', name, `pulling image '${name}'`, async (stage) => {
        const file = path.join(stage, 'download');
        log.log({ kind: 'step', msg: `downloading ${url}` });
        const got = await download(url, file, {
          signal: o.signal,
          log,
          what: `image '${name}'`,
          onProgress: o.onProgress ? (p: DownloadProgress) => o.onProgress!({ phase: 'download', ...p }) : undefined,
        });
        if (expected === undefined) {
          log.log({
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
        return this.staging.publish(imageDir, meta, false);
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
    const { log, qemuImg } = this.ctx;
    let src = file;
    if (await hasXzMagic(file)) {
      src = path.join(stage, 'decompressed.raw');
      log.log({ kind: 'step', msg: `decompressing ${label}` });
      try {
        // The runner buffers stdout, so a fixed shell script redirects it to the file instead.
        await this.ctx.runner.run('sh', ['-c', 'exec xz --decompress --stdout --threads=0 -- "$1" > "$2"', 'sh', file, src], {
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
      info = await qemuImg.info(src, { signal: o.signal });
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
    log.log({ kind: 'step', msg: `converting ${label} (${info.format}, ${formatBytes(info.virtualSize)}) to qcow2` });
    await qemuImg.convert(src, path.join(imageDir, 'disk.qcow2'), {
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
    return this.staging.finishImageDir(imageDir, name, {
      disk: 'disk.qcow2',
      boot,
      exec,
      login: o.login ?? (exec === 'serial-login' ? { user: 'root' } : undefined),
      description,
      signal: o.signal,
    });
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
