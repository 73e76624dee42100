/**
 * The topology program as a CLI, run as a user would: launch, exec exit statuses, info --json,
 * serial through a real pseudo-terminal (tmux), a damaged topology.json, destroy.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Runner } from '../../src/index.js';
import { retry } from '../../src/util/retry.js';
import { leftovers, tempDir } from './helpers.js';

const repo = path.resolve(import.meta.dirname, '../..');
const fixture = path.join(repo, 'test/e2e/fixtures/topo.ts');
const dir = tempDir('cli');
const falconDir = path.join(dir, '.falcon');
const env = { ...process.env, FALCON_TEST_TOPO: 'clitest', FALCON_LOG: 'warn' };

/** Run the topology program; its exit code and output. */
function topo(...args: string[]) {
  return topoWithInput(undefined, ...args);
}

/** Run the topology program as a user types it, through npx tsx, with no --falcon-dir put in front. */
function npxTopo(...args: string[]) {
  const r = spawnSync('npx', ['tsx', fixture, ...args], { cwd: repo, env, encoding: 'utf8', timeout: 240_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function topoWithInput(input: string | undefined, ...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', fixture, '--falcon-dir', falconDir, ...args], {
    cwd: repo,
    env,
    input,
    encoding: 'utf8',
    timeout: 240_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const session = `falcon-cli-e2e-${process.pid}`;
const tmux = (...args: string[]) => execFileSync('tmux', args, { encoding: 'utf8', timeout: 10_000 });
const pane = () => tmux('capture-pane', '-p', '-J', '-t', session, '-S', '-200');
const paneShows = (re: RegExp, what: string) =>
  retry({ what, deadlineMs: 30_000, delayMs: 200 }, async () => {
    const text = pane();
    if (!re.test(text)) throw new Error(`the terminal does not show ${what}; it shows:\n${text.trimEnd()}`);
    return text;
  });

describe('topology CLI end to end', () => {
  beforeAll(() => {
    // As the original takes it: the falcon dir after the subcommand, through npx tsx.
    const r = spawnSync('npx', ['tsx', fixture, 'launch', '--falcon-dir', falconDir], { cwd: repo, env, encoding: 'utf8', timeout: 240_000 });
    expect(r.status, r.stderr).toBe(0);
    tmux('new-session', '-d', '-s', session, '-x', '160', '-y', '40', 'bash', '--norc', '--noprofile');
    tmux('send-keys', '-t', session, '-l', `cd ${repo}; export FALCON_TEST_TOPO=clitest PS1='host$ '; clear`);
    tmux('send-keys', '-t', session, 'Enter');
  });
  afterAll(async () => {
    try {
      tmux('kill-session', '-t', session);
    } catch {
      /* already gone */
    }
    const r = topo('destroy');
    expect(r.code, r.stderr).toBe(0);
    const probe = new Runner('clitest', { falconDir, persistent: true });
    expect(leftovers(probe)).toEqual([]);
  });

  it('exec exits with the guest command status and keeps stdout and stderr apart', () => {
    const ok = topo('exec', 'n0', 'echo out; echo err >&2');
    expect(ok).toMatchObject({ code: 0, stdout: 'out\n', stderr: 'err\n' });
    expect(topo('exec', 'n0', 'exit 42').code).toBe(42);
    expect(topo('exec', 'n0', 'false').code).toBe(1);
    // Options after the node belong to the guest command.
    expect(topo('exec', 'n0', 'ls', '-d', '/').stdout).toBe('/\n');
    // Standard input goes to the guest only with -i.
    expect(topoWithInput('piped text\n', 'exec', '-i', 'n0', 'tr a-z A-Z').stdout).toBe('PIPED TEXT\n');
    expect(topoWithInput('ignored\n', 'exec', 'n0', 'cat').stdout).toBe('');
  });

  it('exec takes Falcon\'s options after the guest command, as the original does, and leaves the guest its own', () => {
    // Without the trailing --falcon-dir the state would be looked for beside the fixture, where there is none.
    expect(npxTopo('exec', 'n0', 'nproc', '--falcon-dir', falconDir)).toMatchObject({ code: 0, stdout: '1\n' });
    // After "--" every word is the guest's. The words reach the guest's /bin/sh joined with spaces, so the script carries its quotes.
    expect(npxTopo('exec', '--falcon-dir', falconDir, 'n0', '--', 'sh', '-c', `'echo "$@"'`, 'x', '--falcon-dir', 'y')).toMatchObject({ code: 0, stdout: '--falcon-dir y\n' });
    expect(npxTopo('exec', 'n0', 'echo', 'in', 'time', '-t', '5', '--falcon-dir', falconDir)).toMatchObject({ code: 0, stdout: 'in time\n' });
    const slow = npxTopo('exec', 'n0', 'sleep', '30', '-t', '1', '--falcon-dir', falconDir);
    expect(slow.code).toBe(1);
    expect(slow.stderr).toMatch(/^error: Command timed out after 1000 ms/);
    expect(npxTopo('exec', 'n0', 'ls', '-l', '/', '--falcon-dir', falconDir).stdout).toMatch(/^d[rwx-]{9}.* proc$/m);
  });

  it('the generic falcon CLI takes --falcon-dir after the guest command too', () => {
    const r = spawnSync(process.execPath, [path.join(repo, 'bin/falcon.js'), 'exec', 'n0', 'nproc', '--falcon-dir', falconDir], { cwd: repo, env, encoding: 'utf8', timeout: 240_000 });
    expect({ code: r.status, stdout: r.stdout, stderr: r.stderr }).toMatchObject({ code: 0, stdout: '1\n', stderr: '' });
  });

  it('exec --dump shows the guest\'s output as it arrives and exits with its status', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, 'exec', 'n0', 'echo early; sleep 4; echo late >&2; exit 3', '--dump', '--falcon-dir', falconDir], { cwd: repo, env });
    const t0 = Date.now();
    let stdout = '';
    let stderr = '';
    let earlyAt = 0;
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
      if (!earlyAt && stdout.includes('early')) earlyAt = Date.now() - t0;
    });
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    const endAt = Date.now() - t0;
    expect({ code, stdout, stderr }).toEqual({ code: 3, stdout: 'early\n', stderr: 'late\n' });
    // The guest sleeps 4 s between its two lines: the first was shown before that.
    expect(endAt - earlyAt, `early at ${earlyAt} ms, exit at ${endAt} ms`).toBeGreaterThan(3000);
  });

  it('info --json shows the running node', () => {
    const info = JSON.parse(topo('info', '--json').stdout);
    expect(info.nodes[0]).toMatchObject({ name: 'n0', status: 'running', image: 'tiny', memoryMiB: 256 });
  });

  it('exec -t refuses a timeout that is not a number of seconds', () => {
    const r = topo('exec', '-t', 'soon', 'n0', 'true');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: exec --timeout takes a number of seconds \(0 or more, e.g. 30 or 2.5\), not "soon"/);
  });

  it('serial attaches through a pseudo-terminal, ctrl-q leaves, and it works again', async () => {
    const cmd = `node --import tsx ${fixture} --falcon-dir ${falconDir} serial n0`;
    for (const round of [1, 2]) {
      tmux('send-keys', '-t', session, '-l', cmd);
      tmux('send-keys', '-t', session, 'Enter');
      await paneShows(/attached to n0's console/, `the attach message (round ${round})`);
      tmux('send-keys', '-t', session, 'Enter');
      tmux('send-keys', '-t', session, '-l', `echo round-${round}-$((6*7))`);
      tmux('send-keys', '-t', session, 'Enter');
      await paneShows(new RegExp(`round-${round}-42`), `the command's output (round ${round})`);
      tmux('send-keys', '-t', session, 'C-q');
      tmux('send-keys', '-t', session, '-l', `echo back-$((${round}+100))`);
      tmux('send-keys', '-t', session, 'Enter');
      await paneShows(new RegExp(`back-${round + 100}`), `the host shell again (round ${round})`);
      tmux('send-keys', '-t', session, '-l', 'clear');
      tmux('send-keys', '-t', session, 'Enter');
    }
  });

  it('serial says clearly when the node is not running', () => {
    expect(topo('hyperstop', 'n0').code).toBe(0);
    const r = topo('serial', 'n0');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/node "?n0"? is not running/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(topo('hyperstart', 'n0').code).toBe(0);
    expect(topo('exec', 'n0', 'echo up').stdout).toBe('up\n');
  });

  it('a damaged topology.json gives a clear error, not a crash', () => {
    const file = path.join(falconDir, 'topology.json');
    const good = execFileSync('cat', [file], { encoding: 'utf8' });
    try {
      writeFileSync(file, good.slice(0, good.length / 2));
      const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(repo, 'bin/falcon.js'), '--falcon-dir', falconDir, 'exec', 'n0', 'true'], {
        cwd: repo,
        encoding: 'utf8',
        env,
      });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/topology.json is not valid JSON .*truncated/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    } finally {
      writeFileSync(file, good);
    }
  });
});
