/**
 * A typed wrapper around `qemu-img`. Every call goes through a `ProcessRunner` with an argument
 * array, a timeout and an optional AbortSignal.
 */
import path from 'node:path';
import type { ProcessRunner } from './process.js';
import { FalconError } from '../util/errors.js';

/** The parts of `qemu-img info --output=json` Falcon uses; `raw` keeps the whole object. */
export interface QemuImgInfo {
  filename: string;
  /** Disk format as qemu-img sees it: qcow2, raw, vmdk, ... */
  format: string;
  virtualSize: number;
  /** Bytes allocated on the host file system. */
  actualSize?: number;
  /** Backing file as written in the image (may be relative). */
  backingFilename?: string;
  /** Backing file resolved to a path qemu-img can open. */
  fullBackingFilename?: string;
  backingFormat?: string;
  dirty?: boolean;
  raw: Record<string, unknown>;
}

export interface QemuImgCheckResult {
  /** True when qemu-img found no corruption (leaked clusters are harmless). */
  ok: boolean;
  corruptions: number;
  leaks: number;
  checkErrors: number;
  exitCode: number | null;
  raw: Record<string, unknown>;
}

interface Common {
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface InfoOptions extends Common {
  /** Tell qemu-img the format instead of letting it probe (safer for untrusted files). */
  format?: string;
  /**
   * Open the image without taking QEMU's write lock (`-U`), so disks of running VMs can be
   * inspected. Default true: info only reads metadata.
   */
  forceShare?: boolean;
}

export interface ConvertOptions extends Common {
  srcFormat?: string;
  /** Default qcow2. */
  dstFormat?: string;
  /** Called with 0..100 as qemu-img reports progress (`-p`). */
  onProgress?: (percent: number) => void;
}

const INFO_TIMEOUT = 30_000;
const SMALL_TIMEOUT = 60_000;
/** Converting a multi-GiB image on a slow disk takes minutes. */
const CONVERT_TIMEOUT = 60 * 60_000;

export class QemuImg {
  constructor(
    private readonly runner: ProcessRunner,
    private readonly binary = 'qemu-img',
  ) {}

  /** `qemu-img info --output=json [-U] [-f FMT] PATH`. */
  async info(file: string, o: InfoOptions = {}): Promise<QemuImgInfo> {
    const r = await this.runner.run(this.binary, this.infoArgs(file, o, false), {
      timeoutMs: o.timeoutMs ?? INFO_TIMEOUT,
      signal: o.signal,
    });
    return parseInfo(JSON.parse(r.stdout) as Record<string, unknown>);
  }

  /** `qemu-img info --backing-chain`: the image first, then its backing files in order. */
  async infoChain(file: string, o: InfoOptions = {}): Promise<QemuImgInfo[]> {
    const r = await this.runner.run(this.binary, this.infoArgs(file, o, true), {
      timeoutMs: o.timeoutMs ?? INFO_TIMEOUT,
      signal: o.signal,
    });
    const parsed = JSON.parse(r.stdout) as unknown;
    const list = Array.isArray(parsed) ? parsed : [parsed];
    return list.map((x) => parseInfo(x as Record<string, unknown>));
  }

  private infoArgs(file: string, o: InfoOptions, chain: boolean): string[] {
    const args = ['info', '--output=json'];
    if (chain) args.push('--backing-chain');
    if (o.forceShare !== false) args.push('-U');
    if (o.format) args.push('-f', o.format);
    args.push(file);
    return args;
  }

  /** `qemu-img create -f FMT PATH SIZE`: a new empty disk. */
  async create(file: string, sizeBytes: number, o: Common & { format?: string } = {}): Promise<void> {
    checkSize(sizeBytes);
    await this.runner.run(this.binary, ['create', '-q', '-f', o.format ?? 'qcow2', file, String(sizeBytes)], {
      timeoutMs: o.timeoutMs ?? SMALL_TIMEOUT,
      signal: o.signal,
    });
  }

  /**
   * `qemu-img create -f qcow2 -b BASE -F FMT PATH [SIZE]`: a copy-on-write overlay. The backing
   * path is made absolute, so the overlay works wherever it is opened from.
   */
  async createOverlay(
    file: string,
    backing: string,
    o: Common & { backingFormat?: string; sizeBytes?: number } = {},
  ): Promise<void> {
    const args = ['create', '-q', '-f', 'qcow2', '-b', path.resolve(backing), '-F', o.backingFormat ?? 'qcow2', file];
    if (o.sizeBytes !== undefined) {
      checkSize(o.sizeBytes);
      args.push(String(o.sizeBytes));
    }
    await this.runner.run(this.binary, args, { timeoutMs: o.timeoutMs ?? SMALL_TIMEOUT, signal: o.signal });
  }

