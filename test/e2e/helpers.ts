import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { Runner, type RunnerOptions } from '../../src/index.js';
import { consoleLogger } from '../../src/util/log.js';

const made: string[] = [];
// Tests check that destroy removed what is Falcon's; the folders they made are theirs to remove
// (each test file evaluates this module afresh, so this runs after each file).
afterAll(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A fresh temp folder for a test's falcon dir and files, removed after the test file. */
export function tempDir(prefix: string): string {
  const d = mkdtempSync(path.join(os.tmpdir(), `falcon-e2e-${prefix}-`));
  made.push(d);
  return d;
}

export function newRunner(name: string, dir: string, o: RunnerOptions = {}): Runner {
  return new Runner(name, { falconDir: path.join(dir, '.falcon'), logger: consoleLogger(process.env.FALCON_LOG ? undefined : 'warn'), ...o });
}

/** Everything of a topology left on the host: processes, interfaces, sockets, disks, state. */
export function leftovers(r: Runner): string[] {
  const left: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmd.includes(r.paths.dir + '/')) left.push(`process ${pid}: ${cmd.split('\0').slice(0, 3).join(' ')}`);
    } catch {
      /* gone */
    }
  }
  const links = JSON.parse(execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' })) as { ifname: string; ifalias?: string }[];
  for (const l of links) if (l.ifalias?.includes(`:${r.paths.dir}`)) left.push(`interface ${l.ifname} (${l.ifalias})`);
  if (existsSync(r.paths.socketDir)) left.push(`socket dir ${r.paths.socketDir}`);
  if (existsSync(r.paths.dir)) left.push(`falcon dir ${r.paths.dir}`);
  const disks = path.join(r.store.root, 'topo', r.name);
  const owner = existsSync(path.join(disks, 'owner')) ? readFileSync(path.join(disks, 'owner'), 'utf8').trim() : r.paths.dir;
  if (existsSync(disks) && owner === r.paths.dir) left.push(`disk dir ${disks}: ${readdirSync(disks).join(', ')}`);
  return left;
}
