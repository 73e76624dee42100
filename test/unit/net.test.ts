import { describe, expect, it } from 'vitest';
import { Topology } from '../../src/model/topology.js';
import { ownerAlias } from '../../src/model/naming.js';
import type { TopologySpec } from '../../src/model/spec.js';
import { recordingRunner, type ProcessRunner, type RunOptions, type RunResult } from '../../src/host/process.js';
import {
  checkNetworkPreflight,
  createNetwork,
  destroyNetwork,
  detectKernelFeatures,
  featureProblems,
  listTopologyInterfaces,
  networkActions,
  NetworkError,
  planNetwork,
  wireCommand,
  type NetworkPlan,
  type PlannedTap,
} from '../../src/host/net.js';
import { HostCommandError } from '../../src/host/process.js';
import { batchLine, parseDefaultRoute, runBatch, splitJsonValues } from '../../src/host/net-ip.js';

const DIR = '/srv/lab/.falcon';
const ALIAS = ownerAlias('duo', DIR);

function duo(): TopologySpec {
  const t = new Topology('duo');
  const violin = t.node('violin', 'tiny', 1, 512);
  const piano = t.node('piano', 'tiny', 1, 512);
  t.link(violin, piano);
  return t.toSpec();
}

/** JSON of one `ip -j -d link show` entry. */
function rawLink(ifname: string, o: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ifindex: 100,
    ifname,
    flags: ['BROADCAST', 'MULTICAST', 'UP'],
    operstate: 'DOWN',
    link_type: 'ether',
    address: '8a:00:00:00:00:01',
    linkinfo: { info_kind: 'tun', info_data: { type: 'tap' } },
    group: 'default',
    ...o,
  };
}

interface Host {
  links?: Record<string, unknown>[];
  route?: unknown[];
  qdiscs?: unknown[];
  /** Per device, `tc -j filter show` output. */
  filters?: Record<string, unknown[]>;
  /** Fail commands whose joined args contain this, with this stderr. */
  fail?: { match: string; stderr: string; exitCode?: number }[];
}

/** A fake host answering ip/tc queries from data; records commands and batch inputs. */
function fakeHost(h: Host): ProcessRunner & { calls: { command: string; args: string[]; input?: string }[] } {
  const rec = recordingRunner((command, args) => {
    const line = [command, ...args].join(' ');
    const f = h.fail?.find((x) => line.includes(x.match));
    if (f) return { exitCode: f.exitCode ?? 2, stderr: f.stderr };
    if (line === 'ip -j -d link show') return { stdout: JSON.stringify(h.links ?? []) };
    if (line === 'ip -j route show default') return { stdout: JSON.stringify(h.route ?? []) };
    if (line === 'tc -j qdisc show') return { stdout: JSON.stringify(h.qdiscs ?? []) };
    return {};
  });
  const calls: { command: string; args: string[]; input?: string }[] = [];
  return {
    calls,
    spawnDetached: rec.spawnDetached,
    async run(command: string, args: readonly string[], o: RunOptions = {}): Promise<RunResult> {
      const input = o.input?.toString();
      calls.push({ command, args: [...args], input });
      if (command === 'tc' && args.includes('-batch') && args[0] === '-j') {
        const out = input!
          .trim()
          .split('\n')
          .map((l) => JSON.stringify(h.filters?.[l.split(' ')[3]!] ?? []))
          .join('\n');
        return { command, args, exitCode: 0, signal: null, stdout: out, stderr: '', stdoutBuffer: Buffer.from(out), timedOut: false };
      }
      return rec.run(command, args, o);
    },
  };
}

/** Commands other than the kernel probe's. */
const mutations = (calls: { command: string; args: string[]; input?: string }[]) =>
  calls.filter((c) => !c.args.some((a) => a.startsWith('fnpr')) && !c.args.includes('-j'));

