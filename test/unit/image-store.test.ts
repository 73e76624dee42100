/**
 * The image store against real qemu-img on tiny synthetic images in a temp root (no root, no VMs).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createProcessRunner, HostCommandError, type ProcessRunner } from '../../src/host/process.js';
import { QemuImg } from '../../src/host/qemu-img.js';
import { acquireLock, LockBusyError } from '../../src/util/lock.js';
import { ImageError, ImageStore } from '../../src/images/store.js';
import type { Recipe } from '../../src/images/types.js';
import { memoryLogger } from '../../src/util/log.js';

const MiB = 1024 * 1024;
const top = mkdtempSync(path.join(os.tmpdir(), 'falcon-imgstore-'));
const fixtures = path.join(top, 'fixtures');
mkdirSync(fixtures);

/** A raw disk with an MBR signature, so it passes the "looks like a disk" check. */
function makeRaw(file: string, size = 4 * MiB, fill = 0x11): string {
  const buf = Buffer.alloc(size);
  buf.fill(fill, 4096, 8192);
  buf[510] = 0x55;
  buf[511] = 0xaa;
  writeFileSync(file, buf);
  return file;
}
function qemuImg(...args: string[]): string {
  return execFileSync('qemu-img', args, { encoding: 'utf8' });
}
function info(file: string): Record<string, unknown> {
  return JSON.parse(qemuImg('info', '--output=json', '-U', file)) as Record<string, unknown>;
}
function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

