import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Runner, gb, runCli, type ExtraCommand } from '../../src/index.js';
import { silentLogger } from '../../src/util/log.js';
import { parseSeconds, runCliMode } from '../../src/cli/program.js';
import { joinSplit, optionLength, specOf, splitWords, trailingRunStart, type WordsSpec } from '../../src/cli/argv.js';
import { execCommand } from '../../src/cli/commands/exec.js';
import type { CommandContext } from '../../src/cli/context.js';
import { addGlobalOptions } from '../../src/cli/options.js';
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

/** exec's spec as the CLI builds it: its own options and the global ones. */
function execSpec(): WordsSpec {
  const never = () => {
    throw new Error('no runner in this test');
  };
  const ctx: CommandContext = { runner: never, generic: false, stdout: never, stderr: never, print: never, setExit: never };
  return specOf(addGlobalOptions(execCommand(ctx), false))!;
}

/** What the rule gives for `exec ARGV...`: Falcon's options, the node, the guest command. */
function split(line: string[]) {
  const s = splitWords(line, execSpec());
  return { falcon: s.options.join(' '), node: s.positionals.join(' '), guest: s.words.join(' ') };
}

describe('the trailing-run rule (exec NODE COMMAND...)', () => {
  // The table of docs/reference.md#exec-options-the-trailing-run-rule, row for row.
  it.each([
    [['violin', 'ls', '-l'], '', 'ls -l'],
    [['violin', 'nproc', '--falcon-dir', '/tmp/x'], '--falcon-dir /tmp/x', 'nproc'],
    [['violin', 'nproc', '--falcon-dir=/tmp/x', '--verbose'], '--falcon-dir=/tmp/x --verbose', 'nproc'],
    [['-f', '/tmp/x', 'violin', 'nproc'], '-f /tmp/x', 'nproc'],
    [['violin', '-t', '5', '-i', 'cat'], '-t 5 -i', 'cat'],
    [['violin', 'sleep', '60', '-t', '5'], '-t 5', 'sleep 60'],
    [['violin', 'sleep', '60', '--timeout', '5', '--dump'], '--timeout 5 --dump', 'sleep 60'],
    [['violin', 'ls', '-t'], '', 'ls -t'],
    [['violin', 'sort', '-t', ',', '-k', '2', 'f'], '', 'sort -t , -k 2 f'],
    [['violin', 'ls', '-i'], '', 'ls -i'],
    [['violin', 'grep', '-v', 'x', 'f', '--dump'], '--dump', 'grep -v x f'],
    [['violin', 'cut', '-f', '1', '/etc/passwd'], '', 'cut -f 1 /etc/passwd'],
    [['violin', 'ls', '--falcon-dir', '/x', '-v'], '', 'ls --falcon-dir /x -v'],
    [['violin', '--', 'grep', '-v', '--falcon-dir', 'x', 'f'], '', 'grep -v --falcon-dir x f'],
    [['violin', 'grep', '--', '-v', 'f', '--dump'], '--dump', 'grep -- -v f'],
  ])('exec %j: Falcon reads "%s", the guest runs "%s"', (line, falcon, guest) => {
    expect(split(line)).toEqual({ falcon, node: 'violin', guest });
  });

  it('reads every form of its options before the node and between the node and the command', () => {
    expect(split(['--falcon-dir=/d', '-vv', '-it', '5', 'violin', '--dump', '-t5', 'ls', '-l'])).toEqual({
      falcon: '--falcon-dir=/d -vv -it 5 --dump -t5',
      node: 'violin',
      guest: 'ls -l',
    });
  });

  it('takes in the trailing run only long forms and -t with a number of seconds', () => {
    for (const tail of [['-i'], ['-v'], ['-f', '/d'], ['-t', 'x'], ['-t', '-1'], ['-t5'], ['-vt', '5'], ['--help'], ['--dump=yes'], ['--falcon-dir']])
      expect(split(['violin', 'cmd', ...tail]).guest, tail.join(' ')).toBe(['cmd', ...tail].join(' '));
    expect(split(['violin', 'cmd', '-t', '2.5']).falcon).toBe('-t 2.5');
    expect(split(['violin', 'cmd', '--timeout=soon']).falcon).toBe('--timeout=soon');
  });

  it('takes the longest trailing run that is completely options, and leaves the command a word', () => {
    expect(split(['violin', 'ls', '-l', '--dump', '-t', '3', '--stdin'])).toMatchObject({ falcon: '--dump -t 3 --stdin', guest: 'ls -l' });
    // "x" is not an option, so the run starts after it.
    expect(split(['violin', 'ls', '--dump', 'x', '--verbose'])).toMatchObject({ falcon: '--verbose', guest: 'ls --dump x' });
    // A value that looks like an option is not taken as one: "--falcon-dir --dump" is the guest's "--falcon-dir", then --dump.
    expect(split(['violin', 'ls', '--falcon-dir', '--dump'])).toMatchObject({ falcon: '--dump', guest: 'ls --falcon-dir' });
    expect(trailingRunStart(['--dump', '--verbose'], execSpec().options)).toBe(1);
    expect(trailingRunStart(['--dump'], execSpec().options)).toBe(1);
  });

  it('hands options Falcon does not have before the node to commander, which refuses them', () => {
    expect(split(['--bogus', 'violin', 'ls'])).toEqual({ falcon: '--bogus', node: 'violin', guest: 'ls' });
    expect(split(['violin', '--bogus'])).toEqual({ falcon: '', node: 'violin', guest: '--bogus' });
  });

  it('gives commander the options, then --, then the node and the command', () => {
    expect(joinSplit(splitWords(['violin', 'ls', '-l', '--dump'], execSpec()))).toEqual(['--dump', '--', 'violin', 'ls', '-l']);
    expect(joinSplit(splitWords([], execSpec()))).toEqual(['--']);
  });

  it('knows the short options in any combination, with attached or separate values', () => {
    const opts = execSpec().options;
    expect(optionLength(['-vv', 'x'], 0, opts)).toBe(1);
    expect(optionLength(['-it', '5'], 0, opts)).toBe(2);
    expect(optionLength(['-t5'], 0, opts)).toBe(1);
    expect(optionLength(['-l'], 0, opts)).toBe(0);
    expect(optionLength(['--timeout'], 0, opts)).toBe(1);
  });
});

