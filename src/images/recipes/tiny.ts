/**
 * The `tiny` image: Debian's 6.1 kernel booted directly, a busybox initramfs that mounts an
 * ext4 root disk holding busybox-static, the kernel modules a node needs and falcon-agent.
 * Built only from Debian packages, without root-only tricks (no loop mounts).
 */
import { chmod, copyFile, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Recipe, RecipeContext, RecipeResult } from '../types.js';
import { downloadDebs, debPath, extractDeb, resolveKernelPackage, resolvePackage, type DebContext } from './debian-packages.js';
import { depmod, installModules, moduleClosure, parseModulesDep, INITRAMFS_MODULES } from './initramfs.js';
import { defineRecipe, guestFile, makeDiskImage, writeBootFiles, type AgentProvider, type RecipeOptions } from './common.js';

/**
 * Modules on the root disk: the initramfs set plus what rcS loads, with their dependencies.
 * `nvme` (with nvme-core, t10-pi and its CRCs) is for `d.disk()` NVMe disks; rcS loads it only
 * when the node has an NVMe controller, so it costs other nodes nothing at boot.
 */
export const TINY_ROOT_MODULES = [...INITRAMFS_MODULES, 'virtio_net', 'virtio_console', '9pnet_virtio', '9p', 'nvme'] as const;

/**
 * Flags that only make the boot faster, measured under TCG (docs/performance.md).
 * `pci=noacpi` routes PCI interrupts without ACPI's interrupt-link AML, which costs ~110 ms per
 * virtio device probe (virtio uses MSI-X; INTx routing comes from SeaBIOS's $PIR table);
 * `cryptomgr.notests` skips the self-tests of the kernel's crypto algorithms (~0.25 s).
 */
export const TINY_FAST_BOOT_FLAGS = ['pci=noacpi', 'cryptomgr.notests'] as const;

/**
 * Kernel command line. `quiet` keeps the console for the shell; no_timer_check and
 * tsc=reliable skip clock checks that are slow and pointless under emulation, and
 * mitigations=off skips CPU-bug work-arounds a test VM does not need (together ~0.1 s).
 */
export const TINY_CMDLINE = ['console=ttyS0 root=/dev/vda rootfstype=ext4 rw quiet no_timer_check tsc=reliable mitigations=off', ...TINY_FAST_BOOT_FLAGS].join(' ');

export const TINY_DISK_SIZE = '256M';

/** Makes the tiny recipe; the options exist for tests. */
export function createTinyRecipe(opts: RecipeOptions = {}): Recipe {
  return defineRecipe({ name: 'tiny', version: 4, description: 'Debian 6.1 kernel + busybox, boots in seconds under TCG (default image)', build: buildTiny }, opts);
}

export const tinyRecipe: Recipe = createTinyRecipe();