const raw = makeRaw(path.join(fixtures, 'disk.raw'));
const qcow2 = path.join(fixtures, 'disk.qcow2');
qemuImg('convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2);
const rawXz = path.join(fixtures, 'disk.raw.xz');
execFileSync('sh', ['-c', 'xz -c -- "$1" > "$2"', 'sh', raw, rawXz]);
const notImage = path.join(fixtures, 'notes.txt');
writeFileSync(notImage, 'these are not the disks you are looking for\n'.repeat(100));
const kernel = path.join(fixtures, 'vmlinuz');
writeFileSync(kernel, 'KERNEL');

/** A fake recipe: a raw disk plus a kernel file, like a direct-boot recipe would make. */
function fakeRecipe(name: string, opts: { fail?: boolean; calls?: { n: number }; delayMs?: number } = {}): Recipe {
  return {
    name,
    version: 2,
    description: `fake ${name}`,
    async build(ctx) {
      if (opts.calls) opts.calls.n++;
      if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
      expect(existsSync(ctx.workDir)).toBe(true);
      makeRaw(path.join(ctx.outDir, 'root.raw'), 2 * MiB);
      await writeFile(path.join(ctx.outDir, 'vmlinuz'), 'K');
      if (opts.fail) throw new Error('recipe failed on purpose');
      return {
        disk: 'root.raw',
        boot: { method: 'direct', kernel: 'vmlinuz', cmdline: 'console=ttyS0' },
        exec: 'agent',
        description: 'built by a fake recipe',
      };
    },
  };
}

let root: string;
let store: ImageStore;
let log: ReturnType<typeof memoryLogger>;
let counter = 0;
const runner = createProcessRunner();

function newStore(r: ProcessRunner = runner, recipes?: Record<string, Recipe>): ImageStore {
  return new ImageStore({ root, runner: r, log, recipes: recipes ?? { tiny: fakeRecipe('tiny'), 'debian-12': fakeRecipe('debian-12') } });
}
function tmpEntries(): string[] {
  const d = path.join(root, '.tmp');
  return existsSync(d) ? readdirSync(d) : [];
}

beforeEach(() => {
  root = path.join(top, `store-${++counter}`);
  log = memoryLogger();
  store = newStore();
});
afterAll(async () => {
  await rm(top, { recursive: true, force: true });
});

describe('names and root', () => {
  it('validates names', async () => {
    for (const bad of ['', '1abc', 'a/b', '../x', '.hidden', 'cache', 'topo', 'a b', 'x'.repeat(65)]) {
      await expect(store.has(bad), bad).rejects.toMatchObject({ code: 'IMAGE_INVALID_NAME' });
    }
    for (const good of ['debian-12', 'tiny', 'A.b_c-1', 'x'.repeat(64)]) expect(await store.has(good)).toBe(false);
  });

  it('uses FALCON_IMAGE_DIR, an explicit root wins', () => {
    expect(new ImageStore({ runner, log, env: { FALCON_IMAGE_DIR: '/x/imgs' } }).root).toBe('/x/imgs');
    expect(new ImageStore({ runner, log, env: {} }).root).toBe('/var/lib/falcon/images');
    expect(new ImageStore({ runner, log, env: { FALCON_IMAGE_DIR: '/x' }, root: '/y' }).root).toBe('/y');
  });

  it('an empty or missing store lists nothing', async () => {
    expect(await store.list()).toEqual([]);
  });
});

describe('import', () => {
  it('imports qcow2, raw and raw.xz as standalone qcow2 images', async () => {
    for (const [name, file] of [
      ['from-qcow2', qcow2],
      ['from-raw', raw],
      ['from-xz', rawXz],
    ] as const) {
      const img = await store.import(name, file);
      expect(img.disk).toBe(path.join(root, name, 'disk.qcow2'));
      const i = info(img.disk);
      expect(i.format).toBe('qcow2');
      expect(i['virtual-size']).toBe(4 * MiB);
      expect(i['backing-filename']).toBeUndefined();
      expect(img.meta).toMatchObject({
        version: 1,
        name,
        disk: 'disk.qcow2',
        boot: { method: 'firmware', firmware: 'bios' },
        exec: 'serial-login',
        login: { user: 'root' },
        virtualSizeBytes: 4 * MiB,
        sizeBytes: statSync(img.disk).size,
        sha256: sha256(img.disk),
      });
      expect(statSync(img.dir).mode & 0o777).toBe(0o700);
    }
    expect((await store.list()).map((i) => i.name)).toEqual(['from-qcow2', 'from-raw', 'from-xz']);
    expect(tmpEntries()).toEqual([]);
    // Same data in every case.
    execFileSync('qemu-img', ['compare', '-q', path.join(root, 'from-raw/disk.qcow2'), path.join(root, 'from-xz/disk.qcow2')]);
  });

  it('direct boot and exec options', async () => {
    const img = await store.import('direct', qcow2, { kernel, cmdline: 'console=ttyS0 root=/dev/vda', exec: 'agent' });
    expect(img.meta.boot).toEqual({ method: 'direct', kernel: 'kernel', cmdline: 'console=ttyS0 root=/dev/vda' });
    expect(img.kernel).toBe(path.join(root, 'direct', 'kernel'));
    expect(readFileSync(img.kernel!, 'utf8')).toBe('KERNEL');
    expect(img.meta.login).toBeUndefined();
    const uefi = await store.import('uefi', qcow2, { firmware: 'uefi', login: { user: 'debian' } });
    expect(uefi.meta.boot).toEqual({ method: 'firmware', firmware: 'uefi' });
    expect(uefi.meta.login).toEqual({ user: 'debian' });
    await expect(store.import('bad', qcow2, { kernel, firmware: 'uefi' })).rejects.toMatchObject({ code: 'IMAGE_BAD_OPTION' });
    await expect(store.import('bad', qcow2, { cmdline: 'x' })).rejects.toThrow(/--kernel/);
  });

  it('a file that is not an image is refused and leaves nothing behind', async () => {
    await expect(store.import('junk', notImage)).rejects.toThrow(/notes.txt does not look like a disk image/);
    const fakeXz = path.join(fixtures, 'fake.xz');
    writeFileSync(fakeXz, Buffer.concat([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), Buffer.alloc(100)]));
    await expect(store.import('junk', fakeXz)).rejects.toMatchObject({ code: 'IMAGE_NOT_AN_IMAGE' });
    await expect(store.import('junk', path.join(fixtures, 'missing'))).rejects.toThrow(/cannot import/);
    expect(await store.has('junk')).toBe(false);
    expect(tmpEntries()).toEqual([]);
  });

  it('refuses an image with a backing file', async () => {
    const overlay = path.join(fixtures, 'overlay.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-b', qcow2, '-F', 'qcow2', overlay);
    await expect(store.import('ov', overlay)).rejects.toThrow(/backing file/);
  });

  it('a taken name is a clear error', async () => {
    await store.import('taken', qcow2);
    await expect(store.import('taken', raw)).rejects.toThrow(/image 'taken' already exists .*falcon image rm taken/);
  });
});