describe('planNetwork', () => {
  it('names each endpoint and pairs taps', () => {
    const plan = planNetwork(duo(), { falconDir: DIR });
    expect(plan.alias).toBe(`falcon:duo:${DIR}`);
    const [v, p] = plan.interfaces as PlannedTap[];
    expect(v).toMatchObject({ kind: 'tap', node: 'violin', index: 0, altname: 'duo_violin_vn_sim0', path: 'links[0].a', peerIfname: p!.ifname });
    expect(p).toMatchObject({ kind: 'tap', node: 'piano', index: 0, altname: 'duo_piano_vn_sim0', path: 'links[0].b', peerIfname: v!.ifname });
    expect(v!.ifname).toMatch(/^fn[0-9a-f]{9}e0$/);
    expect(v!.guestMac).toMatch(/^02:/);
  });

  it('plans external links as macvtaps, resolving the default route through the resolver', () => {
    const t = new Topology('ext');
    const a = t.node('a', 'tiny', 1, 512);
    t.extLink('eth1', a, '02:AA:BB:CC:DD:EE');
    t.extLinkExclusive('eth2', a);
    t.defaultExtLink(a);
    const s = t.toSpec();
    expect(planNetwork(s, { falconDir: DIR }).interfaces.map((i) => i.kind === 'macvtap' && [i.lower, i.mode, i.path])).toEqual([
      ['eth1', 'bridge', 'links[0].a'],
      ['eth2', 'passthru', 'links[1].a'],
      [undefined, 'bridge', 'links[2].a'],
    ]);
    const resolved = planNetwork(s, { falconDir: DIR, hostIfxResolver: (h) => h ?? 'eno1' });
    expect(resolved.interfaces[2]).toMatchObject({ kind: 'macvtap', hostIfx: null, lower: 'eno1' });
    expect(resolved.interfaces[0]!.guestMac).toBe('02:aa:bb:cc:dd:ee');
  });

  it('plans no host interface for SoftNPU and sidecar links (their NICs are switch sockets)', () => {
    const t = new Topology('npu');
    const s = t.node('s', 'tiny', 1, 512);
    const d = t.node('d', 'tiny', 1, 512);
    t.link(s, d);
    t.softnpuLink(s, d);
    t.sidecarLink(s, d, 8);
    t.link(s, d);
    const plan = planNetwork(t.toSpec(), { falconDir: DIR }).interfaces;
    // d's NIC 1 is on switch port 1; s's NIC 1 and d's NICs 2..9 are on the sidemux.
    expect(plan.map((i) => i.kind === 'tap' && [i.node, i.index])).toEqual([
      ['s', 0],
      ['d', 0],
      ['s', 2],
      ['d', 10],
    ]);
  });
});

