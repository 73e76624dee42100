import { describe, expect, it } from 'vitest';
import {
  Topology,
  TopologyError,
  TopologyFileError,
  TopologyValidationError,
  endpoints,
  gb,
  hostInterfaces,
  mb,
  parseTopologyFile,
  tapName,
} from '../../src/model/index.js';

function problemsOf(t: Topology): string[] {
  try {
    t.validate();
    return [];
  } catch (e) {
    expect(e).toBeInstanceOf(TopologyValidationError);
    return (e as TopologyValidationError).problems.map((p) => `${p.path}: ${p.message}`);
  }
}

describe('topology declaration', () => {
  it('memory helpers are in MiB like the original', () => {
    expect(gb(2)).toBe(2048);
    expect(mb(512)).toBe(512);
  });

  it('assigns node ids and endpoint indexes in declaration order', () => {
    const d = new Topology('trio');
    const a = d.node('a', 'tiny', 1, gb(1));
    const b = d.node('b', 'tiny', 1, gb(1));
    const c = d.node('c', 'tiny', 1, gb(1));
    d.link(a, b);
    d.extLink('eth9', b);
    d.link(b, c);
    expect([a.id, b.id, c.id]).toEqual([0, 1, 2]);
    const eps = endpoints(d.toSpec()).map((e) => `${e.node}${e.index}`);
    expect(eps).toEqual(['a0', 'b0', 'b1', 'b2', 'c0']);
    const bl = endpoints(d.toSpec()).filter((e) => e.node === 'b');
    expect(bl[0]!.peer).toEqual({ node: 'a', index: 0 });
    expect(bl[1]!.peer).toBeUndefined();
    expect(bl[2]!.peer).toEqual({ node: 'c', index: 0 });
  });

  it('rejects a duplicate node when it is added, naming the topology', () => {
    const d = new Topology('duo');
    d.node('violin', 'tiny', 1, gb(1));
    expect(() => d.node('violin', 'tiny', 1, gb(1))).toThrow(TopologyError);
    expect(() => d.node('violin', 'tiny', 1, gb(1))).toThrow(/topology "duo".*already has a node named "violin"/);
  });

  it('rejects links to undeclared nodes or nodes of another topology', () => {
    const d = new Topology('duo');
    const other = new Topology('other').node('x', 'tiny', 1, gb(1));
    const v = d.node('violin', 'tiny', 1, gb(1));
    expect(() => d.link(v, 'ghost')).toThrow(/has no node "ghost"/);
    expect(() => d.link(v, other)).toThrow(/belongs to topology "other"/);
  });

  it('reports every problem at once with its path', () => {
    const d = new Topology('bad');
    const v = d.node('9violin', 'tiny', 0, 10);
    const p = d.node('piano', '', 65, gb(2048));
    d.link(v, v);
    d.link(v, p, { macA: 'zz:00:00:00:00:01', macB: '03:00:00:00:00:01' });
    d.mount('/tmp', 'relative/path', p);
    const problems = problemsOf(d);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^nodes\.9violin: node name "9violin" is invalid; start with a letter/),
        expect.stringMatching(/^nodes\.9violin\.cores: cores is 0; give a whole number from 1 to 64/),
        expect.stringMatching(/^nodes\.9violin\.memoryMiB: memory is 10 MiB/),
        expect.stringMatching(/^nodes\.piano\.image: image name is empty/),
        expect.stringMatching(/^nodes\.piano\.cores: cores is 65/),
        expect.stringMatching(/^nodes\.piano\.memoryMiB: memory is 2097152 MiB/),
        expect.stringMatching(/^links\[0\]: link from node "9violin" to itself/),
        expect.stringMatching(/^links\[1\]\.a\.mac: MAC "zz:00:00:00:00:01" is malformed/),
        expect.stringMatching(/^links\[1\]\.b\.mac: MAC "03:00:00:00:00:01" is a multicast address/),
        expect.stringMatching(/^nodes\.piano\.mounts\[0\]: destination "relative\/path" must be an absolute path/),
      ]),
    );
    expect(problems).toHaveLength(10);
  });

  it('checks names: empty, too long, bad characters', () => {
    expect(problemsOf(new Topology(''))).toEqual([expect.stringMatching(/topology name must be a non-empty string/)]);
    const long = 'a'.repeat(33);
    expect(problemsOf(new Topology(long))).toEqual([expect.stringMatching(/is 33 characters; use at most 32/)]);
    const d = new Topology('ok');
    d.node('has-dash', 'tiny', 1, gb(1));
    expect(problemsOf(d)).toEqual([expect.stringMatching(/"has-dash" is invalid; start with a letter and use only letters, digits and "_"/)]);
  });

  it('refuses a host interface used both exclusively and shared (ExternalNicReused)', () => {
    const d = new Topology('ext');
    const a = d.node('a', 'tiny', 1, gb(1));
    const b = d.node('b', 'tiny', 1, gb(1));
    d.extLink('eth0', a);
    d.extLinkExclusive('eth0', b);
    expect(problemsOf(d)).toEqual([expect.stringMatching(/host interface eth0 is used exclusively and also by .*ExternalNicReused/)]);
    const ok = new Topology('ext2');
    const x = ok.node('x', 'tiny', 1, gb(1));
    const y = ok.node('y', 'tiny', 1, gb(1));
    ok.extLink('eth0', x);
    ok.extLink('eth0', y);
    expect(problemsOf(ok)).toEqual([]);
  });

  it('refuses duplicate MACs and a bad SMBIOS uuid', () => {
    const d = new Topology('macs');
    const a = d.node('a', 'tiny', 1, gb(1));
    const b = d.node('b', 'tiny', 1, gb(1));
    d.link(a, b, { macA: '02:00:00:00:00:01', macB: '02:00:00:00:00:01' });
    d.setSmbiosType1(a, { uuid: 'nope' });
    expect(problemsOf(d)).toEqual([
      expect.stringMatching(/smbiosType1\.uuid: "nope" is not a UUID/),
      expect.stringMatching(/MAC 02:00:00:00:00:01 is also used/),
    ]);
  });

  it('checks the TCG cache size: a whole number of MiB from 16 to 2048', () => {
    const d = new Topology('tb');
    const [a, b, c, e] = ['a', 'b', 'c', 'e'].map((n) => d.node(n, 'tiny', 1, gb(1)));
    d.setTcgCacheSize(a!, 8);
    d.setTcgCacheSize(b!, 4096);
    d.setTcgCacheSize(c!, 32.5);
    d.setTcgCacheSize(e!, 32);
    expect(problemsOf(d)).toEqual([
      expect.stringMatching(/^nodes\.a\.tcgCacheMiB: TCG translation cache is 8 MiB; give a whole number of MiB from 16 to 2048/),
      expect.stringMatching(/^nodes\.b\.tcgCacheMiB: TCG translation cache is 4096 MiB/),
      expect.stringMatching(/^nodes\.c\.tcgCacheMiB: TCG translation cache is 32.5 MiB/),
    ]);
    d.setTcgCacheSize(a!, 16);
    d.setTcgCacheSize(b!, 2048);
    d.setTcgCacheSize(c!, 64);
    expect(problemsOf(d)).toEqual([]);
  });

  it('records every API setting in the spec', () => {
    const d = new Topology('full');
    const a = d.node('a', 'tiny', 2, gb(2));
    const b = d.node('b', 'tiny', 1, mb(512));
    d.reserve(a, 20);
    d.setBacking(b, 'copy');
    d.setVncPort(a, 5901);
    d.setTcgCacheSize(b, 32);
    d.setBootIso(a, '/tmp/x.iso');
    d.doSetup(b, false);
    d.setSmbiosType1(a, { manufacturer: 'Oxide', serial: 'S1' });
    d.softnpuLink(a, b, '02:00:00:00:00:0b', '02:00:00:00:00:0a');
    d.softnpuLinks(a, b);
    d.sidecarLink(a, b, 10);
    d.defaultExtLink(b);
    const s = d.toSpec();
    expect(s.nodes[0]).toMatchObject({ reserveGiB: 20, vncPort: 5901, bootIso: '/tmp/x.iso', smbiosType1: { manufacturer: 'Oxide', serial: 'S1' } });
    expect(s.nodes[1]).toMatchObject({ backing: 'copy', doSetup: false, memoryMiB: 512, tcgCacheMiB: 32 });
    expect(s.nodes[0]!.tcgCacheMiB).toBeUndefined();
    expect(s.links.map((l) => l.kind)).toEqual(['softnpu', 'softnpu', 'sidecar', 'ext']);
    expect(s.links[0]).toMatchObject({ a: { node: 'a', mac: '02:00:00:00:00:0a' }, b: { node: 'b', mac: '02:00:00:00:00:0b' }, bIsNpu: false });
    expect(s.links[3]).toMatchObject({ hostIfx: null, exclusive: false });
    expect(d.findNode('a')?.id).toBe(0);
    expect(d.findNode('zzz')).toBeUndefined();
    expect(() => d.getNode('zzz')).toThrow(/its nodes are: a, b/);
    expect(d.allNodes().map((n) => n.name)).toEqual(['a', 'b']);
  });
});