describe('get, inspect, remove and node disks', () => {
  it('an unknown image names the images there are and how to get one', async () => {
    await store.import('mine', qcow2);
    await expect(store.get('nope')).rejects.toThrow(
      /image 'nope' is not in the image store .*Images there: mine\..*falcon image build tiny.*falcon image import nope FILE/,
    );
    await expect(store.get('debian-12')).rejects.toThrow(/built-in image: build it with `falcon image build debian-12`/);
  });

  it('overlay and copy node disks, reserve sizes', async () => {
    const base = await store.import('base', qcow2);
    const ov = await store.createNodeDisk({ topology: 'topo1', node: 'a', image: 'base', mode: 'overlay' });
    expect(ov).toBe(path.join(root, 'topo', 'topo1', 'a.qcow2'));
    expect(ov).toBe(store.nodeDiskPath('topo1', 'a'));
    expect(info(ov)).toMatchObject({ 'backing-filename': base.disk, 'virtual-size': 4 * MiB });

    const cp = await store.createNodeDisk({ topology: 'topo1', node: 'b', image: 'base', mode: 'copy' });
    expect(info(cp)['backing-filename']).toBeUndefined();
    execFileSync('qemu-img', ['compare', '-q', cp, base.disk]);

    const big = await store.createNodeDisk({ topology: 'topo1', node: 'c', image: 'base', mode: 'overlay', sizeGiB: 1 });
    expect(info(big)).toMatchObject({ 'virtual-size': 1024 * MiB, 'backing-filename': base.disk });
    const bigCopy = await store.createNodeDisk({ topology: 'topo1', node: 'd', image: 'base', mode: 'copy', sizeGiB: 0.5 });
    expect(info(bigCopy)['virtual-size']).toBe(512 * MiB);

    await expect(store.createNodeDisk({ topology: 'topo1', node: 'e', image: 'base', mode: 'copy', sizeGiB: 0.001 })).rejects.toThrow(
      /smaller than image 'base'.*only grow/,
    );
    await expect(store.createNodeDisk({ topology: 'topo1', node: 'a', image: 'base', mode: 'overlay' })).rejects.toThrow(/already exists/);
    await expect(store.createNodeDisk({ topology: 'topo1', node: 'x', image: 'ghost', mode: 'overlay' })).rejects.toMatchObject({
      code: 'IMAGE_NOT_FOUND',
    });
    expect(readdirSync(path.join(root, 'topo', 'topo1')).sort()).toEqual(['a.qcow2', 'b.qcow2', 'c.qcow2', 'd.qcow2']);
  });

  it('extra disks: a blank qcow2 of the declared size beside the boot disk, kept when it exists, removed with the topology', async () => {
    await store.import('base', qcow2);
    const boot = await store.createNodeDisk({ topology: 'lab', node: 'sled', image: 'base', mode: 'overlay' });
    const node = { name: 'sled', disks: [{ name: 'disk0', sizeGiB: 2, bus: 'nvme' as const, serial: 'u2-0' }, { name: 'raw', sizeGiB: 1, bus: 'none' as const, serial: 'sled-raw' }] };
    const disks = await store.createExtraDisks('lab', node);
    expect(disks).toEqual([
      { ...node.disks[0], path: path.join(root, 'topo', 'lab', 'sled.disk0.qcow2') },
      { ...node.disks[1], path: path.join(root, 'topo', 'lab', 'sled.raw.qcow2') },
    ]);
    expect(store.extraDisks('lab', node)).toEqual(disks);
    expect(store.extraDiskPath('lab', 'sled', 'disk0')).toBe(disks[0]!.path);
    expect(path.dirname(disks[0]!.path)).toBe(path.dirname(boot));
    expect(info(disks[0]!.path)).toMatchObject({ format: 'qcow2', 'virtual-size': 2 * 1024 * MiB });
    expect(info(disks[0]!.path)['backing-filename']).toBeUndefined();
    expect(info(disks[1]!.path)['virtual-size']).toBe(1024 * MiB);
    expect(statSync(disks[0]!.path).mode & 0o777).toBe(0o600);

    // What the guest wrote survives a second launch, even one that declares another size.
    const before = sha256(disks[0]!.path);
    expect(await store.createExtraDisk({ topology: 'lab', node: 'sled', disk: { name: 'disk0', sizeGiB: 2 } })).toEqual({ path: disks[0]!.path, created: false });
    expect(await store.createExtraDisk({ topology: 'lab', node: 'sled', disk: { name: 'disk0', sizeGiB: 5 } })).toEqual({ path: disks[0]!.path, created: false });
    expect(sha256(disks[0]!.path)).toBe(before);
    expect(log.events.some((e) => e.kind === 'warn' && /disk 'disk0' of node 'sled' is kept at 2 GiB although 5 GiB are declared/.test(e.msg))).toBe(true);

    // Image users are boot disks only; destroy takes the extra disks with them.
    expect((await store.inspect('base')).usedBy).toEqual([{ topology: 'lab', node: 'sled', disk: boot }]);
    await expect(store.createExtraDisk({ topology: 'lab', node: 'sled', disk: { name: 'x', sizeGiB: 0 } })).rejects.toMatchObject({ code: 'IMAGE_BAD_OPTION' });
    expect(() => store.extraDiskPath('lab', 'sled', '../x')).toThrow(/invalid disk name '..\/x'/);
    await store.removeTopologyDisks('lab');
    expect(existsSync(path.join(root, 'topo', 'lab'))).toBe(false);
  });

  it('remove is refused while an overlay uses the image, allowed with force', async () => {
    await store.import('used', qcow2);
    await store.import('free', qcow2);
    await store.createNodeDisk({ topology: 'lab', node: 'n1', image: 'used', mode: 'overlay' });
    await store.createNodeDisk({ topology: 'lab', node: 'n2', image: 'free', mode: 'copy' });

    const ins = await store.inspect('used');
    expect(ins.usedBy).toEqual([{ topology: 'lab', node: 'n1', disk: store.nodeDiskPath('lab', 'n1') }]);
    expect(ins.info.format).toBe('qcow2');
    expect((await store.inspect('free')).usedBy).toEqual([]);

    await expect(store.remove('used')).rejects.toThrow(/cannot remove image 'used': node disk lab\/n1 use it.*Destroy topology 'lab' first.*--force/);
    expect(await store.has('used')).toBe(true);
    await store.remove('free'); // a copy doesn't depend on it
    expect(await store.has('free')).toBe(false);

    await store.remove('used', { force: true });
    expect(await store.has('used')).toBe(false);
    expect(log.events.some((e) => e.kind === 'warn' && /lab\/n1/.test(e.msg))).toBe(true);

    await store.removeTopologyDisks('lab');
    await store.removeTopologyDisks('lab'); // idempotent
    expect(existsSync(path.join(root, 'topo', 'lab'))).toBe(false);
    await expect(store.remove('used')).rejects.toMatchObject({ code: 'IMAGE_NOT_FOUND' });
  });

  it('remove works again once the topology is gone', async () => {
    await store.import('img', qcow2);
    await store.createNodeDisk({ topology: 't', node: 'n', image: 'img', mode: 'overlay' });
    await expect(store.remove('img')).rejects.toMatchObject({ code: 'IMAGE_IN_USE' });
    await store.removeTopologyDisks('t');
    await store.remove('img');
    expect(await store.list()).toEqual([]);
  });
});

