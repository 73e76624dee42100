/**
 * docs/p4.md's worked example runs as written: every command of its console block, in order,
 * from the repository, each exiting 0 and printing what the page says; nothing is left after.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Runner } from '../../src/index.js';
import { leftovers } from './helpers.js';

const repo = path.resolve(__dirname, '../..');
const state = path.join(repo, 'examples/.falcon');

/** What the page says each command prints. */
const PRINTS: Record<string, RegExp> = {
  'node bin/falcon.js p4 check examples/p4/router.p4': /^examples\/p4\/router\.p4: ok, 2 tables$/m,
  'node bin/falcon.js p4 tables examples/p4/router.p4': /ingress\.routes\s+5\s+hdr\.ipv4\.dst: lpm 32 bit[\s\S]*forward\(port: 16 bit @0, next_hop_mac: 48 bit @2\) 8 B[\s\S]*ingress\.port_mac\s+2\s/,
  'npx tsx examples/p4-router.ts demo': /3 packets transmitted, 3 packets received/,
  'npx tsx examples/p4-router.ts npu scrimlet load examples/p4/router.p4': /now running router\.p4; tables: 4 entries kept, 0 dropped/,
};

function run(cmd: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    // The page's own commands, as a user pastes them.
    const child = spawn('bash', ['-c', cmd], { cwd: repo, timeout: 600_000 });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

afterAll(() => {
  if (existsSync(state)) spawnSync('npx', ['tsx', 'examples/p4-router.ts', 'destroy'], { cwd: repo, timeout: 120_000, stdio: 'ignore' });
});

describe('docs/p4.md', () => {
  it("the worked example's commands run as written and print what the page says; destroy leaves nothing", async () => {
    expect(existsSync(state), `${state} exists: an example topology is running; destroy it first`).toBe(false);
    const page = readFileSync(path.join(repo, 'docs/p4.md'), 'utf8');
    const block = /## A worked example[\s\S]*?```console\n([\s\S]*?)```/.exec(page)![1]!;
    const cmds = block.split('\n').filter((l) => l.startsWith('$ ')).map((l) => l.slice(2));
    expect(cmds).toHaveLength(6);
    for (const c of cmds) {
      const r = await run(c);
      expect(r.code, `${c}\nstdout: ${r.out}\nstderr: ${r.err}`).toBe(0);
      const want = PRINTS[c];
      if (want) expect(r.out, c).toMatch(want);
    }
    expect(Object.keys(PRINTS).every((c) => cmds.includes(c))).toBe(true);
    expect(leftovers(new Runner('p4router', { falconDir: state, persistent: true }))).toEqual([]);
  });
});
