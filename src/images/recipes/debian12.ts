/**
 * The `debian-12` image: a Debian bookworm minbase system with systemd, made by mmdebstrap,
 * booted directly with its own kernel and the small busybox initramfs of the tiny image.
 * Root autologin on ttyS0, falcon-agent started by udev when its virtio-serial port appears.
 */
import { chmod, copyFile, mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HostCommandError } from '../../host/process.js';
import { ImageError } from '../errors.js';
import type { Recipe, RecipeContext, RecipeResult } from '../types.js';
import { debPath, downloadDebs, extractDeb, resolvePackage, type DebContext } from './debian-packages.js';
import { depmod, parseModulesDep } from './initramfs.js';
import { defineRecipe, guestFile, makeDiskImage, writeBootFiles, type AgentProvider, type RecipeOptions } from './common.js';

export const DEBIAN12_PACKAGES = [
  'systemd-sysv',
  'udev',
  'iproute2',
  'iputils-ping',
  'tcpdump',
  'iperf3',
  'qemu-guest-agent',
  'kmod',
  'procps',
  'linux-image-amd64',
] as const;

/** net.ifnames=0: classic eth0, eth1, ... in PCI order, as in the tiny image. */
export const DEBIAN12_CMDLINE =
  'console=ttyS0 root=/dev/vda rootfstype=ext4 rw net.ifnames=0 quiet no_timer_check tsc=reliable mitigations=off';

export const DEBIAN12_DISK_SIZE = '2G';

const MMDEBSTRAP_TIMEOUT_MS = 30 * 60_000;

/** Makes the debian-12 recipe; the options exist for tests. */
export function createDebian12Recipe(opts: RecipeOptions = {}): Recipe {
  return defineRecipe(
    {
      name: 'debian-12',
      version: 2,
      description: 'Debian 12 (bookworm) minbase with systemd, iproute2, tcpdump, iperf3; boots in ~15 s under TCG',
      acceptsPackages: true,
      build: buildDebian12,
    },
    opts,
  );
}

export const debian12Recipe: Recipe = createDebian12Recipe();

async function buildDebian12(ctx: RecipeContext, agentProvider: AgentProvider): Promise<RecipeResult> {
  const { log, runner, signal } = ctx;
  const step = (msg: string) => log.log({ kind: 'step', msg: `debian-12: ${msg}` });
  if (process.getuid?.() !== 0) {
    // mmdebstrap's directory output and mke2fs -d need real root ownership of the files.
    throw new ImageError('IMAGE_BUILD_FAILED', 'Building the debian-12 image needs root (mmdebstrap writes a root-owned tree). Fix: run the build as root.');
  }
  const dctx: DebContext = { cacheDir: ctx.cacheDir, runner, log, signal };
  const agentPromise = agentProvider(ctx);
  agentPromise.catch(() => {}); // awaited below

  step('resolving busybox-static for the initramfs');
  const bbPkg = await resolvePackage(dctx, 'busybox-static');
  await downloadDebs(dctx, [bbPkg]);
  const bbTree = join(ctx.workDir, 'busybox');
  await extractDeb(dctx, debPath(dctx, bbPkg), bbTree);

  const root = join(ctx.workDir, 'root');
  const debCache = join(ctx.cacheDir, 'mmdebstrap-debs');
  await mkdir(debCache, { recursive: true });
  const hook = join(ctx.workDir, 'mmdebstrap-hook.sh');
  await writeFile(hook, await guestFile('debian12-mmdebstrap-hook.sh'), { mode: 0o755 });
  const packages = ctx.packages ?? [];
  const extra = packages.length ? ` and ${packages.join(', ')}` : '';
  if (packages.length) {
    // A dry run resolves everything in seconds, so a misspelt package fails before the minutes
    // the real run spends installing the essential set.
    step(`checking that Debian bookworm has ${packages.join(', ')} (mmdebstrap --simulate)`);
    try {
      await runner.run('mmdebstrap', mmdebstrapCheckArgs(join(ctx.workDir, 'simulate.tar'), packages), { timeoutMs: MMDEBSTRAP_TIMEOUT_MS, signal });
    } catch (err) {
      throw mmdebstrapFailure(err, packages, signal);
    }
  }
  step(`running mmdebstrap (bookworm minbase + ${DEBIAN12_PACKAGES.length} packages${extra}); this takes a minute or more`);
  let lastLine = '';
  try {
    await runner.run('mmdebstrap', mmdebstrapArgs(hook, root, packages), {
      timeoutMs: MMDEBSTRAP_TIMEOUT_MS,
      signal,
      env: { ...process.env, FALCON_DEB_CACHE: debCache },
      // mmdebstrap reports its phases as "I: ..." lines on stderr.
      onStderr: (chunk) => {
        for (const line of chunk.toString('utf8').split('\n')) {
          if (line.startsWith('I: ') && line !== lastLine) {
            lastLine = line;
            log.log({ kind: 'step', level: 'debug', msg: `debian-12: mmdebstrap ${line.slice(3)}` });
          }
        }
      },
    });
  } catch (err) {
    throw mmdebstrapFailure(err, packages, signal);
  }

  step('configuring the root file system');
  const release = await kernelRelease(root);
  await configureRoot(root, await agentPromise);
  await pruneModules(ctx, root, release);

  step('building the kernel and initramfs');
  // The kernel package's postinst ran depmod in the chroot.
  const modules = parseModulesDep(await readFile(join(root, 'lib/modules', release, 'modules.dep'), 'utf8'));
  await writeBootFiles(ctx, { busybox: join(bbTree, 'bin/busybox'), kernelTree: root, release, modules });

  step(`making the ${DEBIAN12_DISK_SIZE} ext4 disk`);
  await makeDiskImage(ctx, root, join(ctx.outDir, 'disk.qcow2'), DEBIAN12_DISK_SIZE, 'falcon-root');
  await rm(root, { recursive: true, force: true });

  return {
    disk: 'disk.qcow2',
    boot: { method: 'direct', kernel: 'vmlinuz', initrd: 'initrd.img', cmdline: DEBIAN12_CMDLINE },
    exec: 'agent',
    login: { user: 'root' },
    description: `Debian 12 (bookworm) minbase + systemd on Linux ${release}`,
  };
}

