/** Small helpers shared by the image store's parts: names, errno, sizes, files. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, realpath } from 'node:fs/promises';
import path from 'node:path';
import { HostCommandError } from '../host/process.js';
import { ImageError } from './errors.js';
import { imageNameProblem } from './meta.js';

export const GiB = 1024 ** 3;
/** How long user commands wait for another process holding an image's lock. */
export const SHORT_WAIT_MS = 30_000;
/** How long launch waits for another process that is building the image it needs. */
export const BUILD_WAIT_MS = 60 * 60_000;

export function checkName(name: string): void {
  const problem = imageNameProblem(name);
  if (problem) throw new ImageError('IMAGE_INVALID_NAME', `invalid image name '${name}': ${problem}`);
}

export function checkSegment(s: string, what: string): void {
  if (!s || s.length > 200 || s.includes('/') || s.includes('\0') || s.startsWith('.')) {
    throw new ImageError('IMAGE_INVALID_NAME', `invalid ${what} '${s}': it must be non-empty, not start with '.', and contain no '/'`);
  }
}

export async function readHead(file: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, offset);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

export async function sha256File(file: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20, signal })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function writeFileSynced(file: string, text: string): Promise<void> {
  const fh = await open(file, 'w', 0o600);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export function isNoSpace(err: unknown): boolean {
  if (errno(err) === 'ENOSPC') return true;
  if (err instanceof HostCommandError) return /no space left on device/i.test(err.stderr);
  return err instanceof Error && /no space left on device|ENOSPC/i.test(err.message);
}

/** `err`, or an IMAGE_NO_SPACE error when it was the disk running full. */
export function noSpace(err: unknown, what: string, root: string): unknown {
  if (err instanceof ImageError || !isNoSpace(err)) return err;
  return new ImageError(
    'IMAGE_NO_SPACE',
    `no space left on the device holding ${root} while ${what}; nothing was added. Free some space, or set FALCON_IMAGE_DIR to a directory on a bigger file system.`,
    { cause: err },
  );
}

export function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

export function firstLine(err: unknown, preferStderr = false): string {
  if (preferStderr && err instanceof HostCommandError && err.stderr.trim()) return err.stderr.trim().split('\n')[0]!;
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}

export async function realOrResolved(p: string): Promise<string> {
  return realpath(p).catch(() => path.resolve(p));
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
