/**
 * The switch end to end without VMs: fake QEMU-side socket servers (and one real QEMU with
 * `-machine none`, its stream netdevs joined by a hub) on the ports.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, promises as fs, statSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SwitchClient } from '../../src/switch/client.js';
import { parseSwitchConfig, type SwitchConfigInput } from '../../src/switch/config.js';
import { addAddress, addNeighbor, addRoute4, setMac } from '../../src/switch/encoding.js';
import { FrameReader, frameOne } from '../../src/switch/framing.js';
import { switchCommand } from '../../src/switch/index.js';
import { SidecarCode, encapsulate, readSidecarHeader } from '../../src/switch/sidecar-header.js';
import { Switch } from '../../src/switch/switch.js';
import { memoryLogger } from '../../src/util/log.js';
import { eth, ipv4Icmp } from './switch-frames.js';

/** A QEMU-like server on a unix socket: serves one client, frames both ways. */
class FakeQemu {
  received: Buffer[] = [];
  private server: net.Server | undefined;
  client: net.Socket | undefined;
  constructor(readonly path: string, private readonly raw = false) {}
  async listen(): Promise<void> {
    const server = net.createServer((c) => {
      this.client = c;
      const r = new FrameReader((f) => this.received.push(Buffer.from(f)));
      c.on('data', (d) => (this.raw ? this.received.push(d) : r.push(d)));
      c.on('error', () => {});
    });
    await new Promise<void>((res) => server.listen(this.path, res));
    this.server = server;
  }
  send(frame: Buffer): void {
    this.client!.write(this.raw ? frame : frameOne(frame));
  }
  async close(): Promise<void> {
    this.client?.destroy();
    this.client = undefined;
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.server = undefined;
  }
}

async function until<T>(what: string, f: () => T | undefined | false, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tmpdir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'fsw-'));
  cleanups.push(() => fs.rm(d, { recursive: true, force: true }));
  return d;
}

async function fakes(dir: string, names: string[]): Promise<FakeQemu[]> {
  const out = [];
  for (const n of names) {
    const f = new FakeQemu(path.join(dir, n), n.includes('mgmt'));
    await f.listen();
    cleanups.push(() => f.close());
    out.push(f);
  }
  return out;
}

function config(dir: string, o: Partial<SwitchConfigInput> & { radix: number; program: string }) {
  return parseSwitchConfig({
    version: 1,
    name: 'npu1',
    ports: [null, ...Array.from({ length: o.radix }, (_, i) => path.join(dir, `p${i + 1}`))],
    controlSocket: path.join(dir, 'ctl'),
    pidFile: path.join(dir, 'npu1.pid'),
    tablesFile: path.join(dir, 'tables.json'),
    ...o,
  });
}

async function startSwitch(cfg: ReturnType<typeof config>) {
  const log = memoryLogger('debug');
  const sw = new Switch(cfg, { log });
  await sw.start();
  let stopped = false;
  const stop = async () => {
    if (!stopped) await sw.stop();
    stopped = true;
  };
  cleanups.push(stop);
  return { sw, log, stop };
}

async function client(p: string) {
  const c = await SwitchClient.connect(p);
  cleanups.push(() => c.close());
  return c;
}

const frame = (n: number, len = 64) => eth('a8:40:25:ff:00:02', 'a8:40:25:ff:00:01', 0x88b5, Buffer.alloc(len - 14, n));