describe('networkActions', () => {
  const plan: NetworkPlan = planNetwork(duo(), { falconDir: DIR });
  const [v, p] = plan.interfaces as PlannedTap[];
  const complete = () => [
    rawLink(v!.ifname, { ifalias: ALIAS, altnames: [v!.altname] }),
    rawLink(p!.ifname, { ifalias: ALIAS, altnames: [p!.altname] }),
  ];
  const state = (links: Record<string, unknown>[], wired = true) => ({
    links: links.map((l) => ({
      ifindex: 1,
      ifname: l.ifname as string,
      altnames: (l.altnames as string[]) ?? [],
      alias: l.ifalias as string | undefined,
      address: l.address as string,
      operstate: 'DOWN',
      flags: l.flags as string[],
      kind: (l.linkinfo as { info_kind: string }).info_kind,
      tunType: (l.linkinfo as { info_data: { type?: string } }).info_data.type,
    })),
    ingress: new Set(wired ? [v!.ifname, p!.ifname] : []),
    redirects: new Map(wired ? [[v!.ifname, p!.ifname], [p!.ifname, v!.ifname]] : []),
  });

  it('creates everything on an empty host, with exact commands', () => {
    const a = networkActions(plan, state([], false));
    expect(a.created).toEqual([v!.ifname, p!.ifname]);
    expect(a.ip).toEqual([
      ['tuntap', 'add', 'dev', v!.ifname, 'mode', 'tap'],
      ['link', 'set', 'dev', v!.ifname, 'alias', ALIAS, 'addrgenmode', 'none'],
      ['link', 'property', 'add', 'dev', v!.ifname, 'altname', 'duo_violin_vn_sim0'],
      ['link', 'set', 'dev', v!.ifname, 'up'],
      ['tuntap', 'add', 'dev', p!.ifname, 'mode', 'tap'],
      ['link', 'set', 'dev', p!.ifname, 'alias', ALIAS, 'addrgenmode', 'none'],
      ['link', 'property', 'add', 'dev', p!.ifname, 'altname', 'duo_piano_vn_sim0'],
      ['link', 'set', 'dev', p!.ifname, 'up'],
    ]);
    expect(a.tc).toEqual([
      ['qdisc', 'replace', 'dev', v!.ifname, 'handle', 'ffff:', 'ingress'],
      ['filter', 'replace', 'dev', v!.ifname, 'parent', 'ffff:', 'protocol', 'all', 'pref', '1', 'handle', '800::800',
        'u32', 'match', 'u32', '0', '0', 'action', 'mirred', 'egress', 'redirect', 'dev', p!.ifname],
      ['qdisc', 'replace', 'dev', p!.ifname, 'handle', 'ffff:', 'ingress'],
      wireCommand(p!.ifname, v!.ifname),
    ]);
  });

  it('does nothing when everything is in place', () => {
    const a = networkActions(plan, state(complete()));
    expect([a.ip, a.tc, a.created, a.repaired, a.recreated, a.removed]).toEqual([[], [], [], [], [], []]);
  });

  it('re-creates a vanished tap and re-wires its peer', () => {
    const a = networkActions(plan, { ...state([complete()[0]!]), ingress: new Set([v!.ifname]), redirects: new Map([[v!.ifname, undefined]]) });
    expect(a.created).toEqual([p!.ifname]);
    expect(a.repaired).toEqual([v!.ifname]);
    expect(a.ip[0]).toEqual(['tuntap', 'add', 'dev', p!.ifname, 'mode', 'tap']);
    expect(a.tc).toEqual([
      wireCommand(v!.ifname, p!.ifname),
      ['qdisc', 'replace', 'dev', p!.ifname, 'handle', 'ffff:', 'ingress'],
      wireCommand(p!.ifname, v!.ifname),
    ]);
  });

  it('repairs a missing altname, alias, up state and filter', () => {
    const links = complete();
    links[0] = rawLink(v!.ifname, { flags: ['BROADCAST'] }); // unstamped: creation interrupted
    const s = state(links);
    s.redirects.set(p!.ifname, 'elsewhere0');
    const a = networkActions(plan, s);
    expect(a.ip).toEqual([
      ['link', 'set', 'dev', v!.ifname, 'alias', ALIAS, 'addrgenmode', 'none'],
      ['link', 'property', 'add', 'dev', v!.ifname, 'altname', 'duo_violin_vn_sim0'],
      ['link', 'set', 'dev', v!.ifname, 'up'],
    ]);
    expect(a.tc).toEqual([wireCommand(p!.ifname, v!.ifname)]);
    expect(a.repaired).toEqual([v!.ifname, p!.ifname]);
  });

  it('recreates an interface of the wrong kind and removes ours that the topology dropped', () => {
    const links = complete();
    links[1] = rawLink(p!.ifname, { ifalias: ALIAS, linkinfo: { info_kind: 'tun', info_data: { type: 'tun' } } });
    links.push(rawLink('fn000000000e5', { ifalias: ALIAS }));
    const a = networkActions(plan, state(links));
    expect(a.removed).toEqual(['fn000000000e5']);
    expect(a.recreated).toEqual([p!.ifname]);
    expect(a.ip.slice(0, 3)).toEqual([
      ['link', 'del', 'dev', 'fn000000000e5'],
      ['link', 'del', 'dev', p!.ifname],
      ['tuntap', 'add', 'dev', p!.ifname, 'mode', 'tap'],
    ]);
    expect(a.tc).toContainEqual(wireCommand(v!.ifname, p!.ifname));
  });

  it('creates macvtaps with the guest MAC in bridge mode and without one in passthru', () => {
    const t = new Topology('ext');
    const n = t.node('n', 'tiny', 1, 512);
    t.extLink('eth1', n, '02:aa:bb:cc:dd:ee');
    t.extLinkExclusive('eth2', n);
    const ext = planNetwork(t.toSpec(), { falconDir: DIR });
    const [b, x] = ext.interfaces;
    const a = networkActions(ext, { links: [], ingress: new Set(), redirects: new Map() });
    expect(a.ip[0]).toEqual(['link', 'add', 'link', 'eth1', 'name', b!.ifname, 'address', '02:aa:bb:cc:dd:ee', 'type', 'macvtap', 'mode', 'bridge']);
    expect(a.ip[4]).toEqual(['link', 'add', 'link', 'eth2', 'name', x!.ifname, 'type', 'macvtap', 'mode', 'passthru']);
    expect(a.tc).toEqual([]);
  });
});

