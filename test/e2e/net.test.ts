/**
 * The host network layer on the real kernel, without VMs: taps wired back to back, external
 * links on a test-made interface, coexistence and collisions. Needs root.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Topology } from '../../src/model/topology.js';
import { ownerAlias } from '../../src/model/naming.js';
import type { TopologySpec } from '../../src/model/spec.js';
import { createProcessRunner } from '../../src/host/process.js';
import {
  checkNetworkPreflight,
  createNetwork,
  destroyNetwork,
  listTopologyInterfaces,
  NetworkError,
  planNetwork,
} from '../../src/host/net.js';
import { queryLinks, type HostLink } from '../../src/host/net-ip.js';

const isRoot = process.getuid?.() === 0;
const runner = createProcessRunner();
const id = randomBytes(3).toString('hex');

/** Opens two taps like QEMU would, writes one frame into `src`, expects it out of `dst` only. */
const FRAME_SCRIPT = `
import fcntl, os, select, struct, sys, time
TUNSETIFF = 0x400454ca
def open_tap(name):
    fd = os.open('/dev/net/tun', os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH', name.encode(), 0x0002 | 0x1000))
    return fd
src, dst, quiet = open_tap(sys.argv[1]), open_tap(sys.argv[2]), [open_tap(n) for n in sys.argv[3:]]
names = sys.argv[1:]
# Carrier comes up through the kernel's linkwatch, rate-limited to about once a second:
# until then a tap's egress qdisc drops frames.
deadline = time.time() + 5
while time.time() < deadline and any(open(f'/sys/class/net/{n}/operstate').read().strip() != 'up' for n in names):
    time.sleep(0.05)
tag = os.urandom(8)
frame = bytes.fromhex('ffffffffffff020000000001') + b'\\x88\\xb5' + b'falcon-net-test' + tag + bytes(32)
os.write(src, frame)
deadline = time.time() + 5
got = False
while time.time() < deadline and not got:
    r, _, _ = select.select([dst], [], [], max(0, deadline - time.time()))
    for fd in r:
        try:
            got = got or tag in os.read(fd, 4096)
        except BlockingIOError:
            pass
time.sleep(0.2)
leaked = []
for fd in quiet:
    try:
        while True:
            if tag in os.read(fd, 4096): leaked.append(fd)
    except BlockingIOError:
        pass
print('DELIVERED' if got else 'LOST', 'LEAKED' if leaked else 'CONTAINED')
`;

async function sendFrame(src: string, dst: string, quiet: string[] = []): Promise<string> {
  const r = await runner.run('python3', ['-c', FRAME_SCRIPT, src, dst, ...quiet], { timeoutMs: 20_000 });
  return r.stdout.trim();
}

async function ourLinks(spec: TopologySpec, falconDir: string): Promise<HostLink[]> {
  const alias = ownerAlias(spec.name, path.resolve(falconDir));
  return (await queryLinks({ runner })).filter((l) => l.alias === alias);
}

async function ip(...args: string[]) {
  return runner.run('ip', args, { timeoutMs: 10_000, reject: false });
}