describe('switch process (fake QEMU sockets)', () => {
  it('relays frames through the wire program both ways, and counts them', async () => {
    const dir = tmpdir();
    const [p1, p2] = await fakes(dir, ['p1', 'p2']);
    const { sw } = await startSwitch(config(dir, { radix: 2, program: 'wire' }));
    await until('both ports connected', () => p1!.client && p2!.client);
    for (let i = 0; i < 50; i++) p1!.send(frame(i));
    p2!.send(frame(99, 1514));
    await until('50 frames on port 2', () => p2!.received.length === 50);
    await until('1 frame on port 1', () => p1!.received.length === 1);
    expect(p2!.received.map((f) => f[20])).toEqual([...Array(50).keys()]);
    expect(p1!.received[0]!.length).toBe(1514);
    const s = sw.stats();
    expect(s.ports[1]).toMatchObject({ connected: true, rxFrames: 50, txFrames: 1 });
    expect(s.ports[2]).toMatchObject({ rxFrames: 1, txFrames: 50, txBytes: 50 * 64 });
  });

  it('reconnects to a port whose server restarted', async () => {
    const dir = tmpdir();
    const [p1, p2] = await fakes(dir, ['p1', 'p2']);
    const { sw } = await startSwitch(config(dir, { radix: 2, program: 'wire' }));
    await until('connected', () => p1!.client && p2!.client);
    await p2!.close();
    await until('port 2 disconnected', () => !sw.stats().ports[2]!.connected);
    p1!.send(frame(1));
    await until('the frame counted as dropped', () => sw.stats().ports[2]!.dropDisconnected === 1);
    await p2!.listen();
    await until('port 2 reconnected', () => p2!.client);
    p1!.send(frame(2));
    await until('frame after reconnect', () => p2!.received.some((f) => f[20] === 2));
    expect(sw.stats().ports[2]!.connects).toBe(2);
  });

  it('serves inject, capture, stats, dump and table changes on the control socket (0600)', async () => {
    const dir = tmpdir();
    const [, p1, p2] = await fakes(dir, ['cpu', 'p1', 'p2']);
    const cfg = config(dir, { radix: 2, program: 'sidecar-lite', ports: [path.join(dir, 'cpu'), path.join(dir, 'p1'), path.join(dir, 'p2')] });
    await startSwitch(cfg);
    expect(statSync(cfg.controlSocket).mode & 0o777).toBe(0o600);
    const c = await client(cfg.controlSocket);
    expect(await c.radix()).toBe(2);
    await c.tableAdd([...addRoute4(await c.dump(), '10.0.2.0/24', 2, '10.0.2.2'), addNeighbor('10.0.2.2', 'a8:40:25:ff:00:02'), setMac(2, 'a8:40:25:00:00:02')]);
    const dump = await c.dump();
    expect(Object.keys(dump)).toHaveLength(14);
    expect(dump['ingress.router.v4_idx.rtr']).toEqual([{ action_id: 'index', keyset_data: [10, 0, 2, 0, 24], parameter_data: [0, 0, 1] }]);
    await expect(c.request({ TableAdd: { table: 'nope', action: 'x', keyset_data: [], parameter_data: [] } })).rejects.toMatchObject({ code: 'NPU_TABLE' });

    const cap = await client(cfg.controlSocket);
    const ac = new AbortController();
    const seen: { port: number; dir: string; hex: string }[] = [];
    const capturing = (async () => {
      for await (const f of cap.capture([1, 2], { signal: ac.signal })) seen.push(f);
    })();
    await new Promise((r) => setTimeout(r, 100));
    await until('p1 and p2 connected', () => p1!.client && p2!.client);
    const ping = eth('a8:40:25:00:00:01', 'a8:40:25:ff:00:01', 0x0800, ipv4Icmp('10.0.1.2', '10.0.2.2'));
    await c.inject(1, ping);
    const got = await until('the routed frame on port 2', () => p2!.received[0]);
    expect(got.subarray(0, 12).toString('hex')).toBe('a84025ff0002a84025000002');
    await until('rx and tx captured', () => seen.length === 2);
    expect(seen.map((f) => [f.port, f.dir])).toEqual([[1, 'rx'], [2, 'tx']]);
    expect(seen[0]!.hex).toBe(ping.toString('hex'));
    ac.abort();
    await capturing;

    await c.inject(2, Buffer.from('ffffffffffff020000000001080600', 'hex'), true);
    await until('a frame sent out as is', () => p2!.received.length === 2);
    const s = await c.stats();
    expect(s.pipeline.program).toMatchObject({ routed: 1 });
    expect(s.ports[2]!.txFrames).toBe(2);
    await c.clear();
    expect(Object.values(await c.dump()).flat()).toEqual([]);
  });

  it('restores its tables after a restart', async () => {
    const dir = tmpdir();
    await fakes(dir, ['p1', 'p2']);
    const cfg = config(dir, { radix: 2, program: 'sidecar-lite' });
    const first = await startSwitch(cfg);
    const c = await client(cfg.controlSocket);
    await c.tableAdd([addAddress('10.0.1.1'), setMac(1, 'a8:40:25:00:00:01')]);
    const before = await c.dump();
    c.close();
    await first.stop();
    const saved = JSON.parse(await fs.readFile(cfg.tablesFile!, 'utf8')) as { tables: unknown };
    expect(saved.tables).toEqual(before);
    expect(statSync(cfg.tablesFile!).mode & 0o777).toBe(0o600);
    await startSwitch(cfg);
    const c2 = await client(cfg.controlSocket);
    expect(await c2.dump()).toEqual(before);
  });

  it('answers the management UART as the original and skips malformed lines', async () => {
    const dir = tmpdir();
    const [, , mgmt] = await fakes(dir, ['p1', 'p2', 'mgmt']);
    const cfg = config(dir, { radix: 2, program: 'sidecar-lite', mgmtSocket: path.join(dir, 'mgmt') });
    const { log } = await startSwitch(cfg);
    await until('UART connected', () => mgmt!.client);
    const text = () => Buffer.concat(mgmt!.received).toString('utf8');
    mgmt!.send(Buffer.from('\xe5"RadixRequest"\r\n', 'latin1'));
    await until('radix reply', () => text() === '2\n');
    mgmt!.send(Buffer.from('2\r\n\xe5{"TableAdd":{"table":"ingress.local.local_v4","action":"local","keyset_data":[1,1,0,10],"parameter_data":[]}}\n\xe5{oops\n', 'latin1'));
    mgmt!.send(Buffer.from('\xe5"DumpRequest"\n', 'latin1'));
    await until('dump reply', () => text().length > 3 && text().endsWith('\n'));
    const dump = JSON.parse(text().slice(2)) as Record<string, unknown[]>;
    const c = await client(cfg.controlSocket);
    expect(dump).toEqual(await c.dump());
    expect(dump['ingress.local.local_v4']).toHaveLength(1);
    expect(log.events.some((e) => e.kind === 'warn' && /malformed/.test(e.msg))).toBe(true);
    expect((await c.stats()).mgmt).toMatchObject({ requests: 3, malformed: 1 });
  });

  it('tfports mode: punted frames reach the NIC of their port without the header, and that NIC sends out of its port', async () => {
    const dir = tmpdir();
    const [p1, , tf1] = await fakes(dir, ['p1', 'p2', 'tf1', 'tf2']);
    const cfg = config(dir, { radix: 2, program: 'sidecar-lite', cpuPort: 'tfports', tfports: [path.join(dir, 'tf1'), path.join(dir, 'tf2')] });
    const { sw } = await startSwitch(cfg);
    await sw.handle({ TableAdd: addAddress('10.0.1.1') });
    await until('connected', () => p1!.client && tf1!.client);
    const ping = eth('a8:40:25:00:00:01', 'a8:40:25:ff:00:01', 0x0800, ipv4Icmp('10.0.1.2', '10.0.1.1'));
    p1!.send(ping);
    const got = await until('the punted frame on tfport 1', () => tf1!.received[0]);
    expect(got.toString('hex')).toBe(ping.toString('hex'));
    const reply = eth('a8:40:25:ff:00:01', 'a8:40:25:00:00:01', 0x0800, ipv4Icmp('10.0.1.1', '10.0.1.2'));
    tf1!.send(reply);
    const out = await until('the reply out of port 1', () => p1!.received[0]);
    expect(out.toString('hex')).toBe(reply.toString('hex'));
  });

  it('sidemux: frames of a driver NIC reach the sidecar with the header, and code-1 frames reach the NIC of their ingress', async () => {
    const dir = tmpdir();
    const [sidecar, d0, d1] = await fakes(dir, ['sc', 'd0', 'd1']);
    const cfg = config(dir, { radix: 2, program: 'sidemux', ports: [path.join(dir, 'sc'), path.join(dir, 'd0'), path.join(dir, 'd1')] });
    const { sw } = await startSwitch(cfg);
    await until('connected', () => sidecar!.client && d0!.client && d1!.client);
    const arp = eth('ff:ff:ff:ff:ff:ff', 'a8:40:25:ff:00:09', 0x0806, Buffer.alloc(28, 1));
    d1!.send(arp);
    const enc = await until('the encapsulated frame at the sidecar', () => sidecar!.received[0]);
    expect(readSidecarHeader(enc)).toMatchObject({ code: SidecarCode.ForwardFromUserspace, egress: 1, etherType: 0x0806 });
    sidecar!.send(encapsulate(arp, { code: SidecarCode.ForwardToUserspace, ingress: 0, egress: 0 }));
    sidecar!.send(encapsulate(arp, { code: SidecarCode.ForwardFromUserspace, ingress: 1, egress: 1 }));
    const dec = await until('the decapsulated frame on driver NIC 0', () => d0!.received[0]);
    expect(dec.toString('hex')).toBe(arp.toString('hex'));
    await until('the bad code counted', () => sw.stats().pipeline.program.drop_bad_code === 1);
    expect(d1!.received).toEqual([]);
  });

  it('joins two switches port to port: one serves the socket, the other connects to it', async () => {
    const dir = tmpdir();
    const [p1, p2] = await fakes(dir, ['p1', 'p2']);
    const joint = path.join(dir, 'joint');
    const a = config(dir, { radix: 2, program: 'wire', name: 'npuA', ports: [null, path.join(dir, 'p1'), { serve: joint }], controlSocket: path.join(dir, 'ctlA'), pidFile: path.join(dir, 'a.pid'), tablesFile: undefined });
    const b = config(dir, { radix: 2, program: 'wire', name: 'npuB', ports: [null, joint, path.join(dir, 'p2')], controlSocket: path.join(dir, 'ctlB'), pidFile: path.join(dir, 'b.pid'), tablesFile: undefined });
    const sa = await startSwitch(a);
    expect(statSync(joint).mode & 0o777).toBe(0o600);
    await startSwitch(b);
    await until('all connected', () => p1!.client && p2!.client && sa.sw.stats().ports[2]!.connected);
    p1!.send(frame(5));
    const got = await until('the frame through both switches', () => p2!.received[0]);
    expect(got.toString('hex')).toBe(frame(5).toString('hex'));
    p2!.send(frame(6));
    await until('the frame back', () => p1!.received.some((f) => f[20] === 6));
  });

  it('survives a program that throws, returns garbage or names a port that does not exist, counting each', async () => {
    const dir = tmpdir();
    const [p1, p2] = await fakes(dir, ['p1', 'p2']);
    const bad = {
      processPacket(_port: number, frame: Buffer) {
        if (frame[20] === 1) throw new Error('boom');
        if (frame[20] === 2) return 'nope' as unknown as [];
        if (frame[20] === 3) return [[frame, 99], ['x', 2]] as unknown as [];
        return [[frame, 2]] as [Buffer, number][];
      },
      tableAdd() {},
      tableRemove() {},
      tableIds: () => [],
      tableEntries: () => undefined,
    };
    const log = memoryLogger('debug');
    const sw = new Switch(config(dir, { radix: 2, program: 'custom' }), { log, pipeline: bad });
    await sw.start();
    cleanups.push(() => sw.stop());
    await until('connected', () => p1!.client && p2!.client);
    for (const n of [1, 2, 3, 4]) p1!.send(frame(n));
    await until('the good frame', () => p2!.received.some((f) => f[20] === 4));
    expect(sw.stats().pipeline).toMatchObject({ frames: 4, errors: 2, badPort: 2 });
    expect(p2!.received).toHaveLength(1);
  });

  it('drops above the backpressure cap when a port does not read, and counts it', async () => {
    const dir = tmpdir();
    const [p1, p2] = await fakes(dir, ['p1', 'p2']);
    const { sw } = await startSwitch(config(dir, { radix: 2, program: 'wire', backpressureBytes: 64 * 1024 }));
    await until('connected', () => p1!.client && p2!.client);
    p2!.client!.pause();
    const big = frame(1, 1514).toString('hex');
    for (let i = 0; i < 4000; i++) await sw.handle({ Inject: { port: 1, hex: big } });
    const s = sw.stats().ports[2]!;
    expect(s.dropBackpressure).toBeGreaterThan(0);
    expect(s.txFrames + s.dropBackpressure).toBe(4000);
  });
});