describe('checkNetworkPreflight', () => {
  const plan = planNetwork(duo(), { falconDir: DIR });
  const [v, p] = plan.interfaces as PlannedTap[];

  it('probes the kernel on throwaway devices and is clean on an empty host', async () => {
    const host = fakeHost({ links: [rawLink('eth0')] });
    expect(await checkNetworkPreflight(duo(), { runner: host, falconDir: DIR })).toEqual([]);
    const probe = host.calls.filter((c) => c.args.some((a) => a.startsWith('fnpr')));
    const dev = probe[0]!.args[3]!;
    expect(dev).toMatch(/^fnpr[0-9a-f]{8}a$/);
    const peer = dev.replace(/a$/, 'b');
    expect(probe.map((c) => [c.command, ...c.args].join(' '))).toEqual([
      `ip tuntap add dev ${dev} mode tap`,
      `ip tuntap add dev ${peer} mode tap`,
      `ip link property add dev ${dev} altname falcon_probe_${dev.slice(4, 12)}`,
      `tc qdisc add dev ${peer} root handle 1: netem delay 1ms`,
      `ip link add link ${dev} name ${dev.replace(/a$/, 'm')} type macvtap mode bridge`,
      `tc qdisc add dev ${dev} handle ffff: ingress`,
      `tc filter add dev ${dev} parent ffff: protocol all pref 1 u32 match u32 0 0`,
      `tc filter add dev ${dev} parent ffff: protocol all pref 2 u32 match u32 0 0 action mirred egress redirect dev ${peer}`,
      `ip link del dev ${dev}`,
      `ip link del dev ${peer}`,
    ]);
    // Cached per runner.
    await checkNetworkPreflight(duo(), { runner: host, falconDir: DIR });
    expect(host.calls.filter((c) => c.args.some((a) => a.startsWith('fnpr')))).toHaveLength(probe.length);
  });

  it('accepts interfaces of the same topology and falcon dir (relaunch)', async () => {
    const host = fakeHost({ links: [rawLink(v!.ifname, { ifalias: ALIAS, altnames: [v!.altname] })] });
    expect(await checkNetworkPreflight(duo(), { runner: host, falconDir: DIR })).toEqual([]);
  });

  it('refuses names owned by the same-named topology of another falcon dir, naming it', async () => {
    const other = ownerAlias('duo', '/home/ann/.falcon');
    const host = fakeHost({ links: [rawLink(v!.ifname, { ifalias: other, altnames: [v!.altname] }), rawLink(p!.ifname, { ifalias: other })] });
    const problems = await checkNetworkPreflight(duo(), { runner: host, falconDir: DIR });
    expect(problems.map((x) => x.path)).toEqual(['links[0].a', 'links[0].b']);
    expect(problems[0]!.message).toBe(
      `host interface ${v!.ifname} (altname duo_violin_vn_sim0), which node "violin" interface 0 needs as its name, belongs to topology "duo" of falcon dir /home/ann/.falcon`,
    );
    expect(problems[0]!.fix).toContain('destroy the one in /home/ann/.falcon');
  });

  it('refuses an altname taken by another topology and a name taken by a foreign interface', async () => {
    const host = fakeHost({
      links: [
        rawLink('fnzzzzzzzzze0', { ifalias: ownerAlias('band', '/x/.falcon'), altnames: [v!.altname] }),
        rawLink(p!.ifname, { ifalias: 'my uplink' }),
      ],
    });
    const problems = await checkNetworkPreflight(duo(), { runner: host, falconDir: DIR });
    expect(problems).toHaveLength(2);
    expect(problems[0]!.message).toContain('needs as its altname, belongs to topology "band" of falcon dir /x/.falcon');
    expect(problems[1]!.message).toContain('already exists and was not made by Falcon (alias "my uplink")');
    expect(problems[1]!.fix).toContain(`ip link del ${p!.ifname}`);
  });

  it('checks the host interfaces of external links and the default route', async () => {
    const t = new Topology('ext');
    const n = t.node('n', 'tiny', 1, 512);
    t.extLink('eth9', n);
    t.extLink('lo', n);
    t.defaultExtLink(n);
    const host = fakeHost({ links: [rawLink('eth0'), rawLink('lo', { link_type: 'loopback' })], route: [] });
    const problems = await checkNetworkPreflight(t.toSpec(), { runner: host, falconDir: DIR });
    expect(problems.map((x) => [x.path, x.message])).toEqual([
      ['links[0].hostIfx', 'extLink of node "n" names host interface eth9, which does not exist'],
      ['links[1].hostIfx', 'extLink of node "n" names host interface lo, which is not an Ethernet device (link type loopback)'],
      ['links[2].hostIfx', `defaultExtLink of node "n" uses the interface of the host's default route, but the host has no default route`],
    ]);
    expect(problems[0]!.fix).toContain('(eth0; see "ip -br link")');

    const ok = fakeHost({ links: [rawLink('eth0')], route: [{ dst: 'default', dev: 'eth0', metric: 100 }] });
    const s2 = new Topology('ext2');
    s2.defaultExtLink(s2.node('n', 'tiny', 1, 512));
    expect(await checkNetworkPreflight(s2.toSpec(), { runner: ok, falconDir: DIR })).toEqual([]);
  });

  it('refuses an exclusive external link on an interface that already has a macvtap', async () => {
    const t = new Topology('ext');
    t.extLinkExclusive('eth0', t.node('n', 'tiny', 1, 512));
    const host = fakeHost({
      links: [rawLink('eth0'), rawLink('macvtap0', { link: 'eth0', linkinfo: { info_kind: 'macvtap', info_data: { mode: 'bridge' } } })],
    });
    const [problem] = await checkNetworkPreflight(t.toSpec(), { runner: host, falconDir: DIR });
    expect(problem!.message).toContain('needs host interface eth0 to itself, but it already carries macvtap macvtap0');
  });

  it('reports missing kernel features with the module to load', async () => {
    const host = fakeHost({
      links: [],
      fail: [{ match: 'action mirred', stderr: 'Error: Failed to load TC action module.\nWe have an error talking to the kernel' }],
    });
    const problems = await checkNetworkPreflight(duo(), { runner: host, falconDir: DIR });
    expect(problems).toEqual([
      {
        path: 'host.kernel.mirred',
        message: 'the host kernel does not support the tc mirred action (Error: Failed to load TC action module.)',
        fix: 'load the module with "modprobe act_mirred", or use a kernel built with CONFIG_NET_ACT_MIRRED=y or =m',
      },
    ]);
  });

  it('reports a missing u32 classifier, and macvtap only for topologies with external links', async () => {
    const runner = fakeHost({ fail: [{ match: 'pref 1 u32', stderr: 'Error: TC classifier not found.' }, { match: 'type macvtap', stderr: 'Error: Unknown device type.' }] });
    const f = await detectKernelFeatures(runner);
    expect([f.u32, f.mirred, f.macvtap]).toEqual([false, undefined, false]);
    expect(featureProblems(f, false).map((x) => x.path)).toEqual(['host.kernel.u32']);
    expect(featureProblems(f, true).map((x) => x.path)).toEqual(['host.kernel.u32', 'host.kernel.macvtap']);
    expect(featureProblems(f, true)[1]!.fix).toContain('modprobe macvtap');
  });

  it('says to run as root when devices cannot be created', async () => {
    const runner = fakeHost({ fail: [{ match: 'tuntap add', stderr: 'ioctl(TUNSETIFF): Operation not permitted', exitCode: 1 }] });
    const problems = await checkNetworkPreflight(duo(), { runner, falconDir: DIR });
    expect(problems).toHaveLength(1);
    expect(problems[0]!.path).toBe('host.permission');
    expect(problems[0]!.fix).toContain('root');
  });
});

