/**
 * The image store end to end: the `falcon image` commands in-process, a node disk held open by a
 * real QEMU, and overlay vs copy timings on a ~4 GiB image. Uses synthetic images, not the
 * built-in recipes (their own e2e test builds those).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageCommandOn } from '../../src/cli/commands/image.js';
import { createProcessRunner } from '../../src/host/process.js';
import { ImageStore } from '../../src/images/store.js';
import type { Recipe } from '../../src/images/types.js';
import { memoryLogger } from '../../src/util/log.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const top = mkdtempSync(path.join(os.tmpdir(), 'falcon-img-e2e-'));
const root = path.join(top, 'store');
const log = memoryLogger();
const runner = createProcessRunner();
const noRecipes: Record<string, Recipe> = {};
const store = new ImageStore({ root, runner, log, recipes: noRecipes });

function makeRaw(file: string, size: number): string {
  const buf = Buffer.alloc(Math.min(size, 4 * MiB));
  buf.fill(0x5a, 8192, 65536);
  buf[510] = 0x55;
  buf[511] = 0xaa;
  writeFileSync(file, buf);
  if (size > buf.length) execFileSync('truncate', ['-s', String(size), file]);
  return file;
}

/** Runs `falcon image ARGS` in-process and returns what it printed. */
async function falcon(...args: string[]): Promise<string> {
  return falconOn(store, ...args);
}

async function falconOn(on: ImageStore, ...args: string[]): Promise<string> {
  let out = '';
  const program = new Command('falcon');
  program.addCommand(imageCommandOn(() => ({ store: on, log, out: (s) => void (out += s) })));
  // Throw instead of exiting, quietly, on every level (addCommand doesn't pass these settings down).
  const quiet = (c: Command): void => {
    c.exitOverride().configureOutput({ writeErr: () => {} });
    c.commands.forEach(quiet);
  };
  quiet(program);
  await program.parseAsync(['image', ...args], { from: 'user' });
  return out;
}

let server: http.Server;
let baseUrl: string;
let qemu: ChildProcess | undefined;
const raw = path.join(top, 'small.raw');
const kernel = path.join(top, 'vmlinuz');

