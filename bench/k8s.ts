/**
 * `npm run bench:k8s`: the Kubernetes backend on the two-host test cluster (test/k8s), each
 * figure beside the same thing on the local backend, measured in the same run with the cluster up:
 *
 *   - launch to ready (Runner.launch returning) of a 6-node ring of tiny nodes (1 core,
 *     256 MiB), on the cluster with every other node pinned to the other host (every link
 *     crosses the underlay), against the same ring launched locally; destroy is timed too;
 *   - TCP throughput of busybox nc (zeros from a to b, timed by this process around the
 *     sender's exec) and ping RTT both ways over a link between two tiny nodes: on the cluster
 *     across hosts (a on one host, b on the other), against a local same-host link;
 *   - what the cluster start and the image load (falcon-node + tiny) cost, without a baseline.
 *
 *   npm run bench:k8s                              # 1 round of each (~15-25 min on 2 cores under TCG)
 *   npm run bench:k8s -- --rounds 3 --nc-mib 256   # more rounds; MiB sent per transfer (default 128)
 *
 * The cluster is `falcon-k8s-bench` (replaced when a crashed run left it), stopped at the end;
 * every topology is destroyed at the end, also on a failure or ctrl-c. No thresholds: it prints a
 * table on stdout and writes JSON to bench/results/k8s-<timestamp>.json.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Runner, kubernetes, mb } from '../src/index.js';
import { createProcessRunner } from '../src/host/process.js';
import { ImageStore } from '../src/images/store.js';
import { startCluster, type Cluster } from '../test/k8s/cluster.js';
import { loadFalconImages } from '../test/k8s/falcon-images.js';
import { errorText, fmtMs, ratio, recordingLogger, rmrf, stats, table, timed, transfer, withTimeout, type Row } from './lib.js';

const CLUSTER = 'falcon-k8s-bench';
const PORT = 5201;
const RING = ['r0', 'r1', 'r2', 'r3', 'r4', 'r5'];

const USAGE = `usage: npm run bench:k8s -- [--rounds N] [--link-image debian-12|tiny] [--seconds N] [--nc-mib N] [--verbose]
  --rounds N      launches of each ring and transfers over each link (default 1)
  --link-image I  the link's two nodes: debian-12 (iperf3; the default when the store has it) or tiny (busybox nc)
  --seconds N     iperf3's duration (default 10)
  --guest-mtu N   set the link's guest MTU (e.g. 1450, so VXLAN fits a 1500-byte pod network)
  --nc-mib N      MiB of zeros per nc transfer with tiny (default 128)
  --verbose       print Falcon's own progress lines`;

interface Options {
  rounds: number;
  ncMiB: number;
  seconds: number;
  guestMtu?: number;
  linkImage?: 'debian-12' | 'tiny';
  verbose: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { rounds: 1, ncMiB: 128, seconds: 10, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const num = () => {
      const v = Number(a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i]);
      if (!Number.isInteger(v) || v <= 0) throw new Error(`${a} needs a positive whole number\n${USAGE}`);
      return v;
    };
    if (a.startsWith('--rounds')) o.rounds = num();
    else if (a.startsWith('--nc-mib')) o.ncMiB = num();
    else if (a.startsWith('--seconds')) o.seconds = num();
    else if (a.startsWith('--guest-mtu')) o.guestMtu = num();
    else if (a === '--link-image') {
      const v = argv[++i];
      if (v !== 'debian-12' && v !== 'tiny') throw new Error(`--link-image takes debian-12 or tiny\n${USAGE}`);
      o.linkImage = v;
    }
    else if (a === '--verbose' || a === '-v') o.verbose = true;
    else if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE + '\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}\n${USAGE}`);
  }
  return o;
}


function qemuVersion(): string | undefined {
  try {
    return execFileSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8', timeout: 10_000 }).split('\n')[0]!.trim();
  } catch {
    return undefined;
  }
}

async function sh(r: Runner, node: string, cmd: string, timeoutMs = 60_000, signal?: AbortSignal): Promise<string> {
  const x = await r.exec(node, cmd, { timeoutMs, signal });
  if (x.exitCode !== 0) throw new Error(`on ${node} (${r.name}): \`${cmd}\` exited ${x.exitCode}: ${x.stderr.trim() || x.stdout.trim()}`);
  return x.stdout;
}

/** Average RTT of `ping -c 5` from `from` to `addr`, ms. */
async function pingAvg(r: Runner, from: string, addr: string, signal: AbortSignal): Promise<number> {
  const out = await sh(r, from, `ping -c 5 ${addr}`, 60_000, signal);
  const m = out.match(/min\/avg\/max(?:\/mdev)? = ([\d.]+)\/([\d.]+)\//);
  if (!m) throw new Error(`cannot read the ping summary from ${from}: ${out.slice(-300)}`);
  return Number(m[2]);
}

interface LinkRound {
  round: number;
  bitsPerSecond: number;
  seconds: number;
  rttAbMs: number;
  rttBaMs: number;
}

interface LinkResult {
  backend: 'k8s' | 'local';
  launchMs: number;
  destroyMs?: number;
  /** Median wall time of `true` on a, ms: the exec's own cost, inside every timed transfer. */
  execMs: number;
  hosts?: Record<string, string | undefined>;
  rounds: LinkRound[];
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  const repo = path.resolve(import.meta.dirname, '..');
  const started = Date.now();
  const print = (line: string) => process.stderr.write(`${line}\n`);
  const progress = (msg: string) => print(`[${((Date.now() - started) / 1000).toFixed(0).padStart(5)} s] ${msg}`);

  const ac = new AbortController();
  let interrupted = 0;
  const onSignal = () => {
    if (++interrupted > 1) process.exit(130);
    print('interrupted: stopping and cleaning up (ctrl-c again to leave at once)');
    ac.abort(new Error('interrupted'));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const signal = ac.signal;

  const log = recordingLogger(opts.verbose, print);
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'falcon-bench-k8s-'));
  const host = { cores: os.cpus().length, cpu: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), kernel: os.release(), node: process.version, qemu: qemuVersion(), loadavg: os.loadavg() };
  const rows: Row[] = [];
  const errors: { step: string; error: string }[] = [];
  const data: Record<string, unknown> = { options: opts };
  /** Topologies launched and not destroyed yet: destroyed in the finally. */
  const live = new Set<Runner>();
  let c: Cluster | undefined;
  let stopped: { leftovers: string[]; ms: number } | undefined;

  const fail = (step: string, section: string, e: unknown) => {
    const msg = errorText(e);
    progress(`${step} FAILED: ${msg}`);
    errors.push({ step, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
    rows.push({ section, measure: `${step}: FAILED`, note: msg });
  };
  const destroy = async (r: Runner): Promise<number> => {
    const t = await timed(() => withTimeout(10 * 60_000, `destroy of ${r.name}`, undefined, () => r.destroy()));
    live.delete(r);
    return t.ms;
  };
  const local = (name: string) => new Runner(name, { falconDir: path.join(workDir, name, '.falcon'), logger: log });

  print(`falcon k8s bench: ${opts.rounds} round(s); cluster ${CLUSTER}; work dir ${workDir}`);
  try {
    // ---- the cluster and its images ----------------------------------------------------------
    progress(`starting cluster ${CLUSTER}`);
    const tc = await timed(() => startCluster({ name: CLUSTER, replace: true, log: (l) => progress(`k8s: ${l}`) }));
    c = tc.value;
    const [h1, h2] = c.hosts.map((h) => h.name) as [string, string];
    rows.push({
      section: 'setup',
      measure: `cluster start (${c.hosts.length} hosts, Kubernetes ${c.binaries.version})`,
      falcon: fmtMs(tc.ms),
      note: `packages ${fmtMs(c.timings.packagesMs)}, binaries ${c.binaries.built ? `built in ${c.binaries.buildSeconds} s` : `cached (${fmtMs(c.timings.binariesMs)})`}, start to nodes Ready ${fmtMs(c.timings.startMs)}`,
    });
    data.cluster = { hosts: c.hosts, timings: c.timings, wallMs: tc.ms, binaries: c.binaries };
    if (signal.aborted) throw signal.reason;

    // iperf3 needs debian-12; without it in the store, busybox nc on tiny.
    const hasDebian = await new ImageStore({ runner: createProcessRunner(), log }).get('debian-12').then(() => true, () => false);
    const linkImage = opts.linkImage ?? (hasDebian ? 'debian-12' : 'tiny');
    const images = [...new Set(['tiny', linkImage])];
    progress(`building/exporting and importing the falcon-node and ${images.join(', ')} images`);
    const img = await timed(() => loadFalconImages(c!, images, (l) => progress(`k8s: ${l}`)));
    rows.push({ section: 'setup', measure: `image load (falcon-node + ${images.join(' + ')}, into both hosts)`, falcon: fmtMs(img.ms), note: `refs ${[...img.value.node, ...Object.values(img.value.base)].join(', ')}` });
    data.images = { ...img.value, wallMs: img.ms };
    if (signal.aborted) throw signal.reason;

    // ---- launch of the 6-node ring -------------------------------------------------------------
    const placement = Object.fromEntries(RING.map((n, i) => [n, i % 2 ? h2 : h1]));
    const ring = (r: Runner) => {
      const n = RING.map((name) => r.node(name, 'tiny', 1, mb(256)));
      for (let i = 0; i < n.length; i++) r.link(n[i]!, n[(i + 1) % n.length]!);
      return r;
    };
    const launches: { backend: 'k8s' | 'local'; round: number; launchMs: number; destroyMs: number; hosts?: Record<string, string | undefined> }[] = [];
    try {
      for (let round = 0; round < opts.rounds; round++) {
        for (const backend of ['local', 'k8s'] as const) {
          if (signal.aborted) throw signal.reason;
          const r = ring(
            backend === 'local'
              ? local('bring')
              : new Runner('kring', { falconDir: path.join(workDir, 'kring', '.falcon'), logger: log, backend: kubernetes({ kubeconfig: c.kubeconfig, placement }) }),
          );
          progress(`round ${round + 1}/${opts.rounds}: launching the 6-node tiny ring ${backend === 'local' ? 'locally' : 'on the cluster (r0,r2,r4 on ' + h1 + '; r1,r3,r5 on ' + h2 + ')'}`);
          live.add(r);
          const t = await timed(() => withTimeout(20 * 60_000, `launch of ${r.name}`, signal, (s) => r.launch({ signal: s })));
          let hosts: Record<string, string | undefined> | undefined;
          if (backend === 'k8s') hosts = Object.fromEntries((await r.info()).backend?.pods.map((p) => [p.node, p.host]) ?? []);
          progress(`  ready in ${fmtMs(t.ms)}; destroying`);
          const destroyMs = await destroy(r);
          launches.push({ backend, round, launchMs: t.ms, destroyMs, hosts });
        }
      }
    } catch (e) {
      if (signal.aborted) throw e;
      fail('6-node ring launch', 'launch', e);
      for (const r of [...live]) await destroy(r).catch((d) => progress(`destroy of ${r.name} failed: ${errorText(d)}`));
    }
    data.ringLaunches = launches;
    const of = (b: 'k8s' | 'local', k: 'launchMs' | 'destroyMs') => stats(launches.filter((l) => l.backend === b).map((l) => l[k]));
    // A side that failed shows '-' (its error is a row above); the other's figures stay.
    if (launches.length) {
      const hosts = launches.find((l) => l.hosts)?.hosts;
      const pinnedOk = RING.every((n) => hosts?.[n] === placement[n]);
      for (const k of ['launchMs', 'destroyMs'] as const) {
        const kk = of('k8s', k);
        const ll = of('local', k);
        rows.push({
          section: 'launch',
          measure: `6-node tiny ring (1 core, 256 MiB each): ${k === 'launchMs' ? 'launch to ready' : 'destroy'}, median of ${kk.n === ll.n ? kk.n : `${kk.n}/${ll.n}`}`,
          falcon: fmtMs(kk.median),
          baseline: fmtMs(ll.median),
          ratio: ratio(kk.median, ll.median),
          note:
            k === 'launchMs'
              ? `${hosts ? `pods: ${RING.map((n) => `${n}@${hosts[n] ?? '?'}`).join(' ')}${pinnedOk ? '' : ' (NOT as pinned)'}` : 'k8s: no launch completed'}; local: the same ring on this host`
              : undefined,
        });
      }
    }

    // ---- a link: cross-host on the cluster, same-host locally ------------------------------------
    const bytes = opts.ncMiB * 2 ** 20;
    const links: LinkResult[] = [];
    for (const backend of ['local', 'k8s'] as const) {
      if (signal.aborted) throw signal.reason;
      const r =
        backend === 'local'
          ? local('bduo')
          : new Runner('kduo', { falconDir: path.join(workDir, 'kduo', '.falcon'), logger: log, backend: kubernetes({ kubeconfig: c.kubeconfig, placement: { a: h1, b: h2 } }) });
      const busybox = linkImage === 'tiny';
      const a = r.node('a', linkImage, 1, mb(busybox ? 256 : 1024));
      const b = r.node('b', linkImage, 1, mb(busybox ? 256 : 1024));
      r.link(a, b);
      try {
        progress(`launching the 2-node ${linkImage} link ${backend === 'local' ? 'locally' : `on the cluster (a on ${h1}, b on ${h2})`}`);
        live.add(r);
        const tl = await timed(() => withTimeout(20 * 60_000, `launch of ${r.name}`, signal, (s) => r.launch({ signal: s })));
        const res: LinkResult = { backend, launchMs: tl.ms, execMs: NaN, rounds: [] };
        if (backend === 'k8s') res.hosts = Object.fromEntries((await r.info()).backend?.pods.map((p) => [p.node, p.host]) ?? []);
        const mtu = opts.guestMtu ? ` mtu ${opts.guestMtu}` : '';
        await sh(r, 'a', `ip link set eth0 up${mtu} && ip addr add 10.7.0.1/24 dev eth0`, 60_000, signal);
        await sh(r, 'b', `ip link set eth0 up${mtu} && ip addr add 10.7.0.2/24 dev eth0`, 60_000, signal);
        // Untimed: ARP both ways, and TCG translating the network paths.
        await withTimeout(120_000, 'warm-up ping', signal, async (s) => {
          await sh(r, 'a', 'ping -c 2 -W 5 10.7.0.2', 60_000, s);
          await sh(r, 'b', 'ping -c 2 -W 5 10.7.0.1', 60_000, s);
        });
        const ex: number[] = [];
        for (let i = 0; i < 3; i++) ex.push((await timed(() => sh(r, 'a', 'true', 30_000, signal))).ms);
        res.execMs = stats(ex).median;
        for (let round = 0; round < opts.rounds; round++) {
          progress(`  ${r.name} round ${round + 1}/${opts.rounds}: ping both ways, then ${busybox ? `${opts.ncMiB} MiB through nc` : `iperf3 for ${opts.seconds} s`} a->b`);
          const rttAbMs = await pingAvg(r, 'a', '10.7.0.2', signal);
          const rttBaMs = await pingAvg(r, 'b', '10.7.0.1', signal);
          if (!busybox && round === 0) await sh(r, 'b', `iperf3 -s -D -p ${PORT}`, 30_000, signal);
          const t = await transfer({ signal }, r, { from: 'a', to: 'b', dst: '10.7.0.2', port: PORT, busybox, seconds: opts.seconds, ncBytes: bytes });
          res.rounds.push({ round, bitsPerSecond: t.bps, seconds: t.seconds, rttAbMs, rttBaMs });
          progress(`    ${(t.bps / 1e6).toFixed(1)} Mbit/s (${t.seconds.toFixed(1)} s), RTT a->b ${rttAbMs} ms, b->a ${rttBaMs} ms`);
        }
        progress(`  destroying ${r.name}`);
        res.destroyMs = await destroy(r);
        links.push(res);
      } catch (e) {
        if (signal.aborted) throw e;
        fail(`2-node link on ${backend}`, 'net', e);
        if (live.has(r)) await destroy(r).catch((d) => progress(`destroy of ${r.name} failed: ${errorText(d)}`));
      }
    }
    data.links = links;
    const k = links.find((l) => l.backend === 'k8s');
    const l = links.find((l) => l.backend === 'local');
    if (k || l) {
      const med = (x: LinkResult | undefined, f: (r: LinkRound) => number) => stats(x?.rounds.map(f) ?? []).median;
      const mbit = (x: number) => (Number.isFinite(x) ? `${(x / 1e6).toFixed(1)} Mbit/s` : '-');
      const ms = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)} ms` : '-');
      const n = Math.max(k?.rounds.length ?? 0, l?.rounds.length ?? 0);
      const kb = med(k, (r) => r.bitsPerSecond);
      const lb = med(l, (r) => r.bitsPerSecond);
      rows.push({
        section: 'net',
        measure: `${linkImage} a->b: ${linkImage === 'tiny' ? `busybox nc, ${opts.ncMiB} MiB of zeros, timed around the exec` : `iperf3 TCP, ${opts.seconds} s`}${opts.guestMtu ? `, guest MTU ${opts.guestMtu}` : ''}, median of ${n}`,
        falcon: mbit(kb),
        baseline: mbit(lb),
        ratio: ratio(kb, lb),
        note: `k8s: ${k ? `a@${k.hosts?.a ?? '?'} b@${k.hosts?.b ?? '?'} (cross-host link)` : 'failed'}; local: same-host link; an empty exec costs ${fmtMs(k?.execMs ?? NaN)} (k8s) vs ${fmtMs(l?.execMs ?? NaN)} (local), inside the timing`,
      });
      for (const [dir, f] of [
        ['a->b', (r: LinkRound) => r.rttAbMs],
        ['b->a', (r: LinkRound) => r.rttBaMs],
      ] as const) {
        const kr = med(k, f);
        const lr = med(l, f);
        rows.push({ section: 'net', measure: `${linkImage} ping -c 5 ${dir} (avg), median of ${n}`, falcon: ms(kr), baseline: ms(lr), ratio: ratio(kr, lr) });
      }
      const kl = k?.launchMs ?? NaN;
      const ll = l?.launchMs ?? NaN;
      rows.push({ section: 'net', measure: `2-node ${linkImage} link: launch to ready (1 launch)`, falcon: fmtMs(kl), baseline: fmtMs(ll), ratio: ratio(kl, ll) });
    }
  } catch (e) {
    fail(signal.aborted ? 'interrupted' : 'bench', 'setup', e);
  } finally {
    for (const r of [...live]) {
      progress(`cleanup: destroying ${r.name}`);
      await destroy(r).catch((e) => progress(`cleanup: destroy of ${r.name} failed: ${errorText(e)}`));
    }
    if (c) {
      progress(`stopping cluster ${CLUSTER}`);
      try {
        stopped = await c.stop();
        rows.push({ section: 'setup', measure: 'cluster stop', falcon: fmtMs(stopped.ms), note: `left behind: ${stopped.leftovers.join('; ') || 'nothing'}` });
      } catch (e) {
        fail('cluster stop', 'setup', e);
      }
    }
    await rmrf(workDir);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = path.join(repo, 'bench', 'results', `k8s-${stamp}.json`);
  const report = { timestamp: new Date().toISOString(), durationMs: Date.now() - started, options: opts, cluster: CLUSTER, host, hostAfter: { loadavg: os.loadavg() }, rows, errors, data, clusterStop: stopped };
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, JSON.stringify(report, null, 2) + '\n');

  process.stdout.write(
    `\nFalcon k8s benchmark, ${new Date().toISOString()}: ${host.cores} cores (${host.cpu}); ${host.qemu}; load average at start ${host.loadavg.map((x) => x.toFixed(2)).join(' ')}; ` +
      `${opts.rounds} round(s)\n\n` +
      table(rows, { falcon: 'k8s (2 hosts)', baseline: 'local (baseline)' }) +
      `\n\nJSON: ${path.relative(process.cwd(), file)} (${fmtMs(Date.now() - started)})\n`,
  );
  return errors.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`${(e as Error)?.message ?? String(e)}\n`);
    process.exit(2);
  },
);
