import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Runner, isFalconError, renderGraph, runCli, topologyGraph, toDot, toMermaid, type TopologyInfo } from '../../src/index.js';
import { createProcessRunner, recordingRunner } from '../../src/host/process.js';
import { silentLogger } from '../../src/util/log.js';

const sock = (n: string) => `/tmp/f/sock/${n}`;
/** What info() returns for a topology with every kind of link (taken from a real info() call). */
const info: TopologyInfo = {
  name: 'gfix',
  falconDir: '/tmp/f',
  nodes: [
    { name: 's1', id: 0, image: 'tiny', cores: 1, memoryMiB: 256, radix: 1, mounts: [], disks: [], devices: [], reservedNics: [], status: 'running', pid: 10 },
    { name: 's2', id: 1, image: 'tiny', cores: 1, memoryMiB: 256, radix: 1, mounts: [], disks: [], devices: [], reservedNics: [], status: 'stopped' },
    { name: 'h1', id: 2, image: 'tiny', cores: 1, memoryMiB: 256, radix: 3, mounts: [], disks: [], devices: [], reservedNics: [], status: 'running', pid: 11 },
    { name: 'h2', id: 3, image: 'debian-12', cores: 2, memoryMiB: 512, radix: 2, mounts: [], disks: [], devices: [], reservedNics: [], status: 'running', pid: 12 },
    { name: 'h_2', id: 4, image: 'tiny', cores: 1, memoryMiB: 256, radix: 0, mounts: [], disks: [], devices: [], reservedNics: [], status: 'not launched' },
    { name: 'sidecar', id: 5, image: 'tiny', cores: 1, memoryMiB: 256, radix: 1, mounts: [], disks: [], devices: [], reservedNics: [], status: 'running', pid: 13 },
    { name: 'driver', id: 6, image: 'tiny', cores: 1, memoryMiB: 256, radix: 2, mounts: [], disks: [], devices: [], reservedNics: [], status: 'running', pid: 14 },
  ],
  links: [
    {
      kind: 'link',
      a: { node: 'h1', index: 0, ifname: 'fn84d2b7b93e0', altname: 'gfix_h1_vn_sim0', mac: '02:83:4b:63:7f:1b' },
      b: { node: 'h2', index: 0, ifname: 'fn54b203957e0', altname: 'gfix_h2_vn_sim0', mac: '02:ad:f4:5b:dc:08' },
    },
    { kind: 'ext', a: { node: 'h1', index: 1, ifname: 'fn84d2b7b93e1', altname: 'gfix_h1_vn_sim1', mac: '02:7b:a2:7e:24:eb' }, hostIfx: 'br-lan.10', exclusive: false },
    {
      kind: 'softnpu',
      a: { node: 's1', index: -1, ifname: '', altname: '', mac: '', port: 1 },
      b: { node: 'h1', index: 2, ifname: '', altname: '', mac: '02:38:6f:85:32:3d', socket: sock('h1.nic2') },
    },
    { kind: 'softnpu', a: { node: 's1', index: -1, ifname: '', altname: '', mac: '', port: 2 }, b: { node: 's2', index: -1, ifname: '', altname: '', mac: '', port: 1 } },
    {
      kind: 'softnpu',
      a: { node: 's2', index: -1, ifname: '', altname: '', mac: '', port: 2 },
      b: { node: 'h2', index: 1, ifname: '', altname: '', mac: '02:a7:9e:cf:cf:44', socket: sock('h2.nic1') },
    },
    {
      kind: 'sidecar',
      a: { node: 'sidecar', index: 0, ifname: '', altname: '', mac: '02:ed:fa:95:a1:82', socket: sock('sidecar.nic0') },
      b: { node: 'driver', index: 0, ifname: '', altname: '', mac: '02:99:c0:25:07:cb', socket: sock('driver.nic0') },
    },
  ],
  interfaces: [],
  switches: [
    sw('s1', 'softnpu', 'sidecar-lite', 'running', ['s1 NIC 0 (CPU, raw)', 'h1 NIC 2', 's2 port 1']),
    sw('s2', 'softnpu', 'sidecar-lite', 'stopped', ['s2 NIC 0 (CPU, raw)', 's1 port 2', 'h2 NIC 1']),
    sw('driver.sidemux', 'sidemux', 'sidemux', 'running', ['sidecar NIC 0 (sidecar)', 'driver NIC 0', 'driver NIC 1']),
  ],
};

