/**
 * The built-in `tiny` recipe, end to end: build it (or reuse FALCON_TEST_TINY_DIR), boot it
 * under QEMU TCG with the serial console on stdio, and drive the root shell on the console:
 * FALCON-BOOTED appears, a job-control shell runs on ttyS0, a 9p share mounts, virtio NICs
 * are eth0/eth1 in PCI order, and falcon-agent answers on its virtio-serial port.
 * debian-12 the same way, built once with an extra package (bird2) by README.md's own command,
 * and that build launched as a node that runs bird.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProcessRunner } from '../../src/host/process.js';
import { consoleLogger, silentLogger } from '../../src/util/log.js';
import { execOverChannel, waitForAgent } from '../../src/guest/exec-client.js';
import { getRecipe } from '../../src/images/recipes/index.js';
import { TINY_CMDLINE } from '../../src/images/recipes/tiny.js';
import { DEBIAN12_CMDLINE } from '../../src/images/recipes/debian12.js';
import { ImageStore, type StoredImage } from '../../src/images/store.js';
import type { RecipeResult } from '../../src/images/types.js';
import { mb } from '../../src/index.js';
import { leftovers, newRunner, tempDir } from './helpers.js';

const BOOT_DEADLINE_MS = 90_000;
const CMD_DEADLINE_MS = 20_000;

/** The serial console as a stream of text, with deadline-bound waits. */
class Console {
  text = '';
  private waiters: (() => void)[] = [];
  constructor(private readonly proc: ChildProcessWithoutNullStreams) {
    proc.stdout.on('data', (c: Buffer) => {
      this.text += c.toString('utf8');
      for (const w of this.waiters.splice(0)) w();
    });
    proc.on('exit', () => {
      for (const w of this.waiters.splice(0)) w();
    });
  }
  tail(n = 1500): string {
    return this.text.slice(-n);
  }
  /** Resolves with the first match of `re` in the output after `from`. */
  async waitFor(re: RegExp, deadlineMs: number, from = 0): Promise<RegExpExecArray> {
    const end = Date.now() + deadlineMs;
    for (;;) {
      const m = re.exec(this.text.slice(from));
      if (m) return m;
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
        throw new Error(`QEMU exited (${this.proc.exitCode ?? this.proc.signalCode}) before ${re} appeared; console tail:\n${this.tail()}`);
      }
      const left = end - Date.now();
      if (left <= 0) throw new Error(`${re} did not appear on the console within ${deadlineMs} ms; console tail:\n${this.tail()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
  private seq = 0;
  /** Runs a command in the console shell; returns its output and exit status. */
  async run(cmd: string, deadlineMs = CMD_DEADLINE_MS): Promise<{ out: string; status: number }> {
    const n = ++this.seq;
    const from = this.text.length;
    // The quotes split the marker, so the echoed command line does not match it.
    this.proc.stdin.write(`${cmd}; echo "@@EN""D${n} $?@@"\n`);
    const m = await this.waitFor(new RegExp(`@@END${n} (\\d+)@@`), deadlineMs, from);
    const all = this.text.slice(from);
    const body = all.slice(0, all.indexOf(m[0]));
    // Drop the echoed command line (everything up to its first newline).
    // eslint-disable-next-line no-control-regex -- terminal escapes (bash's bracketed paste, ash's cursor query)
    const out = body.slice(body.indexOf('\n') + 1).replace(/\r|\x1b\[[0-9;?]*[a-zA-Z]/g, '');
    return { out, status: Number(m[1]) };
  }
}

interface Booted {
  qemu: ChildProcessWithoutNullStreams;
  con: Console;
  agentSock: string;
  bootMs: number;
}

/**
 * Boots an image directory (vmlinuz, initrd.img, disk.qcow2) under TCG with a 9p share of
 * `share` (tag fs0), two NICs at PCI slots 0x10 (mac ..:01) and 0x11 (mac ..:02), and the
 * agent port; resolves once FALCON-BOOTED is on the console.
 */
async function boot(dir: string, cmdline: string, tmp: string, share: string, memMiB: number, deadlineMs: number): Promise<Booted> {
  const agentSock = join(tmp, 'agent.sock');
  const args = [
    '-accel', 'tcg', '-m', String(memMiB), '-smp', '1', '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    '-serial', 'stdio',
    '-kernel', join(dir, 'vmlinuz'), '-initrd', join(dir, 'initrd.img'),
    '-append', cmdline,
    '-drive', `file=${join(dir, 'disk.qcow2')},if=virtio,snapshot=on`,
    '-fsdev', `local,id=fs0,path=${share},security_model=none,readonly=on`,
    '-device', 'virtio-9p-pci,fsdev=fs0,mount_tag=fs0',
    // The second NIC comes first on the command line but later in PCI order.
    '-netdev', 'user,id=n1,restrict=on', '-device', 'virtio-net-pci,netdev=n1,mac=52:54:00:fa:1c:02,addr=0x11',
    '-netdev', 'user,id=n0,restrict=on', '-device', 'virtio-net-pci,netdev=n0,mac=52:54:00:fa:1c:01,addr=0x10',
    '-device', 'virtio-serial-pci',
    '-chardev', `socket,id=agent,path=${agentSock},server=on,wait=off`,
    '-device', 'virtserialport,chardev=agent,name=org.falcon.exec',
  ];
  const started = Date.now();
  const qemu = spawn('qemu-system-x86_64', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  qemu.stderr.on('data', (c: Buffer) => process.stderr.write(`qemu: ${c.toString()}`));
  const con = new Console(qemu);
  try {
    await con.waitFor(/FALCON-BOOTED/, deadlineMs);
  } catch (e) {
    await kill(qemu);
    throw e;
  }
  return { qemu, con, agentSock, bootMs: Date.now() - started };
}

async function kill(qemu: ChildProcessWithoutNullStreams | undefined): Promise<void> {
  if (!qemu || qemu.exitCode !== null || qemu.signalCode !== null) return;
  const exited = new Promise((r) => qemu.once('exit', r));
  qemu.kill('SIGKILL');
  await exited;
}

describe('built-in recipe tiny', () => {
  let dir: string;
  let tmp: string;
  let qemu: ChildProcessWithoutNullStreams | undefined;
  let con: Console;
  const token = randomBytes(8).toString('hex');
  let agentSock: string;
  let cmdline = TINY_CMDLINE;

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'falcon-recipes-e2e-'));
    const reuse = process.env.FALCON_TEST_TINY_DIR;
    if (reuse && existsSync(join(reuse, 'disk.qcow2'))) {
      dir = reuse;
    } else {
      dir = join(tmp, 'tiny');
      await mkdir(dir);
      const log = consoleLogger('info');
      const cacheDir = process.env.FALCON_TEST_CACHE_DIR ?? join(tmpdir(), 'falcon-test-cache');
      await mkdir(cacheDir, { recursive: true });
      const started = Date.now();
      const r: RecipeResult = await getRecipe('tiny').build({
        outDir: dir,
        workDir: join(tmp, 'work'),
        cacheDir,
        runner: createProcessRunner(log),
        log,
      });
      console.log(`built tiny in ${Date.now() - started} ms: ${r.description}`);
      expect(r.boot.method).toBe('direct');
      if (r.boot.method === 'direct') cmdline = r.boot.cmdline;
    }
    const share = join(tmp, 'share');
    await mkdir(share);
    await writeFile(join(share, 'hello.txt'), `${token}\n`);
    const b = await boot(dir, cmdline, tmp, share, 256, BOOT_DEADLINE_MS);
    ({ qemu, con, agentSock } = b);
    console.log(`tiny booted to FALCON-BOOTED in ${b.bootMs} ms under TCG`);
  });

  afterAll(async () => {
    await kill(qemu);
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('gives a root shell with job control on ttyS0', async () => {
    const r = await con.run('id -u; tty');
    expect(r.status).toBe(0);
    expect(r.out).toMatch(/^0$/m);
    expect(r.out).toMatch(/\/dev\/ttyS0/);
    expect(con.text).not.toMatch(/job control turned off/);
  });

  it('mounts a 9p share read-only', async () => {
    const r = await con.run('mkdir -p /mnt/share && mount -t 9p -o trans=virtio,version=9p2000.L,ro fs0 /mnt/share && cat /mnt/share/hello.txt');
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain(token);
  });

  it('names the virtio NICs eth0, eth1 in PCI order', async () => {
    const r = await con.run('cat /sys/class/net/eth0/address /sys/class/net/eth1/address');
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/52:54:00:fa:1c:01\s+52:54:00:fa:1c:02/);
  });

  it('runs commands through falcon-agent', async () => {
    await waitForAgent(agentSock, { deadlineMs: 30_000, node: 'tiny' });
    const r = await execOverChannel(agentSock, 'echo hi-from-$(hostname); exit 3', { timeoutMs: 20_000 });
    expect(r.exitCode).toBe(3);
    expect(r.stdout.toString()).toBe('hi-from-falcon\n');
  });
});

/**
 * debian-12 is the image users run real services on, so it runs in every e2e run. One build
 * serves both blocks below: the recipe plus bird2, made by README.md's command as written, with
 * the download cache of the store the test command sets up (FALCON_TEST_CACHE_DIR is
 * `<store>/cache`).
 */
const storeRoot = process.env.FALCON_TEST_CACHE_DIR?.endsWith('/cache') ? dirname(process.env.FALCON_TEST_CACHE_DIR) : undefined;
/** README.md's command for an image with an extra package: this test runs it as written. */
const README_BUILD = 'node bin/falcon.js image build debian-12 --as router --packages bird2';
const VARIANT = 'router';
const repo = resolve(import.meta.dirname, '../..');
let variantStoreRoot: string | undefined;
let variantBuild: Promise<{ store: ImageStore; img: StoredImage }> | undefined;
/**
 * Runs README_BUILD into a store of its own (so a user's image named "router" is never touched)
 * whose download cache is the shared store's, so its packages come from that cache after the
 * first run.
 */
function variant(): Promise<{ store: ImageStore; img: StoredImage }> {
  variantBuild ??= (async () => {
    const root = (variantStoreRoot = await mkdtemp(join(tmpdir(), 'falcon-e2e-store-')));
    const sharedCache = join(new ImageStore({ root: storeRoot, runner: createProcessRunner(silentLogger), log: silentLogger }).root, 'cache');
    await mkdir(sharedCache, { recursive: true });
    await symlink(sharedCache, join(root, 'cache'));
    const started = Date.now();
    const [cmd, ...args] = README_BUILD.split(' ');
    const r = await runCommand(cmd!, args, { cwd: repo, env: { ...process.env, FALCON_IMAGE_DIR: root } });
    expect(r.code, `${README_BUILD} failed:\n${r.output.slice(-4000)}`).toBe(0);
    console.log(`built debian-12 + bird2 with README's command in ${Date.now() - started} ms`);
    const log = silentLogger;
    const store = new ImageStore({ root, runner: createProcessRunner(log), log });
    return { store, img: await store.get(VARIANT) };
  })();
  return variantBuild;
}
afterAll(async () => {
  // The store's cache is a symlink: rm removes the link, not the shared cache.
  if (variantStoreRoot) await rm(variantStoreRoot, { recursive: true, force: true });
});

