/**
 * HTTP(S) downloads with Node's fetch: streamed to a file, hashed on the way, with progress
 * events and a stall timeout (a whole-download timeout would be wrong for multi-GiB images).
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Logger } from '../util/log.js';
import { FalconError } from '../util/errors.js';
import { TimeoutError } from '../util/abort.js';

export interface DownloadProgress {
  done: number;
  /** From Content-Length, when the server sent one. */
  total?: number;
}

export interface DownloadOptions {
  signal?: AbortSignal;
  log?: Logger;
  /** Label for progress events; default the URL. */
  what?: string;
  onProgress?: (p: DownloadProgress) => void;
  /** Give up when no data arrives for this long. Default 60 s. */
  stallTimeoutMs?: number;
  /** Minimum interval between progress events. Default 250 ms. */
  progressIntervalMs?: number;
}

export interface DownloadResult {
  bytes: number;
  sha256: string;
}

export class DownloadError extends FalconError {
  override name = 'DownloadError';
  readonly url: string;
  /** The HTTP status, when the server answered. */
  readonly status?: number;
  constructor(o: { message: string; url: string; status?: number; cause?: unknown }) {
    super('DOWNLOAD_FAILED', o.message, 'cause' in o ? { cause: o.cause } : undefined);
    this.url = o.url;
    this.status = o.status;
  }
}

/** `url` as a URL Falcon downloads from (http or https); a DownloadError naming it otherwise. */
function downloadUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new DownloadError({ message: `'${url}' is not a valid URL; give a full http:// or https:// address`, url });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new DownloadError({
      message: `cannot download '${url}': only http:// and https:// URLs are supported (for a local file use \`falcon image import\`)`,
      url,
    });
  }
  return parsed;
}

/** The response to GET `url`, with a body; a DownloadError for a network error or an HTTP error status. */
async function get(parsed: URL, url: string, signal: AbortSignal, caller?: AbortSignal): Promise<Response & { body: ReadableStream<Uint8Array> }> {
  let res: Response;
  try {
    res = await fetch(parsed, { signal, redirect: 'follow' });
  } catch (err) {
    caller?.throwIfAborted();
    throw new DownloadError({ message: `could not download ${url}: ${describe(err)}; check the URL and the network`, url, cause: err });
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel().catch(() => {});
    throw new DownloadError({
      message: `could not download ${url}: the server answered HTTP ${res.status} ${res.statusText}`.trimEnd() + (res.status === 404 ? '; check the URL' : ''),
      url,
      status: res.status,
    });
  }
  return res as Response & { body: ReadableStream<Uint8Array> };
}

/** Counts and hashes what passes, reports progress at most every `interval` ms, and calls `kick` for every chunk (the stall timer). */
function meter(o: DownloadOptions, what: string, total: number | undefined, kick: () => void) {
  const hash = createHash('sha256');
  let done = 0;
  let lastReport = 0;
  const interval = o.progressIntervalMs ?? 250;
  const report = (force: boolean) => {
    const now = Date.now();
    if (!force && now - lastReport < interval) return;
    lastReport = now;
    o.log?.log({ kind: 'progress', what: `downloading ${what}`, done, total, unit: 'bytes' });
    o.onProgress?.({ done, total });
  };
  const stream = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      kick();
      hash.update(chunk);
      done += chunk.length;
      report(false);
      cb(null, chunk);
    },
  });
  return { stream, report, done: () => done, sha256: () => hash.digest('hex') };
}

/** Downloads `url` to `dest` (created 0600, overwritten). Rejects with DownloadError on HTTP errors. */
export async function download(url: string, dest: string, o: DownloadOptions = {}): Promise<DownloadResult> {
  const parsed = downloadUrl(url);
  const stallMs = o.stallTimeoutMs ?? 60_000;
  const stall = new AbortController();
  let stallTimer: NodeJS.Timeout | undefined;
  const kick = () => {
    clearTimeout(stallTimer);
    stallTimer = setTimeout(() => stall.abort(new TimeoutError(`no data for ${stallMs / 1000} s`)), stallMs);
  };
  const signal = o.signal ? AbortSignal.any([o.signal, stall.signal]) : stall.signal;
  kick();
  try {
    const res = await get(parsed, url, signal, o.signal);
    const lengthHeader = res.headers.get('content-length');
    const total = lengthHeader && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : undefined;
    const m = meter(o, o.what ?? url, total, kick);
    m.report(true);
    try {
      await pipeline(Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>), m.stream, createWriteStream(dest, { mode: 0o600 }), { signal });
    } catch (err) {
      o.signal?.throwIfAborted();
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC') throw err;
      if (stall.signal.aborted) throw new DownloadError({ message: `download of ${url} stalled: ${describe(stall.signal.reason)}`, url, cause: err });
      throw new DownloadError({ message: `download of ${url} failed after ${m.done()} bytes: ${describe(err)}`, url, cause: err });
    }
    m.report(true);
    if (total !== undefined && m.done() !== total) {
      throw new DownloadError({ message: `download of ${url} was cut short: got ${m.done()} of ${total} bytes; try again`, url });
    }
    return { bytes: m.done(), sha256: m.sha256() };
  } finally {
    clearTimeout(stallTimer);
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    return cause instanceof Error ? `${err.message} (${cause.message})` : err.message;
  }
  return String(err);
}
