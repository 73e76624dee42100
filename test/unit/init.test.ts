import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/index.js';
import { packageRoot, topologyNameFor } from '../../src/cli/init.js';

const made: string[] = [];
const tmp = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'falcon-init-'));
  made.push(d);
  return d;
};
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

async function falcon(argv: string[]) {
  let out = '';
  let err = '';
  const code = await runCli(undefined, [], { argv, stdout: (s) => (out += s.toString()), stderr: (s) => (err += s) });
  return { code, out, err };
}

describe('falcon init', () => {
  it('writes a module project whose topo.ts is a duo named after the folder', async () => {
    const dir = path.join(tmp(), 'my-lab');
    const r = await falcon(['init', dir, '--no-install']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(`project ready (topology "my_lab"); next: cd ${dir} && npm install && npx tsx topo.ts launch`);
    const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
    expect(pkg.type).toBe('module');
    expect(pkg.dependencies.falcon).toBe(`file:${packageRoot}`);
    expect(pkg.dependencies.tsx).toMatch(/^\^4/);
    expect(JSON.parse(readFileSync(path.join(dir, 'tsconfig.json'), 'utf8')).compilerOptions.module).toBe('NodeNext');
    const topo = readFileSync(path.join(dir, 'topo.ts'), 'utf8');
    expect(topo).toContain("from 'falcon'");
    expect(topo).toContain("new Runner('my_lab')");
    expect(topo).toMatch(/d\.link\(violin, piano\)/);
  });

  it('takes the topology name and the falcon spec as options', async () => {
    const dir = tmp();
    const r = await falcon(['init', dir, '--no-install', '--name', 'bench1', '--falcon-spec', 'file:/x/falcon-0.1.0.tgz']);
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).dependencies.falcon).toBe('file:/x/falcon-0.1.0.tgz');
    expect(readFileSync(path.join(dir, 'topo.ts'), 'utf8')).toContain("new Runner('bench1')");
    const bad = await falcon(['init', path.join(dir, 'sub'), '--no-install', '--name', '9lives']);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/falcon init --name: topology name "9lives" is invalid/);
  });

  it('refuses a folder that has files, naming them, and writes nothing', async () => {
    const dir = tmp();
    mkdirSync(path.join(dir, 'src'));
    writeFileSync(path.join(dir, 'notes.txt'), 'mine');
    const r = await falcon(['init', dir, '--no-install']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(new RegExp(`^error: falcon init: ${dir} is not empty \\(it has notes.txt, src\\); choose an empty or new folder`));
    expect(() => readFileSync(path.join(dir, 'package.json'))).toThrow(/ENOENT/);
  });

  it('derives valid topology names from folder names', () => {
    expect(topologyNameFor('/a/lab')).toBe('lab');
    expect(topologyNameFor('/a/2-nodes.x')).toBe('topo_2_nodes_x');
    expect(topologyNameFor('/a/' + 'x'.repeat(40))).toHaveLength(32);
  });
});
