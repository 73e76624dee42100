import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HostCommandError, recordingRunner, type RunResult } from '../../src/host/process.js';
import { ImageError } from '../../src/images/errors.js';
import { createDebian12Recipe, DEBIAN12_PACKAGES, mmdebstrapArgs, mmdebstrapFailure } from '../../src/images/recipes/debian12.js';
import { silentLogger } from '../../src/util/log.js';
import { debFileName, parseControl, resolveKernelPackage, resolvePackage } from '../../src/images/recipes/debian-packages.js';
import { moduleClosure, parseModulesDep, stripModuleSignature, writeCpio } from '../../src/images/recipes/initramfs.js';
import { builtinRecipes, getRecipe } from '../../src/images/recipes/index.js';
import { BUILTIN_RECIPE_NAMES } from '../../src/images/recipes/names.js';

describe('built-in recipe names', () => {
  it('lists the recipes of index.ts (the store answers isBuiltin from the list without loading them)', () => {
    expect([...BUILTIN_RECIPE_NAMES].sort()).toEqual(Object.keys(builtinRecipes).sort());
  });
});

describe('debian packages', () => {
  it('parses the first stanza of apt-cache show', () => {
    const f = parseControl('Package: a\nVersion: 1:2.0-1\nDescription: x\n more\n\nPackage: b\n');
    expect(f).toEqual({ Package: 'a', Version: '1:2.0-1', Description: 'x\nmore' });
  });

  it('names files like apt-get download', () => {
    expect(debFileName('busybox-static', '1:1.35.0-4', 'amd64')).toBe('busybox-static_1%3a1.35.0-4_amd64.deb');
  });

  it('runs apt-get update once when apt does not know a package, then asks again', async () => {
    let updated = false;
    const runner = recordingRunner((cmd, args) => {
      if (cmd === 'apt-get') {
        updated = true;
        return {};
      }
      if (!updated) return { exitCode: 100, stderr: 'N: Unable to locate package busybox-static\nE: No packages found\n' };
      return { stdout: `Package: ${args[2]}\nVersion: 1:1.35.0-4\nArchitecture: amd64\nSize: 928188\n` };
    });
    const ctx = { cacheDir: '/nonexistent', runner, log: silentLogger };
    const [a, b] = await Promise.all([resolvePackage(ctx, 'busybox-static'), resolvePackage(ctx, 'busybox-static')]);
    expect(a.version).toBe('1:1.35.0-4');
    expect(b.fileName).toBe('busybox-static_1%3a1.35.0-4_amd64.deb');
    expect(runner.calls.filter((c) => c.command === 'apt-get')).toEqual([{ command: 'apt-get', args: ['update'] }]);
  });

  it('resolves the versioned kernel behind linux-image-amd64', async () => {
    const runner = recordingRunner((_cmd, args) => {
      const name = args[2];
      if (name === 'linux-image-amd64') {
        return { stdout: 'Package: linux-image-amd64\nVersion: 6.1.192-2\nArchitecture: amd64\nDepends: linux-image-6.1.0-56-amd64 (= 6.1.192-2)\nSize: 1480\n' };
      }
      return { stdout: `Package: ${name}\nVersion: 6.1.192-2\nArchitecture: amd64\nSize: 70550672\n` };
    });
    const { pkg, release } = await resolveKernelPackage({ cacheDir: '/nonexistent', runner, log: silentLogger });
    expect(release).toBe('6.1.0-56-amd64');
    expect(pkg.fileName).toBe('linux-image-6.1.0-56-amd64_6.1.192-2_amd64.deb');
    expect(runner.calls.map((c) => [c.command, ...c.args])).toEqual([
      ['apt-cache', 'show', '--no-all-versions', 'linux-image-amd64'],
      ['apt-cache', 'show', '--no-all-versions', 'linux-image-6.1.0-56-amd64'],
    ]);
  });
});

describe('kernel modules', () => {
  const dep = parseModulesDep(
    [
      'kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko',
      'kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko',
      'kernel/drivers/virtio/virtio_ring.ko:',
      'kernel/arch/x86/crypto/crc32c-intel.ko:',
    ].join('\n'),
  );

  it('takes the dependency closure, dashes or underscores alike', () => {
    expect(moduleClosure(dep, ['virtio_pci', 'crc32c-intel'], 'r')).toEqual([
      'kernel/arch/x86/crypto/crc32c-intel.ko',
      'kernel/drivers/virtio/virtio.ko',
      'kernel/drivers/virtio/virtio_pci.ko',
      'kernel/drivers/virtio/virtio_ring.ko',
    ]);
  });

  it('names a missing module', () => {
    expect(() => moduleClosure(dep, ['9p'], '6.1.0-56-amd64')).toThrow(/Kernel 6.1.0-56-amd64 has no module 9p/);
  });

  it('strips an appended module signature', () => {
    const body = Buffer.from('\x7fELF-module-body');
    const sig = Buffer.alloc(5, 7);
    const info = Buffer.alloc(12);
    info.writeUInt32BE(sig.length, 8);
    const signed = Buffer.concat([body, sig, info, Buffer.from('~Module signature appended~\n')]);
    expect(stripModuleSignature(signed)).toEqual(body);
    expect(stripModuleSignature(body)).toEqual(body);
  });
});