describe('createNetwork', () => {
  it('runs one ip batch and one tc batch, and returns netdevs per node', async () => {
    const host = fakeHost({ links: [] });
    const r = await createNetwork(duo(), { runner: host, falconDir: DIR });
    const m = mutations(host.calls);
    expect(m.map((c) => [c.command, ...c.args].join(' '))).toEqual(['ip -batch -', 'tc -batch -']);
    const [v, p] = planNetwork(duo(), { falconDir: DIR }).interfaces;
    expect(m[0]!.input!.split('\n')[1]).toBe(`link set dev ${v!.ifname} alias falcon:duo:/srv/lab/.falcon addrgenmode none`);
    expect(m[1]!.input).toBe(
      `qdisc replace dev ${v!.ifname} handle ffff: ingress\n` +
        `${wireCommand(v!.ifname, p!.ifname).join(' ')}\n` +
        `qdisc replace dev ${p!.ifname} handle ffff: ingress\n` +
        `${wireCommand(p!.ifname, v!.ifname).join(' ')}\n`,
    );
    expect(r.netdevs).toEqual({
      violin: [{ kind: 'tap', index: 0, ifname: v!.ifname, altname: 'duo_violin_vn_sim0', mac: v!.guestMac }],
      piano: [{ kind: 'tap', index: 0, ifname: p!.ifname, altname: 'duo_piano_vn_sim0', mac: p!.guestMac }],
    });
  });

  it('quotes a falcon dir with spaces in the batch, and runs one with "#" on its own', async () => {
    const host = fakeHost({ links: [] });
    await createNetwork(duo(), { runner: host, falconDir: '/srv/my lab/.falcon' });
    expect(mutations(host.calls)[0]!.input).toContain(`alias "falcon:duo:/srv/my lab/.falcon" addrgenmode none`);

    const host2 = fakeHost({ links: [] });
    await createNetwork(duo(), { runner: host2, falconDir: '/srv/lab#1/.falcon' });
    const m = mutations(host2.calls).map((c) => [c.command, ...c.args].join(' '));
    const [v, p] = planNetwork(duo(), { falconDir: '/srv/lab#1/.falcon' }).interfaces;
    // The batch reader would cut the line at "#": those commands run on their own, in order.
    expect(m).toEqual([
      'ip -batch -',
      `ip link set dev ${v!.ifname} alias falcon:duo:/srv/lab#1/.falcon addrgenmode none`,
      'ip -batch -',
      `ip link set dev ${p!.ifname} alias falcon:duo:/srv/lab#1/.falcon addrgenmode none`,
      'ip -batch -',
      'tc -batch -',
    ]);
  });

  it('refuses before creating anything when preflight finds problems', async () => {
    const host = fakeHost({ fail: [{ match: 'ingress', stderr: 'Error: Specified qdisc kind is unknown.' }] });
    const err = await createNetwork(duo(), { runner: host, falconDir: DIR }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetworkError);
    expect((err as Error).message).toContain('host.kernel.ingress: the host kernel does not support the tc ingress qdisc');
    expect((err as Error).message).toContain('fix: load the module with "modprobe sch_ingress"');
    expect(mutations(host.calls)).toEqual([]);
  });

  it('returns the /dev/tapN of a macvtap and waits for it', async () => {
    const t = new Topology('ext');
    t.extLink('eth0', t.node('n', 'tiny', 1, 512), '02:00:00:00:00:07');
    const spec = t.toSpec();
    const ifname = planNetwork(spec, { falconDir: DIR }).interfaces[0]!.ifname;
    let created = false;
    const links = () =>
      JSON.stringify([
        rawLink('eth0'),
        ...(created ? [rawLink(ifname, { ifindex: 42, link: 'eth0', linkinfo: { info_kind: 'macvtap', info_data: { mode: 'bridge' } } })] : []),
      ]);
    const base = recordingRunner((c, a) => {
      if (c === 'ip' && a.join(' ') === '-j -d link show') return { stdout: links() };
      if (c === 'ip' && a.includes('-batch')) created = true;
      return {};
    });
    let polls = 0;
    const r = await createNetwork(spec, { runner: base, falconDir: DIR, deviceExists: (p) => p === '/dev/tap42' && ++polls > 2 });
    expect(r.netdevs.n).toEqual([{ kind: 'macvtap', index: 0, ifname, altname: 'ext_n_vn_sim0', mac: '02:00:00:00:00:07', tapDevice: '/dev/tap42' }]);
    expect(polls).toBe(3);
  });

  it('names the failing command of a batch', async () => {
    const runner = recordingRunner((c, a) => (c === 'ip' && a.includes('-batch') ? { exitCode: 1, stderr: 'RTNETLINK answers: File exists\nCommand failed -:3\n' } : {}));
    const err = await runBatch('ip', [['link', 'set', 'dev', 'a', 'up'], ['link', 'set', 'dev', 'b', 'up'], ['tuntap', 'add', 'dev', 'c', 'mode', 'tap']], { runner }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostCommandError);
    expect((err as Error).message).toBe('Command failed with exit code 1: ip tuntap add dev c mode tap\nRTNETLINK answers: File exists');
  });
});

