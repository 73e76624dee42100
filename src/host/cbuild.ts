/**
 * Builds one of the package's C programs (the guest agent, the impairment helper) into a static
 * binary, cached by the sha256 of its source and compiler flags.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { HostCommandError, type ProcessRunner } from './process.js';
import type { Logger } from '../util/log.js';
import { FalconError, type FalconErrorCode } from '../util/errors.js';

export const STATIC_CFLAGS: readonly string[] = ['-static', '-O2', '-s', '-std=c11', '-Wall', '-Wextra'];
const BUILD_TIMEOUT_MS = 120_000;

export interface BuildStaticOptions {
  /** Absolute path of the C source. */
  source: string;
  /** Base name of the binary: `<cacheDir>/<name>-<hash>`. */
  name: string;
  /** What it is, for messages: "the guest agent". */
  what: string;
  /** The error code a failure carries. */
  code: FalconErrorCode;
  /** Where built binaries are kept (created 0700 if missing). */
  cacheDir: string;
  runner: ProcessRunner;
  log: Logger;
  signal?: AbortSignal;
  /** The C compiler; default "gcc". */
  cc?: string;
}

/**
 * Compiles `source` with `gcc -static -O2` into `cacheDir/<name>-<hash>` and returns that path.
 * Instant when already built: the hash covers the source and the flags. The binary appears
 * atomically (compiled to a temp name, then renamed).
 */
export async function buildStatic(o: BuildStaticOptions): Promise<string> {
  o.signal?.throwIfAborted();
  const cc = o.cc ?? 'gcc';
  let source: Buffer;
  try {
    source = await readFile(o.source);
  } catch (e) {
    throw new FalconError(o.code, `Cannot read the source of ${o.what}, ${o.source}: ${(e as Error).message}. The falcon package is incomplete; reinstall it.`, { cause: e });
  }
  const hash = createHash('sha256').update(source).update('\0').update(STATIC_CFLAGS.join(' ')).digest('hex');
  const out = join(o.cacheDir, `${o.name}-${hash.slice(0, 16)}`);
  if (await isFile(out)) return out;

  await mkdir(o.cacheDir, { recursive: true, mode: 0o700 });
  const tmp = `${out}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  o.log.log({ kind: 'step', msg: `building ${o.what} (${cc} -static) into ${out}` });
  try {
    await o.runner.run(cc, [...STATIC_CFLAGS, '-o', tmp, o.source], { timeoutMs: BUILD_TIMEOUT_MS, signal: o.signal });
    await chmod(tmp, 0o755);
    await rename(tmp, out);
  } catch (e) {
    await rm(tmp, { force: true });
    if (e instanceof HostCommandError && (e.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
      throw new FalconError(o.code, `Cannot build ${o.what}: the C compiler "${cc}" is not installed. Install it (apt-get install gcc libc6-dev).`, { cause: e });
    }
    if (e instanceof HostCommandError && /cannot find -lc|static/i.test(e.stderr)) {
      throw new FalconError(o.code, `Cannot build ${o.what} statically: ${e.stderr.trim().split('\n').pop()}. Install the static C library (apt-get install libc6-dev).`, {
        cause: e,
      });
    }
    throw e;
  }
  return out;
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}