describe('build and ensure', () => {
  it('builds a recipe: converts its disk to qcow2, records recipe, sizes and checksum', async () => {
    const img = await store.build('tiny');
    expect(img.meta).toMatchObject({
      name: 'tiny',
      disk: 'disk.qcow2',
      recipe: { name: 'tiny', version: 2 },
      exec: 'agent',
      virtualSizeBytes: 2 * MiB,
      sha256: sha256(img.disk),
      boot: { method: 'direct', kernel: 'vmlinuz' },
    });
    expect(info(img.disk).format).toBe('qcow2');
    expect(readdirSync(img.dir).sort()).toEqual(['disk.qcow2', 'meta.json', 'vmlinuz']);
    expect(existsSync(path.join(root, 'cache'))).toBe(true);
    expect(tmpEntries()).toEqual([]);

    await expect(store.build('tiny')).rejects.toThrow(/already exists.*--force/);
    const again = await store.build('tiny', { force: true });
    expect(again.meta.createdAt >= img.meta.createdAt).toBe(true);
    const copy = await store.build('tiny', { name: 'tiny2' });
    expect(copy.meta.recipe).toEqual({ name: 'tiny', version: 2 });

    await store.createNodeDisk({ topology: 't', node: 'n', image: 'tiny', mode: 'overlay' });
    await expect(store.build('tiny', { force: true })).rejects.toThrow(/cannot rebuild image 'tiny'/);
    await expect(store.build('nonesuch')).rejects.toThrow(/no built-in image recipe 'nonesuch'; built-ins: debian-12, tiny/);
  });

  it('a failing recipe leaves no image and no staging', async () => {
    const s = newStore(runner, { tiny: fakeRecipe('tiny', { fail: true }) });
    await expect(s.build('tiny')).rejects.toThrow(/on purpose/);
    expect(await s.has('tiny')).toBe(false);
    expect(existsSync(path.join(root, 'tiny'))).toBe(false);
    expect(tmpEntries()).toEqual([]);
  });

  it('ensure builds a missing built-in once, even when asked concurrently', async () => {
    const calls = { n: 0 };
    const s = newStore(runner, { tiny: fakeRecipe('tiny', { calls, delayMs: 100 }) });
    const [a, b] = await Promise.all([s.ensure('tiny'), s.ensure('tiny')]);
    expect(a.meta.sha256).toBe(b.meta.sha256);
    expect(calls.n).toBe(1);
    await s.ensure('tiny');
    expect(calls.n).toBe(1);
    // Two stores (as two processes would) serialise on the lock file and build once.
    const s2 = newStore(runner, { other: fakeRecipe('other', { calls, delayMs: 200 }) });
    const s3 = newStore(runner, { other: fakeRecipe('other', { calls, delayMs: 200 }) });
    await Promise.all([s2.ensure('other'), s3.ensure('other')]);
    expect(calls.n).toBe(2);
    await expect(s.ensure('mystery')).rejects.toThrow(/image 'mystery' is not in the image store.*falcon image import mystery/);
  });

  it('ensure warns about an image built by an older recipe', async () => {
    await store.build('tiny');
    const s = newStore(runner, { tiny: { ...fakeRecipe('tiny'), version: 3 } });
    await s.ensure('tiny');
    expect(log.events.some((e) => e.kind === 'warn' && /version 2 of its recipe, the current one is 3/.test(e.msg))).toBe(true);
    expect((await s.inspect('tiny')).staleRecipe).toEqual({ built: 2, current: 3 });
  });
});

