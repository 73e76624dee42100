import { promises as fs } from 'node:fs';
import { acquireLock } from '../util/lock.js';
import type { RunContext } from './context.js';

export type TopologyLock = AsyncDisposable & { release(): Promise<void> };

/** Create the falcon dir (owner-only) when missing. */
export async function ensureFalconDir(c: RunContext): Promise<void> {
  await fs.mkdir(c.paths.dir, { recursive: true, mode: 0o700 });
}

/** Commands that change the topology hold this lock, so two never interleave. */
export async function topologyLock(c: RunContext, topology: string, purpose: string): Promise<TopologyLock> {
  await ensureFalconDir(c);
  const release = await acquireLock(c.paths.lockFile, { what: `topology "${topology}" (${c.paths.dir})`, purpose, waitMs: 0, log: c.log });
  return { release, [Symbol.asyncDispose]: release };
}