/** Runs a command without a shell; resolves with its exit code and interleaved output. */
function runCommand(cmd: string, args: string[], o: { cwd: string; env: NodeJS.ProcessEnv }): Promise<{ code: number | null; output: string }> {
  return new Promise((res, rej) => {
    const p = spawn(cmd, args, { ...o, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    p.stdout.on('data', (c: Buffer) => (output += c.toString()));
    p.stderr.on('data', (c: Buffer) => (output += c.toString()));
    p.on('error', rej);
    p.on('close', (code) => res({ code, output }));
  });
}

it('README.md has the package build command this file runs', async () => {
  expect(await readFile(join(repo, 'README.md'), 'utf8')).toContain(`\n${README_BUILD}\n`);
});

/** FALCON_TEST_DEBIAN12_DIR=<built image dir> boots that image here instead of the shared build. */
describe('built-in recipe debian-12', () => {
  let tmp: string;
  let b: Booted | undefined;
  const token = randomBytes(8).toString('hex');

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'falcon-recipes-e2e-'));
    let dir = process.env.FALCON_TEST_DEBIAN12_DIR ?? '';
    let cmdline = DEBIAN12_CMDLINE;
    if (!dir || !existsSync(join(dir, 'disk.qcow2'))) {
      const { img } = await variant();
      dir = img.dir;
      if (img.meta.boot.method === 'direct') cmdline = img.meta.boot.cmdline;
    }
    const share = join(tmp, 'share');
    await mkdir(share);
    await writeFile(join(share, 'hello.txt'), `${token}\n`);
    // snapshot=on: the guest's writes never reach the image.
    b = await boot(dir, cmdline, tmp, share, 1024, 240_000);
    console.log(`debian-12 booted to FALCON-BOOTED in ${b.bootMs} ms under TCG`);
  }, 900_000);

  afterAll(async () => {
    await kill(b?.qemu);
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('runs commands through falcon-agent, with eth0/eth1 in PCI order and 9p', async () => {
    await waitForAgent(b!.agentSock, { deadlineMs: 60_000, node: 'debian-12' });
    const r = await execOverChannel(
      b!.agentSock,
      'cat /sys/class/net/eth0/address /sys/class/net/eth1/address && mkdir -p /mnt/s && ' +
        'mount -t 9p -o trans=virtio,version=9p2000.L,ro fs0 /mnt/s && cat /mnt/s/hello.txt',
      { timeoutMs: 30_000 },
    );
    expect(r.exitCode, r.stderr.toString()).toBe(0);
    expect(r.stdout.toString()).toMatch(new RegExp(`52:54:00:fa:1c:01\\s+52:54:00:fa:1c:02\\s+${token}`));
  });

  it('logs root in on ttyS0 without a password', async () => {
    await b!.con.waitFor(/root@falcon:~#/, 60_000);
    const r = await b!.con.run('id -u; tty');
    expect(r.out).toMatch(/^0$/m);
    expect(r.out).toMatch(/\/dev\/ttyS0/);
  });
});

describe('debian-12 with an extra package', () => {
  it('records bird2 in the image and runs bird in a launched node', async () => {
    const { store, img } = await variant();
    expect(img.meta.packages).toEqual(['bird2']);
    expect(img.meta.recipe?.name).toBe('debian-12');
    const d = newRunner('e2ebird', tempDir('bird'), { imageDir: store.root });
    try {
      d.node('rtr', VARIANT, 1, mb(1024));
      await d.launch();
      const r = await d.exec('rtr', 'bird --version');
      const printed = r.stdout.toString() + r.stderr.toString(); // bird prints its version on stderr
      expect(r.exitCode, printed).toBe(0);
      expect(printed).toMatch(/BIRD version 2\.\d+/);
    } finally {
      await d.destroy();
    }
  }, 900_000);
});

/**
 * A sled as omicron and voxel declare one: a debian-12 node with two NVMe disks besides its boot
 * disk, three links and a mount. Its NICs must sit at the documented PCI slots (0x10 + index)
 * with the documented names (eth0..eth2) and MACs, its disks show their serials, and after a
 * relaunch that adds a disk and a mount, the NICs keep their slots and names and the disks
 * their contents. The peer is a tiny node with an NVMe disk of its own.
 */
describe('a sled-shaped debian-12 node', () => {
  const NIC_SCRIPT = 'for i in 0 1 2; do echo "eth$i $(basename $(readlink -f /sys/class/net/eth$i/device/..)) $(cat /sys/class/net/eth$i/address)"; done';

  it('keeps its NIC slots, names and disks across a relaunch that adds a disk and a mount', async () => {
    const { store } = await variant();
    if (!(await store.has('tiny'))) await store.ensure('tiny');
    const dir = tempDir('sled');
    const bays = [join(dir, 'bay0'), join(dir, 'bay1')];
    for (const [i, b] of bays.entries()) {
      await mkdir(b);
      await writeFile(join(b, 'hello.txt'), `bay${i}\n`);
    }
    const declare = (grown: boolean) => {
      const d = newRunner('e2esled', dir, { imageDir: store.root });
      const sled = d.node('sled', VARIANT, 2, mb(1024));
      const peer = d.node('peer', 'tiny', 1, mb(256));
      d.disk(sled, { sizeGiB: 2, serial: 'sled-u2-0' });
      d.disk(sled, { sizeGiB: 3, serial: 'sled-u2-1' });
      d.disk(peer, { sizeGiB: 1, serial: 'peer-nvme' });
      // The escape hatch: a raw NVMe controller of the peer's own, on a disk Falcon creates but does not attach.
      d.qemuDevice(peer, { driver: 'nvme', serial: 'peer-raw', drive: d.disk(peer, { sizeGiB: 1, bus: 'none', name: 'raw' }) });
      for (let i = 0; i < 3; i++) d.link(sled, peer);
      d.mount(bays[0]!, '/opt/bay0', sled);
      if (grown) {
        d.disk(sled, { sizeGiB: 1, bus: 'virtio', name: 'scratch' });
        d.mountLinux(bays[1]!, '/opt/bay1', sled);
      }
      return d;
    };
    const expectedNics = async (d: ReturnType<typeof declare>) => {
      const info = await d.info();
      const macs = info.links.map((l) => (l.a.node === 'sled' ? l.a : l.b!)).sort((x, y) => x.index! - y.index!).map((e) => e.mac);
      return macs.map((mac, i) => `eth${i} 0000:00:${(0x10 + i).toString(16)}.0 ${mac}`).join('\n');
    };
    let d = declare(false);
    try {
      await d.launch();
      const want = await expectedNics(d);
      expect((await d.succeed('sled', NIC_SCRIPT)).stdout.trim()).toBe(want);
      const disks = await d.succeed('sled', 'for n in 0 1; do echo "$(cat /sys/class/nvme/nvme$n/serial | tr -d " ") $(blockdev --getsize64 /dev/nvme${n}n1)"; done');
      expect(disks.stdout.trim().split('\n')).toEqual([`sled-u2-0 ${2 * 2 ** 30}`, `sled-u2-1 ${3 * 2 ** 30}`]);
      expect((await d.succeed('peer', 'cat /sys/class/nvme/nvme*/serial | sort; test -b /dev/nvme0n1 && test -b /dev/nvme1n1 && echo block')).stdout.replace(/ +/g, '')).toBe(
        'peer-nvme\npeer-raw\nblock\n',
      );
      expect((await d.succeed('sled', 'cat /opt/bay0/hello.txt')).stdout).toBe('bay0\n');
      await d.succeed('sled', 'printf sled-marker | dd of=/dev/nvme0n1 bs=512 count=1 conv=sync,fsync 2>/dev/null');
      const info = await d.info();
      expect(info.nodes.find((n) => n.name === 'peer')!.devices).toEqual([{ driver: 'nvme', props: { serial: 'peer-raw', drive: 'disk-raw' } }]);
      expect(info.nodes.find((n) => n.name === 'sled')!.disks.map((x) => `${x.name} ${x.bus} ${x.sizeGiB} ${x.serial}`)).toEqual([
        'disk0 nvme 2 sled-u2-0',
        'disk1 nvme 3 sled-u2-1',
      ]);
      await d.hyperstop('sled');

      // The program grows: a virtio disk and a second mount. launch again restarts the stopped sled with them.
      d = declare(true);
      await d.launch();
      expect((await d.succeed('sled', NIC_SCRIPT)).stdout.trim()).toBe(want);
      expect((await d.succeed('sled', 'dd if=/dev/nvme0n1 bs=11 count=1 2>/dev/null')).stdout).toBe('sled-marker');
      expect((await d.succeed('sled', 'cat /sys/class/nvme/nvme1/serial; blockdev --getsize64 /dev/vdb; cat /opt/bay1/hello.txt')).stdout.replace(/ +\n/g, '\n')).toBe(
        `sled-u2-1\n${2 ** 30}\nbay1\n`,
      );
    } finally {
      await d.destroy();
    }
    expect(leftovers(d)).toEqual([]);
  }, 900_000);
});