describe('serialization', () => {
  const d = new Topology('duo');
  const v = d.node('violin', 'tiny', 1, gb(1));
  const p = d.node('piano', 'tiny', 1, gb(1));
  d.link(v, p);
  d.mount('/tmp', '/opt/bay', v);
  d.setTcgCacheSize(p, 32);

  it('round-trips through topology.json', () => {
    const text = JSON.stringify(d.toSpec());
    const back = parseTopologyFile(text, 'topology.json');
    expect(back).toEqual(d.toSpec());
    expect(Topology.fromSpec(back).toSpec()).toEqual(d.toSpec());
    expect(back.nodes[1]!.tcgCacheMiB).toBe(32);
  });

  it('refuses a saved TCG cache size that is not a number, or out of range', () => {
    const bad = d.toSpec() as unknown as { nodes: { tcgCacheMiB: unknown }[] };
    bad.nodes[1]!.tcgCacheMiB = '32M';
    expect(() => parseTopologyFile(JSON.stringify(bad), 't.json')).toThrow(/t.json is damaged:\n {2}- nodes.1.tcgCacheMiB/);
    bad.nodes[1]!.tcgCacheMiB = 1;
    expect(() => parseTopologyFile(JSON.stringify(bad), 't.json')).toThrow(/nodes\.piano\.tcgCacheMiB: TCG translation cache is 1 MiB/);
  });

  it('gives a clear error for a truncated file', () => {
    const text = JSON.stringify(d.toSpec()).slice(0, 40);
    expect(() => parseTopologyFile(text, '/x/.falcon/topology.json')).toThrow(TopologyFileError);
    expect(() => parseTopologyFile(text, '/x/.falcon/topology.json')).toThrow(/\/x\/.falcon\/topology.json is not valid JSON .*truncated/);
  });

  it('gives a clear error for another version or a damaged shape', () => {
    expect(() => parseTopologyFile(JSON.stringify({ ...d.toSpec(), version: 99 }), 't.json')).toThrow(/format version 99, this Falcon reads version 1/);
    const bad = d.toSpec() as unknown as { nodes: { cores: unknown }[] };
    bad.nodes[0]!.cores = 'two';
    expect(() => parseTopologyFile(JSON.stringify(bad), 't.json')).toThrow(/t.json is damaged:\n {2}- nodes.0.cores/);
  });
});

