/**
 * Section `softnpu`: two nodes a and b joined four ways at once, measured in turns (ABCD, DCBA,
 * ... so a drift of the machine hits all alike):
 *
 *   (a) kernel: a Falcon link (two taps wired with tc mirred), eth0, 10.1.0.0/24: the baseline;
 *   (b) wire:   a switch running the `wire` program (node w, ports 1 and 2), eth1, 10.2.0.0/24;
 *   (c) router: sidecar-lite in scrimlet s, routing 10.3.1.0/24 (port 1) and 10.3.2.0/24 (port 2), eth2;
 *   (d) p4:     sidecar-lite.p4 (the same router in P4, compiled) in scrimlet p, the same tables
 *               for 10.4.1.0/24 and 10.4.2.0/24, eth3: beside (c), the P4 program's cost.
 *
 * Per rung: ping RTT (avg) and throughput a->b, with the switch's CPU time (utime+stime from
 * /proc) and its drop counters (from its stats) over the transfer. a and b use the net image
 * (--net-image, default debian-12: iperf3 TCP; tiny: busybox nc of 64 MiB of zeros, timed by the
 * host around the sender's exec); the switch nodes w and s are tiny either way.
 *
 * --npu-cap BYTES restarts both switches with that per-port backpressure cap before measuring
 * (the config's backpressureBytes; the default is DEFAULT_BACKPRESSURE_BYTES), to see whether
 * the cap limits throughput.
 */
import { closeSync, promises as fs } from 'node:fs';
import { openOwnerOnly } from '../src/host/qemu-vm.js';
import { terminate } from '../src/host/procs.js';
import type { Runner } from '../src/index.js';
import { DEFAULT_BACKPRESSURE_BYTES } from '../src/switch/link.js';
import { switchCommand, type SwitchStats } from '../src/switch/index.js';
import { retry } from '../src/util/retry.js';
import { cpuSeconds, errorText, fmtBytes, mb, netImage, ratio, stats, transfer, withTimeout, type Ctx, type Row } from './lib.js';

const PORT = 5201;
const NAME = 'bench_npu';
const RUNGS = [
  { key: 'kernel', what: 'kernel link (tap + mirred)', dst: '10.1.0.2', npu: undefined },
  { key: 'wire', what: '`wire` program', dst: '10.2.0.2', npu: 'w' },
  { key: 'router', what: 'sidecar-lite router (scrimlet)', dst: '10.3.2.2', npu: 's' },
  { key: 'p4', what: 'sidecar-lite.p4 router (scrimlet)', dst: '10.4.2.2', npu: 'p' },
] as const;
type Rung = (typeof RUNGS)[number];
/** Bits of /sys/class/net/NIC/device/features (the virtio spec's feature numbers). */
const VIRTIO_NET_F_CSUM = 0;
const VIRTIO_NET_F_HOST_TSO4 = 11;

interface Sample {
  rung: Rung['key'];
  round: number;
  bitsPerSecond: number;
  rttMs: number;
  /** Wall time of the transfer, s. */
  seconds: number;
  retransmits?: number;
  /** The switch's CPU (user + system) during the transfer, s. */
  switchCpuS?: number;
  /** Frames the switch dropped during the transfer, per port (backpressure, disconnected, oversize). */
  drops?: { port: number; backpressure: number; disconnected: number; oversize: number }[];
  pipelineDropped?: number;
  /** Frames the switch received on all its ports during the transfer (both directions: data and ACKs). */
  switchRxFrames?: number;
  /** Mean size of the frames a sent during the transfer: as the switch received them (port 1), or as its tap did (kernel link). */
  bytesPerFrameFromA?: number;
}

