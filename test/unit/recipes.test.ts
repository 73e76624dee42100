import { describe, expect, it } from 'vitest';
import { recordingRunner } from '../../src/host/process.js';
import { silentLogger } from '../../src/util/log.js';
import { debFileName, parseControl, resolveKernelPackage, resolvePackage } from '../../src/images/recipes/debian-packages.js';
import { moduleClosure, parseModulesDep, stripModuleSignature, writeCpio } from '../../src/images/recipes/initramfs.js';
import { builtinRecipes, getRecipe } from '../../src/images/recipes/index.js';

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
