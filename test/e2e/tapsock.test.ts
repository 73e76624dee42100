/**
 * The tap-to-switch helper (host-helpers/falcon-tapsock.c) on a real tap: a network namespace
 * with a persistent tap, as a pod's `swp<N>` is, and a small Node unix-socket server standing in
 * for the switch, speaking the 4-byte length framing. Node has no raw sockets, so the tap's side
 * is the kernel's IP stack in the namespace: a datagram sent to a neighbour with a static neigh
 * entry leaves through the tap as one Ethernet frame, and a crafted UDP frame written to the tap
 * reaches a datagram socket bound in the namespace.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProcessRunner } from '../../src/host/process.js';
import { buildTapsock, tapsockArgs } from '../../src/host/tapsock.js';
import { FrameReader, frameOne } from '../../src/switch/framing.js';
import { memoryLogger } from '../../src/util/log.js';
import { tempDir } from './helpers.js';

const ns = `fts${process.pid % 100000}`;
const TAP = 'ftap0';
const TAP_IP = '10.78.0.1';
/** The switch side's stand-in neighbour: the tap's IP stack sends to it without ARP. */
const PEER_IP = '10.78.0.2';
const PEER_MAC = '02:00:00:00:78:02';
const RX_PORT = 9998;

const dir = tempDir('tapsock');
const socketPath = path.join(dir, 'port.sock');
const pidFile = path.join(dir, 'tapsock.pid');

const inNs = (...args: string[]) => execFileSync('ip', ['netns', 'exec', ns, ...args], { encoding: 'utf8', timeout: 20_000 });

async function waitFor(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The switch's stand-in: one unix socket server; frames received, in order; the current peer. */
class FakeSwitch {
  frames: Buffer[] = [];
  conns = 0;
  peer: net.Socket | undefined;
  private server: net.Server | undefined;

  async listen(): Promise<void> {
    const server = net.createServer((s) => {
      this.conns++;
      this.peer = s;
      const reader = new FrameReader((f) => this.frames.push(Buffer.from(f)), 65536 + 256);
      s.on('data', (c) => reader.push(c));
      s.on('error', () => {});
      s.on('close', () => {
        if (this.peer === s) this.peer = undefined;
      });
    });
    this.server = server;
    await new Promise<void>((res, rej) => server.once('error', rej).listen(socketPath, () => res()));
  }

  /** Stops listening and drops the peer, as a switch that exits does (the socket file goes too). */
  async close(): Promise<void> {
    this.peer?.destroy();
    this.peer = undefined;
    await new Promise<void>((res) => (this.server ? this.server.close(() => res()) : res()));
    this.server = undefined;
  }

  /** Waits for the helper to connect (again), returning the new peer. */
  async connected(after = 0): Promise<net.Socket> {
    await waitFor('the helper to connect', () => this.conns > after && this.peer !== undefined);
    return this.peer!;
  }
}

function mac(s: string): Buffer {
  return Buffer.from(s.split(':').map((h) => parseInt(h, 16)));
}

function ipv4(s: string): Buffer {
  return Buffer.from(s.split('.').map(Number));
}

/** An Ethernet + IPv4 + UDP frame from the peer to the tap's address (UDP checksum 0: none). */
function udpFrame(dstMac: Buffer, payload: Buffer, port = RX_PORT): Buffer {
  const eth = Buffer.concat([dstMac, mac(PEER_MAC), Buffer.from([0x08, 0x00])]);
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(40000, 0);
  udp.writeUInt16BE(port, 2);
  udp.writeUInt16BE(8 + payload.length, 4);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + 8 + payload.length, 2);
  ip[8] = 64;
  ip[9] = 17;
  ipv4(PEER_IP).copy(ip, 12);
  ipv4(TAP_IP).copy(ip, 16);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += ip.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  ip.writeUInt16BE(~sum & 0xffff, 10);
  return Buffer.concat([eth, ip, udp, payload]);
}

/** Sends `count` datagrams from inside the namespace to the peer, so they leave through the tap. */
function sendFromNs(payload: string, count = 1, size = 0): void {
  const script =
    `const s = require('dgram').createSocket('udp4'); const m = Buffer.alloc(Math.max(${size}, ${JSON.stringify(payload)}.length), 'x'); m.write(${JSON.stringify(payload)});` +
    `let n = 0; const go = () => { if (n++ >= ${count}) return s.close(); s.send(m, 9999, '${PEER_IP}', go); }; go();`;
  inNs(process.execPath, '-e', script);
}

const ethHas = (f: Buffer, text: string) => f.length > 14 && f.subarray(0, 6).equals(mac(PEER_MAC)) && f.readUInt16BE(12) === 0x0800 && f.includes(text);