function sw(node: string, kind: 'softnpu' | 'sidemux', program: string, status: 'running' | 'stopped', ports: string[]): TopologyInfo['switches'][number] {
  return {
    node,
    kind,
    program,
    cpuPort: 'raw',
    radix: ports.length - 1,
    status,
    ports: ports.map((to, port) => ({ port, to })),
    config: `/tmp/f/${node}.npu.json`,
    log: `/tmp/f/${node}.switch.log`,
    controlSocket: sock(`${node}.npuctl`),
  };
}

const g = topologyGraph(info);
const edge = (from: string, to: string) => g.edges.find((e) => e.from.id === from && e.to.id === to);

describe('topology graph model', () => {
  it('has a node per VM with image, cores, memory and status, a switch per SoftNPU/sidemux, and the extLink host interface', () => {
    expect(g.nodes.map((n) => [n.id, n.kind, n.status])).toEqual([
      ['n_s1', 'node', 'running'],
      ['n_s2', 'node', 'stopped'],
      ['n_h1', 'node', 'running'],
      ['n_h2', 'node', 'running'],
      ['n_h_5f2', 'node', 'not launched'],
      ['n_sidecar', 'node', 'running'],
      ['n_driver', 'node', 'running'],
      ['sw_s1', 'switch', 'running'],
      ['sw_s2', 'switch', 'stopped'],
      ['sw_driver_2esidemux', 'switch', 'running'],
      ['host_br_2dlan_2e10', 'host', 'host'],
    ]);
    expect(g.nodes.find((n) => n.name === 'h2')).toMatchObject({ image: 'debian-12', cores: 2, memoryMiB: 512 });
    expect(g.nodes.find((n) => n.id === 'sw_s1')).toMatchObject({ program: 'sidecar-lite', radix: 2, ports: [{ port: 0, to: 's1 NIC 0 (CPU, raw)' }, { port: 1, to: 'h1 NIC 2' }, { port: 2, to: 's2 port 1' }] });
  });

  it('ids are [A-Za-z0-9_] and distinct, for switch and host interface names with dots and dashes too', () => {
    const ids = g.nodes.map((n) => n.id);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_]+$/);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('has an edge per link with its host interfaces, ports and NICs, plus the CPU port of each SoftNPU switch', () => {
    expect(g.edges.map((e) => [e.kind, e.from.id, e.to.id])).toEqual([
      ['cpu', 'sw_s1', 'n_s1'],
      ['cpu', 'sw_s2', 'n_s2'],
      ['link', 'n_h1', 'n_h2'],
      ['ext', 'n_h1', 'host_br_2dlan_2e10'],
      ['softnpu', 'sw_s1', 'n_h1'],
      ['softnpu', 'sw_s1', 'sw_s2'],
      ['softnpu', 'sw_s2', 'n_h2'],
      ['sidecar', 'n_sidecar', 'sw_driver_2esidemux'],
      ['sidecar', 'sw_driver_2esidemux', 'n_driver'],
    ]);
    expect(edge('n_h1', 'n_h2')).toMatchObject({
      link: 0,
      from: { nic: 0, ifname: 'fn84d2b7b93e0', altname: 'gfix_h1_vn_sim0' },
      to: { nic: 0, ifname: 'fn54b203957e0', altname: 'gfix_h2_vn_sim0' },
    });
    expect(edge('n_h1', 'host_br_2dlan_2e10')).toMatchObject({ link: 1, macvtapMode: 'bridge', from: { ifname: 'fn84d2b7b93e1' } });
    expect(edge('sw_s1', 'sw_s2')).toMatchObject({ link: 3, from: { port: 2 }, to: { port: 1 } });
    expect(edge('sw_s1', 'n_h1')).toMatchObject({ from: { port: 1 }, to: { nic: 2 } });
    expect(edge('sw_driver_2esidemux', 'n_driver')).toMatchObject({ link: 5, radix: 2, from: { port: 1 }, to: { nic: 0 } });
  });

  it('an extLinkExclusive is passthru', () => {
    const x = topologyGraph({ ...info, links: [{ ...info.links[1]!, exclusive: true }] });
    expect(x.edges.find((e) => e.kind === 'ext')?.macvtapMode).toBe('passthru');
  });

  it('a switch of a VM never launched is "not launched"; labels from the hook go on the link\'s edges', () => {
    const x = topologyGraph(
      { ...info, nodes: info.nodes.map((n) => ({ ...n, status: 'not launched' as const, pid: undefined })), switches: info.switches.map((s) => ({ ...s, status: 'stopped' as const })) },
      { linkLabels: (l, i) => (i === 0 ? [`delay 20ms`] : l.kind === 'sidecar' ? ['loss 1%'] : undefined) },
    );
    expect(x.nodes.filter((n) => n.kind === 'switch').map((n) => n.status)).toEqual(['not launched', 'not launched', 'not launched']);
    expect(x.edges.filter((e) => e.labels.length).map((e) => [e.kind, e.labels])).toEqual([
      ['link', ['delay 20ms']],
      ['sidecar', ['loss 1%']],
      ['sidecar', ['loss 1%']],
    ]);
    expect(toMermaid(x)).toContain('|"h1 NIC 0: fn84d2b7b93e0 (gfix_h1_vn_sim0)<br>h2 NIC 0: fn54b203957e0 (gfix_h2_vn_sim0)<br>delay 20ms"|');
  });

  it('by default labels an impaired link with its impairment, in mermaid and dot alike', () => {
    const impaired = { ...info, links: info.links.map((l, i) => (i === 0 ? { ...l, impairment: { ab: { delayMs: 100, lossPct: 10 }, ba: { delayMs: 100, lossPct: 10 } } } : l)) };
    const x = topologyGraph(impaired);
    expect(x.edges.filter((e) => e.labels.length).map((e) => [e.kind, e.labels])).toEqual([['link', ['delay 100ms, loss 10%']]]);
    expect(toMermaid(x)).toContain('h2 NIC 0: fn54b203957e0 (gfix_h2_vn_sim0)<br>delay 100ms, loss 10%"|');
    expect(toDot(x)).toContain('delay 100ms, loss 10%');
  });
});