describe('switch process (spawned, real QEMU)', () => {
  function spawnSwitch(cfgFile: string): { child: ChildProcess; stderr: () => string; exited: Promise<number | null> } {
    const { cmd, args } = switchCommand(cfgFile);
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    cleanups.push(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    return { child, stderr: () => err, exited };
  }

  function startQemu(dir: string): { q: ChildProcess; exited: Promise<unknown> } {
    const args = ['-machine', 'none', '-nodefaults', '-display', 'none'];
    for (const n of ['qa', 'qb']) args.push('-netdev', `stream,id=${n},server=on,addr.type=unix,addr.path=${path.join(dir, n)}`);
    args.push('-netdev', 'hubport,id=ha,hubid=0,netdev=qa', '-netdev', 'hubport,id=hb,hubid=0,netdev=qb');
    const q = spawn('qemu-system-x86_64', args, { stdio: 'ignore' });
    const exited = new Promise((r) => q.on('exit', r));
    cleanups.push(() => {
      if (q.exitCode === null && q.signalCode === null) q.kill('SIGKILL');
    });
    return { q, exited };
  }

  it('relays frames through QEMU stream netdevs, reconnects after QEMU restarts, stops on SIGTERM; a second process is refused', async () => {
    const dir = tmpdir();
    // Port 1 = QEMU's socket qa; "the guest" is this test on qb (the hub joins qa and qb).
    // Port 2 = a fake server.
    const [p2] = await fakes(dir, ['p2']);
    const cfg = config(dir, { radix: 2, program: 'wire', ports: [null, path.join(dir, 'qa'), path.join(dir, 'p2')] });
    const cfgFile = path.join(dir, 'npu1.npu.json');
    await fs.writeFile(cfgFile, JSON.stringify(cfg));
    let qemu = startQemu(dir);
    const sw = spawnSwitch(cfgFile);

    async function guest(): Promise<{ sock: net.Socket; got: Buffer[] }> {
      const sock = await until('QEMU socket qb', () => {
        try {
          statSync(path.join(dir, 'qb'));
          return true;
        } catch {
          return false;
        }
      }).then(async () => {
        // The socket file exists once QEMU has bound it, a moment before it listens.
        const end = Date.now() + 10_000;
        for (;;) {
          try {
            return await new Promise<net.Socket>((res, rej) => {
              const s = net.createConnection({ path: path.join(dir, 'qb') }, () => res(s));
              s.once('error', rej);
            });
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== 'ECONNREFUSED' || Date.now() > end) throw e;
            await new Promise((r) => setTimeout(r, 50));
          }
        }
      });
      const got: Buffer[] = [];
      const r = new FrameReader((f) => got.push(Buffer.from(f)));
      sock.on('data', (d) => r.push(d));
      sock.on('error', () => {});
      cleanups.push(() => void sock.destroy());
      return { sock, got };
    }

    let g = await guest();
    await until('switch connected to both', () => p2!.client, 20_000);
    // The switch may connect to qa a moment after p2: resend until a frame passes.
    await until('a frame from the guest side through QEMU and the switch', () => {
      g.sock.write(frameOne(frame(7)));
      return p2!.received.some((f) => f[20] === 7);
    }, 20_000);
    p2!.send(frame(8, 1514));
    const back = await until('a frame from port 2 back through QEMU', () => g.got.find((f) => f[20] === 8));
    expect(back.length).toBe(1514);

    // A second switch for the same node is refused by the pid lock.
    const second = spawnSwitch(cfgFile);
    expect(await second.exited).toBe(1);
    expect(second.stderr()).toMatch(/LOCK_BUSY/);

    // QEMU restarts: the switch reconnects by itself.
    qemu.q.kill('SIGTERM');
    await qemu.exited;
    qemu = startQemu(dir);
    g = await guest();
    await until('a frame after QEMU restarted', () => {
      g.sock.write(frameOne(frame(9)));
      return p2!.received.some((f) => f[20] === 9);
    }, 20_000);

    sw.child.kill('SIGTERM');
    expect(await sw.exited).toBe(0);
    await expect(fs.stat(cfg.pidFile)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(fs.stat(cfg.controlSocket)).rejects.toMatchObject({ code: 'ENOENT' });
    qemu.q.kill('SIGTERM');
    await qemu.exited;
  }, 60_000);
});