describe('the trailing-run rule through the CLI', () => {
  /** An extra command that records its words and the falcon dir and log level its runner got. */
  const words = (seen: unknown[], args = '<node> [words...]'): ExtraCommand => ({
    name: 'words',
    description: 'record the words',
    arguments: args,
    action: (runner, a) => void seen.push({ args: a, dir: runner.paths.dir, level: runner.log.level }),
  });

  it('an extra command with variadic words keeps "-l" and reads a trailing --falcon-dir', async () => {
    const dir = tmp('falcon-cli-words-');
    const seen: unknown[] = [];
    for (const argv of [
      ['words', 'violin', 'ls', '-l', '-v', '--falcon-dir', dir],
      ['wor', 'violin', 'ls', '-l', '-v', `--falcon-dir=${dir}`],
      ['-f', dir, 'words', 'violin', 'ls', '-l', '-v'],
      ['words', '--falcon-dir', dir, 'violin', 'ls', '-l', '-v'],
    ]) {
      const r = await cli(duo(), argv, [words(seen)]);
      expect(r.code, `${argv.join(' ')}: ${r.err}`).toBe(0);
    }
    expect(seen).toEqual(Array(4).fill({ args: ['violin', 'ls', '-l', '-v'], dir, level: levelFromEnv() }));
  });

  it('an extra command with variadic words gives them all to the action after --', async () => {
    const seen: { args: string[]; dir: string }[] = [];
    const d = duo();
    const r = await cli(d, ['words', 'violin', '--', '--falcon-dir', '/nonexistent', '--verbose'], [words(seen)]);
    expect(r.code, r.err).toBe(0);
    expect(seen[0]).toMatchObject({ args: ['violin', '--falcon-dir', '/nonexistent', '--verbose'], dir: d.paths.dir });
  });

  it('an extra command without variadic words parses its options anywhere, as before', async () => {
    const dir = tmp('falcon-cli-word-');
    const seen: { args: string[]; dir: string; level: string }[] = [];
    const r = await cli(duo(), ['words', 'violin', '-v', '--falcon-dir', dir, 'x'], [words(seen, '<node> [word]')]);
    expect(r.code, r.err).toBe(0);
    expect(seen).toEqual([{ args: ['violin', 'x'], dir, level: 'debug' }]);
  });

  it('exec reads a trailing --falcon-dir, also in the generic falcon CLI', async () => {
    const dir = tmp('falcon-cli-exec-');
    const own = await cli(duo(), ['exec', 'violin', 'nproc', '--falcon-dir', dir]);
    // The node is looked for in DIR, which has no record of a launch.
    expect(own.err).toContain(`error: node "violin" has not been launched (no state in ${dir})`);
    const generic = await cli(undefined, ['exec', 'violin', 'nproc', '--falcon-dir', path.join(dir, '.falcon')]);
    expect(generic.err).toContain(`${dir}/.falcon/topology.json does not exist`);
  });

  it('exec refuses a trailing --timeout that is not a number of seconds', async () => {
    const r = await cli(duo(), ['exec', 'violin', 'sleep', '1', '--timeout', 'soon']);
    expect(r.code).toBe(1);
    expect(r.err).toContain('error: exec --timeout takes a number of seconds (0 or more, e.g. 30 or 2.5), not "soon"');
  });

  it('takes -f as --falcon-dir before and after the subcommand, but graph keeps -f for --format', async () => {
    const dir = tmp('falcon-cli-f-');
    expect(JSON.parse((await cli(duo(), ['-f', dir, 'info', '--json'])).out).falconDir).toBe(dir);
    expect(JSON.parse((await cli(duo(), ['info', '-f', dir, '--json'])).out).falconDir).toBe(dir);
    expect(JSON.parse((await cli(duo(), ['graph', '-f', 'json'])).out).topology).toBe('duo');
  });

  it('returns a usage error from a subcommand as exit code 2 instead of exiting', async () => {
    const r = await cli(duo(), ['exec', 'violin']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^error: missing required argument 'command'/);
    expect((await cli(duo(), ['npu'])).code).toBe(2);
    expect((await cli(duo(), ['exec', '--help'])).out).toMatch(/^Usage: duo exec \[options\] <node> <command\.\.\.>/);
  });
});

describe("upstream's RunMode and --version", () => {
  it("resolves 'destroy' after a destroy that succeeded, 'unspec' after info and after a failure", async () => {
    const d = duo();
    const quiet = { stdout: () => {}, stderr: () => {} };
    expect(await runCliMode(d, [], { argv: ['destroy'], ...quiet })).toEqual({ code: 0, mode: 'destroy' });
    expect(await runCliMode(d, [], { argv: ['info', '--json'], ...quiet })).toEqual({ code: 0, mode: 'unspec' });
    expect(await runCliMode(d, [], { argv: ['exec', 'violin', 'true'], ...quiet })).toEqual({ code: 1, mode: 'unspec' });
  });

  it('prints the package version for -V and --version', async () => {
    const { version } = JSON.parse(readFileSync(path.join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string };
    for (const flag of ['-V', '--version']) {
      const r = await cli(duo(), [flag]);
      expect(r.code).toBe(0);
      expect(r.out.trim()).toBe(version);
    }
  });
});