describe('builds with extra packages', () => {
  /** A recipe that takes packages and records what it was given. */
  function packagesRecipe(seen: (readonly string[] | undefined)[]): Recipe {
    const base = fakeRecipe('debian-12');
    return { ...base, acceptsPackages: true, build: (ctx) => (seen.push(ctx.packages), base.build(ctx)) };
  }

  it('passes the packages to the recipe and records them in meta.json', async () => {
    const seen: (readonly string[] | undefined)[] = [];
    const s = newStore(runner, { 'debian-12': packagesRecipe(seen), tiny: fakeRecipe('tiny') });
    const img = await s.build('debian-12', { name: 'router', packages: ['bird2', 'frr', 'bird2'] });
    expect(seen).toEqual([['bird2', 'frr']]);
    expect(img.name).toBe('router');
    const meta = JSON.parse(readFileSync(path.join(root, 'router', 'meta.json'), 'utf8'));
    expect(meta).toMatchObject({ name: 'router', recipe: { name: 'debian-12', version: 2 }, packages: ['bird2', 'frr'] });
    expect(meta.description).toMatch(/extra packages: bird2, frr/);
    expect((await s.get('router')).meta.packages).toEqual(['bird2', 'frr']);
    // Without packages, meta.json has no packages field; --as alone makes a second copy.
    const plain = await s.build('debian-12', { name: 'copy' });
    expect(plain.meta.packages).toBeUndefined();
    expect(seen[1]).toEqual([]);
    await expect(s.build('debian-12', { name: 'router', packages: ['bird2', 'frr'] })).rejects.toThrow(
      /falcon image build debian-12 --as router --packages bird2,frr --force/,
    );
  });

  it('refuses invalid package names before the recipe runs', async () => {
    const seen: (readonly string[] | undefined)[] = [];
    const s = newStore(runner, { 'debian-12': packagesRecipe(seen) });
    for (const bad of ['-oDebug=1', '--include=x', 'a;rm -rf /', 'Bird2', 'x', 'pkg name', '$(id)', 'a/b', 'bird2=2.0']) {
      await expect(s.build('debian-12', { name: 'r', packages: [bad] }), bad).rejects.toMatchObject({
        code: 'IMAGE_BAD_OPTION',
        message: expect.stringContaining(`invalid package name '${bad}'`),
      });
    }
    expect(seen).toEqual([]);
    expect(tmpEntries()).toEqual([]);
    expect(existsSync(path.join(root, '.locks'))).toBe(false);
  });

  it('a recipe that takes no packages refuses them clearly', async () => {
    const calls = { n: 0 };
    const s = newStore(runner, { tiny: fakeRecipe('tiny', { calls }) });
    await expect(s.build('tiny', { packages: ['bird2'] })).rejects.toMatchObject({
      code: 'IMAGE_BAD_OPTION',
      message: expect.stringMatching(/the tiny recipe takes no extra packages \(asked for bird2\)/),
    });
    expect(calls.n).toBe(0);
    expect((await s.build('tiny', { packages: [] })).meta.packages).toBeUndefined();
  });

  it('the stale-recipe warning of a variant gives its whole build command', async () => {
    await newStore(runner, { 'debian-12': packagesRecipe([]) }).build('debian-12', { name: 'router', packages: ['bird2'] });
    const s = newStore(runner, { 'debian-12': { ...packagesRecipe([]), version: 3 } });
    await s.ensure('router');
    expect(log.events.some((e) => e.kind === 'warn' && e.msg.includes('`falcon image build debian-12 --as router --packages bird2 --force`'))).toBe(true);
  });
});

