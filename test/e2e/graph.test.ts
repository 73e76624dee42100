/**
 * The topology graph of a running topology: live status and the tap names the host has.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mb, renderGraph, runCli, type Runner, type TopologyGraph } from '../../src/index.js';
import { leftovers, newRunner, tempDir } from './helpers.js';

async function cli(d: Runner, argv: string[]): Promise<string> {
  let out = '';
  let err = '';
  const code = await runCli(d, [], { argv: [...argv, '--falcon-dir', d.paths.dir], stdout: (s) => (out += s.toString()), stderr: (s) => (err += s) });
  if (code !== 0) throw new Error(`graph ${argv.join(' ')} exited ${code}: ${err}`);
  return out;
}

describe('graph of a running topology', () => {
  const dir = tempDir('graph');
  let d: Runner;
  beforeAll(async () => {
    d = newRunner('graphe2e', dir);
    d.link(d.node('gr_a', 'tiny', 1, mb(256)), d.node('grb', 'tiny', 1, mb(256)));
    await d.launch();
  });
  afterAll(async () => {
    await d?.destroy();
    expect(leftovers(d)).toEqual([]);
  });

  it('--format json shows both nodes running and the link with the tap names ip link shows', async () => {
    const g = JSON.parse(await cli(d, ['graph', '--format', 'json'])) as TopologyGraph;
    expect(g.nodes.map((n) => [n.name, n.status, n.image, n.cores, n.memoryMiB])).toEqual([
      ['gr_a', 'running', 'tiny', 1, 256],
      ['grb', 'running', 'tiny', 1, 256],
    ]);
    expect(g.edges).toHaveLength(1);
    const e = g.edges[0]!;
    expect([e.kind, e.from.name, e.to.name]).toEqual(['link', 'gr_a', 'grb']);
    for (const end of [e.from, e.to]) {
      const [l] = JSON.parse(execFileSync('ip', ['-j', 'link', 'show', 'dev', end.ifname!], { encoding: 'utf8' })) as { ifname: string; altnames?: string[] }[];
      expect(l!.ifname).toBe(end.ifname);
      expect(l!.altnames).toContain(end.altname);
    }
    expect(e.from.altname).toBe('graphe2e_gr_a_vn_sim0');
  });

  it('after hyperstop of one node, its status is stopped and the other still runs', async () => {
    await d.hyperstop(['grb']);
    const g = JSON.parse(await cli(d, ['graph', '--format', 'json'])) as TopologyGraph;
    expect(g.nodes.map((n) => [n.name, n.status])).toEqual([
      ['gr_a', 'running'],
      ['grb', 'stopped'],
    ]);
    expect(await renderGraph(await d.info(), 'mermaid')).toContain('n_grb["grb<br>tiny · 1 core · 256 MiB<br>stopped"]');
  });

  it('--format svg -o FILE writes an SVG naming both nodes', async () => {
    const file = path.join(dir, 'graphe2e.svg');
    expect(await cli(d, ['graph', '--format', 'svg', '-o', file])).toBe('');
    const svg = readFileSync(file, 'utf8').replace(/&#(\d+);/g, (_m, c: string) => String.fromCharCode(Number(c)));
    expect(svg).toMatch(/<svg[\s>]/);
    for (const n of ['gr_a', 'grb']) expect(svg).toContain(`>${n}<`);
  });
});
