/** Helpers shared by the built-in recipes. */
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { buildAgent } from '../../guest/agent-build.js';
import type { RecipeContext } from '../types.js';

/** Returns the path of a static falcon-agent binary for the guest. */
export type AgentProvider = (ctx: RecipeContext) => Promise<string>;

/** Builds (or reuses from the cache) falcon-agent with the guest layer's builder. */
export const defaultAgentBinary: AgentProvider = (ctx) =>
  buildAgent({ cacheDir: join(ctx.cacheDir, 'agent'), runner: ctx.runner, log: ctx.log, signal: ctx.signal });

/** A static file for the guest, from ./guest-files. */
export function guestFile(name: string): Promise<Buffer> {
  return readFile(new URL(`./guest-files/${name}`, import.meta.url));
}

/**
 * Makes a qcow2 disk holding an ext4 file system filled from `dir`, without mounting
 * anything: `mke2fs -d` writes the files, `qemu-img convert` makes the qcow2.
 */
export async function makeDiskImage(ctx: RecipeContext, dir: string, out: string, size: string, label: string): Promise<void> {
  const raw = join(ctx.workDir, `${label}.raw`);
  try {
    await ctx.runner.run(
      'mke2fs',
      ['-q', '-F', '-t', 'ext4', '-L', label, '-m', '0', '-E', 'root_owner=0:0', '-d', dir, raw, size],
      { timeoutMs: 10 * 60_000, signal: ctx.signal },
    );
    await ctx.runner.run('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, out], {
      timeoutMs: 10 * 60_000,
      signal: ctx.signal,
    });
  } finally {
    await rm(raw, { force: true });
  }
}
