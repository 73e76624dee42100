/**
 * The duo example does what it is for: `npm run example -- duo launch` (here through the same
 * script), the nodes ping over their link, destroy. (readme.test.ts runs the README's commands,
 * solo's mounted folder among them.)
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Runner } from '../../src/index.js';
import { leftovers, tempDir } from './helpers.js';

const repo = path.resolve(import.meta.dirname, '../..');

// A falcon dir of the test's own, so a developer's running example is never touched.
const falconDir = path.join(tempDir('examples'), '.falcon');

function example(name: string, ...args: string[]) {
  const r = spawnSync('bash', ['scripts/example.sh', name, '--falcon-dir', falconDir, ...args], { cwd: repo, encoding: 'utf8', timeout: 300_000, env: { ...process.env, FALCON_LOG: 'warn' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('examples', () => {
  it('duo: launch, the nodes ping over their link, destroy', () => {
    try {
      expect(example('duo', 'launch').code).toBe(0);
      expect(example('duo', 'exec', 'violin', 'ip addr add 10.9.0.1/24 dev eth0 && ip link set eth0 up').code).toBe(0);
      expect(example('duo', 'exec', 'piano', 'ip addr add 10.9.0.2/24 dev eth0 && ip link set eth0 up').code).toBe(0);
      const ping = example('duo', 'exec', 'violin', 'ping -c 2 -W 3 10.9.0.2');
      expect(ping.code, ping.stdout + ping.stderr).toBe(0);
      const info = JSON.parse(example('duo', 'info', '--json').stdout);
      expect(info.nodes.map((n: { status: string }) => n.status)).toEqual(['running', 'running']);
    } finally {
      expect(example('duo', 'destroy').code).toBe(0);
    }
    expect(leftovers(new Runner('duo', { falconDir, persistent: true }))).toEqual([]);
  });
});