describe('destroyNetwork', () => {
  const [v, p] = planNetwork(duo(), { falconDir: DIR }).interfaces;

  it('succeeds without touching anything when nothing exists', async () => {
    const host = fakeHost({ links: [rawLink('eth0')] });
    expect(await destroyNetwork(duo(), { runner: host, falconDir: DIR })).toEqual({ removed: [] });
    expect(mutations(host.calls)).toEqual([]);
  });

  it('deletes only its own interfaces, as one group', async () => {
    let group = '';
    let deleted = false;
    const links = () =>
      deleted
        ? [rawLink('eth0')]
        : [
            rawLink('eth0'),
            rawLink(v!.ifname, { ifalias: ALIAS, group: group || 'default' }),
            rawLink(p!.ifname, { group: group || 'default' }), // unstamped, our exact name and kind
            rawLink('fnabcdef012e0', { ifalias: ownerAlias('duo', '/other/.falcon') }),
          ];
    const host = recordingRunner((_c, a) => {
      const line = a.join(' ');
      if (line === '-j -d link show') return { stdout: JSON.stringify(links()) };
      if (line.startsWith('link del group')) deleted = true;
      return {};
    });
    const origRun = host.run.bind(host);
    host.run = async (c, a, o) => {
      const g = /group (\d+)/.exec(o?.input?.toString() ?? '');
      if (g) group = g[1]!;
      return origRun(c, a, o);
    };
    const r = await destroyNetwork(duo(), { runner: host, falconDir: DIR });
    expect(r.removed).toEqual([v!.ifname, p!.ifname]);
    expect(group).toMatch(/^\d+$/);
    expect(host.calls.map((c) => c.args.join(' '))).toEqual([
      '-j -d link show',
      '-force -batch -',
      '-j -d link show',
      `link del group ${group}`,
      '-j -d link show',
    ]);
  });

  it('never deletes a group that holds an interface of someone else', async () => {
    let group = '';
    const host = recordingRunner((_c, a) =>
      a.join(' ') === '-j -d link show'
        ? { stdout: JSON.stringify([rawLink(v!.ifname, { ifalias: ALIAS, group }), rawLink(p!.ifname, { ifalias: ALIAS, group }), rawLink('eth0', { group })]) }
        : {},
    );
    const origRun = host.run.bind(host);
    host.run = async (c, a, o) => {
      const g = /group (\d+)/.exec(o?.input?.toString() ?? '');
      if (g) group = g[1]!;
      return origRun(c, a, o);
    };
    await expect(destroyNetwork(duo(), { runner: host, falconDir: DIR })).rejects.toThrow(/could not remove host interface/);
    expect(host.calls.some((c) => c.args.join(' ').startsWith('link del group'))).toBe(false);
  });
});

