/**
 * Links end to end under TCG on the tiny image: duo ping, a forwarding chain, coexistence and
 * collisions, an external link, and hyperstart after the taps vanished.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mb, type Runner } from '../../src/index.js';
import { leftovers, newRunner, tempDir } from './helpers.js';

const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });

async function sh(d: Runner, node: string, cmd: string): Promise<string> {
  const r = await d.exec(node, cmd);
  if (r.exitCode !== 0) throw new Error(`${node}: ${cmd} exited ${r.exitCode}: ${r.stderr.toString()}${r.stdout.toString()}`);
  return r.stdout.toString();
}

const ping = (d: Runner, node: string, addr: string) => d.exec(node, `ping -c 2 -W 3 ${addr}`);

describe('duo: two linked nodes', () => {
  const dir = tempDir('duo');
  let d: Runner;
  beforeAll(async () => {
    d = newRunner('duo', dir);
    const violin = d.node('violin', 'tiny', 1, mb(512));
    const piano = d.node('piano', 'tiny', 1, mb(512));
    d.link(violin, piano);
    await d.launch();
  });
  afterAll(async () => {
    await d?.destroy();
    expect(leftovers(d)).toEqual([]);
    expect(() => ip('link', 'show', 'duo_violin_vn_sim0')).toThrow();
  });

  it('creates the taps with altnames in the original scheme', async () => {
    for (const alt of ['duo_violin_vn_sim0', 'duo_piano_vn_sim0']) {
      const j = JSON.parse(ip('-j', 'link', 'show', alt))[0];
      expect(j.altnames).toContain(alt);
      expect(j.ifname.length).toBeLessThanOrEqual(15);
    }
    const info = await d.info();
    expect(info.links[0]!.a.altname).toBe('duo_violin_vn_sim0');
    expect(info.interfaces.filter((i) => i.exists)).toHaveLength(2);
  });

  it('the nodes address their link and ping each other', async () => {
    await sh(d, 'violin', 'ip addr add 10.99.0.1/24 dev eth0 && ip link set eth0 up');
    await sh(d, 'piano', 'ip addr add 10.99.0.2/24 dev eth0 && ip link set eth0 up');
    const r = await ping(d, 'violin', '10.99.0.2');
    expect(r.exitCode, r.stdout.toString()).toBe(0);
    expect(r.stdout.toString()).toMatch(/2 packets transmitted, 2 (packets )?received/);
  });

  it('the guest MAC is the one info reports', async () => {
    const info = await d.info();
    const mac = (await sh(d, 'violin', 'cat /sys/class/net/eth0/address')).trim();
    expect(mac).toBe(info.links[0]!.a.mac);
  });

  it('hyperstop --all, taps deleted by hand (a power loss), hyperstart --all: ping works again', async () => {
    await d.hyperstop();
    const info = await d.info();
    for (const l of info.links) for (const e of [l.a, l.b!]) ip('link', 'del', e.ifname);
    await d.hyperstart();
    await sh(d, 'violin', 'ip addr add 10.99.0.1/24 dev eth0; ip link set eth0 up');
    await sh(d, 'piano', 'ip addr add 10.99.0.2/24 dev eth0; ip link set eth0 up');
    expect((await ping(d, 'piano', '10.99.0.1')).exitCode).toBe(0);
  });

  it('refuses a colliding topology before creating anything, naming the other one', async () => {
    const other = newRunner('duo', tempDir('duo-collide'));
    other.link(other.node('violin', 'tiny', 1, mb(512)), other.node('piano', 'tiny', 1, mb(512)));
    await expect(other.launch()).rejects.toThrow(new RegExp(`topology "?duo"?.*${d.paths.dir.replace(/[.]/g, '\\.')}`, 's'));
    expect(leftovers(other).filter((l) => !l.startsWith('falcon dir'))).toEqual([]);
    await other.destroy();
  });
});

describe('chain of three: the middle node forwards', () => {
  it('the ends ping each other through it; a second topology runs alongside', async () => {
    const d = newRunner('chain', tempDir('chain'));
    const a = d.node('a', 'tiny', 1, mb(256));
    const b = d.node('b', 'tiny', 1, mb(256));
    const c = d.node('c', 'tiny', 1, mb(256));
    d.link(a, b);
    d.link(b, c);
    const solo = newRunner('chain2', tempDir('chain2'));
    solo.link(solo.node('x', 'tiny', 1, mb(256)), solo.node('y', 'tiny', 1, mb(256)));
    try {
      await Promise.all([d.launch(), solo.launch()]);
      await sh(d, 'a', 'ip addr add 10.1.0.1/24 dev eth0 && ip link set eth0 up && ip route add 10.2.0.0/24 via 10.1.0.2');
      await sh(d, 'b', 'ip addr add 10.1.0.2/24 dev eth0 && ip link set eth0 up && ip addr add 10.2.0.2/24 dev eth1 && ip link set eth1 up && echo 1 > /proc/sys/net/ipv4/ip_forward');
      await sh(d, 'c', 'ip addr add 10.2.0.3/24 dev eth0 && ip link set eth0 up && ip route add 10.1.0.0/24 via 10.2.0.2');
      const r = await ping(d, 'a', '10.2.0.3');
      expect(r.exitCode, r.stdout.toString()).toBe(0);
      await sh(solo, 'x', 'ip addr add 10.1.0.1/24 dev eth0 && ip link set eth0 up');
      await sh(solo, 'y', 'ip addr add 10.1.0.2/24 dev eth0 && ip link set eth0 up');
      expect((await ping(solo, 'x', '10.1.0.2')).exitCode).toBe(0);
    } finally {
      await d.destroy();
      await solo.destroy();
    }
    expect(leftovers(d)).toEqual([]);
    expect(leftovers(solo)).toEqual([]);
  });
});

describe('external link', () => {
  const ns = `fns${process.pid}`;
  const host = `fxa${process.pid}`.slice(0, 15);
  const peer = `fxb${process.pid}`.slice(0, 15);
  beforeAll(() => {
    // A veth pair made for the test; its far end lives in a network namespace of ours.
    ip('netns', 'add', ns);
    ip('link', 'add', host, 'type', 'veth', 'peer', 'name', peer);
    ip('link', 'set', peer, 'netns', ns);
    ip('-n', ns, 'addr', 'add', '10.77.0.1/24', 'dev', peer);
    ip('-n', ns, 'link', 'set', peer, 'up');
    ip('link', 'set', host, 'up');
  });
  afterAll(() => {
    try {
      ip('link', 'del', host);
    } catch {
      /* already gone */
    }
    ip('netns', 'del', ns);
  });

  it('carries traffic between the node and the host side; destroy works after the host interface vanished', async () => {
    const d = newRunner('ext', tempDir('ext'));
    d.extLink(host, d.node('e', 'tiny', 1, mb(256)));
    try {
      await d.launch();
      await sh(d, 'e', 'ip addr add 10.77.0.2/24 dev eth0 && ip link set eth0 up');
      const r = await ping(d, 'e', '10.77.0.1');
      expect(r.exitCode, r.stdout.toString()).toBe(0);
      ip('link', 'del', host);
    } finally {
      await d.destroy();
    }
    expect(leftovers(d)).toEqual([]);
  });

  it('refuses a host interface that does not exist before creating anything', async () => {
    const d = newRunner('extbad', tempDir('extbad'));
    d.extLink('fnosuchifx0', d.node('e', 'tiny', 1, mb(256)));
    await expect(d.launch()).rejects.toThrow(/fnosuchifx0/);
    expect(leftovers(d).filter((l) => !l.startsWith('falcon dir'))).toEqual([]);
    await d.destroy();
  });
});