/** The mmdebstrap command line: minbase, the image's packages plus `extra`, the hook at each stage. */
export function mmdebstrapArgs(hook: string, root: string, extra: readonly string[] = []): string[] {
  return [
    '--variant=minbase',
    `--include=${[...DEBIAN12_PACKAGES, ...extra].join(',')}`,
    // No documentation, man pages or translations in a lab VM (copyright files stay).
    '--dpkgopt=path-exclude=/usr/share/man/*',
    '--dpkgopt=path-exclude=/usr/share/info/*',
    '--dpkgopt=path-exclude=/usr/share/locale/*',
    '--dpkgopt=path-exclude=/usr/share/doc/*',
    '--dpkgopt=path-include=/usr/share/doc/*/copyright',
    `--setup-hook=${hook}`,
    `--essential-hook=${hook}`,
    `--customize-hook=${hook}`,
    // Ends the options: the suite and target never read as options.
    '--',
    'bookworm',
    root,
  ];
}

/** A dry run of the same package set: resolves them all without downloading or installing. */
export function mmdebstrapCheckArgs(target: string, extra: readonly string[]): string[] {
  return ['--simulate', '--variant=minbase', `--include=${[...DEBIAN12_PACKAGES, ...extra].join(',')}`, '--', 'bookworm', target];
}

/**
 * A failed mmdebstrap as IMAGE_BUILD_FAILED: packages apt does not know are named (from apt's
 * "Unable to locate package X" / "Package 'X' has no installation candidate"), anything else
 * carries apt's error lines rather than the whole log.
 */
export function mmdebstrapFailure(err: unknown, extra: readonly string[], signal?: AbortSignal): unknown {
  if (signal?.aborted || !(err instanceof HostCommandError)) return err;
  const missing = new Set<string>();
  for (const m of err.stderr.matchAll(/^E: (?:Unable to locate package (\S+)|Package '([^']+)' has no installation candidate)/gm)) {
    missing.add((m[1] ?? m[2])!);
  }
  if (missing.size) {
    const names = [...missing];
    const yours = names.filter((n) => extra.includes(n));
    return new ImageError(
      'IMAGE_BUILD_FAILED',
      `cannot build debian-12: Debian bookworm has no package ${names.map((n) => `'${n}'`).join(', ')}` +
        (yours.length ? ' (given with --packages)' : '') +
        '. Check the spelling (apt-cache search NAME, or https://packages.debian.org/bookworm/); nothing was added to the store.',
      { cause: err },
    );
  }
  const errors = err.stderr.split('\n').filter((l) => l.startsWith('E: ')).slice(0, 5);
  const detail = errors.length ? errors.join('\n') : err.stderr.trim().split('\n').slice(-5).join('\n');
  return new ImageError('IMAGE_BUILD_FAILED', `mmdebstrap failed while building debian-12 (exit ${err.exitCode ?? 'signal'}):\n${detail}`, { cause: err });
}