let bin: string;
let tapMac: Buffer;
let helper: ChildProcess;
let helperErr = '';
let helperExit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
/** What the namespace's datagram socket received, one payload per line. */
const received: string[] = [];
let receiver: ChildProcess;
const sw = new FakeSwitch();

beforeAll(async () => {
  bin = await buildTapsock({ cacheDir: path.join(dir, 'bin'), runner: createProcessRunner(), log: memoryLogger() });
  execFileSync('ip', ['netns', 'add', ns]);
  inNs('ip', 'link', 'set', 'lo', 'up');
  inNs('ip', 'tuntap', 'add', 'dev', TAP, 'mode', 'tap');
  // No IPv6 link-local chatter on the tap: the frames the switch gets are the test's.
  inNs('ip', 'link', 'set', 'dev', TAP, 'addrgenmode', 'none', 'up');
  inNs('ip', 'addr', 'add', `${TAP_IP}/24`, 'dev', TAP);
  inNs('ip', 'neigh', 'add', PEER_IP, 'lladdr', PEER_MAC, 'dev', TAP, 'nud', 'permanent');
  const [link] = JSON.parse(inNs('ip', '-j', 'link', 'show', 'dev', TAP)) as { address: string }[];
  tapMac = mac(link!.address);

  const script =
    `const s = require('dgram').createSocket({ type: 'udp4', recvBufferSize: 4 << 20 }); s.on('message', (m) => process.stdout.write(m.toString().replace(/x+$/, '') + '\\n'));` +
    `s.bind(${RX_PORT}, '${TAP_IP}', () => console.log('ready'));`;
  receiver = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let buf = '';
  receiver.stdout!.on('data', (c: Buffer) => {
    buf += c.toString();
    const lines = buf.split('\n');
    buf = lines.pop()!;
    received.push(...lines);
  });
  await waitFor('the namespace receiver', () => received.includes('ready'));
});

afterAll(() => {
  if (helper && helper.exitCode === null && helper.signalCode === null) helper.kill('SIGKILL');
  receiver?.kill();
  void sw.close();
  spawnSync('ip', ['netns', 'del', ns]);
  expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(ns);
  // No helper left: nothing runs the binary this file built.
  const left = readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith(bin);
      } catch {
        return false;
      }
    });
  expect(left).toEqual([]);
});