describe('mermaid', () => {
  const m = toMermaid(g);
  const lines = m.trimEnd().split('\n');

  it('is a flowchart LR whose node and edge lines use sanitized ids and quoted labels', () => {
    expect(lines[0]).toBe('flowchart LR');
    expect(lines).toContain('  n_h2["h2<br>debian-12 · 2 cores · 512 MiB<br>running"]');
    expect(lines).toContain('  sw_s1{{"s1<br>sidecar-lite switch · radix 2<br>running"}}');
    expect(lines).toContain('  host_br_2dlan_2e10[/"host br-lan.10"/]');
    expect(lines).toContain('  n_h1 ---|"h1 NIC 0: fn84d2b7b93e0 (gfix_h1_vn_sim0)<br>h2 NIC 0: fn54b203957e0 (gfix_h2_vn_sim0)"| n_h2');
    expect(lines).toContain('  n_h1 ---|"h1 NIC 1: fn84d2b7b93e1 (gfix_h1_vn_sim1)<br>macvtap bridge on br-lan.10"| host_br_2dlan_2e10');
    expect(lines).toContain('  sw_s1 ---|"s1 port 2<br>s2 port 1"| sw_s2');
    expect(lines).toContain('  sw_s1 -.-|"s1 port 0 (CPU)"| n_s1');
    expect(lines).toContain('  sw_driver_2esidemux ---|"driver.sidemux ports 1-2<br>driver NICs 0-1<br>sidemux radix 2"| n_driver');
    expect(lines).toContain('  class n_h_5f2 notlaunched');
    // Every line after the header is a node, an edge, a classDef or a class line; ids never carry '-' or '.'.
    for (const l of lines.slice(1)) expect(l).toMatch(/^ {2}([A-Za-z0-9_]+(\[|\{\{|\[\/| -)|classDef |class [A-Za-z0-9_,]+ \w+$)/);
  });

  it('escapes quotes and angle brackets in labels', () => {
    const x = toMermaid(topologyGraph({ ...info, nodes: [{ ...info.nodes[0]!, image: 'a"<b>' }], links: [], switches: [] }));
    expect(x).toContain('n_s1["s1<br>a#quot;#lt;b#gt; · 1 core · 256 MiB<br>running"]');
  });
});

describe('dot', () => {
  const d = toDot(g);

  it('is an undirected graph with a quoted node statement per node and an edge per link end pair', () => {
    expect(d.startsWith('graph "gfix" {\n  rankdir=LR;\n')).toBe(true);
    expect(d.trimEnd().endsWith('}')).toBe(true);
    expect(d).toContain('  "n_h2" [shape=box, style="filled,rounded", fillcolor="#d9f2d9", label="h2\\ndebian-12 · 2 cores · 512 MiB\\nrunning"];');
    expect(d).toContain('  "n_h1" -- "n_h2" [label="h1 NIC 0: fn84d2b7b93e0 (gfix_h1_vn_sim0)\\nh2 NIC 0: fn54b203957e0 (gfix_h2_vn_sim0)"];');
    expect(d).toContain('  "sw_s1" -- "n_s1" [label="s1 port 0 (CPU)", style=dashed];');
    expect(d.match(/ -- /g)).toHaveLength(g.edges.length);
  });

  const hasDot = existsSync('/usr/bin/dot') || existsSync('/usr/local/bin/dot');
  it.skipIf(!hasDot)('parses in Graphviz: dot -Tsvg draws every node name (skipped: Graphviz dot is not installed)', () => {
    const svg = execFileSync('dot', ['-Tsvg'], { input: toDot(topologyGraph({ ...info, name: 'we"ird\\name' })), encoding: 'utf8', timeout: 30_000 });
    expect(svg).toContain('<svg');
    const text = svg.replace(/&#(\d+);/g, (_m, c: string) => String.fromCharCode(Number(c)));
    for (const n of ['h2', 'driver.sidemux', 'host br-lan.10', 's1 port 0 (CPU)']) expect(text).toContain(`>${n}<`);
  });
});

describe('json, svg and the CLI', () => {
  it('json is { topology, nodes, edges } and round-trips to the model', async () => {
    const j = JSON.parse(await renderGraph(info, 'json')) as Record<string, unknown>;
    expect(Object.keys(j)).toEqual(['topology', 'nodes', 'edges']);
    expect(j).toEqual(JSON.parse(JSON.stringify(g)));
  });

  it('svg runs dot -Tsvg through the process runner, and says to run falcon setup when dot is not on PATH', async () => {
    const rec = recordingRunner(() => ({ stdout: '<svg/>' }));
    expect(await renderGraph(info, 'svg', { proc: rec })).toBe('<svg/>');
    expect(rec.calls).toEqual([{ command: 'dot', args: ['-Tsvg'] }]);
    const path0 = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      const e = await renderGraph(info, 'svg', { proc: createProcessRunner() }).catch((x: unknown) => x);
      expect(isFalconError(e) && e.code).toBe('GRAPHVIZ_MISSING');
      expect((e as Error).message).toMatch(/falcon setup/);
    } finally {
      process.env.PATH = path0;
    }
  });

  it('$topo graph prints mermaid by default, writes --format json to -o FILE, and refuses an unknown format', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'falcon-graph-'));
    try {
      const r = new Runner('graphcli', { falconDir: path.join(dir, '.falcon'), logger: silentLogger, imageDir: path.join(dir, 'images') });
      r.link(r.node('a_1', 'tiny', 1, 256), r.node('b', 'tiny', 1, 256));
      const cli = async (argv: string[]) => {
        let out = '';
        let err = '';
        const code = await runCli(r, [], { argv, stdout: (s) => (out += s.toString()), stderr: (s) => (err += s) });
        return { code, out, err };
      };
      const m = await cli(['graph']);
      expect(m.code).toBe(0);
      expect(m.out).toMatch(/^flowchart LR\n {2}n_a_5f1\["a_1<br>tiny · 1 core · 256 MiB<br>not launched"\]\n/);
      const file = path.join(dir, 'g.json');
      expect((await cli(['graph', '--format', 'json', '-o', file])).code).toBe(0);
      const j = JSON.parse(readFileSync(file, 'utf8')) as { nodes: { name: string; status: string }[]; edges: { kind: string; from: { ifname: string } }[] };
      expect(j.nodes.map((n) => [n.name, n.status])).toEqual([['a_1', 'not launched'], ['b', 'not launched']]);
      expect(j.edges.map((e) => e.kind)).toEqual(['link']);
      expect(j.edges[0]!.from.ifname).toBe((await r.info()).links[0]!.a.ifname);
      const bad = await cli(['graph', '--format', 'png']);
      expect(bad.code).not.toBe(0);
      expect(bad.err).toContain('graph --format takes mermaid, dot, svg, json, not "png"');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('disks and raw devices', () => {
  /** What info() will return for a sled with disks (the lead adds `disks` and `devices` to NodeInfo). */
  const sledInfo = {
    ...info,
    nodes: [
      {
        ...info.nodes[3]!,
        disks: [
          { name: 'disk0', sizeGiB: 10, bus: 'nvme' as const, serial: 'u2-0', path: '/img/topo/gfix/h2.disk0.qcow2' },
          { name: 'scratch', sizeGiB: 2, bus: 'virtio' as const, serial: 'h2-scratch', path: '/img/topo/gfix/h2.scratch.qcow2' },
          { name: 'raw', sizeGiB: 1, bus: 'none' as const, serial: 'h2-raw', path: '/img/topo/gfix/h2.raw.qcow2' },
        ],
        devices: [
          { driver: 'nvme', props: { serial: 'u2-7', drive: 'disk-raw' } },
          { driver: 'pvpanic', props: {} },
        ],
      },
      ...info.nodes.filter((n) => n.name !== 'h2'),
    ],
  } as TopologyInfo;
  const sg = topologyGraph(sledInfo);

  it("lists a node's disks and devices in the graph data and its JSON, without paths", async () => {
    expect(sg.nodes[0]).toMatchObject({
      name: 'h2',
      disks: [
        { name: 'disk0', bus: 'nvme', sizeGiB: 10, serial: 'u2-0' },
        { name: 'scratch', bus: 'virtio', sizeGiB: 2, serial: 'h2-scratch' },
        { name: 'raw', bus: 'none', sizeGiB: 1, serial: 'h2-raw' },
      ],
      devices: [{ driver: 'nvme', props: { serial: 'u2-7', drive: 'disk-raw' } }, { driver: 'pvpanic', props: {} }],
    });
    const j = JSON.parse(await renderGraph(sledInfo, 'json')) as { nodes: { name: string; disks?: unknown[] }[] };
    expect(j.nodes[0]!.disks).toHaveLength(3);
    expect(JSON.stringify(j)).not.toContain('qcow2');
    // Nodes without them carry no empty lists.
    expect(Object.keys(g.nodes[0]!)).not.toContain('disks');
    expect(Object.keys(g.nodes[0]!)).not.toContain('devices');
  });

  it('draws them as lines of the node label in mermaid and dot', () => {
    expect(toMermaid(sg)).toContain(
      '  n_h2["h2<br>debian-12 · 2 cores · 512 MiB<br>disk0: NVMe 10 GiB, serial u2-0<br>scratch: virtio 2 GiB, serial h2-scratch<br>raw: 1 GiB, attached by a device<br>device nvme (serial=u2-7, drive=disk-raw)<br>device pvpanic<br>running"]',
    );
    expect(toDot(sg)).toContain(
      'label="h2\\ndebian-12 · 2 cores · 512 MiB\\ndisk0: NVMe 10 GiB, serial u2-0\\nscratch: virtio 2 GiB, serial h2-scratch\\nraw: 1 GiB, attached by a device\\ndevice nvme (serial=u2-7, drive=disk-raw)\\ndevice pvpanic\\nrunning"',
    );
  });

  it('svg shows them too (through dot)', async () => {
    const rec = recordingRunner(() => ({ stdout: '<svg/>' }));
    await renderGraph(sledInfo, 'svg', { proc: rec });
    expect(rec.calls).toHaveLength(1);
    const hasDot = existsSync('/usr/bin/dot') || existsSync('/usr/local/bin/dot');
    if (!hasDot) return;
    const svg = await renderGraph(sledInfo, 'svg');
    expect(svg).toContain('disk0: NVMe 10 GiB, serial u2&#45;0');
  });
});