  /** `qemu-img convert [-p] [-f SRCFMT] -O DSTFMT SRC DST`: a full, standalone copy. */
  async convert(src: string, dst: string, o: ConvertOptions = {}): Promise<void> {
    const args = ['convert'];
    if (o.onProgress) args.push('-p');
    else args.push('-q');
    if (o.srcFormat) args.push('-f', o.srcFormat);
    args.push('-O', o.dstFormat ?? 'qcow2', src, dst);
    let pending = '';
    await this.runner.run(this.binary, args, {
      timeoutMs: o.timeoutMs ?? CONVERT_TIMEOUT,
      signal: o.signal,
      onStdout: o.onProgress
        ? (chunk) => {
            // qemu-img -p writes "    (12.34/100%)\r"
            pending += chunk.toString('utf8');
            const matches = [...pending.matchAll(/\((\d+(?:\.\d+)?)\/100%\)/g)];
            const last = matches.at(-1);
            if (last) {
              o.onProgress!(Number(last[1]));
              pending = pending.slice(last.index! + last[0].length);
            }
          }
        : undefined,
    });
  }

  /** `qemu-img resize [-f FMT] PATH SIZE`. Growing only: shrinking loses data, so it is refused here. */
  async resize(file: string, sizeBytes: number, o: Common & { format?: string } = {}): Promise<void> {
    checkSize(sizeBytes);
    const args = ['resize', '-q'];
    if (o.format) args.push('-f', o.format);
    args.push(file, String(sizeBytes));
    await this.runner.run(this.binary, args, { timeoutMs: o.timeoutMs ?? SMALL_TIMEOUT, signal: o.signal });
  }

  /** `qemu-img check --output=json [-f FMT] PATH`; resolves with the result instead of throwing on findings. */
  async check(file: string, o: Common & { format?: string } = {}): Promise<QemuImgCheckResult> {
    const args = ['check', '--output=json'];
    if (o.format) args.push('-f', o.format);
    args.push(file);
    const r = await this.runner.run(this.binary, args, {
      timeoutMs: o.timeoutMs ?? 10 * 60_000,
      signal: o.signal,
      reject: false,
    });
    // Exit codes: 0 clean, 1 check could not run, 2 corruptions, 3 only leaks, 63 format has no check.
    let raw: Record<string, unknown> = {};
    try {
      raw = JSON.parse(r.stdout) as Record<string, unknown>;
    } catch {
      // no JSON when the check could not run at all
    }
    const num = (k: string) => (typeof raw[k] === 'number' ? (raw[k] as number) : 0);
    const corruptions = num('corruptions');
    const checkErrors = num('check-errors');
    return {
      ok: (r.exitCode === 0 || r.exitCode === 3) && corruptions === 0 && checkErrors === 0,
      corruptions,
      leaks: num('leaks'),
      checkErrors,
      exitCode: r.exitCode,
      raw,
    };
  }
}

function checkSize(n: number): void {
  if (!Number.isSafeInteger(n) || n <= 0) throw new FalconError('INVALID_ARGUMENT', `disk size must be a positive whole number of bytes, got ${n}`);
}

/** Parses one object of `qemu-img info --output=json`. */
export function parseInfo(o: Record<string, unknown>): QemuImgInfo {
  const str = (k: string) => (typeof o[k] === 'string' ? (o[k] as string) : undefined);
  const num = (k: string) => (typeof o[k] === 'number' ? (o[k] as number) : undefined);
  const format = str('format');
  const virtualSize = num('virtual-size');
  if (format === undefined || virtualSize === undefined) {
    throw new FalconError('HOST_COMMAND_FAILED', `unexpected output from qemu-img info (no format or virtual-size): ${JSON.stringify(o).slice(0, 200)}`);
  }
  return {
    filename: str('filename') ?? '',
    format,
    virtualSize,
    actualSize: num('actual-size'),
    backingFilename: str('backing-filename'),
    fullBackingFilename: str('full-backing-filename'),
    backingFormat: str('backing-filename-format'),
    dirty: typeof o['dirty-flag'] === 'boolean' ? (o['dirty-flag'] as boolean) : undefined,
    raw: o,
  };
}
