/**
 * A link end as a VXLAN tunnel (what a Kubernetes pod does with its node's tap), on real
 * interfaces: two "hosts" (network namespaces on a veth underlay) each with a "guest" behind a
 * veth standing in for its tap; the tunnel is wired to it with tc mirred. A datagram goes from
 * one guest to the other and back across the underlay, the frames on the underlay are VXLAN with the link's VNI, and
 * destroying the tunnels cuts the link.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProcessRunner } from '../../src/host/process.js';
import { createTunnel, destroyTunnel } from '../../src/host/vxlan.js';

const tag = `fvx${process.pid % 10000}`;
const ns = { ga: `${tag}ga`, ha: `${tag}ha`, hb: `${tag}hb`, gb: `${tag}gb` };
const sh = (netns: string, ...args: string[]) => execFileSync('ip', ['netns', 'exec', netns, ...args], { encoding: 'utf8', timeout: 20_000 });
const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8', timeout: 10_000 });

/** A runner whose ip and tc run inside `netns`. */
function inNetns(netns: string) {
  const real = createProcessRunner();
  return {
    ...real,
    run: (command: string, args: readonly string[], o?: Parameters<typeof real.run>[2]) => real.run('ip', ['netns', 'exec', netns, command, ...args], o),
  };
}

/** The hosts have no ping: node, in the guests' namespaces, sends a datagram from ga to gb and back. */
const ECHO = `const s = require('dgram').createSocket('udp4'); s.on('message', (m, r) => s.send('echo:' + m, r.port, r.address, () => s.close())); s.bind(9999, '10.77.0.2', () => console.log('ready'));`;
const ASK = (ms: number) =>
  `const s = require('dgram').createSocket('udp4'); const t = setTimeout(() => { console.log('no reply'); process.exit(1); }, ${ms}); ` +
  `s.on('message', (m) => { console.log(String(m)); clearTimeout(t); s.close(); }); const go = () => s.send('falcon-over-vxlan', 9999, '10.77.0.2'); go(); setInterval(go, 300).unref();`;
async function udpRoundTrip(ms = 8000): Promise<string> {
  const echo = spawn('ip', ['netns', 'exec', ns.gb, process.execPath, '-e', ECHO], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((res, rej) => {
      echo.stdout.once('data', () => res());
      echo.once('exit', (c) => rej(new Error(`the echo server exited (${c})`)));
    });
    const r = spawnSync('ip', ['netns', 'exec', ns.ga, process.execPath, '-e', ASK(ms)], { encoding: 'utf8', timeout: ms + 5000 });
    if (r.status !== 0) throw new Error(`no reply across the tunnel: ${r.stdout}${r.stderr}`);
    return r.stdout.trim();
  } finally {
    echo.kill();
  }
}

beforeAll(() => {
  for (const n of Object.values(ns)) ip('netns', 'add', n);
  // The underlay between the two hosts, and each guest's stand-in tap.
  ip('link', 'add', `${tag}ua`, 'netns', ns.ha, 'type', 'veth', 'peer', 'name', `${tag}ub`, 'netns', ns.hb);
  ip('link', 'add', 'g0', 'netns', ns.ga, 'type', 'veth', 'peer', 'name', 'tapa', 'netns', ns.ha);
  ip('link', 'add', 'g0', 'netns', ns.gb, 'type', 'veth', 'peer', 'name', 'tapb', 'netns', ns.hb);
  sh(ns.ha, 'ip', 'addr', 'add', '10.254.99.1/24', 'dev', `${tag}ua`);
  sh(ns.hb, 'ip', 'addr', 'add', '10.254.99.2/24', 'dev', `${tag}ub`);
  sh(ns.ga, 'ip', 'addr', 'add', '10.77.0.1/24', 'dev', 'g0');
  sh(ns.gb, 'ip', 'addr', 'add', '10.77.0.2/24', 'dev', 'g0');
  for (const [n, devs] of [[ns.ha, [`${tag}ua`, 'tapa', 'lo']], [ns.hb, [`${tag}ub`, 'tapb', 'lo']], [ns.ga, ['g0', 'lo']], [ns.gb, ['g0', 'lo']]] as const)
    for (const d of devs) sh(n, 'ip', 'link', 'set', d, 'up');
});

afterAll(() => {
  for (const n of Object.values(ns)) spawnSync('ip', ['netns', 'del', n]);
  const left = ip('netns', 'list');
  expect(left).not.toContain(tag);
});

describe('VXLAN link end', () => {
  it('carries a link between two hosts: a datagram goes there and back, the underlay sees VNI 4242, and destroy cuts it', async () => {
    await createTunnel({ ifname: 'fvx0', vni: 4242, remote: '10.254.99.2', local: '10.254.99.1', mtu: 1450 }, 'tapa', { runner: inNetns(ns.ha) });
    await createTunnel({ ifname: 'fvx0', vni: 4242, remote: '10.254.99.1', local: '10.254.99.2', mtu: 1450 }, 'tapb', { runner: inNetns(ns.hb) });
    // tcpdump on the underlay while the guests ping: what crosses is VXLAN with the link's VNI.
    const cap = spawn('ip', ['netns', 'exec', ns.hb, 'timeout', '15', 'tcpdump', '-l', '-n', '-c', '2', '-i', `${tag}ub`, 'udp', 'port', '4789'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let seen = '';
    cap.stdout.on('data', (c: Buffer) => (seen += c.toString()));
    const listening = new Promise<void>((res) => cap.stderr.on('data', (c: Buffer) => c.toString().includes('listening') && res()));
    const capDone = new Promise<void>((res) => cap.on('close', () => res()));
    await Promise.race([listening, new Promise((r) => setTimeout(r, 5000))]);
    const reply = await udpRoundTrip();
    expect(reply).toBe('echo:falcon-over-vxlan');
    await capDone;
    expect(seen).toMatch(/10\.254\.99\.\d\.\d+ > 10\.254\.99\.\d\.4789: VXLAN.*vni 4242/);
    expect(sh(ns.ha, 'ip', '-d', 'link', 'show', 'fvx0')).toMatch(/vxlan id 4242 remote 10\.254\.99\.2 local 10\.254\.99\.1/);

    await destroyTunnel('fvx0', { runner: inNetns(ns.ha) });
    expect(sh(ns.ha, 'ip', 'link', 'show')).not.toMatch(/fvx0/);
    await expect(udpRoundTrip(1500)).rejects.toThrow(/no reply/);
    await destroyTunnel('fvx0', { runner: inNetns(ns.ha) }); // already gone: fine
  });
});
