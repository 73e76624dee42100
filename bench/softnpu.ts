/**
 * `npx tsx bench/softnpu.ts [--image tiny|debian-12] [--rounds N] [--mib M] [--seconds S]`:
 * two nodes a and b (tiny by default) joined three ways
 * at once, measured in turns (ABC, CBA, ... so a drift of the machine hits all alike):
 *
 *   (a) kernel: a Falcon link (two taps wired with tc mirred), eth0, 10.1.0.0/24;
 *   (b) wire:   a switch running the `wire` program (node w, ports 1 and 2), eth1, 10.2.0.0/24;
 *   (c) router: sidecar-lite in scrimlet s, routing 10.3.1.0/24 (port 1) and 10.3.2.0/24 (port 2), eth2.
 *
 * Per rung: ping RTT (avg of 10) and throughput a->b, with the switch's CPU time
 * (utime+stime from /proc) during the transfer: iperf3 TCP for S seconds on debian-12;
 * busybox nc on tiny (M MiB of zeros, timed by the host around the sender's exec). The
 * switch nodes w and s are tiny either way.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { Runner, mb } from '../src/index.js';
import { consoleLogger } from '../src/util/log.js';
import { retry } from '../src/util/retry.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const ROUNDS = arg('--rounds', 2);
const SECONDS = arg('--seconds', 10);
const IMAGE = process.argv.includes('--image') ? process.argv[process.argv.indexOf('--image') + 1]! : 'tiny';
const IPERF = IMAGE !== 'tiny';
const MIB = arg('--mib', 64);
const PORT = 5201;

const dir = mkdtempSync(path.join(os.tmpdir(), 'falcon-bench-npu-'));
const d = new Runner('bench_npu', { falconDir: path.join(dir, '.falcon'), logger: consoleLogger('warn') });
const a = d.node('a', IMAGE, 1, mb(IPERF ? 1024 : 256));
const b = d.node('b', IMAGE, 1, mb(IPERF ? 1024 : 256));
const w = d.node('w', 'tiny', 1, mb(256));
const s = d.node('s', 'tiny', 1, mb(256));
d.link(a, b);
d.softnpuLink(w, a);
d.softnpuLink(w, b);
d.softnpu(w, { program: 'wire' });
d.softnpuLink(s, a, '02:00:00:00:03:0a');
d.softnpuLink(s, b, '02:00:00:00:03:0b');

const sh = async (node: string, cmd: string, timeoutMs = 120_000) => (await d.succeed(node, cmd, { timeoutMs })).stdout;

/** utime + stime of a process in seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // clock ticks (USER_HZ 100)
}

const rungs = [
  { name: 'kernel link (tap + mirred)', dst: '10.1.0.2', npu: undefined },
  { name: 'wire program', dst: '10.2.0.2', npu: 'w' },
  { name: 'sidecar-lite router', dst: '10.3.2.2', npu: 's' },
] as const;

async function measure(rung: (typeof rungs)[number]): Promise<{ rttMs: number; mbit: number; cpuS?: number }> {
  const p = await sh('a', `ping -c 10 -i 0.2 ${rung.dst}`);
  const rttMs = Number(p.match(/min\/avg\/max(?:\/mdev)? = [\d.]+\/([\d.]+)\//)![1]);
  if (IPERF) {
    const pid = rung.npu ? (await d.info()).switches.find((x) => x.node === rung.npu)!.pid! : undefined;
    const cpu0 = pid ? cpuSeconds(pid) : 0;
    const out = await sh('a', `iperf3 -c ${rung.dst} -p ${PORT} -t ${SECONDS} -J`, (SECONDS + 120) * 1000);
    const cpuS = pid ? cpuSeconds(pid) - cpu0 : undefined;
    const j = JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } };
    return { rttMs, mbit: j.end.sum_received.bits_per_second / 1e6, cpuS };
  }
  const bytes = MIB * 1024 * 1024;
  await sh('b', `rm -f /tmp/nc.count; nc -l -p ${PORT} -e sh -c 'head -c ${bytes} | wc -c > /tmp/nc.count' >/dev/null 2>&1 </dev/null &`);
  await new Promise((r) => setTimeout(r, 200));
  const pid = rung.npu ? (await d.info()).switches.find((x) => x.node === rung.npu)!.pid! : undefined;
  const cpu0 = pid ? cpuSeconds(pid) : 0;
  const t0 = Date.now();
  await sh('a', `dd if=/dev/zero bs=65536 count=${bytes / 65536} 2>/dev/null | nc ${rung.dst} ${PORT}`, 600_000);
  const ms = Date.now() - t0;
  const cpuS = pid ? cpuSeconds(pid) - cpu0 : undefined;
  const got = await retry({ what: 'byte count', deadlineMs: 10_000, delayMs: 50 }, async () => {
    const n = Number((await sh('b', 'cat /tmp/nc.count 2>/dev/null || echo -1')).trim());
    if (n < 0) throw new Error('no count yet');
    return n;
  });
  if (got !== bytes) throw new Error(`${rung.name}: ${got} of ${bytes} bytes arrived`);
  return { rttMs, mbit: (bytes * 8) / (ms / 1000) / 1e6, cpuS };
}

try {
  const t0 = Date.now();
  await d.launch();
  console.log(`launched 4 nodes (a, b: ${IMAGE}) and 2 switches in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const R1 = 'a8:40:25:00:00:01';
  const R2 = 'a8:40:25:00:00:02';
  const npu = d.npu(s);
  await npu.addRoute4('10.3.1.0/24', 1, '10.3.1.2');
  await npu.addRoute4('10.3.2.0/24', 2, '10.3.2.2');
  await npu.addArpEntry('10.3.1.2', '02:00:00:00:03:0a');
  await npu.addArpEntry('10.3.2.2', '02:00:00:00:03:0b');
  await npu.setMac(1, R1);
  await npu.setMac(2, R2);
  await npu.addProxyArp('10.3.1.1', '10.3.1.1', R1);
  await npu.addProxyArp('10.3.2.1', '10.3.2.1', R2);
  for (const [node, i, other] of [['a', 2, 3], ['b', 3, 2]] as const) {
    const x = i - 1; // 1 for a, 2 for b
    await sh(node, `for n in eth0 eth1 eth2; do ip link set $n up; done; ip addr add 10.1.0.${x + 0}/24 dev eth0; ip addr add 10.2.0.${x}/24 dev eth1; ` + `ip addr add 10.3.${x}.2/24 dev eth2; ip route add 10.3.${other - 1}.0/24 via 10.3.${x}.1 dev eth2`);
  }
  if (IPERF) await sh('b', `iperf3 -s -D -p ${PORT}`);
  // Warm-up: TCG translates the network paths on first use.
  for (const r of rungs) await sh('a', `ping -c 3 -W 2 ${r.dst}`);
  if (IPERF) for (const r of rungs) await sh('a', `iperf3 -c ${r.dst} -p ${PORT} -t 2`, 120_000);
  const results: Record<string, { rttMs: number; mbit: number; cpuS?: number }[]> = {};
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 ? [...rungs].reverse() : rungs;
    for (const r of order) {
      const m = await measure(r);
      (results[r.name] ??= []).push(m);
      console.log(`round ${round + 1} ${r.name}: ${m.mbit.toFixed(0)} Mbit/s, RTT ${m.rttMs.toFixed(2)} ms${m.cpuS !== undefined ? `, switch CPU ${m.cpuS.toFixed(2)} s` : ''}`);
    }
  }
  const med = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
  const tool = IPERF ? `iperf3 TCP ${SECONDS} s (${IMAGE})` : `busybox nc (${MIB} MiB)`;
  console.log(`\n| rung | ${tool} a->b, mean of ${ROUNDS} | ping RTT avg | switch CPU during the transfer |\n|---|---|---|---|`);
  for (const r of rungs) {
    const xs = results[r.name]!;
    const cpu = xs[0]!.cpuS !== undefined ? `${med(xs.map((x) => x.cpuS!)).toFixed(2)} s` : '-';
    console.log(`| ${r.name} | ${med(xs.map((x) => x.mbit)).toFixed(0)} Mbit/s | ${med(xs.map((x) => x.rttMs)).toFixed(2)} ms | ${cpu} |`);
  }
  for (const n of ['w', 's']) {
    const st = await d.npu(n).stats();
    console.log(`${n}: drops ${st.ports.map((p) => p.dropBackpressure + p.dropDisconnected + p.dropOversize).join('/')} per port; pipeline dropped ${st.pipeline.dropped}`);
  }
} finally {
  await d.destroy();
  rmSync(dir, { recursive: true, force: true });
}