describe('snapshots', () => {
  it('snapshotFromDisk makes a standalone image with the parent settings and files', async () => {
    const base = await store.build('tiny');
    const disk = await store.createNodeDisk({ topology: 'snap', node: 'n', image: 'tiny', mode: 'overlay' });
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0xab 0 64k', disk], { stdio: 'ignore' });
    const snap = await store.snapshotFromDisk({ diskPath: disk, newName: 'tiny-dev', parent: base.meta });
    expect(info(snap.disk)['backing-filename']).toBeUndefined();
    expect(snap.meta).toMatchObject({ parent: 'tiny', exec: 'agent', boot: base.meta.boot, virtualSizeBytes: 2 * MiB });
    expect(snap.meta.recipe).toBeUndefined();
    expect(readFileSync(snap.kernel!, 'utf8')).toBe('K');
    // The snapshot has the node's write and survives the base and the node going away.
    await store.removeTopologyDisks('snap');
    await store.remove('tiny');
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'read -P 0xab 0 64k', snap.disk], { stdio: 'ignore' });
    await expect(store.snapshotFromDisk({ diskPath: snap.disk, newName: 'tiny-dev', parent: base.meta })).rejects.toMatchObject({
      code: 'IMAGE_EXISTS',
    });
    expect(tmpEntries()).toEqual([]);
  });

  it('stagingPathFor/commitStaged let someone else write the disk; discard frees the name', async () => {
    const parent = (await store.import('p', qcow2, { kernel })).meta;
    const target = await store.stagingPathFor('live');
    expect(target.startsWith(path.join(root, '.tmp'))).toBe(true);
    expect(await store.has('live')).toBe(false);
    qemuImg('convert', '-O', 'qcow2', qcow2, target); // stands in for QEMU's backup job
    const img = await store.commitStaged('live', { parent });
    expect(img.meta.parent).toBe('p');
    expect(readFileSync(img.kernel!, 'utf8')).toBe('KERNEL');
    expect(tmpEntries()).toEqual([]);

    const staged = await store.stageImage('dropped');
    await staged.discard();
    await staged.discard();
    expect(tmpEntries()).toEqual([]);
    expect(await store.has('dropped')).toBe(false);
    await (await store.stageImage('dropped')).discard(); // the name is free again
  });
});