async function buildTiny(ctx: RecipeContext, agentProvider: AgentProvider): Promise<RecipeResult> {
  const { log, runner, signal } = ctx;
  const step = (msg: string) => log.log({ kind: 'step', msg: `tiny: ${msg}` });
  const dctx: DebContext = { cacheDir: ctx.cacheDir, runner, log, signal };

  step('resolving Debian packages');
  const [{ pkg: kernelPkg, release }, bbPkg] = await Promise.all([
    resolveKernelPackage(dctx, 'linux-image-amd64'),
    resolvePackage(dctx, 'busybox-static'),
  ]);
  // The agent build (a C compile) runs while packages download and unpack.
  const agentPromise = agentProvider(ctx);
  agentPromise.catch(() => {}); // awaited below; avoid an unhandled rejection meanwhile
  await downloadDebs(dctx, [kernelPkg, bbPkg]);

  step(`unpacking ${kernelPkg.name} ${kernelPkg.version} and ${bbPkg.name}`);
  const kernelTree = join(ctx.workDir, 'kernel');
  const bbTree = join(ctx.workDir, 'busybox');
  await Promise.all([extractDeb(dctx, debPath(dctx, kernelPkg), kernelTree), extractDeb(dctx, debPath(dctx, bbPkg), bbTree)]);
  await depmod(runner, kernelTree, release, signal);
  const modules = parseModulesDep(await readFile(join(kernelTree, 'lib/modules', release, 'modules.dep'), 'utf8'));
  const busybox = join(bbTree, 'bin/busybox');

  step('building the initramfs');
  await writeBootFiles(ctx, { busybox, kernelTree, release, modules });

  step('building the root file system');
  const root = join(ctx.workDir, 'root');
  await populateRoot(ctx, root, busybox);
  await installModules(runner, kernelTree, root, release, moduleClosure(modules, TINY_ROOT_MODULES, release), {
    stripSignatures: true,
    signal,
  });
  step('waiting for falcon-agent');
  const agent = await agentPromise;
  await copyFile(agent, join(root, 'sbin/falcon-agent'));
  await chmod(join(root, 'sbin/falcon-agent'), 0o755);
  // The unpacked kernel is 400 MB; drop it before making the disk.
  await rm(kernelTree, { recursive: true, force: true });

  step(`making the ${TINY_DISK_SIZE} ext4 disk`);
  await makeDiskImage(ctx, root, join(ctx.outDir, 'disk.qcow2'), TINY_DISK_SIZE, 'falcon-root');

  return {
    disk: 'disk.qcow2',
    boot: { method: 'direct', kernel: 'vmlinuz', initrd: 'initrd.img', cmdline: TINY_CMDLINE },
    exec: 'agent',
    description: `busybox ${bbPkg.version} on Linux ${release} (${kernelPkg.version}), from Debian packages`,
  };
}

/** The root file system: busybox and its applet links, /etc, mount points, init scripts. */
async function populateRoot(ctx: RecipeContext, root: string, busybox: string): Promise<void> {
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'lib', 'etc/init.d', 'proc', 'sys', 'dev', 'run', 'mnt', 'var/log', 'home']) {
    await mkdir(join(root, d), { recursive: true });
  }
  await mkdir(join(root, 'tmp'), { mode: 0o1777 });
  await chmod(join(root, 'tmp'), 0o1777);
  await mkdir(join(root, 'root'), { mode: 0o700 });
  await symlink('../run', join(root, 'var/run'));
  await copyFile(busybox, join(root, 'bin/busybox'));
  await chmod(join(root, 'bin/busybox'), 0o755);
  // The applet list comes from the binary itself (it is static, so it runs on the host).
  const list = await ctx.runner.run(busybox, ['--list-full'], { timeoutMs: 30_000, signal: ctx.signal });
  for (const applet of list.stdout.split('\n').map((l) => l.trim()).filter(Boolean)) {
    if (applet === 'bin/busybox') continue;
    const path = join(root, applet);
    await mkdir(dirname(path), { recursive: true });
    await symlink('/bin/busybox', path).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
  }

  const etc = (name: string, text: string | Buffer, mode = 0o644) =>
    writeFile(join(root, 'etc', name), text, { mode }).then(() => chmod(join(root, 'etc', name), mode));
  await etc('inittab', await guestFile('tiny-inittab'));
  await etc('init.d/rcS', await guestFile('tiny-rcS.sh'), 0o755);
  await etc('init.d/falcon-agent', await guestFile('tiny-falcon-agent.sh'), 0o755);
  await etc('profile', await guestFile('tiny-profile'));
  await etc('passwd', 'root:x:0:0:root:/root:/bin/sh\n');
  await etc('shadow', 'root::19000:0:99999:7:::\n', 0o600);
  await etc('group', 'root:x:0:\ntty:x:5:\n');
  await etc('hostname', 'falcon\n');
  await etc('hosts', '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n');
  await etc('fstab', '/dev/vda\t/\text4\trw\t0\t1\n');
  await etc('os-release', 'NAME="Falcon tiny"\nID=falcon-tiny\nPRETTY_NAME="Falcon tiny (busybox on Debian\'s Linux)"\n');
}
