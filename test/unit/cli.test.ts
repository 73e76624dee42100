import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Runner, gb, runCli, type ExtraCommand } from '../../src/index.js';
import { silentLogger } from '../../src/util/log.js';
import { parseSeconds } from '../../src/cli/program.js';
import { levelFromEnv } from '../../src/util/log.js';

const made: string[] = [];
const tmp = (prefix: string) => {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(d);
  return d;
};
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

function duo(dir = tmp('falcon-cli-')) {
  const d = new Runner('duo', { falconDir: path.join(dir, '.falcon'), logger: silentLogger, imageDir: path.join(dir, 'images') });
  const v = d.node('violin', 'tiny', 1, gb(1));
  const p = d.node('piano', 'tiny', 1, gb(1));
  d.link(v, p);
  return d;
}

async function cli(r: Runner | undefined, argv: string[], extra: ExtraCommand[] = []) {
  let out = '';
  let err = '';
  const code = await runCli(r, extra, { argv, stdout: (s) => (out += s.toString()), stderr: (s) => (err += s) });
  return { code, out, err };
}

describe('topology CLI', () => {
  it('info prints the nodes and links as a table and as JSON', async () => {
    const d = duo();
    const t = await cli(d, ['info']);
    expect(t.code).toBe(0);
    expect(t.out).toMatch(/NODE\s+ID\s+IMAGE\s+CORES\s+MEMORY\s+RADIX/);
    expect(t.out).toMatch(/violin\s+0\s+tiny\s+1\s+1024 MiB\s+1\s+not launched/);
    expect(t.out).toMatch(/duo_violin_vn_sim0/);
    const j = await cli(d, ['info', '--json']);
    const info = JSON.parse(j.out);
    expect(info.nodes.map((n: { name: string }) => n.name)).toEqual(['violin', 'piano']);
    expect(info.links[0].a.altname).toBe('duo_violin_vn_sim0');
    expect(info.links[0].b.altname).toBe('duo_piano_vn_sim0');
  });

  it('accepts unique prefixes of subcommands and refuses ambiguous ones', async () => {
    const d = duo();
    expect((await cli(d, ['inf', '--json'])).code).toBe(0);
    const amb = await cli(d, ['hyper', 'violin']);
    expect(amb.code).toBe(1);
    expect(amb.err).toMatch(/"hyper" is ambiguous: it could be hyperstop, hyperstart/);
  });

  it('fails non-zero with the message on stderr', async () => {
    const d = duo();
    const r = await cli(d, ['exec', 'ghost', 'true']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error: topology "duo" has no node "ghost"; its nodes are: violin, piano/);
    const u = await cli(d, ['frobnicate']);
    expect(u.code).toBe(2);
    expect(u.err).toMatch(/unknown command 'frobnicate'/);
    const nl = await cli(d, ['exec', 'violin', 'true']);
    expect(nl.err).toMatch(/node "violin" has not been launched/);
  });

  it('requires a node or --all for hyperstop/hyperstart', async () => {
    const d = duo();
    expect((await cli(d, ['hyperstop'])).err).toMatch(/hyperstop: name a node, or pass --all/);
    expect((await cli(d, ['hyperstart', 'violin', '--all'])).err).toMatch(/give a node name or --all, not both/);
  });

  it('runs user-defined extra subcommands with their arguments', async () => {
    const d = duo();
    const seen: string[][] = [];
    const r = await cli(d, ['greet', 'violin', 'twice'], [
      { name: 'greet', description: 'say hello', arguments: '<node> [how]', action: (runner, args) => void seen.push([runner.name, ...args]) },
    ]);
    expect(r.code).toBe(0);
    expect(seen).toEqual([['duo', 'violin', 'twice']]);
  });

  it('moves state with --falcon-dir', async () => {
    const d = duo();
    const dir = tmp('falcon-cli-dir-');
    const j = JSON.parse((await cli(d, ['--falcon-dir', dir, 'info', '--json'])).out);
    expect(j.falconDir).toBe(dir);
  });

  /** An extra command that records the falcon dir and log level the CLI gave its runner. */
  const probe = (seen: { dir: string; level: string }[]): ExtraCommand => ({
    name: 'probe',
    description: 'record the options',
    arguments: '[word]',
    action: (runner) => void seen.push({ dir: runner.paths.dir, level: runner.log.level }),
  });

  it('takes --falcon-dir and -v/-vv before or after the subcommand', async () => {
    const dir = tmp('falcon-cli-pos-');
    const seen: { dir: string; level: string }[] = [];
    for (const argv of [
      ['--falcon-dir', dir, '-v', 'probe'],
      ['probe', '--falcon-dir', dir, '-v'],
      ['probe', `--falcon-dir=${dir}`, '-vv'],
      ['-v', 'probe', '-v', '--falcon-dir', dir],
      ['pro', '--falcon-dir', dir],
      ['--falcon-dir', dir, 'pro', '-v'],
    ]) {
      const r = await cli(duo(), argv, [probe(seen)]);
      expect(r.code, `${argv.join(' ')}: ${r.err}`).toBe(0);
    }
    expect(seen.map((s) => s.dir)).toEqual(Array(6).fill(dir));
    expect(seen.map((s) => s.level)).toEqual(['debug', 'debug', 'trace', 'trace', levelFromEnv(), 'debug']);
    const j = JSON.parse((await cli(duo(), ['info', '--json', '--falcon-dir', dir])).out);
    expect(j.falconDir).toBe(dir);
  });

  it('the generic falcon CLI takes --falcon-dir after the subcommand too', async () => {
    const dir = tmp('falcon-none-after-');
    const r = await cli(undefined, ['exec', '--falcon-dir', path.join(dir, '.falcon'), 'violin', 'true']);
    expect(r.err).toMatch(/topology.json does not exist: no topology has been launched/);
    const i = await cli(undefined, ['info', '--falcon-dir', path.join(dir, '.falcon')]);
    expect(i.err).toMatch(new RegExp(`${dir}/.falcon/topology.json does not exist`));
  });

  it('leaves options after the guest command to the guest command', async () => {
    // Parsed as falcon options, -l and --falcon-dir would fail as unknown or move the state.
    for (const argv of [['exec', 'violin', 'ls', '-l'], ['exe', 'violin', 'ls', '--falcon-dir', '/nonexistent', '-v'], ['exec', '-t', '5', 'violin', 'ls', '-t']]) {
      const r = await cli(duo(), argv);
      expect(r.code, argv.join(' ')).toBe(1);
      expect(r.err).toMatch(/^error: node "violin" has not been launched/);
    }
  });

  it('refuses an exec timeout that is not a number of seconds', async () => {
    for (const t of ['soon', '-1', '', 'Infinity', '1e400']) {
      const r = await cli(duo(), ['exec', '-t', t, 'violin', 'true']);
      expect(r.code, t).toBe(1);
      expect(r.err).toContain(`error: exec --timeout takes a number of seconds (0 or more, e.g. 30 or 2.5), not "${t}"`);
    }
    expect(() => parseSeconds('x')('abc')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(parseSeconds('x')('2.5')).toBe(2.5);
  });

  it('the generic falcon CLI explains a missing .falcon directory', async () => {
    const dir = tmp('falcon-none-');
    const r = await cli(undefined, ['--falcon-dir', path.join(dir, '.falcon'), 'exec', 'violin', 'true']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/topology.json does not exist: no topology has been launched/);
  });
});

describe('log level', () => {
  it('reads FALCON_LOG, then RUST_LOG, default info', () => {
    expect(levelFromEnv({})).toBe('info');
    expect(levelFromEnv({ RUST_LOG: 'debug' })).toBe('debug');
    expect(levelFromEnv({ FALCON_LOG: 'warn', RUST_LOG: 'debug' })).toBe('warn');
    expect(levelFromEnv({ RUST_LOG: 'mycrate=trace' })).toBe('info');
  });

  it('refuses a FALCON_LOG that is not a level, naming the variable and the levels', () => {
    expect(() => levelFromEnv({ FALCON_LOG: 'nonsense' })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/^FALCON_LOG=nonsense is not a log level; set it to one of error, warn, info, debug, trace/) }),
    );
  });
});