export async function softnpuSection(ctx: Ctx): Promise<{ rows: Row[]; data: Record<string, unknown> }> {
  const { image, fallback } = await netImage(ctx);
  const busybox = image === 'tiny';
  const seconds = ctx.n(10, 5);
  const rounds = ctx.n(3, 1);
  const ncBytes = 64 * 1024 * 1024;

  const r = ctx.runner(NAME);
  const a = r.node('a', image, 1, mb(busybox ? 256 : 1024));
  const b = r.node('b', image, 1, mb(busybox ? 256 : 1024));
  const w = r.node('w', 'tiny', 1, mb(256));
  const s = r.node('s', 'tiny', 1, mb(256));
  const s4 = r.node('p', 'tiny', 1, mb(256));
  r.link(a, b);
  r.softnpuLink(w, a);
  r.softnpuLink(w, b);
  r.softnpu(w, { program: 'wire' });
  r.softnpuLink(s, a, '02:00:00:00:03:0a');
  r.softnpuLink(s, b, '02:00:00:00:03:0b');
  r.softnpuLink(s4, a, '02:00:00:00:04:0a');
  r.softnpuLink(s4, b, '02:00:00:00:04:0b');
  r.softnpu(s4, { program: 'sidecar-lite.p4' });
  ctx.defer(`destroy ${r.name}`, () => r.destroy());
  ctx.progress(`launching a, b (${image}) and the switch nodes w (wire), s (sidecar-lite), p (sidecar-lite.p4) (tiny)`);
  await withTimeout(600_000, `launch of ${r.name}`, ctx.signal, (signal) => r.launch({ signal }));

  const tapA = (await r.info()).links.find((l) => l.kind === 'link')!.a.ifname;
  const tapRx = async () => {
    const f = (c: string) => fs.readFile(`/sys/class/net/${tapA}/statistics/${c}`, 'utf8').then(Number);
    return { bytes: await f('rx_bytes'), packets: await f('rx_packets') };
  };
  const sh = async (node: string, cmd: string, timeoutMs = 60_000) => (await r.succeed(node, cmd, { timeoutMs, signal: ctx.signal })).stdout;
  const switches = async () => new Map((await r.info()).switches.map((x) => [x.node, x]));

  if (ctx.opts.npuCapBytes) await restartWithCap(ctx, r, ctx.opts.npuCapBytes);

  const R1 = 'a8:40:25:00:00:01';
  const R2 = 'a8:40:25:00:00:02';
  // Both routers get the same requests, in their own subnets (10.3 for s, 10.4 for p).
  for (const [node, net] of [
    [s, 3],
    [s4, 4],
  ] as const) {
    const npu = r.npu(node);
    await npu.addRoute4(`10.${net}.1.0/24`, 1, `10.${net}.1.2`);
    await npu.addRoute4(`10.${net}.2.0/24`, 2, `10.${net}.2.2`);
    await npu.addArpEntry(`10.${net}.1.2`, `02:00:00:00:0${net}:0a`);
    await npu.addArpEntry(`10.${net}.2.2`, `02:00:00:00:0${net}:0b`);
    await npu.setMac(1, R1);
    await npu.setMac(2, R2);
    await npu.addProxyArp(`10.${net}.1.1`, `10.${net}.1.1`, R1);
    await npu.addProxyArp(`10.${net}.2.1`, `10.${net}.2.1`, R2);
  }
  for (const [node, x, other] of [
    ['a', 1, 2],
    ['b', 2, 1],
  ] as const) {
    await sh(
      node,
      `for n in eth0 eth1 eth2 eth3; do ip link set $n up; done; ip addr add 10.1.0.${x}/24 dev eth0; ip addr add 10.2.0.${x}/24 dev eth1; ` +
        `ip addr add 10.3.${x}.2/24 dev eth2; ip route add 10.3.${other}.0/24 via 10.3.${x}.1 dev eth2; ` +
        `ip addr add 10.4.${x}.2/24 dev eth3; ip route add 10.4.${other}.0/24 via 10.4.${x}.1 dev eth3`,
    );
  }
  if (!busybox) await sh('b', `iperf3 -s -D -p ${PORT}`);

  const ping = async (dst: string): Promise<number> => {
    const out = await sh('a', `ping -c 10 -i 0.2 ${dst}`);
    const m = out.match(/min\/avg\/max(?:\/mdev)? = [\d.]+\/([\d.]+)\//);
    if (!m) throw new Error(`cannot read the ping summary: ${out.slice(-300)}`);
    return Number(m[1]);
  };

  const transferTo = (dst: string) => transfer(ctx, r, { from: 'a', to: 'b', dst, port: PORT, busybox, seconds, ncBytes });

  const measure = async (rung: Rung, round: number): Promise<Sample> => {
    ctx.progress(`round ${round + 1}/${rounds}, ${rung.what}: ping, then ${busybox ? `nc of ${fmtBytes(ncBytes)}` : `iperf3 for ${seconds} s`}`);
    const rttMs = await ping(rung.dst);
    const sw = rung.npu ? (await switches()).get(rung.npu) : undefined;
    if (rung.npu && !sw?.pid) throw new Error(`the switch of ${rung.npu} is not running`);
    const st0 = sw ? await r.npu(rung.npu!).stats() : undefined;
    const cpu0 = sw ? await cpuSeconds(sw.pid!) : 0;
    const tap0 = await tapRx();
    const t = await transferTo(rung.dst);
    const tap1 = await tapRx();
    const sample: Sample = { rung: rung.key, round, bitsPerSecond: t.bps, rttMs, seconds: t.seconds, retransmits: t.retransmits };
    if (!sw && tap1.packets > tap0.packets) sample.bytesPerFrameFromA = (tap1.bytes - tap0.bytes) / (tap1.packets - tap0.packets);
    if (sw) {
      sample.switchCpuS = (await cpuSeconds(sw.pid!)) - cpu0;
      const st1 = await r.npu(rung.npu!).stats();
      sample.drops = dropDelta(st0!, st1);
      sample.pipelineDropped = st1.pipeline.dropped - st0!.pipeline.dropped;
      const p0 = st0!.ports.find((p) => p.port === 1);
      const p1 = st1.ports.find((p) => p.port === 1);
      if (p0 && p1 && p1.rxFrames > p0.rxFrames) sample.bytesPerFrameFromA = (p1.rxBytes - p0.rxBytes) / (p1.rxFrames - p0.rxFrames);
      sample.switchRxFrames = st1.ports.reduce((n, x) => n + x.rxFrames - (st0!.ports.find((y) => y.port === x.port)?.rxFrames ?? 0), 0);
    }
    return sample;
  };

  // Untimed warm-up: TCG translates the network paths (and iperf3) on first use.
  ctx.progress('warm-up: ping and a short transfer on each rung (not counted)');
  await withTimeout(600_000, 'warm-up', ctx.signal, async () => {
    for (const rung of RUNGS) await sh('a', `ping -c 3 -W 2 ${rung.dst}`);
    if (!busybox) for (const rung of RUNGS) await sh('a', `iperf3 -c ${rung.dst} -p ${PORT} -t 2`, 120_000);
  });
  const samples: Sample[] = [];
  // A failed measurement is recorded with the NICs' counters and the rounds go on: one stalled
  // rung must not throw away the others' figures.
  const failures: { rung: Rung['key']; round: number; error: string }[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const rung of round % 2 ? [...RUNGS].reverse() : RUNGS) {
      try {
        samples.push(await withTimeout((seconds + 300) * 1000, `measurement over the ${rung.what}`, ctx.signal, () => measure(rung, round)));
      } catch (e) {
        if (ctx.signal.aborted) throw e;
        // A stalled queue shows in the guests' and the tap's counters.
        const diag = await Promise.all(['a', 'b'].map((n) => sh(n, 'ip -s link show dev eth0; ip -s link show dev eth1', 30_000).catch((x: unknown) => String(x))));
        const tap = await tapRx().catch(() => undefined);
        failures.push({ rung: rung.key, round, error: `${errorText(e)}\n  a: ${diag[0]}\n  b: ${diag[1]}\n  tap ${tapA} rx: ${JSON.stringify(tap)}` });
        ctx.progress(`round ${round + 1}, ${rung.what} FAILED (recorded, going on): ${errorText(e)}`);
      }
    }
  }
  for (const rung of RUNGS) if (!samples.some((x) => x.rung === rung.key)) throw new Error(`every measurement over the ${rung.what} failed: ${failures.find((f) => f.rung === rung.key)?.error}`);

  // Why a stream NIC is slower than a tap: the virtio-net features a's NICs negotiated (a tap
  // has a vnet header: checksum offload and TSO; a stream netdev has none).
  const features = await sh('a', 'for n in eth0 eth1 eth2 eth3; do echo "$n $(cat /sys/class/net/$n/device/features)"; done');
  const offload = Object.fromEntries(
    features
      .trim()
      .split('\n')
      .map((l) => {
        const [nic, bits = ''] = l.trim().split(' ');
        return [nic!, { csum: bits[VIRTIO_NET_F_CSUM] === '1', tso4: bits[VIRTIO_NET_F_HOST_TSO4] === '1' }] as const;
      }),
  );
  const finalStats = Object.fromEntries(await Promise.all(['w', 's', 'p'].map(async (n) => [n, await r.npu(n).stats()] as const)));

  const of = (k: Rung['key']) => samples.filter((x) => x.rung === k);
  const bps = (k: Rung['key']) => stats(of(k).map((x) => x.bitsPerSecond)).median;
  const rtt = (k: Rung['key']) => stats(of(k).map((x) => x.rttMs)).median;
  const mbit = (x: number) => `${(x / 1e6).toFixed(0)} Mbit/s`;
  const list = (k: Rung['key'], f: (x: Sample) => string) => of(k).map(f).join(' / ');
  const what = busybox ? `busybox nc, ${fmtBytes(ncBytes)} of zeros a->b (${fallback ? `FALLBACK: ${fallback}` : 'asked for tiny'})` : `iperf3 TCP a->b, ${seconds} s`;
  const cap = fmtBytes(ctx.opts.npuCapBytes ?? DEFAULT_BACKPRESSURE_BYTES);
  const rows: Row[] = [];
  for (const rung of RUNGS.slice(1)) {
    const k = rung.key;
    const drops = of(k).map((x) => (x.drops ?? []).filter((d) => d.backpressure + d.disconnected + d.oversize > 0).map((d) => `port ${d.port}: ${d.backpressure}/${d.disconnected}/${d.oversize}`).join(', ') || 'none');
    const cpuPerS = stats(of(k).map((x) => x.switchCpuS! / x.seconds)).median;
    rows.push(
      {
        section: 'softnpu',
        measure: `${image} nodes: ${what} through the ${rung.what}, median of ${of(k).length}`,
        falcon: mbit(bps(k)),
        baseline: mbit(bps('kernel')),
        ratio: ratio(bps(k), bps('kernel')),
        note: `samples ${list(k, (x) => mbit(x.bitsPerSecond))} vs ${list('kernel', (x) => mbit(x.bitsPerSecond))}; retransmits ${list(k, (x) => String(x.retransmits ?? '-'))} vs ${list('kernel', (x) => String(x.retransmits ?? '-'))}`,
      },
      {
        section: 'softnpu',
        measure: `  switch CPU per second of transfer (${rung.npu}, tiny node's switch process)`,
        falcon: `${cpuPerS.toFixed(2)} core`,
        note: `CPU s per transfer ${list(k, (x) => `${x.switchCpuS!.toFixed(2)} s/${x.seconds.toFixed(1)} s`)}; CPU per frame received ${list(k, (x) => `${nsPerFrame(x).toFixed(0)} ns`)}; drops backpressure/disconnected/oversize (cap ${cap}) ${drops.join(' ; ')}`,
      },
      {
        section: 'softnpu',
        measure: `  ping RTT a->b (avg of 10) through the ${rung.what}, median of ${of(k).length}`,
        falcon: `${rtt(k).toFixed(2)} ms`,
        baseline: `${rtt('kernel').toFixed(2)} ms`,
        ratio: ratio(rtt(k), rtt('kernel')),
      },
    );
  }
  // The P4 program beside its TypeScript twin, measured in the same rounds.
  const cpuOf = (k: Rung['key']) => stats(of(k).map((x) => x.switchCpuS! / x.seconds)).median;
  const nsFrame = (k: Rung['key']) => stats(of(k).map(nsPerFrame)).median;
  rows.push(
    {
      section: 'softnpu',
      measure: `  sidecar-lite.p4 beside sidecar-lite (TypeScript): throughput, median of ${of('p4').length} vs ${of('router').length}`,
      falcon: mbit(bps('p4')),
      baseline: mbit(bps('router')),
      ratio: ratio(bps('p4'), bps('router')),
    },
    {
      section: 'softnpu',
      measure: '  sidecar-lite.p4 beside sidecar-lite: switch CPU per second of transfer',
      falcon: `${cpuOf('p4').toFixed(2)} core`,
      baseline: `${cpuOf('router').toFixed(2)} core`,
      ratio: ratio(cpuOf('p4'), cpuOf('router')),
    },
    {
      section: 'softnpu',
      measure: '  sidecar-lite.p4 beside sidecar-lite: switch CPU per frame received (data and ACKs)',
      falcon: `${nsFrame('p4').toFixed(0)} ns`,
      baseline: `${nsFrame('router').toFixed(0)} ns`,
      ratio: ratio(nsFrame('p4'), nsFrame('router')),
    },
  );
  const nicOffload = Object.entries(offload)
    .map(([nic, o]) => `${nic} ${o.csum ? 'csum' : 'no csum'}/${o.tso4 ? 'TSO' : 'no TSO'}`)
    .join(', ');
  const frame = (k: Rung['key']) => stats(of(k).flatMap((x) => (x.bytesPerFrameFromA ? [x.bytesPerFrameFromA] : []))).median.toFixed(0);
  rows[0]!.note +=
    `; a's NICs (virtio features): ${nicOffload} (eth0 tap, eth1 wire, eth2 sidecar-lite, eth3 sidecar-lite.p4); ` +
    `mean frame a sent: ${frame('kernel')} B on the tap, ${frame('wire')} B at the wire switch, ${frame('router')} B at sidecar-lite, ${frame('p4')} B at sidecar-lite.p4`;
  rows[rows.length - 1]!.note =
    `baseline: the kernel link between the same two VMs, measured in the same rounds (order ${RUNGS.map((x) => x.key).join(',')} then reversed)` +
    (failures.length ? `; FAILED measurements (in the JSON, with the NICs' counters): ${failures.map((f) => `${f.rung} round ${f.round + 1}`).join(', ')}` : '');
  return { rows, data: { image, fallback, seconds, rounds, offload, failures, capBytes: ctx.opts.npuCapBytes ?? DEFAULT_BACKPRESSURE_BYTES, samples, finalStats } };
}

