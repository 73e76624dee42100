/**
 * Scale: a ring of 10 tiny nodes on this 2-core machine launches, every node pings both
 * neighbours, and destroy leaves nothing.
 */
import { describe, expect, it } from 'vitest';
import { mb } from '../../src/index.js';
import { leftovers, newRunner, tempDir } from './helpers.js';

const N = 10;

describe('ring of 10', () => {
  it('launches, every node pings both neighbours, destroy leaves nothing', async () => {
    const d = newRunner('ring', tempDir('ring'));
    const nodes = Array.from({ length: N }, (_, i) => d.node(`r${i}`, 'tiny', 1, mb(128)));
    // Link i joins r_i (its eth1) to r_{i+1} (its eth0); r0's eth0 is the last link's end.
    for (let i = 0; i < N; i++) d.link(nodes[i]!, nodes[(i + 1) % N]!);
    try {
      await d.launch();
      // Each link is its own /24: 10.50.i.0, with r_i at .1 and r_{i+1} at .2.
      await Promise.all(
        nodes.map(async (_, i) => {
          const prev = (i + N - 1) % N;
          const out = i === 0 ? 'eth0' : 'eth1';
          const inn = i === 0 ? 'eth1' : 'eth0';
          const r = await d.exec(
            `r${i}`,
            `ip addr add 10.50.${i}.1/24 dev ${out} && ip link set ${out} up && ip addr add 10.50.${prev}.2/24 dev ${inn} && ip link set ${inn} up`,
          );
          expect(r.exitCode, r.stderr.toString()).toBe(0);
        }),
      );
      const results = await Promise.all(
        nodes.map(async (_, i) => {
          const prev = (i + N - 1) % N;
          const a = await d.exec(`r${i}`, `ping -c 1 -W 5 10.50.${i}.2`);
          const b = await d.exec(`r${i}`, `ping -c 1 -W 5 10.50.${prev}.1`);
          return { node: `r${i}`, next: a.exitCode, prev: b.exitCode };
        }),
      );
      expect(results).toEqual(nodes.map((_, i) => ({ node: `r${i}`, next: 0, prev: 0 })));
    } finally {
      await d.destroy();
    }
    expect(leftovers(d)).toEqual([]);
  });
});