describe('failures', () => {
  it('ENOSPC becomes a clear error and staging is cleaned', async () => {
    const full: ProcessRunner = {
      ...runner,
      run: (cmd, args, o) =>
        cmd === 'qemu-img' && args[0] === 'convert'
          ? Promise.reject(new HostCommandError({ command: cmd, args, exitCode: 1, stderr: 'qemu-img: error while writing at byte 0: No space left on device' }))
          : runner.run(cmd, args, o),
    };
    const s = newStore(full);
    await expect(s.import('nospace', raw)).rejects.toThrow(/no space left on the device holding .*FALCON_IMAGE_DIR/);
    await expect(s.import('nospace', raw)).rejects.toMatchObject({ code: 'IMAGE_NO_SPACE' });
    expect(await s.has('nospace')).toBe(false);
    expect(tmpEntries()).toEqual([]);
  });

  it('staging left by a dead process is cleaned up', async () => {
    mkdirSync(path.join(root, '.tmp', 'import-x-999999999-deadbeef'), { recursive: true });
    await store.import('after-crash', qcow2);
    expect(tmpEntries()).toEqual([]);
  });

  it('locks: stale locks are taken over, live ones make callers wait then fail clearly', async () => {
    mkdirSync(root, { recursive: true });
    const lockPath = path.join(root, 'x.lock');
    writeFileSync(lockPath, JSON.stringify({ pid: 999999999, host: os.hostname() }));
    const release = await acquireLock(lockPath, { what: "image 'x'", waitMs: 0 });
    expect(JSON.parse(readFileSync(lockPath, 'utf8')).pid).toBe(process.pid);
    await release();
    expect(existsSync(lockPath)).toBe(false);

    writeFileSync(lockPath, JSON.stringify({ pid: process.ppid, host: os.hostname() }));
    const waits = memoryLogger();
    const err = await acquireLock(lockPath, { what: "image 'x'", waitMs: 500, log: waits }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockBusyError);
    expect((err as Error).message).toMatch(new RegExp(`image 'x' is held by another falcon command \\(pid ${process.ppid}.*delete ${lockPath}`));
    // It waited and tried again before giving up (each retry is logged), rather than failing at once.
    const retries = waits.events.filter((e) => e.kind === 'retry');
    expect(retries.length).toBeGreaterThanOrEqual(1);
    expect(retries[0]).toMatchObject({ what: "waiting for the lock on image 'x'" });
  });
});

