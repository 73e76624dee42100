// Links on a cluster: VNIs, tunnels between pods, the per-pod wiring plan and its commands, and
// what info shows for a link end.
import { describe, expect, it } from 'vitest';
import { helperWireCommands, plainWireCommands } from '../../src/host/impair.ts';
import { wireCommand } from '../../src/host/net.ts';
import {
  impairHelperTaps,
  k8sLinkEnds,
  MAX_VNI,
  podInterfaces,
  podWiring,
  tunnelPeerCommands,
  tunnels,
  tunnelSetupCommands,
  vni,
  vniBase,
} from '../../src/k8s/index.ts';
import { Topology } from '../../src/model/topology.ts';

function duo() {
  const d = new Topology('duo');
  d.link(d.node('violin', 'tiny', 1, 1024), d.node('piano', 'tiny', 1, 1024));
  return d.toSpec();
}

function softnpu(cpuPort: 'raw' | 'tfports' = 'raw') {
  const d = new Topology('softnpu');
  const s = d.node('scrimlet', 'tiny', 1, 256);
  d.softnpuLink(s, d.node('gc1', 'tiny', 1, 256), '02:00:00:00:01:02');
  d.softnpuLink(s, d.node('gc2', 'tiny', 1, 256), '02:00:00:00:02:02');
  d.softnpu(s, { program: 'sidecar-lite', cpuPort });
  return d.toSpec();
}

describe('VNIs', () => {
  it('are stable: a function of the topology name and the link index only', () => {
    expect(vni('duo', 0)).toBe(vni('duo', 0));
    expect(vni('duo', 0)).toBe(1 + (vniBase('duo') % MAX_VNI));
    expect(tunnels(duo())[0]!.vni).toBe(vni('duo', 0));
    // A known value pins the hash: changing the scheme would move every running topology's VNIs.
    expect(vniBase('duo')).toBe(11178129);
  });

  it('are 1..16777215 and distinct within a topology, wrapping past the top without hitting 0', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 5000; i++) {
      const v = vni('lab', i);
      expect(v).toBeGreaterThanOrEqual(1);
      expect(v).toBeLessThanOrEqual(MAX_VNI);
      seen.add(v);
    }
    expect(seen.size).toBe(5000);
    const wrap = MAX_VNI - vniBase('lab');
    expect(vni('lab', wrap - 1)).toBe(MAX_VNI);
    expect(vni('lab', wrap)).toBe(1);
  });

  it('differ between topologies (per-topology offset)', () => {
    const bases = new Set(['duo', 'solo', 'softnpu', 'sidecar', 'lossy', 'ring', 'lab1', 'lab2'].map(vniBase));
    expect(bases.size).toBe(8);
  });
});

describe('tunnels', () => {
  it('a node-to-node link: NIC taps at both ends, the original altnames, one VXLAN device per link', () => {
    const [t, ...rest] = tunnels(duo());
    expect(rest).toEqual([]);
    expect(t).toMatchObject({
      link: 0,
      kind: 'link',
      a: { node: 'violin', pod: 'violin', tap: 'nic0', vxlan: 'vxl0', altname: 'duo_violin_vn_sim0', attach: { kind: 'nic', index: 0 } },
      b: { node: 'piano', pod: 'piano', tap: 'nic0', vxlan: 'vxl0', altname: 'duo_piano_vn_sim0', attach: { kind: 'nic', index: 0 } },
    });
  });

  it("an impaired link goes through the helper in its a end's pod: tap -> iab -> vxlan, vxlan -> iba -> tap", () => {
    const w = podWiring(duo(), 'violin');
    const t = w.tunnels[0]!;
    expect(impairHelperTaps(t.link)).toEqual({ ab: 'iab0', ba: 'iba0' });
    expect(helperWireCommands({ a: t.tap, b: t.vxlan }, impairHelperTaps(t.link))).toEqual([
      ['qdisc', 'replace', 'dev', 'iab0', 'handle', 'ffff:', 'ingress'],
      ['qdisc', 'replace', 'dev', 'iba0', 'handle', 'ffff:', 'ingress'],
      wireCommand('iab0', 'vxl0'),
      wireCommand('iba0', 'nic0'),
      wireCommand('nic0', 'iab0'),
      wireCommand('vxl0', 'iba0'),
    ]);
    // Straight again: the same two filters the tunnel was made with.
    expect(plainWireCommands({ a: 'nic0', b: 'vxl0' }).map((c) => ['tc', ...c])).toEqual(w.setup.filter((c) => c[0] === 'tc' && c.includes('filter')));
  });

  it('SoftNPU: the npu end is a switch port in the npu pod, the other a NIC tap; softnpuLinks joins two switch ports', () => {
    const ts = tunnels(softnpu());
    expect(ts.map((t) => [t.a.attach, t.b.attach])).toEqual([
      [{ kind: 'switch-port', npu: 'scrimlet', port: 1 }, { kind: 'nic', node: 'gc1', index: 0, mac: '02:00:00:00:01:02' }],
      [{ kind: 'switch-port', npu: 'scrimlet', port: 2 }, { kind: 'nic', node: 'gc2', index: 0, mac: '02:00:00:00:02:02' }],
    ]);
    expect(ts.map((t) => t.a.tap)).toEqual(['swp0', 'swp1']);
    const d = new Topology('two');
    const a = d.node('a', 'tiny', 1, 256);
    const b = d.node('b', 'tiny', 1, 256);
    d.softnpuLink(a, d.node('c', 'tiny', 1, 256));
    d.softnpuLinks(a, b);
    expect(tunnels(d.toSpec())[1]).toMatchObject({ a: { pod: 'a', attach: { kind: 'switch-port', npu: 'a', port: 2 } }, b: { pod: 'b', attach: { kind: 'switch-port', npu: 'b', port: 1 } } });
  });

  it('sidecar: only port 0 crosses pods (the sidecar NIC to the sidemux in the driver pod)', () => {
    const d = new Topology('sidecar');
    d.sidecarLink(d.node('sidecar', 'tiny', 1, 256), d.node('scdriver', 'tiny', 1, 256), 10);
    const ts = tunnels(d.toSpec());
    expect(ts).toHaveLength(1);
    expect(ts[0]).toMatchObject({ a: { pod: 'sidecar', tap: 'nic0', attach: { kind: 'nic', index: 0 } }, b: { pod: 'scdriver', tap: 'swp0', attach: { kind: 'switch-port', npu: 'scdriver.sidemux', port: 0 } } });
  });

  it('an external link has none (preflight refuses it)', () => {
    const d = new Topology('ext');
    d.extLink('eth0', d.node('a', 'tiny', 1, 256));
    expect(tunnels(d.toSpec())).toEqual([]);
  });
});