/** The switch's CPU per frame it received over a transfer, ns. */
function nsPerFrame(x: Sample): number {
  return x.switchRxFrames ? (x.switchCpuS! * 1e9) / x.switchRxFrames : NaN;
}

function dropDelta(before: SwitchStats, after: SwitchStats): NonNullable<Sample['drops']> {
  return after.ports.map((p) => {
    const o = before.ports.find((x) => x.port === p.port);
    return {
      port: p.port,
      backpressure: p.dropBackpressure - (o?.dropBackpressure ?? 0),
      disconnected: p.dropDisconnected - (o?.dropDisconnected ?? 0),
      oversize: p.dropOversize - (o?.dropOversize ?? 0),
    };
  });
}

/**
 * Restart the topology's switches with another backpressure cap: the runner writes no such
 * field, so the config is rewritten with it and the switch started as the runner starts it
 * (same config path, so destroy still finds it; the tables come back from its tables file).
 */
async function restartWithCap(ctx: Ctx, r: Runner, capBytes: number): Promise<void> {
  for (const sw of (await r.info()).switches) {
    ctx.progress(`restarting the switch of ${sw.node} with a ${fmtBytes(capBytes)} cap per port`);
    if (sw.pid) await terminate(sw.pid, 5000);
    const config = JSON.parse(await fs.readFile(sw.config, 'utf8')) as Record<string, unknown>;
    await fs.writeFile(sw.config, JSON.stringify({ ...config, backpressureBytes: capBytes }, null, 2) + '\n', { mode: 0o600 });
    const fd = openOwnerOnly(sw.log);
    try {
      const { cmd, args } = switchCommand(sw.config);
      await ctx.proc.spawnDetached(cmd, args, { stdout: fd, stderr: fd });
    } finally {
      closeSync(fd);
    }
    await retry({ what: `the restarted switch of ${sw.node}`, deadlineMs: 30_000, delayMs: 200, signal: ctx.signal }, () => r.npu(sw.node).stats());
  }
}