describe.skipIf(!isRoot)('host network (root, real kernel)', () => {
  const root = mkdtempSync(path.join(tmpdir(), `falcon-net-${id}-`));
  const dirA = path.join(root, 'a', '.falcon');
  const dirB = path.join(root, 'b', '.falcon');
  const made: { spec: TopologySpec; dir: string }[] = [];
  const lowers: string[] = [];

  function trio(name: string): TopologySpec {
    const t = new Topology(name);
    const a = t.node('a', 'tiny', 1, 512);
    const b = t.node('b', 'tiny', 1, 512);
    const c = t.node('c', 'tiny', 1, 512);
    t.link(a, b);
    t.link(b, c);
    return t.toSpec();
  }

  const spec = trio(`nettest${id}`);
  const plan = planNetwork(spec, { falconDir: dirA });
  const [ab, ba, bc, cb] = plan.interfaces;

  beforeAll(() => {
    made.push({ spec, dir: dirA });
  });

  afterAll(async () => {
    for (const m of made) await destroyNetwork(m.spec, { runner, falconDir: m.dir }).catch(() => undefined);
    for (const l of lowers) await ip('link', 'del', 'dev', l);
    // Anything this run made that the above missed.
    for (const l of await queryLinks({ runner })) {
      if (l.alias?.includes(`nettest${id}`) || l.ifname.startsWith(`fv${id}`)) await ip('link', 'del', 'dev', l.ifname);
    }
    rmSync(root, { recursive: true, force: true });
  });

  it('creates taps with altnames and owner alias, wired back to back', async () => {
    expect(await checkNetworkPreflight(spec, { runner, falconDir: dirA })).toEqual([]);
    const r = await createNetwork(spec, { runner, falconDir: dirA });
    expect(r.actions.created).toHaveLength(4);
    expect(r.netdevs.b!.map((n) => n.ifname)).toEqual([ba!.ifname, bc!.ifname]);

    for (const p of plan.interfaces) {
      const show = await runner.run('ip', ['-j', '-d', 'link', 'show', p.altname], { timeoutMs: 10_000 });
      const [l] = JSON.parse(show.stdout) as { ifname: string; ifalias: string; flags: string[]; linkinfo: { info_kind: string } }[];
      expect(l!.ifname).toBe(p.ifname);
      expect(l!.ifalias).toBe(ownerAlias(spec.name, path.resolve(dirA)));
      expect(l!.flags).toContain('UP');
      expect(l!.linkinfo.info_kind).toBe('tun');
      const f = await runner.run('tc', ['filter', 'show', 'dev', p.ifname, 'ingress'], { timeoutMs: 10_000 });
      expect(f.stdout).toContain(`mirred (Egress Redirect to device ${p.kind === 'tap' ? p.peerIfname : ''})`);
    }
  });

  it('carries a frame from one tap to its peer and nowhere else', async () => {
    expect(await sendFrame(ab!.ifname, ba!.ifname, [bc!.ifname, cb!.ifname])).toBe('DELIVERED CONTAINED');
    expect(await sendFrame(cb!.ifname, bc!.ifname, [ab!.ifname, ba!.ifname])).toBe('DELIVERED CONTAINED');
  });

  it('is idempotent and re-creates what vanished (hyperstart after power loss)', async () => {
    const again = await createNetwork(spec, { runner, falconDir: dirA });
    expect(again.actions.ip).toEqual([]);
    expect(again.actions.tc).toEqual([]);

    await ip('link', 'del', 'dev', ba!.ifname);
    const fixed = await createNetwork(spec, { runner, falconDir: dirA });
    expect(fixed.actions.created).toEqual([ba!.ifname]);
    // The peer's filter pointed at the old device: re-wired.
    expect(fixed.actions.repaired).toEqual([ab!.ifname]);
    expect(await sendFrame(ab!.ifname, ba!.ifname)).toBe('DELIVERED CONTAINED');
    expect(await sendFrame(ba!.ifname, ab!.ifname)).toBe('DELIVERED CONTAINED');
  });

  it('lists the interfaces with state, MACs and wiring', async () => {
    const list = await listTopologyInterfaces(spec, { runner, falconDir: dirA });
    expect(list.map((i) => [i.altname, i.exists, i.up, i.wiredTo])).toEqual(
      plan.interfaces.map((p) => [p.altname, true, true, p.kind === 'tap' ? p.peerIfname : undefined]),
    );
    expect(list[0]!.guestMac).toBe(ab!.guestMac);
    expect(list[0]!.hostMac).toMatch(/^[0-9a-f:]{17}$/);
  });

  it('lets another topology coexist, and refuses a same-named one from another falcon dir', async () => {
    const other = trio(`nettest${id}o`);
    made.push({ spec: other, dir: dirA });
    await createNetwork(other, { runner, falconDir: dirA });
    expect(await ourLinks(other, dirA)).toHaveLength(4);
    expect(await ourLinks(spec, dirA)).toHaveLength(4);

    made.push({ spec, dir: dirB });
    const problems = await checkNetworkPreflight(spec, { runner, falconDir: dirB });
    expect(problems).toHaveLength(4); // one per endpoint: its ifname and altname name the same device
    expect(problems[0]!.message).toContain(`belongs to topology "${spec.name}" of falcon dir ${path.resolve(dirA)}`);
    await expect(createNetwork(spec, { runner, falconDir: dirB })).rejects.toThrow(NetworkError);
    // Destroying from the other dir touches nothing of ours.
    expect((await destroyNetwork(spec, { runner, falconDir: dirB })).removed).toEqual([]);
    expect(await ourLinks(spec, dirA)).toHaveLength(4);

    await destroyNetwork(other, { runner, falconDir: dirA });
    expect(await ourLinks(other, dirA)).toEqual([]);
    expect(await ourLinks(spec, dirA)).toHaveLength(4);
    expect(await sendFrame(ab!.ifname, ba!.ifname)).toBe('DELIVERED CONTAINED');
  });

  it('destroys everything of the topology, and succeeds when nothing is left', async () => {
    const r = await destroyNetwork(spec, { runner, falconDir: dirA });
    expect(r.removed.sort()).toEqual(plan.interfaces.map((p) => p.ifname).sort());
    expect(await ourLinks(spec, dirA)).toEqual([]);
    expect((await ip('link', 'show', ab!.altname)).exitCode).not.toBe(0);
    expect((await destroyNetwork(spec, { runner, falconDir: dirA })).removed).toEqual([]);
  });

  it('puts an external link on a macvtap, and destroys it after its host interface vanished', async () => {
    // A dummy interface when the kernel has them, else a veth pair.
    const lower = `fv${id}x`;
    const lower2 = `fv${id}y`;
    lowers.push(lower, lower2);
    if ((await ip('link', 'add', lower, 'type', 'dummy')).exitCode !== 0) {
      await runner.run('ip', ['link', 'add', lower, 'type', 'veth', 'peer', 'name', `fv${id}xp`], { timeoutMs: 10_000 });
    }
    if ((await ip('link', 'add', lower2, 'type', 'dummy')).exitCode !== 0) {
      await runner.run('ip', ['link', 'add', lower2, 'type', 'veth', 'peer', 'name', `fv${id}yp`], { timeoutMs: 10_000 });
    }
    const t = new Topology(`nettest${id}x`);
    const n = t.node('n', 'tiny', 1, 512);
    const m = t.node('m', 'tiny', 1, 512);
    t.extLink(lower, n, '02:aa:bb:cc:dd:01');
    t.extLinkExclusive(lower2, m);
    t.extLink(`fv${id}nope`, m);
    const ext = t.toSpec();
    made.push({ spec: ext, dir: dirA });

    const problems = await checkNetworkPreflight(ext, { runner, falconDir: dirA });
    expect(problems).toHaveLength(1);
    expect(problems[0]!.path).toBe('links[2].hostIfx');
    expect(problems[0]!.message).toContain(`fv${id}nope, which does not exist`);

    const ok = Topology.fromSpec({ ...ext, links: ext.links.slice(0, 2) }).toSpec();
    const r = await createNetwork(ok, { runner, falconDir: dirA });
    const nn = r.netdevs.n![0]!;
    expect(nn.kind).toBe('macvtap');
    if (nn.kind !== 'macvtap') return;
    expect(existsSync(nn.tapDevice)).toBe(true);
    const links = await ourLinks(ok, dirA);
    const mv = links.find((l) => l.ifname === nn.ifname)!;
    expect([mv.kind, mv.macvMode, mv.lower, mv.address]).toEqual(['macvtap', 'bridge', lower, '02:aa:bb:cc:dd:01']);
    expect(mv.altnames).toEqual([nn.altname]);
    expect(nn.tapDevice).toBe(`/dev/tap${mv.ifindex}`);
    const mm = links.find((l) => l.lower === lower2)!;
    expect(mm.macvMode).toBe('passthru');
    expect((await createNetwork(ok, { runner, falconDir: dirA })).actions.ip).toEqual([]);

    await runner.run('ip', ['link', 'del', 'dev', lower], { timeoutMs: 10_000 });
    const d = await destroyNetwork(ok, { runner, falconDir: dirA });
    expect(d.removed).toEqual([mm.ifname]);
    expect(await ourLinks(ok, dirA)).toEqual([]);
  });

  it('creates and destroys a 10-node ring quickly', async () => {
    const t = new Topology(`nettest${id}r`);
    const nodes = Array.from({ length: 10 }, (_, i) => t.node(`n${i}`, 'tiny', 1, 512));
    nodes.forEach((n, i) => t.link(n, nodes[(i + 1) % nodes.length]!));
    const ring = t.toSpec();
    made.push({ spec: ring, dir: dirA });
    await checkNetworkPreflight(ring, { runner, falconDir: dirA }); // kernel probe, cached
    let t0 = performance.now();
    const r = await createNetwork(ring, { runner, falconDir: dirA });
    const createMs = performance.now() - t0;
    expect(r.actions.created).toHaveLength(20);
    t0 = performance.now();
    await createNetwork(ring, { runner, falconDir: dirA });
    const recheckMs = performance.now() - t0;
    t0 = performance.now();
    const d = await destroyNetwork(ring, { runner, falconDir: dirA });
    const destroyMs = performance.now() - t0;
    expect(d.removed).toHaveLength(20);
    console.log(
      `10-node ring (10 links, 20 taps): create ${createMs.toFixed(0)} ms, re-create (no-op) ${recheckMs.toFixed(0)} ms, destroy ${destroyMs.toFixed(0)} ms`,
    );
  });
});