describe('podWiring', () => {
  it('the driver keeps its sidemux NICs as local stream sockets; the sidecar gets a tap', () => {
    const d = new Topology('sidecar');
    d.sidecarLink(d.node('sidecar', 'tiny', 1, 256), d.node('scdriver', 'tiny', 1, 256), 3);
    const spec = d.toSpec();
    const drv = podWiring(spec, 'scdriver');
    expect(drv.switches).toEqual([{ npu: 'scdriver.sidemux', kind: 'sidemux' }]);
    expect(drv.nics.map((n) => [n.index, n.kind, n.kind === 'stream' ? n.port : n.tap])).toEqual([[0, 'stream', 1], [1, 'stream', 2], [2, 'stream', 3]]);
    expect(drv.tunnels.map((t) => [t.tap, t.peer.pod])).toEqual([['swp0', 'sidecar']]);
    const sc = podWiring(spec, 'sidecar');
    expect(sc.switches).toEqual([]);
    expect(sc.nics).toMatchObject([{ index: 0, kind: 'tap', tap: 'nic0', link: 0 }]);
  });

  it('an npu pod: its switch, its CPU NICs (tfports: one per port) after its link NICs, a tunnel per port', () => {
    const w = podWiring(softnpu('tfports'), 'scrimlet');
    expect(w.switches).toEqual([{ npu: 'scrimlet', kind: 'softnpu' }]);
    expect(w.nics.map((n) => [n.index, n.kind, n.kind === 'stream' ? n.role : ''])).toEqual([[0, 'stream', 'tfport'], [1, 'stream', 'tfport']]);
    expect(w.tunnels.map((t) => [t.tap, t.vxlan, t.peer.node])).toEqual([['swp0', 'vxl0', 'gc1'], ['swp1', 'vxl1', 'gc2']]);
    expect(podWiring(softnpu(), 'gc2').nics).toEqual([{ index: 0, mac: '02:00:00:00:02:02', kind: 'tap', tap: 'nic0', link: 1 }]);
  });

  it('tap names follow NIC indexes, bumpRadix gaps included; VNIs and devices are distinct in a pod', () => {
    const d = new Topology('ring');
    const n = ['r0', 'r1', 'r2', 'r3'].map((x) => d.node(x, 'tiny', 1, 256));
    d.link(n[0]!, n[1]!);
    d.bumpRadix(n[0]!);
    d.link(n[0]!, n[3]!);
    d.link(n[1]!, n[2]!);
    d.link(n[2]!, n[3]!);
    const w = podWiring(d.toSpec(), 'r0');
    expect(w.nics.map((x) => (x.kind === 'tap' ? x.tap : ''))).toEqual(['nic0', 'nic2']);
    expect(w.tunnels.map((t) => [t.tap, t.vxlan, t.peer.pod])).toEqual([['nic0', 'vxl0', 'r1'], ['nic2', 'vxl1', 'r3']]);
    const all = ['r0', 'r1', 'r2', 'r3'].flatMap((x) => podWiring(d.toSpec(), x).tunnels);
    expect(all).toHaveLength(8);
    for (const x of ['r0', 'r1', 'r2', 'r3']) {
      const mine = podWiring(d.toSpec(), x).tunnels;
      expect(new Set(mine.map((t) => t.vni)).size).toBe(mine.length);
    }
  });

  it('set-up commands: a tap and a VXLAN device wired back to back with tc mirred, as two taps on one host', () => {
    const w = podWiring(duo(), 'violin', { vxlanPort: 14789, localIp: '10.244.1.5' });
    const v = String(vni('duo', 0));
    expect(w.setup.map((c) => c.join(' '))).toEqual([
      'ip tuntap add dev nic0 mode tap',
      'ip link set dev nic0 mtu 1500 addrgenmode none',
      'ip link property add dev nic0 altname duo_violin_vn_sim0',
      'ip link set dev nic0 up',
      `ip link add vxl0 type vxlan id ${v} local 10.244.1.5 dstport 14789 nolearning`,
      'ip link set dev vxl0 mtu 1500 addrgenmode none up',
      'tc qdisc replace dev nic0 handle ffff: ingress',
      'tc qdisc replace dev vxl0 handle ffff: ingress',
      'tc filter replace dev nic0 parent ffff: protocol all pref 1 handle 800::800 u32 match u32 0 0 action mirred egress redirect dev vxl0',
      'tc filter replace dev vxl0 parent ffff: protocol all pref 1 handle 800::800 u32 match u32 0 0 action mirred egress redirect dev nic0',
    ]);
    expect(w.tunnels[0]).toMatchObject({ port: 14789, peer: { node: 'piano', pod: 'piano' } });
    // Without the pod IP the device picks its source by route; a guest MTU other than 1500 is passed on.
    const plain = tunnelSetupCommands(w.tunnels[0]!, { mtu: 1400 }).map((c) => c.join(' '));
    expect(plain).toContain(`ip link add vxl0 type vxlan id ${v} dstport 14789 nolearning`);
    expect(plain).toContain('ip link set dev vxl0 mtu 1400 addrgenmode none up');
  });

  it('peer commands: append the default FDB entry; on a new peer IP delete the old first; nothing when unchanged', () => {
    const t = { vxlan: 'vxl0' };
    expect(tunnelPeerCommands(t, '10.244.1.7')).toEqual([['bridge', 'fdb', 'append', '00:00:00:00:00:00', 'dev', 'vxl0', 'dst', '10.244.1.7']]);
    expect(tunnelPeerCommands(t, '10.244.2.9', '10.244.1.7')).toEqual([
      ['bridge', 'fdb', 'del', '00:00:00:00:00:00', 'dev', 'vxl0', 'dst', '10.244.1.7'],
      ['bridge', 'fdb', 'append', '00:00:00:00:00:00', 'dev', 'vxl0', 'dst', '10.244.2.9'],
    ]);
    expect(tunnelPeerCommands(t, '10.244.1.7', '10.244.1.7')).toEqual([]);
  });
});

