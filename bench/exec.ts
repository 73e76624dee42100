/**
 * Section `exec`: the round trip of `true` on a running tiny node, through the library
 * (Runner.exec), the CLI (a new process per call) and the serial-login fallback, each beside
 * what it is built on: an agent ping and an exec on one kept-open connection for the library,
 * node and tsx start-up for the CLI.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ExecConnection } from '../src/guest/exec-client.js';
import { execOverSerial } from '../src/guest/serial-exec.js';
import { fmtMs, fmtStats, gb, ratio, spawnTimed, stats, timed, withTimeout, type Ctx, type Row, type Stats } from './lib.js';

export async function execSection(ctx: Ctx): Promise<{ rows: Row[]; data: Record<string, unknown> }> {
  const r = ctx.runner('bench_x');
  r.node('a', 'tiny', 1, gb(1));
  ctx.defer(`destroy ${r.name}`, () => r.destroy());
  ctx.progress('launching a 1-node tiny topology');
  await withTimeout(240_000, `launch of ${r.name}`, ctx.signal, (signal) => r.launch({ signal }));
  const socks = r.paths.sockets('a');
  const nLib = ctx.n(100, 20);
  const nCli = ctx.n(100, 10);
  const nStart = ctx.n(20, 5);
  const nSerial = ctx.n(20, 5);
  const data: Record<string, unknown> = {};
  const check = (code: number | null, what: string) => {
    if (code !== 0) throw new Error(`${what}: \`true\` exited ${code}`);
  };

  // Warm up the guest (page cache of busybox) and the host side.
  for (let i = 0; i < 5; i++) await r.exec('a', 'true', { timeoutMs: 30_000 });

  ctx.progress(`library: ${nLib} x runner.exec('a', 'true')`);
  const lib = await withTimeout(300_000, 'library exec', ctx.signal, async (signal) => {
    const xs: number[] = [];
    for (let i = 0; i < nLib; i++) {
      const t = await timed(() => r.exec('a', 'true', { timeoutMs: 30_000, signal }));
      check(t.value.exitCode, 'runner.exec');
      xs.push(t.ms);
    }
    return xs;
  });

  ctx.progress(`breakdown: connect+handshake, ping and exec on one open connection (${nLib} each)`);
  const parts = await withTimeout(300_000, 'exec breakdown', ctx.signal, async (signal) => {
    const connect: number[] = [];
    for (let i = 0; i < Math.min(nLib, 50); i++) {
      const t = await timed(() => ExecConnection.connect(socks.exec, { timeoutMs: 30_000, signal }));
      t.value.close();
      connect.push(t.ms);
    }
    const conn = await ExecConnection.connect(socks.exec, { timeoutMs: 30_000, signal });
    try {
      const ping: number[] = [];
      const exec: number[] = [];
      for (let i = 0; i < nLib; i++) ping.push((await timed(() => conn.ping({ timeoutMs: 30_000, signal }))).ms);
      for (let i = 0; i < nLib; i++) {
        const t = await timed(() => conn.exec('true', { timeoutMs: 30_000, signal }));
        check(t.value.exitCode, 'exec on an open connection');
        exec.push(t.ms);
      }
      return { connect, ping, exec };
    } finally {
      conn.close();
    }
  });

  const env = { ...process.env, FALCON_IMAGE_DIR: ctx.imageDir, FALCON_LOG: 'warn' };
  const falconJs = path.join(ctx.repo, 'bin', 'falcon.js');
  ctx.progress(`CLI: ${nCli} x node bin/falcon.js --falcon-dir DIR exec a true`);
  const cli = await withTimeout(600_000, 'CLI exec', ctx.signal, async (signal) => {
    const xs: number[] = [];
    for (let i = 0; i < nCli; i++) {
      const t = await spawnTimed(process.execPath, [falconJs, '--falcon-dir', r.paths.dir, 'exec', 'a', 'true'], { cwd: ctx.repo, env, timeoutMs: 60_000, signal });
      xs.push(t.ms);
    }
    return xs;
  });

  ctx.progress(`CLI baselines: node -e 0, tsx start-up, falcon --help (${nStart} each)`);
  const empty = path.join(ctx.workDir, 'empty.ts');
  await fs.writeFile(empty, 'export {};\n');
  const starts = await withTimeout(300_000, 'start-up baselines', ctx.signal, async (signal) => {
    const run = async (args: string[]) => {
      const xs: number[] = [];
      for (let i = 0; i < nStart; i++) xs.push((await spawnTimed(process.execPath, args, { cwd: ctx.repo, env, timeoutMs: 60_000, signal })).ms);
      return xs;
    };
    return {
      node: await run(['-e', '0']),
      tsx: await run(['--import', 'tsx', empty]),
      falconHelp: await run([falconJs, '--help']),
    };
  });

  ctx.progress(`serial-login fallback: ${nSerial} x execOverSerial(console, 'true')`);
  const serial = await withTimeout(600_000, 'serial exec', ctx.signal, async (signal) => {
    const xs: number[] = [];
    for (let i = 0; i < nSerial; i++) {
      const t = await timed(() => execOverSerial(socks.console, 'true', { timeoutMs: 60_000, signal, nodeName: 'a' }));
      check(t.value.exitCode, 'execOverSerial');
      xs.push(t.ms);
    }
    return xs;
  });

  const s = {
    library: stats(lib),
    connect: stats(parts.connect),
    ping: stats(parts.ping),
    openExec: stats(parts.exec),
    cli: stats(cli),
    node: stats(starts.node),
    tsx: stats(starts.tsx),
    falconHelp: stats(starts.falconHelp),
    serial: stats(serial),
  };
  Object.assign(data, { stats: s, samples: { lib, ...parts, cli, ...starts, serial } });
  const p = (x: Stats) => `${fmtMs(x.median)} / p95 ${fmtMs(x.p95)}`;
  const rows: Row[] = [
    {
      section: 'exec',
      measure: `library runner.exec('true'), median / p95 (n=${s.library.n})`,
      falcon: p(s.library),
      baseline: p(s.openExec),
      ratio: ratio(s.library.median, s.openExec.median),
      note: `baseline: exec on one kept-open agent connection; connect+handshake alone ${fmtStats(s.connect)}, agent ping ${fmtStats(s.ping)}`,
    },
    {
      section: 'exec',
      measure: `CLI \`falcon --falcon-dir D exec a true\`, median / p95 (n=${s.cli.n})`,
      falcon: p(s.cli),
      baseline: p(s.falconHelp),
      ratio: ratio(s.cli.median, s.falconHelp.median),
      note: `baseline: \`falcon --help\` (node + tsx + loading the CLI's modules); bare \`node -e 0\` ${fmtMs(s.node.median)}, \`node --import tsx empty.ts\` ${fmtMs(s.tsx.median)}`,
    },
    {
      section: 'exec',
      measure: `serial-login fallback execOverSerial('true'), median / p95 (n=${s.serial.n})`,
      falcon: p(s.serial),
      baseline: p(s.library),
      ratio: ratio(s.serial.median, s.library.median),
      note: 'baseline: the agent exec (runner.exec) on the same node',
    },
  ];
  return { rows, data };
}
