/** Helpers shared by the built-in recipes. */
import { copyFile, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildAgent } from '../../guest/agent-build.js';
import type { Recipe, RecipeContext, RecipeResult } from '../types.js';
import { buildInitramfs, type ModuleInfo } from './initramfs.js';

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

/**
 * Copies the kernel `<bootDir>/vmlinuz-<release>` to `out` for direct boot. If it can, it unpacks the vmlinux ELF from the bzImage:
 * QEMU boots that through the PVH entry point, which skips the in-guest XZ decompression
 * (about 2-3 s under TCG). Falls back to the bzImage as it is.
 */
export async function installKernel(ctx: RecipeContext, bootDir: string, release: string, out: string): Promise<void> {
  const bzImage = join(bootDir, `vmlinuz-${release}`);
  const config = await readFile(join(bootDir, `config-${release}`), 'utf8').catch(() => '');
  const img = await readFile(bzImage);
  const at = img.indexOf(XZ_MAGIC);
  if (!/^CONFIG_PVH=y$/m.test(config) || at < 0) {
    ctx.log.log({ kind: 'warn', msg: `kernel ${release}: no PVH entry or no XZ payload, so it boots from the compressed bzImage (slower)` });
    await copyFile(bzImage, out);
    return;
  }
  const payload = join(ctx.workDir, 'vmlinux.xz');
  await writeFile(payload, img.subarray(at));
  // --single-stream: the bzImage has trailing data after the XZ stream.
  const r = await ctx.runner.run('xz', ['-dc', '--single-stream', payload], { timeoutMs: 120_000, signal: ctx.signal });
  await rm(payload, { force: true });
  if (!r.stdoutBuffer.subarray(0, 4).equals(ELF_MAGIC)) {
    ctx.log.log({ kind: 'warn', msg: `kernel ${release}: the unpacked payload is not an ELF file; booting the bzImage` });
    await copyFile(bzImage, out);
    return;
  }
  await writeFile(out, r.stdoutBuffer);
}

const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

export interface RecipeOptions {
  /** Where falcon-agent comes from; default: build it with buildAgent. */
  agent?: AgentProvider;
}

/** A recipe whose build gets the agent provider; the options exist for tests. */
export function defineRecipe(
  r: Omit<Recipe, 'build'> & { build(ctx: RecipeContext, agent: AgentProvider): Promise<RecipeResult> },
  opts: RecipeOptions = {},
): Recipe {
  return {
    name: r.name,
    version: r.version,
    description: r.description,
    ...(r.acceptsPackages ? { acceptsPackages: true } : {}),
    build: (ctx) => r.build(ctx, opts.agent ?? defaultAgentBinary),
  };
}

/**
 * The boot files of a direct-boot image: `initrd.img` (the busybox initramfs that mounts the
 * root disk) and `vmlinuz` (the kernel), in ctx.outDir.
 */
export async function writeBootFiles(
  ctx: RecipeContext,
  o: { busybox: string; kernelTree: string; release: string; modules: ReadonlyMap<string, ModuleInfo> },
): Promise<void> {
  const initrd = await buildInitramfs({
    runner: ctx.runner,
    busybox: o.busybox,
    kernelTree: o.kernelTree,
    release: o.release,
    modules: o.modules,
    init: await guestFile('initramfs-init.sh'),
    workDir: ctx.workDir,
    stripSignatures: true,
    signal: ctx.signal,
  });
  await writeFile(join(ctx.outDir, 'initrd.img'), initrd);
  await installKernel(ctx, join(o.kernelTree, 'boot'), o.release, join(ctx.outDir, 'vmlinuz'));
}