describe('pull', () => {
  let server: http.Server;
  let base: string;
  const qcowBytes = () => readFileSync(qcow2);
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const routes: Record<string, () => Buffer> = {
        '/disk.qcow2': qcowBytes,
        '/disk.raw.xz': () => readFileSync(rawXz),
        '/notes.txt': () => readFileSync(notImage),
      };
      const body = routes[req.url ?? '']?.();
      if (!body) {
        res.writeHead(404).end('not found');
        return;
      }
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  afterEach(() => expect(tmpEntries()).toEqual([]));

  it('downloads, verifies the checksum and imports, with progress', async () => {
    const progress: unknown[] = [];
    const img = await store.pull('pulled', `${base}/disk.qcow2`, { sha256: sha256(qcow2).toUpperCase(), onProgress: (p) => progress.push(p) });
    expect(img.meta.description).toBe(`pulled from ${base}/disk.qcow2`);
    expect(info(img.disk)['virtual-size']).toBe(4 * MiB);
    const size = statSync(qcow2).size;
    const downloads = progress.filter((p) => (p as { phase: string }).phase === 'download');
    expect(downloads[0]).toEqual({ phase: 'download', done: 0, total: size });
    expect(downloads.at(-1)).toEqual({ phase: 'download', done: size, total: size });
    expect(progress.at(-1)).toEqual({ phase: 'convert', percent: 100 });
    expect(log.events.some((e) => e.kind === 'progress')).toBe(true);
    const xz = await store.pull('pulled-xz', `${base}/disk.raw.xz`, { sha256: `sha256:${sha256(rawXz)}` });
    expect(xz.meta.virtualSizeBytes).toBe(4 * MiB);
  });

  it('without a checksum it warns and still imports', async () => {
    await store.pull('unverified', `${base}/disk.qcow2`);
    expect(log.events.some((e) => e.kind === 'warn' && e.msg.includes(sha256(qcow2)))).toBe(true);
  });

  it('a bad checksum leaves nothing in the store', async () => {
    const bad = 'a'.repeat(64);
    const err = (await store.pull('bad', `${base}/disk.qcow2`, { sha256: bad }).catch((e: unknown) => e)) as ImageError;
    expect(err.code).toBe('IMAGE_CHECKSUM');
    expect(err.message).toContain(`expected sha256 ${bad}, got ${sha256(qcow2)}`);
    expect(await store.has('bad')).toBe(false);
    expect(readdirSync(root).filter((f) => !f.startsWith('.'))).toEqual([]);
  });

  it('404, bad URLs, bad checksums and non-images are clear errors', async () => {
    await expect(store.pull('missing', `${base}/nope.qcow2`)).rejects.toThrow(/HTTP 404 Not Found; check the URL/);
    await expect(store.pull('x', 'ftp://example.com/x')).rejects.toThrow(/only http:\/\/ and https:\/\//);
    await expect(store.pull('x', 'not a url')).rejects.toThrow(/not a valid URL/);
    await expect(store.pull('x', `${base}/disk.qcow2`, { sha256: 'abc' })).rejects.toThrow(/not a SHA-256 checksum/);
    await expect(store.pull('x', `${base}/notes.txt`)).rejects.toMatchObject({ code: 'IMAGE_NOT_AN_IMAGE' });
    await expect(store.pull('x', 'http://127.0.0.1:1/x')).rejects.toThrow(/could not download/);
    expect(await store.list()).toEqual([]);
  });

  it('uses QemuImg against the real binary', async () => {
    const q = new QemuImg(runner);
    const f = path.join(root, 'c.qcow2');
    mkdirSync(root, { recursive: true });
    await q.create(f, MiB);
    await q.resize(f, 2 * MiB);
    expect((await q.info(f)).virtualSize).toBe(2 * MiB);
    expect((await q.check(f)).ok).toBe(true);
  });
});
