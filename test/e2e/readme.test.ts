/**
 * Every command of README.md's console and sh blocks, run exactly as written, in order, each
 * block in one bash (so a `cd` carries to the next line), from the repository's root.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Runner } from '../../src/index.js';
import { leftovers, tempDir } from './helpers.js';

const repo = path.resolve(import.meta.dirname, '../..');
const readme = readFileSync(path.join(repo, 'README.md'), 'utf8');

/**
 * Commands are keyed without their trailing `# comment`, so a reworded comment in README.md
 * changes nothing here.
 */
const bare = (c: string) => c.replace(/\s+#.*$/, '');

/** Commands that cannot run inside the suite, and why. */
const NOT_RUN: Record<string, string> = {
  'npm test':
    'it is the suite itself (CI runs it); running it here would recurse',
  'npx tsx examples/duo.ts web':
    'it serves until ctrl-c; test/e2e/web.test.ts runs it as written against a launched duo, in Chromium',
  'node bin/falcon.js image build debian-12 --as router --packages bird2':
    'test/e2e/recipes.test.ts runs it as written (into a store of its own) and boots the image it makes',
};

/** Standard input for interactive commands. */
const INPUT: Record<string, string> = {
  'npx tsx examples/duo.ts serial piano': '\r\x11',
};

/** What some commands must print (standard output, or standard error for serial). */
const PRINTS: Record<string, RegExp> = {
  "npx tsx examples/duo.ts exec violin 'ip addr show eth0'": /^\d+: eth0: /,
  // The original's form: --falcon-dir after the guest command is Falcon's, and the guest prints its CPU count.
  'npx tsx examples/duo.ts exec violin nproc --falcon-dir examples/.falcon': /^1\n$/,
  'npx tsx examples/duo.ts serial piano': /attached to piano's console; ctrl-q leaves/,
  'npm run example -- solo exec violin cat /opt/cargo-bay/hello.txt': /^hello from the host\n$/m,
  "npx tsx topo.ts exec violin 'ip addr show eth0'": /^\d+: eth0: /,
  'npm run example -- softnpu demo': /^switch radix \(asked over ttyS3\): 2$[\s\S]*3 packets transmitted, 3 packets received/m,
  'npm run example -- softnpu npu scrimlet dump': /ingress\.router\.v4_route\.rtr/,
  // The declared 100 ms each way: no reply comes back sooner than 200 ms.
  'npx tsx examples/lossy.ts demo':
    /20 packets transmitted, \d+ packets received[\s\S]*round-trip min\/avg\/max = (?:[2-9]\d\d|\d{4,})\./,
  'npx tsx examples/lossy.ts impair --show':
    /violin:0 -> piano:0\s+rate 10Mbit\/s[\s\S]*piano:0 -> violin:0\s+delay 20ms/,
  'npx tsx examples/lossy.ts graph': /violin:0→piano:0: rate 10Mbit\/s/,
};

/** The commands of each console block (lines after `$ `) and sh block (every line), in order. */
function readmeBlocks(text: string): string[][] {
  return [...text.matchAll(/^```(console|sh)\n([\s\S]*?)^```/gm)].map(([, kind, body]) =>
    body!
      .split('\n')
      .filter((l) => (kind === 'console' ? l.startsWith('$ ') : l.trim() !== '' && !l.startsWith('#')))
      .map((l) => (kind === 'console' ? l.slice(2) : l)),
  );
}

const lab = '/tmp/falcon-lab';
const examplesState = path.join(repo, 'examples/.falcon');
const started = Date.now();
afterAll(() => {
  // After a failure part way, whatever the README launched is destroyed here.
  for (const [cwd, program, state] of [
    [repo, 'examples/duo.ts', examplesState],
    [repo, 'examples/solo.ts', examplesState],
    [repo, 'examples/softnpu.ts', examplesState],
    [repo, 'examples/sidecar.ts', examplesState],
    [repo, 'examples/lossy.ts', examplesState],
    [lab, 'topo.ts', path.join(lab, '.falcon')],
  ] as const) {
    if (existsSync(state)) spawnSync('npx', ['tsx', program, 'destroy'], { cwd, timeout: 120_000, stdio: 'ignore' });
  }
  rmSync(lab, { recursive: true, force: true });
  console.log(`README commands: ${((Date.now() - started) / 1000).toFixed(1)} s`);
});

describe('README.md', () => {
  it('lists only commands it has, in its not-run list', () => {
    const all = readmeBlocks(readme).flat();
    for (const c of Object.keys({ ...NOT_RUN, ...INPUT, ...PRINTS })) expect(all.map(bare), c).toContain(c);
  });

  it('every command runs as written and succeeds; nothing is left after', async () => {
    // The commands use the examples' own state folder and /tmp/falcon-lab; never run over a user's.
    expect(existsSync(examplesState), `${examplesState} exists: an example topology is running; destroy it first`).toBe(false);
    expect(existsSync(lab), `${lab} exists; remove it first`).toBe(false);
    const io = tempDir('readme');
    const ran: string[] = [];
    for (const [b, block] of readmeBlocks(readme).entries()) {
      const cmds = block.filter((c) => !(bare(c) in NOT_RUN));
      if (!cmds.length) continue;
      const script = cmds
        .map((c, i) => {
          const f = path.join(io, `${b}-${i}`);
          writeFileSync(`${f}.in`, INPUT[bare(c)] ?? '');
          // The newline before `}` keeps a trailing comment from swallowing it.
          return `{ ${c}\n} > ${f}.out 2> ${f}.err < ${f}.in; s=$?; echo $s > ${f}.status; [ $s = 0 ] || exit $s`;
        })
        .join('\n');
      // The user's default log level: what they would see.
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'FALCON_LOG' && k !== 'RUST_LOG'));
      // Asynchronous, so the test worker stays responsive through minutes of VMs.
      await new Promise((resolve) => spawn('bash', ['-c', script], { cwd: repo, env, stdio: 'ignore', timeout: 600_000 }).on('close', resolve));
      cmds.forEach((c, i) => {
        const f = path.join(io, `${b}-${i}`);
        const read = (ext: string) => (existsSync(`${f}.${ext}`) ? readFileSync(`${f}.${ext}`, 'utf8') : '');
        expect(read('status').trim(), `${c}\nstdout: ${read('out')}\nstderr: ${read('err')}`).toBe('0');
        const want = PRINTS[bare(c)];
        if (want) expect(c.includes(' serial ') ? read('err') : read('out'), c).toMatch(want);
        // The example script checks host packages every time, quietly when none are missing.
        if (c.startsWith('npm run example')) expect(read('err'), c).not.toMatch(/host packages/);
        ran.push(c);
      });
    }
    expect(ran.length).toBeGreaterThanOrEqual(10);
    for (const name of ['duo', 'solo', 'softnpu', 'sidecar', 'lossy']) expect(leftovers(new Runner(name, { falconDir: examplesState, persistent: true })), name).toEqual([]);
    expect(leftovers(new Runner('falcon_lab', { falconDir: path.join(lab, '.falcon'), persistent: true }))).toEqual([]);
  });
});