/** Module directories of hardware a QEMU guest never has (about 170 MB of the 390 MB). */
export const DEBIAN12_PRUNED_MODULE_DIRS = [
  'kernel/drivers/gpu',
  'kernel/drivers/media',
  'kernel/drivers/infiniband',
  'kernel/drivers/iio',
  'kernel/drivers/staging',
  'kernel/drivers/bluetooth',
  'kernel/drivers/net/wireless',
  'kernel/sound',
  'kernel/net/bluetooth',
  'kernel/net/mac80211',
  'kernel/net/wireless',
] as const;

async function pruneModules(ctx: RecipeContext, root: string, release: string): Promise<void> {
  const base = join(root, 'lib/modules', release);
  for (const d of DEBIAN12_PRUNED_MODULE_DIRS) await rm(join(base, d), { recursive: true, force: true });
  await depmod(ctx.runner, root, release, ctx.signal);
}

/** The one kernel release installed in the tree (from /boot/vmlinuz-<release>). */
async function kernelRelease(root: string): Promise<string> {
  const kernels = (await readdir(join(root, 'boot'))).filter((f) => f.startsWith('vmlinuz-')).map((f) => f.slice('vmlinuz-'.length));
  if (kernels.length !== 1) {
    throw new ImageError('IMAGE_BUILD_FAILED', `The debian-12 tree has ${kernels.length} kernels in /boot (${kernels.join(', ')}), expected exactly one.`);
  }
  return kernels[0]!;
}

async function configureRoot(root: string, agent: string): Promise<void> {
  const put = async (path: string, data: string | Buffer, mode = 0o644) => {
    const full = join(root, path);
    await mkdir(join(full, '..'), { recursive: true });
    await writeFile(full, data, { mode });
    await chmod(full, mode);
  };
  await copyFile(agent, join(root, 'usr/sbin/falcon-agent'));
  await chmod(join(root, 'usr/sbin/falcon-agent'), 0o755);
  await put('etc/systemd/system/falcon-agent.service', await guestFile('falcon-agent.service'));
  await put('etc/udev/rules.d/60-falcon-agent.rules', await guestFile('60-falcon-agent.rules'));
  await put('etc/systemd/system/falcon-booted.service', await guestFile('falcon-booted.service'));
  await mkdir(join(root, 'etc/systemd/system/multi-user.target.wants'), { recursive: true });
  await symlink('/etc/systemd/system/falcon-booted.service', join(root, 'etc/systemd/system/multi-user.target.wants/falcon-booted.service'));
  await put('etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf', await guestFile('serial-getty-autologin.conf'));
  // Empty root password (the image is a lab VM reachable only through its console and agent).
  const shadow = await readFile(join(root, 'etc/shadow'), 'utf8');
  await put('etc/shadow', shadow.replace(/^root:[^:]*:/m, 'root::'), 0o640);
  // Loaded before falcon-agent starts (it is ordered after sysinit), so a command run
  // through the agent already sees eth0..ethN and can mount 9p shares.
  await put('etc/modules-load.d/falcon.conf', 'virtio_net\nvirtio_console\n9pnet_virtio\n9p\n');
  await put('etc/fstab', '/dev/vda\t/\text4\trw,errors=remount-ro\t0\t0\n');
  await put('etc/hostname', 'falcon\n');
  await put('etc/hosts', '127.0.0.1\tlocalhost\n127.0.1.1\tfalcon\n::1\tlocalhost ip6-localhost ip6-loopback\n');
  // mmdebstrap copies the build host's resolv.conf; the guest has no DNS of its own.
  await rm(join(root, 'etc/resolv.conf'), { force: true });
  // Units that only slow a short-lived test VM down.
  for (const unit of ['apt-daily.timer', 'apt-daily-upgrade.timer', 'e2scrub_all.timer', 'fstrim.timer', 'systemd-timesyncd.service']) {
    await symlink('/dev/null', join(root, 'etc/systemd/system', unit)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
  }
}