describe('listTopologyInterfaces', () => {
  it('reports state, MACs and wiring of existing interfaces', async () => {
    const [v, p] = planNetwork(duo(), { falconDir: DIR }).interfaces as PlannedTap[];
    const host = fakeHost({
      links: [rawLink(v!.ifname, { ifindex: 7, ifalias: ALIAS, altnames: [v!.altname], operstate: 'UP', flags: ['UP', 'LOWER_UP'] })],
      qdiscs: [{ kind: 'ingress', dev: v!.ifname }],
      filters: { [v!.ifname]: [{ kind: 'u32', options: { fh: '800::800', actions: [{ kind: 'mirred', mirred_action: 'redirect', direction: 'egress', to_dev: p!.ifname }] } }] },
    });
    const list = await listTopologyInterfaces(duo(), { runner: host, falconDir: DIR });
    expect(list[0]).toMatchObject({ node: 'violin', exists: true, up: true, carrier: true, ifindex: 7, wiredTo: p!.ifname, hostMac: '8a:00:00:00:00:01', guestMac: v!.guestMac });
    expect(list[1]).toMatchObject({ node: 'piano', exists: false, peerIfname: v!.ifname });
  });
});

describe('ip/tc helpers', () => {
  it('writes batch lines, quoting where the batch reader allows', () => {
    expect(batchLine(['link', 'set', 'dev', 'x', 'alias', 'falcon:a:/b c'])).toBe('link set dev x alias "falcon:a:/b c"');
    expect(batchLine(['alias', `it's "q"`])).toBeUndefined();
    expect(batchLine(['alias', `say "hi"`])).toBe(`alias 'say "hi"'`);
    expect(batchLine(['alias', 'a#b'])).toBeUndefined();
  });

  it('splits concatenated JSON and picks the lowest-metric default route', () => {
    expect(splitJsonValues('[]\n[{"a":"]["}]\n[1]')).toEqual([[], [{ a: '][' }], [1]]);
    expect(parseDefaultRoute(JSON.stringify([{ dev: 'wlan0', metric: 600 }, { dev: 'eth0', metric: 100 }]))).toBe('eth0');
    expect(parseDefaultRoute('[]')).toBeUndefined();
  });
});