describe('falcon-tapsock', () => {
  it('refuses a tap that does not exist, naming it and the fix, and creates nothing', () => {
    const r = spawnSync('ip', ['netns', 'exec', ns, bin, ...tapsockArgs({ tap: 'nosuch0', socket: socketPath })], { encoding: 'utf8', timeout: 10_000 });
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/tap nosuch0 does not exist.*ip tuntap add nosuch0 mode tap/)]);
    expect(spawnSync('ip', ['netns', 'exec', ns, 'ip', 'link', 'show', 'dev', 'nosuch0']).status).not.toBe(0);
    const bad = spawnSync(bin, ['--tap', TAP], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/missing --socket PATH.*usage: falcon-tapsock --tap NAME --socket PATH/);
  });

  it('waits for the switch, writes its pid file, and connects once the switch listens', async () => {
    helper = spawn('ip', ['netns', 'exec', ns, bin, ...tapsockArgs({ tap: TAP, socket: socketPath, pidFile })], { stdio: ['ignore', 'ignore', 'pipe'] });
    helper.stderr!.on('data', (c: Buffer) => (helperErr += c.toString()));
    helperExit = new Promise((res) => helper.once('exit', (code, signal) => res({ code, signal })));
    await waitFor('the pid file', () => existsSync(pidFile));
    // `ip netns exec` execs the helper: the child is the helper itself.
    expect(Number(readFileSync(pidFile, 'utf8').trim())).toBe(helper.pid);
    await waitFor('the waiting line', () => helperErr.includes('waiting for the switch'));
    // Started after the helper: it retries every 100 ms until it gets through.
    await new Promise((r) => setTimeout(r, 350));
    await sw.listen();
    await sw.connected();
    await waitFor('the connected line', () => helperErr.includes(`tap ${TAP}: connected to ${socketPath}`));
    expect(helperErr.match(/waiting for the switch/g)).toHaveLength(1);
  });

  it('(a) a frame the tap transmits reaches the switch, length-prefixed', async () => {
    sendFromNs('tap-to-switch-1');
    await waitFor('the frame at the switch', () => sw.frames.some((f) => ethHas(f, 'tap-to-switch-1')));
    const f = sw.frames.find((x) => ethHas(x, 'tap-to-switch-1'))!;
    expect(f.subarray(6, 12).equals(tapMac)).toBe(true);
    expect(f[14 + 9]).toBe(17); // UDP
  });

  it('(b) frames the switch sends go out of the tap, also when cut across writes', async () => {
    const peer = sw.peer!;
    peer.write(frameOne(udpFrame(tapMac, Buffer.from('switch-to-tap-1'))));
    await waitFor('the datagram in the namespace', () => received.includes('switch-to-tap-1'));
    // One frame in three pieces, the length itself split: the helper keeps the partial frame.
    const whole = frameOne(udpFrame(tapMac, Buffer.from('switch-to-tap-split')));
    peer.write(whole.subarray(0, 2));
    await new Promise((r) => setTimeout(r, 50));
    peer.write(whole.subarray(2, 30));
    await new Promise((r) => setTimeout(r, 50));
    peer.write(whole.subarray(30));
    await waitFor('the split frame in the namespace', () => received.includes('switch-to-tap-split'));
  });

  it('(c) a burst of 2000 frames from the switch arrives, and the helper lives on', async () => {
    const frames = Array.from({ length: 2000 }, (_, i) => frameOne(udpFrame(tapMac, Buffer.from(`burst-${i}`))));
    sw.peer!.write(Buffer.concat(frames));
    await waitFor('2000 datagrams', () => received.filter((l) => l.startsWith('burst-')).length >= 2000, 20_000);
    expect(new Set(received.filter((l) => l.startsWith('burst-'))).size).toBe(2000);
    expect(helper.exitCode).toBeNull();
    sendFromNs('after-burst');
    await waitFor('a frame after the burst', () => sw.frames.some((f) => ethHas(f, 'after-burst')));
  });

  it('a switch that stops reading: frames from the tap are dropped, not queued without end, and flow again after', async () => {
    const peer = sw.peer!;
    peer.pause();
    // 8 MB of datagrams: far more than 256 KiB and the socket's own buffers hold.
    sendFromNs('flood', 8000, 1000);
    await waitFor('the buffer-full line', () => helperErr.includes('reads too slowly'));
    expect(helper.exitCode).toBeNull();
    peer.resume();
    const before = sw.frames.length;
    await waitFor('the buffered frames', () => sw.frames.length > before);
    await new Promise((r) => setTimeout(r, 300));
    const got = sw.frames.filter((f) => ethHas(f, 'flood')).length;
    expect(got).toBeGreaterThan(0);
    expect(got).toBeLessThan(8000);
    sendFromNs('after-flood');
    await waitFor('a frame after the flood', () => sw.frames.some((f) => ethHas(f, 'after-flood')));
  });

  it('(d) when the switch goes away and comes back, the helper connects again and traffic flows', async () => {
    const conns = sw.conns;
    await sw.close();
    await waitFor('the disconnected line', () => helperErr.includes(`disconnected from ${socketPath}`));
    // Meanwhile frames from the tap are dropped, and the helper keeps trying.
    sendFromNs('while-down');
    await new Promise((r) => setTimeout(r, 400));
    await sw.listen();
    const peer = await sw.connected(conns);
    sendFromNs('after-restart');
    await waitFor('a frame after the restart', () => sw.frames.some((f) => ethHas(f, 'after-restart')));
    expect(sw.frames.some((f) => ethHas(f, 'while-down'))).toBe(false);
    peer.write(frameOne(udpFrame(tapMac, Buffer.from('switch-to-tap-2'))));
    await waitFor('the datagram after the restart', () => received.includes('switch-to-tap-2'));
  });

  it('a zero frame length is a protocol error: the helper drops the connection and connects again', async () => {
    const conns = sw.conns;
    sw.peer!.write(Buffer.from([0, 0, 0, 0]));
    await waitFor('the protocol error line', () => helperErr.includes('protocol error: frame length 0'));
    const peer = await sw.connected(conns);
    peer.write(frameOne(udpFrame(tapMac, Buffer.from('switch-to-tap-3'))));
    await waitFor('the datagram after the protocol error', () => received.includes('switch-to-tap-3'));
  });

  it('(e) SIGTERM: exit 0, and the tap is still there, persistent, for the next helper', async () => {
    helper.kill('SIGTERM');
    expect(await helperExit).toEqual({ code: 0, signal: null });
    expect(helperErr).toMatch(/exiting on signal 15/);
    // Not per frame: a few lines in all, after thousands of frames.
    expect(helperErr.trim().split('\n').length).toBeLessThan(15);
    const [link] = JSON.parse(inNs('ip', '-j', '-d', 'link', 'show', 'dev', TAP)) as { linkinfo?: { info_data?: Record<string, unknown> } }[];
    expect(link?.linkinfo?.info_data).toMatchObject({ type: 'tap', pi: false, persist: true });
    console.log(`falcon-tapsock's stderr:\n${helperErr}`);
  });
});
