import { describe, expect, it } from 'vitest';
import type { TopologyInfo } from '../../src/runner/runner.js';
import { webView } from '../../src/web/view.js';

describe('web view data', () => {
  it('edges carry their taps at the ends, their capture endpoints and the impairment label', () => {
    const end = (node: string, ifname: string, index = 0) => ({ node, index, ifname, altname: `t_${node}_vn_sim${index}`, mac: '02:00:00:00:00:01' });
    const info: TopologyInfo = {
      name: 't',
      falconDir: '/x',
      nodes: ['a', 'b', 'c'].map((name, id) => ({ name, id, image: 'tiny', cores: 1, memoryMiB: 256, radix: 1, mounts: [], disks: [], devices: [], reservedNics: [], status: 'running' as const })),
      links: [
        { kind: 'link', a: end('a', 'tapa'), b: end('b', 'tapb'), impairment: { ab: { lossPct: 5 }, ba: { lossPct: 5 } } },
        { kind: 'link', a: end('b', 'tapb1', 1), b: end('c', 'tapc') },
      ],
      interfaces: [],
      switches: [],
    };
    const v = webView(info);
    expect(v.edges.map((e) => [e.key, e.fromLabel, e.toLabel, e.impairment, e.endpoints.map((x) => x.endpoint)])).toEqual([
      ['e0', 'tapa', 'tapb', 'loss 5%', ['a:0', 'b:0']],
      ['e1', 'tapb1', 'tapc', undefined, ['b:1', 'c:0']],
    ]);
    expect(v.edges[0]!.lines.at(-1)).toBe('loss 5%');
    expect(v.nodes.map((n) => n.lines)).toEqual([
      ['a', 'tiny · 1 core · 256 MiB', 'running'],
      ['b', 'tiny · 1 core · 256 MiB', 'running'],
      ['c', 'tiny · 1 core · 256 MiB', 'running'],
    ]);
  });

  it('an impairment that differs by direction: one label line per direction, as graph draws it', () => {
    const end = (node: string, ifname: string) => ({ node, index: 0, ifname, altname: `t_${node}_vn_sim0`, mac: '02:00:00:00:00:01' });
    const info: TopologyInfo = {
      name: 't',
      falconDir: '/x',
      nodes: ['a', 'b'].map((name, id) => ({ name, id, image: 'tiny', cores: 1, memoryMiB: 256, radix: 1, mounts: [], disks: [], devices: [], reservedNics: [], status: 'running' as const })),
      links: [{ kind: 'link', a: end('a', 'tapa'), b: end('b', 'tapb'), impairment: { ab: { delayMs: 50, jitterMs: 5 }, ba: { rateMbit: 0.5 } } }],
      interfaces: [],
      switches: [],
    };
    const e = webView(info).edges[0]!;
    expect(e.impairment).toBe('a:0→b:0: delay 50ms ±5ms\nb:0→a:0: rate 500kbit/s');
    expect(e.lines.slice(-2)).toEqual(['a:0→b:0: delay 50ms ±5ms', 'b:0→a:0: rate 500kbit/s']);
    info.links[0]!.impairment = { ab: { delayMs: 50 } };
    expect(webView(info).edges[0]!.impairment).toBe('a:0→b:0: delay 50ms');
    info.links[0]!.impairment = undefined;
    expect(webView(info).edges[0]!.impairment).toBeUndefined();
  });

  it('a SoftNPU switch: a node of kind switch with its ports; its links labelled with port numbers, the NIC end capturable', () => {
    const info: TopologyInfo = {
      name: 't',
      falconDir: '/x',
      nodes: [
        { name: 's1', id: 0, image: 'tiny', cores: 1, memoryMiB: 256, radix: 1, mounts: [], disks: [], devices: [], reservedNics: [], status: 'running' },
        { name: 'h1', id: 1, image: 'tiny', cores: 1, memoryMiB: 256, radix: 1, mounts: [], disks: [], devices: [], reservedNics: [], status: 'running' },
      ],
      links: [{ kind: 'softnpu', a: { node: 's1', index: -1, ifname: '', altname: '', mac: '', port: 1 }, b: { node: 'h1', index: 0, ifname: '', altname: '', mac: '02:00:00:00:00:02', socket: '/x/h1.nic0' } }],
      interfaces: [],
      switches: [
        {
          node: 's1', kind: 'softnpu', program: 'sidecar-lite', cpuPort: 'raw', radix: 1, status: 'running',
          ports: [{ port: 0, to: 's1 NIC 0 (CPU, raw)' }, { port: 1, to: 'h1 NIC 0' }],
          config: '/x/s1.npu.json', log: '/x/s1.switch.log', controlSocket: '/x/s1.npuctl',
        },
      ],
    };
    const v = webView(info);
    expect(v.nodes.find((n) => n.kind === 'switch')).toMatchObject({ name: 's1', lines: ['s1', 'sidecar-lite switch · radix 1', 'running'], ports: [{ port: 0 }, { port: 1, to: 'h1 NIC 0' }] });
    expect(v.edges.map((e) => [e.kind, e.fromLabel, e.toLabel, e.endpoints.map((x) => x.endpoint)])).toEqual([
      ['cpu', 'port 0', '', []],
      ['softnpu', 'port 1', 'NIC 0', ['h1:0']],
    ]);
  });
});