beforeAll(async () => {
  makeRaw(raw, 8 * MiB);
  writeFileSync(kernel, 'KERNEL');
  server = http.createServer((req, res) => {
    if (req.url === '/small.raw') res.writeHead(200).end(readFileSync(raw));
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  if (qemu?.pid && qemu.exitCode === null) qemu.kill('SIGKILL');
  await new Promise<void>((r) => server.close(() => r()));
  await rm(top, { recursive: true, force: true });
});

describe('falcon image commands', () => {
  it('import, list, inspect, pull, rm', async () => {
    expect(await falcon('list')).toMatch(/No images in .*falcon image import/);
    expect(await falcon('import', 'small', raw, '--kernel', kernel, '--cmdline', 'console=ttyS0', '--exec', 'agent')).toMatch(
      /imported image 'small' \(8.0 MiB virtual, direct boot\)/,
    );
    await falcon('import', 'small-uefi', raw, '--uefi', '--login-user', 'debian');
    const table = await falcon('list');
    expect(table.split('\n')[0]).toMatch(/^NAME\s+SIZE\s+VIRTUAL\s+BOOT\s+FROM\s+CREATED$/);
    expect(table).toMatch(/small\s+\S+ \S+\s+8.0 MiB\s+direct\s+-/);
    expect(table).toMatch(/small-uefi\s+.*uefi/);
    const json = JSON.parse(await falcon('list', '--json')) as { name: string; exec: string; login?: { user: string } }[];
    expect(json.map((i) => [i.name, i.exec, i.login?.user])).toEqual([
      ['small', 'agent', undefined],
      ['small-uefi', 'serial-login', 'debian'],
    ]);

    const text = await falcon('inspect', 'small');
    expect(text).toMatch(/^name\s+small$/m);
    expect(text).toMatch(/boot\s+direct: kernel kernel, cmdline "console=ttyS0"/);
    expect(text).toMatch(/used by\s+no topology/);
    const inspected = JSON.parse(await falcon('inspect', 'small', '--json')) as { info: { format: string }; usedBy: unknown[] };
    expect(inspected.info.format).toBe('qcow2');

    const sum = createHash('sha256').update(readFileSync(raw)).digest('hex');
    expect(await falcon('pull', 'pulled', `${baseUrl}/small.raw`, '--sha256', sum, '--bios')).toMatch(/pulled image 'pulled'/);
    await expect(falcon('pull', 'nope', `${baseUrl}/small.raw`, '--sha256', 'f'.repeat(64))).rejects.toThrow(/checksum mismatch/);
    await expect(falcon('pull', 'nope', `${baseUrl}/gone.raw`)).rejects.toThrow(/HTTP 404/);
    await expect(falcon('import', 'x', raw, '--uefi', '--bios')).rejects.toThrow(/cannot be used with/);
    await expect(falcon('inspect', 'ghost')).rejects.toThrow(/image 'ghost' is not in the image store/);

    expect(await falcon('rm', 'pulled')).toBe("removed image 'pulled'\n");
    expect((await store.list()).map((i) => i.name)).toEqual(['small', 'small-uefi']);
  });

  it('a node disk held open by a running QEMU still counts as a user; snapshotting it needs the node stopped', async () => {
    const disk = await store.createNodeDisk({ topology: 'e2e-img', node: 'n1', image: 'small', mode: 'overlay' });
    // Paused at start (-S): QEMU opens and locks the disk, nothing runs.
    qemu = spawn(
      'qemu-system-x86_64',
      ['-S', '-display', 'none', '-nodefaults', '-machine', 'q35,accel=tcg', '-m', '64', '-drive', `file=${disk},if=virtio,format=qcow2`],
      { stdio: 'ignore' },
    );
    const deadline = Date.now() + 10_000;
    // Wait until QEMU holds the image lock (qemu-img info without -U fails then).
    for (;;) {
      try {
        execFileSync('qemu-img', ['info', disk], { stdio: 'ignore' });
      } catch {
        break;
      }
      if (Date.now() > deadline) throw new Error('QEMU did not open the disk');
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await store.inspect('small')).usedBy.map((u) => `${u.topology}/${u.node}`)).toEqual(['e2e-img/n1']);
    await expect(falcon('rm', 'small')).rejects.toThrow(/node disk e2e-img\/n1 use it/);
    const parent = (await store.get('small')).meta;
    await expect(store.snapshotFromDisk({ diskPath: disk, newName: 'snap', parent })).rejects.toThrow(/a running VM has it open; stop the node first/);
    expect(await store.has('snap')).toBe(false);

    qemu.kill('SIGTERM');
    await new Promise((r) => qemu!.once('exit', r));
    const snap = await store.snapshotFromDisk({ diskPath: disk, newName: 'snap', parent });
    expect(snap.meta.parent).toBe('small');
    expect(existsSync(snap.kernel!)).toBe(true);
    expect(await falcon('list')).toMatch(/snap\s+.*direct\s+small/);
    await store.removeTopologyDisks('e2e-img');
    await falcon('rm', 'small');
  });
});

describe('image build --as --packages', () => {
  /** Recipes that make a small raw disk; only the debian-12 stand-in takes packages. */
  function recipe(name: string, acceptsPackages: boolean): Recipe {
    return {
      name,
      version: 1,
      description: `stand-in for ${name}`,
      acceptsPackages,
      build: async (ctx) => {
        makeRaw(path.join(ctx.outDir, 'disk.raw'), 4 * MiB);
        return { disk: 'disk.raw', boot: { method: 'firmware', firmware: 'bios' }, exec: 'serial-login', description: `${name} with ${(ctx.packages ?? []).join(' ') || 'nothing'}` };
      },
    };
  }
  const built = new ImageStore({ root: path.join(top, 'built'), runner, log, recipes: { tiny: recipe('tiny', false), 'debian-12': recipe('debian-12', true) } });

  it('records the packages and shows them in inspect and list; refuses them where they cannot go', async () => {
    expect(await falconOn(built, 'build', 'debian-12', '--as', 'router', '--packages', 'bird2,frr')).toMatch(/^router: .*disk\.qcow2\n$/);
    expect(await falconOn(built, 'inspect', 'router')).toMatch(/^packages\s+bird2, frr$/m);
    expect(JSON.parse(await falconOn(built, 'inspect', 'router', '--json')).packages).toEqual(['bird2', 'frr']);
    await falconOn(built, 'build', 'debian-12', '--as', 'plain');
    const list = await falconOn(built, 'list');
    expect(list).toMatch(/^router\s.*\sdebian-12 \+bird2,frr\s/m);
    expect(list).toMatch(/^plain\s.*\sdebian-12\s/m);
    expect(JSON.parse(await falconOn(built, 'inspect', 'plain', '--json')).packages).toBeUndefined();
    await expect(falconOn(built, 'build', 'tiny', '--packages', 'bird2')).rejects.toThrow(/the tiny recipe takes no extra packages/);
    await expect(falconOn(built, 'build', 'debian-12', '--as', 'x', '--packages', 'bird2,--allow-unauthenticated')).rejects.toThrow(
      /invalid package name '--allow-unauthenticated'/,
    );
    expect((await built.list()).map((i) => i.name)).toEqual(['plain', 'router']);
  });
});

describe('overlay vs copy', () => {
  async function time<T>(fn: () => Promise<T>): Promise<[T, number]> {
    const t = performance.now();
    const r = await fn();
    return [r, performance.now() - t];
  }

  it('an overlay is a thin qcow2 on the image whatever its size (times printed); a copy holds the data', async () => {
    const results: string[] = [];
    const bigRaw = makeRaw(path.join(top, 'big.raw'), 4 * GiB);
    // Some real data so the copy has something to copy: 256 MiB of random bytes at 1 GiB.
    execFileSync('dd', ['if=/dev/urandom', `of=${bigRaw}`, 'bs=1M', 'count=256', 'seek=1024', 'conv=notrunc'], { stdio: 'ignore' });
    for (const [name, file] of [
      ['t-small', raw],
      ['t-big', bigRaw],
    ] as const) {
      const [, importMs] = await time(() => store.import(name, file));
      const [, overlayMs] = await time(() => store.createNodeDisk({ topology: 'bench', node: `${name}-ov`, image: name, mode: 'overlay' }));
      const [, copyMs] = await time(() => store.createNodeDisk({ topology: 'bench', node: `${name}-cp`, image: name, mode: 'copy' }));
      const img = await store.get(name);
      results.push(
        `${name}: virtual ${img.meta.virtualSizeBytes / MiB} MiB, qcow2 ${(img.meta.sizeBytes / MiB).toFixed(1)} MiB; ` +
          `import ${importMs.toFixed(0)} ms, overlay ${overlayMs.toFixed(0)} ms, copy ${copyMs.toFixed(0)} ms`,
      );
      // What makes an overlay cheap: it is a few hundred KiB backed by the image, the data stays there.
      const ov = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', '-U', store.nodeDiskPath('bench', `${name}-ov`)], { encoding: 'utf8' })) as {
        'actual-size': number;
        'backing-filename'?: string;
      };
      expect(ov['backing-filename']).toBeTruthy();
      expect(ov['actual-size']).toBeLessThan(MiB);
      const cp = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', '-U', store.nodeDiskPath('bench', `${name}-cp`)], { encoding: 'utf8' })) as typeof ov;
      expect(cp['backing-filename']).toBeUndefined();
      expect(cp['actual-size']).toBeGreaterThanOrEqual(Math.min(img.meta.sizeBytes, 200 * MiB));
    }
    console.log(results.join('\n'));
    await store.removeTopologyDisks('bench');
    await rm(bigRaw);
  });
});