describe('cpio writer', () => {
  it('writes newc entries aligned to 4 bytes, ending with the trailer', () => {
    const out = writeCpio([
      { type: 'dir', path: '/dev' },
      { type: 'char', path: 'dev/console', major: 5, minor: 1 },
      { type: 'file', path: 'init', data: Buffer.from('#!/bin/sh\n'), mode: 0o755 },
      { type: 'symlink', path: 'bin/sh', target: 'busybox' },
    ]);
    const text = out.toString('latin1');
    expect(text.startsWith('070701')).toBe(true);
    expect(out.length % 4).toBe(0);
    expect(text).toContain('dev/console\0');
    expect(text).toContain('TRAILER!!!\0');
    // The console entry: mode 020600, rdev 5:1.
    const at = text.indexOf('dev/console') - 110;
    const field = (i: number) => parseInt(text.slice(at + 6 + i * 8, at + 14 + i * 8), 16);
    expect(field(1)).toBe(0o020600);
    expect([field(9), field(10)]).toEqual([5, 1]);
  });
});

describe('recipe registry', () => {
  it('has tiny and debian-12', () => {
    expect(Object.keys(builtinRecipes).sort()).toEqual(['debian-12', 'tiny']);
    expect(getRecipe('tiny').name).toBe('tiny');
  });

  it('lists the known names for an unknown one', () => {
    expect(() => getRecipe('nope')).toThrow(/no built-in image recipe 'nope'.*tiny/);
  });
});

describe('debian-12 with extra packages', () => {
  /** Runs the real recipe with a faked process layer: busybox-static is "cached", mmdebstrap answers `mmdebstrap`. */
  async function buildWith(packages: string[], mmdebstrap: Partial<RunResult>) {
    const cacheDir = mkdtempSync(join(tmpdir(), 'falcon-recipe-unit-'));
    const work = mkdtempSync(join(tmpdir(), 'falcon-recipe-work-'));
    const fileName = debFileName('busybox-static', '1:1.35.0-4', 'amd64');
    mkdirSync(join(cacheDir, 'debs'), { recursive: true });
    writeFileSync(join(cacheDir, 'debs', fileName), 'x'.repeat(10));
    const runner = recordingRunner((cmd) => {
      if (cmd === 'apt-cache') return { stdout: 'Package: busybox-static\nVersion: 1:1.35.0-4\nArchitecture: amd64\nSize: 10\n' };
      if (cmd === 'mmdebstrap') return mmdebstrap;
      return {};
    });
    const recipe = createDebian12Recipe({ agent: async () => '/nonexistent/falcon-agent' });
    try {
      const err = await recipe
        .build({ outDir: join(work, 'out'), workDir: work, cacheDir, packages, runner, log: silentLogger })
        .then(() => undefined, (e: unknown) => e);
      return { err, mm: runner.calls.filter((c) => c.command === 'mmdebstrap') };
    } finally {
      rmSync(cacheDir, { recursive: true, force: true });
      rmSync(work, { recursive: true, force: true });
    }
  }

  it.skipIf(process.getuid?.() !== 0)('checks the packages with a dry run first and names a package Debian does not have', async () => {
    const { err, mm } = await buildWith(['bird2', 'nosuchpkg'], {
      exitCode: 25,
      stderr: 'I: running apt-get update...\nE: Unable to locate package nosuchpkg\nE: setup failed: E: apt-get --yes install ... failed\nE: mmdebstrap failed to run\n',
    });
    // Only the dry run ran: the real one never started.
    expect(mm).toHaveLength(1);
    expect(mm[0]!.args[0]).toBe('--simulate');
    expect(mm[0]!.args.filter((a) => a.startsWith('--include='))).toEqual([`--include=${[...DEBIAN12_PACKAGES, 'bird2', 'nosuchpkg'].join(',')}`]);
    expect(mm[0]!.args.slice(-3, -1)).toEqual(['--', 'bookworm']);
    expect(err).toBeInstanceOf(ImageError);
    expect(err).toMatchObject({ code: 'IMAGE_BUILD_FAILED' });
    expect((err as Error).message).toMatch(/Debian bookworm has no package 'nosuchpkg' \(given with --packages\)/);
    expect((err as Error).message).not.toMatch(/running apt-get update/);
  });

  it.skipIf(process.getuid?.() !== 0)('without packages there is no dry run, and the real run gets the image packages only', async () => {
    const { mm } = await buildWith([], { exitCode: 1, stderr: 'E: mmdebstrap failed to run\n' });
    expect(mm).toHaveLength(1);
    expect(mm[0]!.args).not.toContain('--simulate');
    expect(mm[0]!.args).toContain(`--include=${DEBIAN12_PACKAGES.join(',')}`);
  });

  it('builds the mmdebstrap command line from the image packages and the extra ones', () => {
    const args = mmdebstrapArgs('/w/hook.sh', '/w/root', ['frr']);
    expect(args[0]).toBe('--variant=minbase');
    expect(args).toContain(`--include=${DEBIAN12_PACKAGES.join(',')},frr`);
    expect(args.slice(-3)).toEqual(['--', 'bookworm', '/w/root']);
    expect(mmdebstrapArgs('/w/hook.sh', '/w/root')).toContain(`--include=${DEBIAN12_PACKAGES.join(',')}`);
  });

  it('turns other mmdebstrap failures into IMAGE_BUILD_FAILED with apt\'s error lines only', () => {
    const hce = new HostCommandError({ command: 'mmdebstrap', args: [], exitCode: 1, stderr: 'I: noise\nI: more noise\nE: Failed to fetch http://deb.debian.org/...\nE: mmdebstrap failed to run\n' });
    const e = mmdebstrapFailure(hce, []) as ImageError;
    expect(e.code).toBe('IMAGE_BUILD_FAILED');
    expect(e.message).toMatch(/E: Failed to fetch/);
    expect(e.message).not.toMatch(/noise/);
    const other = new Error('not a command failure');
    expect(mmdebstrapFailure(other, [])).toBe(other);
  });

  it('recipes say whether they take packages: debian-12 does, tiny does not', () => {
    expect(builtinRecipes['debian-12']!.acceptsPackages).toBe(true);
    expect(builtinRecipes.tiny!.acceptsPackages).toBeFalsy();
  });
});
