/**
 * Builds the guest agent (guest-agent/falcon-agent.c) into a static binary, cached by the
 * sha256 of its source and compiler flags.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HostCommandError, type ProcessRunner } from '../host/process.js';
import type { Logger } from '../util/log.js';
import { FalconError } from '../util/errors.js';

/** Absolute path of the agent's C source in this package. */
export function agentSourcePath(): string {
  return fileURLToPath(new URL('../../guest-agent/falcon-agent.c', import.meta.url));
}

export const AGENT_CFLAGS: readonly string[] = ['-static', '-O2', '-s', '-std=c11', '-Wall', '-Wextra'];
const BUILD_TIMEOUT_MS = 120_000;

export interface BuildAgentOptions {
  /** Where built binaries are kept (created 0700 if missing). */
  cacheDir: string;
  runner: ProcessRunner;
  log: Logger;
  signal?: AbortSignal;
  /** The C compiler; default "gcc". */
  cc?: string;
}

/**
 * Compiles the agent with `gcc -static -O2` into `cacheDir/falcon-agent-<hash>` and returns
 * that path. Instant when already built: the hash covers the source and the flags. The binary
 * appears atomically (compiled to a temp name, then renamed).
 */
export async function buildAgent(opts: BuildAgentOptions): Promise<string> {
  opts.signal?.throwIfAborted();
  const src = agentSourcePath();
  const cc = opts.cc ?? 'gcc';
  let source: Buffer;
  try {
    source = await readFile(src);
  } catch (e) {
    throw new FalconError('IMAGE_BUILD_FAILED', `Cannot read the guest agent source ${src}: ${(e as Error).message}. The falcon package is incomplete; reinstall it.`, {
      cause: e,
    });
  }
  const hash = createHash('sha256').update(source).update('\0').update(AGENT_CFLAGS.join(' ')).digest('hex');
  const out = join(opts.cacheDir, `falcon-agent-${hash.slice(0, 16)}`);
  if (await isFile(out)) return out;

  await mkdir(opts.cacheDir, { recursive: true, mode: 0o700 });
  const tmp = `${out}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  opts.log.log({ kind: 'step', msg: `building the guest agent (${cc} -static) into ${out}` });
  try {
    await opts.runner.run(cc, [...AGENT_CFLAGS, '-o', tmp, src], { timeoutMs: BUILD_TIMEOUT_MS, signal: opts.signal });
    await chmod(tmp, 0o755);
    await rename(tmp, out);
  } catch (e) {
    await rm(tmp, { force: true });
    if (e instanceof HostCommandError && (e.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
      throw new FalconError('IMAGE_BUILD_FAILED', `Cannot build the guest agent: the C compiler "${cc}" is not installed. Install it (apt-get install gcc libc6-dev).`, {
        cause: e,
      });
    }
    if (e instanceof HostCommandError && /cannot find -lc|static/i.test(e.stderr)) {
      throw new FalconError(
        'IMAGE_BUILD_FAILED',
        `Cannot build the guest agent statically: ${e.stderr.trim().split('\n').pop()}. Install the static C library (apt-get install libc6-dev).`,
        { cause: e },
      );
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