describe('host naming', () => {
  it('fits kernel names in 15 characters and keeps the original scheme as altname', () => {
    const t = new Topology('a_rather_long_topology_name_32ch');
    const n = t.node('a_rather_long_node_name_of_32_ch', 'tiny', 1, gb(1));
    const m = t.node('m', 'tiny', 1, gb(1));
    t.link(n, m);
    const ifs = hostInterfaces(t.toSpec());
    for (const i of ifs) expect(i.ifname.length).toBeLessThanOrEqual(15);
    expect(ifs[0]!.altname).toBe('a_rather_long_topology_name_32ch_a_rather_long_node_name_of_32_ch_vn_sim0');
    expect(ifs[0]!.peerIfname).toBe(ifs[1]!.ifname);
  });

  it('derives names and MACs that are stable and differ between topologies', () => {
    const mk = (name: string) => {
      const t = new Topology(name);
      t.link(t.node('violin', 'tiny', 1, gb(1)), t.node('piano', 'tiny', 1, gb(1)));
      return hostInterfaces(t.toSpec());
    };
    expect(mk('duo')).toEqual(mk('duo'));
    expect(mk('duo')[0]!.altname).toBe('duo_violin_vn_sim0');
    expect(mk('duo')[0]!.ifname).not.toBe(mk('duo2')[0]!.ifname);
    expect(mk('duo')[0]!.mac).not.toBe(mk('duo2')[0]!.mac);
    expect(mk('duo')[0]!.mac).toMatch(/^02(:[0-9a-f]{2}){5}$/);
    expect(tapName('duo', 'violin', 0)).toBe(mk('duo')[0]!.ifname);
  });

  it('uses MACs the topology sets', () => {
    const t = new Topology('m');
    t.link(t.node('a', 'tiny', 1, gb(1)), t.node('b', 'tiny', 1, gb(1)), { macA: '02:aa:00:00:00:01' });
    expect(hostInterfaces(t.toSpec()).map((i) => i.mac)[0]).toBe('02:aa:00:00:00:01');
  });
});
