/**
 * OCI images end to end: the tiny image exported as a containerDisk and checked with umoci, the
 * falcon-node image built (or taken from the cache), both imported into a throwaway containerd
 * (its own root, state and socket in a temp folder) with `ctr -n k8s.io images import`, and the
 * falcon-node image run there with runc: the entrypoint says node-main is missing (or runs it),
 * Falcon's CLI and QEMU run. containerd is stopped and nothing is left behind.
 *
 * Needs root, umoci, containerd (with ctr) and runc: apt-get install umoci containerd runc.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProcessRunner } from '../../src/host/process.js';
import { ImageStore } from '../../src/images/store.js';
import { buildNodeImage, NODE_MAIN, type NodeImageResult } from '../../src/k8s/node-image.js';
import { consoleLogger } from '../../src/util/log.js';

const log = consoleLogger(process.env.FALCON_LOG ? undefined : 'warn');
const runner = createProcessRunner(log);
const store = new ImageStore({ runner, log });
// Short: containerd's socket path must stay under 107 bytes.
const top = mkdtempSync(path.join(os.tmpdir(), 'falcon-oci-'));
const sha256 = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

function need(tool: string, pkg: string): void {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
  } catch {
    throw new Error(`this test needs ${tool}: apt-get install ${pkg}`);
  }
}

let tiny: Awaited<ReturnType<ImageStore['exportOci']>>;
let node: NodeImageResult;

beforeAll(async () => {
  for (const [t, p] of [['umoci', 'umoci'], ['containerd', 'containerd'], ['ctr', 'containerd'], ['runc', 'runc']] as const) need(t, p);
  await store.ensure('tiny');
}, 600_000);

afterAll(() => {
  rmSync(top, { recursive: true, force: true });
});

describe('falcon image export --oci', () => {
  it('exports tiny: umoci unpacks it into the containerDisk layout; a second export is identical', async () => {
    const started = Date.now();
    tiny = await store.exportOci('tiny', path.join(top, 'tiny.tar'));
    const coldMs = Date.now() - started;
    const again = await store.exportOci('tiny', path.join(top, 'tiny-again.tar'));
    expect(again.digest).toBe(tiny.digest);
    expect(sha256(again.path)).toBe(sha256(tiny.path));
    console.log(`export of tiny: ${(tiny.size / 1e6).toFixed(1)} MB in ${coldMs} ms (${tiny.ref}, ${tiny.digest})`);

    const layout = path.join(top, 'tiny-layout');
    mkdirSync(layout);
    execFileSync('tar', ['-xf', tiny.path, '-C', layout]);
    const tag = tiny.ref.slice(tiny.ref.lastIndexOf(':') + 1);
    expect(execFileSync('umoci', ['list', '--layout', layout], { encoding: 'utf8' }).trim().split('\n')).toEqual([tag]);
    // umoci checks every blob's digest and size, and the layer's diff_id, as it unpacks.
    const bundle = path.join(top, 'tiny-bundle');
    execFileSync('umoci', ['unpack', '--image', `${layout}:${tag}`, bundle], { stdio: ['ignore', 'ignore', 'pipe'] });
    const disk = path.join(bundle, 'rootfs', 'disk');
    const img = await store.get('tiny');
    expect(readdirSync(disk).sort()).toEqual(['initrd.img', 'meta.json', 'tiny.qcow2', 'vmlinuz']);
    for (const f of readdirSync(disk)) expect(statSync(path.join(disk, f))).toMatchObject({ uid: 107, gid: 107 });
    expect(sha256(path.join(disk, 'tiny.qcow2'))).toBe(img.meta.sha256);
    expect(sha256(path.join(disk, 'vmlinuz'))).toBe(sha256(img.kernel!));
    expect(JSON.parse(readFileSync(path.join(disk, 'meta.json'), 'utf8'))).toEqual({ ...img.meta, disk: 'tiny.qcow2' });
    rmSync(bundle, { recursive: true, force: true });
  });
});

describe('the falcon-node image', () => {
  it('builds (or is current in the cache), and is cached the second time', async () => {
    const started = Date.now();
    node = await buildNodeImage({ store, runner, log, out: path.join(top, 'falcon-node.tar') });
    console.log(`falcon-node image: ${(node.size / 1e6).toFixed(0)} MB (${(node.uncompressedSize / 1e6).toFixed(0)} MB unpacked), ${node.cached ? 'cached' : 'built'} in ${Date.now() - started} ms: ${node.refs.join(', ')}`);
    expect(node.out).toBe(path.join(top, 'falcon-node.tar'));
    expect(statSync(node.out!).size).toBe(node.size);
    const t = Date.now();
    const again = await buildNodeImage({ store, runner, log });
    expect(again).toMatchObject({ cached: true, digest: node.digest, path: node.path });
    console.log(`falcon-node image, cached: ${Date.now() - t} ms`);
  }, 1_800_000);
});

describe('a throwaway containerd', () => {
  let dir: string;
  let child: ChildProcess | undefined;
  let sock: string;
  const ctr = (...args: string[]) => execFileSync('ctr', ['--address', sock, '-n', 'k8s.io', ...args], { encoding: 'utf8', timeout: 300_000, stdio: ['ignore', 'pipe', 'pipe'] });

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'falcon-ctd-'));
    sock = path.join(dir, 'c.sock');
    const config = [
      'version = 2',
      `root = "${dir}/root"`,
      `state = "${dir}/state"`,
      // No CRI: nothing here is Kubernetes; the k8s.io namespace is where the CRI would look.
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${sock}"`,
      '[ttrpc]',
      `  address = "${sock}.ttrpc"`,
      '[debug]',
      '  address = ""',
      '[metrics]',
      '  address = ""',
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = "${dir}/opt"`,
    ].join('\n');
    writeFileSync(path.join(dir, 'config.toml'), config + '\n');
    child = spawn('containerd', ['--config', path.join(dir, 'config.toml')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (c: Buffer) => void (err = (err + c.toString()).slice(-4000)));
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        ctr('version');
        break;
      } catch (e) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`containerd did not start: ${(e as Error).message}\n${err}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  });

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child!.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    // Nothing left: no process (shims name the socket), no mount, no folder.
    const procs = readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir);
        } catch {
          return false;
        }
      });
    const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => l.includes(dir));
    for (const m of mounts.reverse()) execFileSync('umount', ['-l', m.split(' ')[1]!]);
    rmSync(dir, { recursive: true, force: true });
    expect(procs).toEqual([]);
    expect(mounts).toEqual([]);
    expect(existsSync(dir)).toBe(false);
  });

  it('imports both archives with ctr -n k8s.io images import and lists them', () => {
    for (const f of [tiny.path, node.out!]) ctr('images', 'import', f);
    const refs = ctr('images', 'list', '-q').trim().split('\n').sort();
    expect(refs).toEqual([...node.refs, tiny.ref].sort());
    const check = ctr('images', 'check');
    for (const r of [...node.refs, tiny.ref]) expect(check).toMatch(new RegExp(`^${r.replace(/[.]/g, '\\.')}\\s.*complete`, 'm'));
    // Importing the same export again changes nothing: same digest, same image.
    ctr('images', 'import', tiny.path);
    expect(ctr('images', 'list', '-q').trim().split('\n').sort()).toEqual(refs);
  });

  it('runs the falcon-node image: the entrypoint, falcon and QEMU', () => {
    const run = (id: string, ...args: string[]) => {
      try {
        return { code: 0, out: execFileSync('ctr', ['--address', sock, '-n', 'k8s.io', 'run', '--rm', node.ref, id, ...args], { encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] }) };
      } catch (e) {
        const x = e as { status: number; stdout: string; stderr: string };
        return { code: x.status, out: x.stdout + x.stderr };
      }
    };
    const entry = run('entry');
    if (!existsSync(path.join(process.cwd(), NODE_MAIN.replace('/opt/falcon/', '')))) {
      expect(entry.code).toBe(127);
      expect(entry.out).toContain(`${NODE_MAIN} is missing`);
    }
    const falcon = run('falcon', '/usr/local/bin/falcon', '--version');
    expect(falcon).toEqual({ code: 0, out: `${JSON.parse(readFileSync('package.json', 'utf8')).version}\n` });
    expect(run('qemu', 'qemu-system-x86_64', '--version').out).toMatch(/^QEMU emulator version 7\./);
    expect(run('busybox', '/bin/busybox', 'true').code).toBe(0);
  });
});
