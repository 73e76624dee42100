/**
 * Nodes end to end under TCG on the tiny image: launch, exec, mounts, hyperstop/hyperstart,
 * reboot, snapshot, destroy.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExecTimeoutError } from '../../src/guest/exec-client.js';
import { ExecError, gb, mb, type Node, type Runner } from '../../src/index.js';
import { leftovers, newRunner, tempDir } from './helpers.js';

describe('empty topology', () => {
  it('launches and destroys with nothing left', async () => {
    const dir = tempDir('empty');
    const d = newRunner('empty', dir);
    await d.launch();
    expect(statSync(d.paths.topologyFile).mode & 0o777).toBe(0o600);
    await d.destroy();
    expect(leftovers(d)).toEqual([]);
    await d.destroy(); // idempotent
  });
});

describe('disposal', () => {
  it('a runner that is not persistent destroys its topology when disposed', async () => {
    const dir = tempDir('dispose');
    let probe: Runner;
    {
      await using d = newRunner('dispose', dir);
      probe = d;
      d.node('n', 'tiny', 1, mb(256));
      await d.launch();
      expect((await d.exec('n', 'echo up')).stdout.toString()).toBe('up\n');
    }
    expect(leftovers(probe)).toEqual([]);
  });
});

describe('multi-core node', () => {
  it('a 2-core tiny node boots and its guest counts 2 CPUs', async () => {
    const dir = tempDir('cores');
    await using d = newRunner('cores', dir);
    d.node('quad', 'tiny', 2, mb(512));
    await d.launch();
    const r = await d.exec('quad', 'grep -c ^processor /proc/cpuinfo; nproc');
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString().trim().split(/\s+/)).toEqual(['2', '2']);
  });
});

describe('solo: one node with a mounted host folder', () => {
  const dir = tempDir('solo');
  const bay = path.join(dir, 'cargo-bay');
  let d: Runner;
  let violin: Node;

  beforeAll(async () => {
    mkdirSync(bay);
    writeFileSync(path.join(bay, 'hello.txt'), 'hello from the host\n');
    d = newRunner('solo', dir);
    violin = d.node('violin', 'tiny', 1, mb(512));
    d.mount(bay, '/opt/cargo-bay', violin);
    d.setSmbiosType1(violin, { manufacturer: 'Falcon, Test', serial: 'SN-42' });
    await d.launch();
  });

  afterAll(async () => {
    await d?.destroy();
    expect(leftovers(d)).toEqual([]);
  });

  it('exec cat returns the mounted file', async () => {
    const r = await d.exec('violin', 'cat /opt/cargo-bay/hello.txt');
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toBe('hello from the host\n');
  });

  it('exec on a node handle gives stdout as a string', async () => {
    expect((await d.exec(violin, 'cat /etc/hostname')).stdout.trim()).toBe('violin');
  });

  it('succeed resolves on exit 0 and rejects with an ExecError on exit 3', async () => {
    expect((await d.succeed(violin, 'echo fine')).stdout).toBe('fine\n');
    const e = await d.succeed(violin, 'echo oops >&2; exit 3').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ExecError);
    expect(e).toMatchObject({ code: 'EXEC_FAILED', node: 'violin', exitCode: 3, signal: null, stderr: 'oops\n' });
    expect((e as Error).message).toBe('command "echo oops >&2; exit 3" failed on node "violin" with exit status 3\noops');
  });

  it('keeps every state and log file of the topology owner-only (0600)', async () => {
    const files = readdirSync(d.paths.dir).filter((f) => statSync(path.join(d.paths.dir, f)).isFile());
    expect(files).toEqual(expect.arrayContaining(['state.json', 'topology.json', 'violin.console.log', 'violin.out', 'violin.err', 'violin.pid']));
    const modes = Object.fromEntries(files.map((f) => [f, (statSync(path.join(d.paths.dir, f)).mode & 0o777).toString(8)]));
    expect(modes).toEqual(Object.fromEntries(files.map((f) => [f, '600'])));
  });

  it('the mount is read-only and the host folder never changes', async () => {
    const r = await d.exec('violin', 'echo x > /opt/cargo-bay/new.txt; echo y >> /opt/cargo-bay/hello.txt');
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr.toString()).toMatch(/Read-only file system/);
    expect(readFileSync(path.join(bay, 'hello.txt'), 'utf8')).toBe('hello from the host\n');
    expect(() => statSync(path.join(bay, 'new.txt'))).toThrow();
  });

  it('sets the hostname and /etc/hosts', async () => {
    expect((await d.exec('violin', 'hostname')).stdout.toString().trim()).toBe('violin');
    expect((await d.exec('violin', 'cat /etc/hosts')).stdout.toString()).toMatch(/127\.0\.1\.1\s+violin/);
  });

  it('gives the guest the SMBIOS type 1 fields of the topology', async () => {
    const r = await d.exec('violin', 'cat /sys/class/dmi/id/sys_vendor /sys/class/dmi/id/product_serial');
    expect(r.stdout.toString()).toBe('Falcon, Test\nSN-42\n');
  });

  it('returns exit statuses and keeps stderr apart from stdout', async () => {
    expect((await d.exec('violin', 'true')).exitCode).toBe(0);
    expect((await d.exec('violin', 'false')).exitCode).toBe(1);
    const r = await d.exec('violin', 'echo out; echo err >&2; exit 42');
    expect(r.exitCode).toBe(42);
    expect(r.stdout.toString()).toBe('out\n');
    expect(r.stderr.toString()).toBe('err\n');
  });

  it("carries 4 MB of binary output intact with encoding 'buffer'", async () => {
    const r = await d.exec('violin', 'head -c 4194304 /dev/urandom > /tmp/blob; cat /tmp/blob', { encoding: 'buffer' });
    expect(Buffer.isBuffer(r.stdout)).toBe(true);
    expect(r.stdout.length).toBe(4 * 1024 * 1024);
    const host = createHash('sha256').update(r.stdout).digest('hex');
    const guest = (await d.exec('violin', 'sha256sum /tmp/blob')).stdout.toString().split(' ')[0];
    expect(host).toBe(guest);
  });

  it('runs a 300-character command with quotes and newlines', async () => {
    const words = Array.from({ length: 40 }, (_, i) => `w${i}`).join(' ');
    const cmd = `printf '%s\\n' "it's" 'say "hi"'\necho '${words}' | wc -w\n# ${'x'.repeat(120)}`;
    expect(cmd.length).toBeGreaterThan(300);
    const r = await d.exec('violin', cmd);
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toBe(`it's\nsay "hi"\n40\n`);
  });

  it('times out a command that runs too long, and the node stays usable', async () => {
    await expect(d.exec('violin', 'echo started; sleep 60', { timeoutMs: 1500 })).rejects.toBeInstanceOf(ExecTimeoutError);
    expect((await d.exec('violin', 'pgrep -f "sleep 60" || echo none')).stdout.toString().trim()).toBe('none');
  });

  it('runs two execs at once', async () => {
    // The first waits for a file only the second creates: run one after the other, it would hang.
    const [a, b] = await Promise.all([
      d.exec('violin', 'while [ ! -e /tmp/go ]; do sleep 0.1; done; echo a', { timeoutMs: 20_000 }),
      d.exec('violin', 'sleep 0.5; touch /tmp/go; echo b', { timeoutMs: 20_000 }),
    ]);
    expect(a.stdout.toString()).toBe('a\n');
    expect(b.stdout.toString()).toBe('b\n');
  });

  it('execs while someone is attached to the serial console', async () => {
    const sock = await new Promise<net.Socket>((res, rej) => {
      const s = net.createConnection({ path: d.paths.sockets('violin').console });
      s.once('connect', () => res(s));
      s.once('error', rej);
    });
    try {
      const r = await d.exec('violin', 'echo while-attached');
      expect(r.stdout.toString()).toBe('while-attached\n');
    } finally {
      sock.destroy();
    }
  });

  it('keeps files across hyperstop and hyperstart', async () => {
    await d.exec('violin', 'echo persisted > /root/keep.txt; sync');
    await d.hyperstop(violin);
    expect((await d.info()).nodes[0]!.status).toBe('stopped');
    await expect(d.exec('violin', 'true')).rejects.toThrow(/not running/);
    await d.hyperstart([violin]);
    expect((await d.exec('violin', 'cat /root/keep.txt')).stdout.toString()).toBe('persisted\n');
    // Set-up runs again: the mount is back.
    expect((await d.exec('violin', 'cat /opt/cargo-bay/hello.txt')).stdout.toString()).toBe('hello from the host\n');
  });

  it('hyperstart brings back a node whose QEMU was killed', async () => {
    const pid = (await d.info()).nodes[0]!.pid!;
    process.kill(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    expect((await d.info()).nodes[0]!.status).toBe('stopped');
    await d.hyperstart(['violin']);
    expect((await d.exec('violin', 'cat /root/keep.txt')).stdout.toString()).toBe('persisted\n');
  });

  it('reboots through QMP', async () => {
    await d.exec('violin', 'echo marker > /tmp/volatile');
    await d.reboot(violin);
    expect((await d.exec('violin', 'cat /tmp/volatile 2>/dev/null || echo gone')).stdout.toString()).toBe('gone\n');
  });
});

describe('snapshot', () => {
  it('a file written in a node is in a topology booted from its snapshot', async () => {
    const dir = tempDir('snap');
    const image = `snap-e2e-${process.pid}`;
    const d = newRunner('snapsrc', dir);
    d.node('src', 'tiny', 1, mb(512));
    const d2 = newRunner('snapdst', tempDir('snap2'));
    d2.node('dst', image, 1, mb(512));
    try {
      await d.launch();
      await d.exec('src', 'echo from-snapshot > /root/snap.txt; sync');
      await d.hyperstop(['src']);
      const img = await d.snapshot('src', image);
      expect(img.meta.parent).toBe('tiny');
      await d.destroy(); // the new image must not depend on the node
      await d2.launch();
      expect((await d2.exec('dst', 'cat /root/snap.txt')).stdout.toString()).toBe('from-snapshot\n');
    } finally {
      await d2.destroy();
      await d.destroy();
      await d.store.remove(image, { force: true }).catch(() => {});
    }
  });

  it('snapshots a running node consistently', async () => {
    const dir = tempDir('snaprun');
    const image = `snaprun-e2e-${process.pid}`;
    const d = newRunner('snaprun', dir);
    const src = d.node('src', 'tiny', 1, gb(1));
    const d2 = newRunner('snaprun2', tempDir('snaprun2'));
    d2.node('dst', image, 1, mb(512));
    try {
      await d.launch();
      await d.exec('src', 'echo live > /root/live.txt; sync');
      await d.snapshot(src, image);
      expect((await d.exec('src', 'echo still-running')).stdout.toString()).toBe('still-running\n');
      await d2.launch();
      expect((await d2.exec('dst', 'cat /root/live.txt')).stdout.toString()).toBe('live\n');
    } finally {
      await d2.destroy();
      await d.destroy();
      await d.store.remove(image, { force: true }).catch(() => {});
    }
  });
});

describe('serial-login fallback', () => {
  it('runs commands over the serial console for an image without the exec agent', async () => {
    const dir = tempDir('serialexec');
    const image = `tiny-serial-${process.pid}`;
    const d = newRunner('serialexec', dir);
    const tiny = await d.store.get('tiny');
    await d.store.import(image, tiny.disk, {
      kernel: tiny.kernel,
      initrd: tiny.initrd,
      cmdline: tiny.meta.boot.method === 'direct' ? tiny.meta.boot.cmdline : '',
      exec: 'serial-login',
    });
    d.node('s', image, 1, mb(256));
    try {
      await d.launch();
      expect((await d.exec('s', 'hostname')).stdout.toString().trim()).toBe('s'); // set up over the console too
      const r = await d.exec('s', `echo "it's here"; exit 3`);
      expect(r.exitCode).toBe(3);
      expect(r.stdout.toString().trim()).toBe(`it's here`);
    } finally {
      await d.destroy();
      await d.store.remove(image, { force: true });
    }
    expect(leftovers(d)).toEqual([]);
  });
});