describe('what info shows for a link end on a cluster', () => {
  it('namespace/pod:device instead of a host tap name, with the VXLAN device and VNI', () => {
    expect(podInterfaces(duo(), 'falcon-duo')).toEqual([
      { node: 'violin', index: 0, ifname: 'falcon-duo/violin:nic0', altname: 'duo_violin_vn_sim0', mac: expect.stringMatching(/^02:/), namespace: 'falcon-duo', pod: 'violin', device: 'nic0', vxlan: 'vxl0', vni: vni('duo', 0), link: 0 },
      { node: 'piano', index: 0, ifname: 'falcon-duo/piano:nic0', altname: 'duo_piano_vn_sim0', mac: expect.stringMatching(/^02:/), namespace: 'falcon-duo', pod: 'piano', device: 'nic0', vxlan: 'vxl0', vni: vni('duo', 0), link: 0 },
    ]);
  });

  it('a switch port end has index -1 and its port', () => {
    const ends = k8sLinkEnds(softnpu(), 'falcon-softnpu').get(1)!;
    expect(ends.a).toMatchObject({ node: 'scrimlet', index: -1, port: 2, ifname: 'falcon-softnpu/scrimlet:swp1', mac: '' });
    expect(ends.b).toMatchObject({ node: 'gc2', index: 0, ifname: 'falcon-softnpu/gc2:nic0', mac: '02:00:00:00:02:02' });
  });
});
