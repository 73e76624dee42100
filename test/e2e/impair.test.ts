/**
 * Link impairment on real VMs: a declared delay in the ping RTT, changed and cleared at
 * runtime, loss, a rate cap in a timed transfer, across hyperstop/hyperstart, and nothing left
 * after destroy. This host has no netem, so it runs the userspace helper (falcon-impair).
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { impairTapName, mb, runCli, type ImpairStatus, type Runner } from '../../src/index.js';
import { leftovers, newRunner, tempDir } from './helpers.js';

/**
 * Runs the CLI as a user would (`$topo impair ...`, or with `generic` the `falcon` CLI working
 * from the falcon dir alone); rejects with its stderr on a non-zero exit.
 */
async function cli(d: Runner, argv: string[], generic = false): Promise<string> {
  let out = '';
  let err = '';
  const code = await runCli(generic ? undefined : d, [], { argv: [...argv, '--falcon-dir', d.paths.dir], stdout: (s) => (out += s.toString()), stderr: (s) => (err += s) });
  if (code !== 0) throw new Error(`${argv.join(' ')} exited ${code}: ${err}`);
  return out;
}

/** Round-trip times in ms of `count` pings from imp_a to imp_b, and how many were answered. */
async function ping(d: Runner, count: number, interval = 0.2): Promise<{ rtts: number[]; sent: number; received: number }> {
  const r = await d.exec('imp_a', `ping -c ${count} -i ${interval} -W 3 10.77.0.2`, { timeoutMs: 120_000 });
  const rtts = [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  const m = /(\d+) packets transmitted, (\d+) packets received/.exec(r.stdout);
  if (!m) throw new Error(`no ping summary in: ${r.stdout}${r.stderr}`);
  return { rtts, sent: Number(m[1]), received: Number(m[2]) };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function setUpAddresses(d: Runner): Promise<void> {
  await d.succeed('imp_a', 'ip addr add 10.77.0.1/24 dev eth0 && ip link set eth0 up');
  await d.succeed('imp_b', 'ip addr add 10.77.0.2/24 dev eth0 && ip link set eth0 up && mkdir -p /tmp/www && dd if=/dev/zero of=/tmp/www/f bs=1024 count=256 2>/dev/null && httpd -p 8080 -h /tmp/www');
  // ARP resolved before any timing is read.
  await d.succeed('imp_a', 'ping -c 1 -W 5 10.77.0.2');
}

/** Seconds imp_a takes to fetch 256 KiB from imp_b over HTTP. */
async function fetchSeconds(d: Runner): Promise<number> {
  const started = Date.now();
  await d.succeed('imp_a', 'wget -q -O /dev/null http://10.77.0.2:8080/f', { timeoutMs: 120_000 });
  return (Date.now() - started) / 1000;
}

describe('link impairment (declared, runtime, across hyperstart)', () => {
  const dir = tempDir('impair');
  let d: Runner;
  let helperTaps: string[] = [];
  beforeAll(async () => {
    d = newRunner('impe2e', dir);
    const a = d.node('imp_a', 'tiny', 1, mb(256));
    const b = d.node('imp_b', 'tiny', 1, mb(256));
    d.link(a, b, { impair: { delayMs: 100 } });
    await d.launch();
    await setUpAddresses(d);
  });
  afterAll(async () => {
    await d?.destroy();
    expect(leftovers(d)).toEqual([]);
  });

  it('a 100 ms delay declared on the link shows in the ping RTT (at least 2 x 100 ms)', async () => {
    const p = await ping(d, 5);
    console.log(`declared 100 ms each way: RTTs ${p.rtts.join(', ')} ms`);
    expect(p.received).toBe(5);
    expect(Math.min(...p.rtts)).toBeGreaterThanOrEqual(200);
    const [s] = JSON.parse(await cli(d, ['impair', '--show', '--json'])) as ImpairStatus[];
    expect(s).toMatchObject({ link: 'imp_a:0--imp_b:0', source: 'declared', path: 'userspace' });
    expect(s!.reason).toMatch(/no netem/);
    expect(s!.directions.map((x) => x.text)).toEqual(['delay 100ms', 'delay 100ms']);
    helperTaps = [s!.helperTaps!.ab, s!.helperTaps!.ba];
    const info = await d.info();
    expect(info.links[0]!.impairment).toEqual({ ab: { delayMs: 100 }, ba: { delayMs: 100 } });
    expect(helperTaps).toEqual([impairTapName(info.links[0]!.a.ifname), impairTapName(info.links[0]!.b!.ifname)]);
  });

  it('changed at runtime to 20 ms (by the falcon CLI), without restarting a node, the RTT follows (40 ms floor, below the old 200)', async () => {
    const pids = (await d.info()).nodes.map((n) => n.pid);
    // Through the generic `falcon` CLI, which knows the topology from .falcon alone.
    const out = await cli(d, ['impair', 'imp_a--imp_b', '--delay', '20ms'], true);
    expect(out).toMatch(/imp_a:0 -> imp_b:0\s+delay 20ms/);
    const generic = JSON.parse(await cli(d, ['info', '--json'], true)) as { links: { a: { altname: string }; impairment: unknown }[] };
    expect(generic.links[0]!.a.altname).toBe('impe2e_imp_a_vn_sim0');
    const p = await ping(d, 10);
    console.log(`runtime 20 ms each way: RTTs ${p.rtts.join(', ')} ms`);
    expect(Math.min(...p.rtts)).toBeGreaterThanOrEqual(40);
    expect(median(p.rtts)).toBeLessThan(200);
    expect((await d.info()).nodes.map((n) => n.pid)).toEqual(pids);
    expect((await d.impairments())[0]!.source).toBe('runtime');
  });

  it('the runtime setting survives hyperstop and hyperstart of both nodes (by the falcon CLI)', async () => {
    await cli(d, ['hyperstop', '--all'], true);
    await cli(d, ['hyperstart', '--all'], true);
    await setUpAddresses(d);
    const p = await ping(d, 5);
    console.log(`after hyperstart: RTTs ${p.rtts.join(', ')} ms`);
    expect(Math.min(...p.rtts)).toBeGreaterThanOrEqual(40);
    expect((await d.info()).links[0]!.impairment).toEqual({ ab: { delayMs: 20 }, ba: { delayMs: 20 } });
  });

  it('--clear returns the link to normal: no RTT floor, and the helper and its taps are gone', async () => {
    await cli(d, ['impair', 'imp_a--imp_b', '--clear']);
    const p = await ping(d, 10);
    console.log(`cleared: RTTs ${p.rtts.join(', ')} ms`);
    expect(Math.min(...p.rtts)).toBeLessThan(40);
    const [s] = await d.impairments();
    expect(s!.source).toBe('none');
    expect(s!.helperPid).toBeUndefined();
    const names = (JSON.parse(execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' })) as { ifname: string }[]).map((l) => l.ifname);
    for (const t of helperTaps) expect(names).not.toContain(t);
  });

  it('20% loss on what imp_a sends loses about that share of 200 pings', async () => {
    await d.impair('imp_a:0', { lossPct: 20 });
    const p = await ping(d, 200, 0.02);
    const lost = (p.sent - p.received) / p.sent;
    console.log(`20% loss: ${p.sent - p.received} of ${p.sent} pings lost (${(lost * 100).toFixed(1)}%)`);
    // Binomial(200, 0.2): mean 40, sd 5.7; 16..64 is beyond 4 sd either side.
    expect(p.sent - p.received).toBeGreaterThanOrEqual(16);
    expect(p.sent - p.received).toBeLessThanOrEqual(64);
    const [s] = await d.impairments();
    expect(s!.directions[0]!.stats!.lost).toBeGreaterThanOrEqual(16);
    expect(s!.directions[1]).toMatchObject({ impairment: null, text: 'none' });
    await d.clearImpairment('imp_a:0');
  });

  it('duplication shows as DUP! replies; corruption is caught by the ICMP checksum and counted by the helper', async () => {
    await d.impair('imp_a:0', { duplicatePct: 100 });
    const dup = await d.exec('imp_a', 'ping -c 5 -i 0.2 -W 3 10.77.0.2', { timeoutMs: 60_000 });
    expect(dup.stdout.match(/DUP!/g)?.length ?? 0).toBeGreaterThanOrEqual(4);
    // The helper rewrites its counters at most twice a second.
    const aToB = async () => (await d.impairments())[0]!.directions[0]!.stats!;
    await expect.poll(async () => (await aToB()).duplicated, { timeout: 5000 }).toBeGreaterThanOrEqual(5);
    await d.impair('imp_a:0', { corruptPct: 50 });
    const before = (await aToB()).corrupted;
    const p = await ping(d, 100, 0.02);
    // Binomial(100, 0.5) is above 25 beyond 5 sd. A flipped bit in a MAC address or a field
    // nobody checks can still be answered, so fewer pings than that go unanswered.
    await expect.poll(async () => (await aToB()).corrupted - before, { timeout: 5000 }).toBeGreaterThanOrEqual(25);
    console.log(`50% corrupt: ${p.sent - p.received} of ${p.sent} pings unanswered; helper corrupted ${(await aToB()).corrupted - before} frames`);
    expect(p.sent - p.received).toBeGreaterThanOrEqual(10);
    await d.clearImpairment('imp_a:0');
  });

  it('a 1 Mbit/s rate cap makes a 256 KiB transfer take at least its 2.1 s at that rate', async () => {
    const plain = await fetchSeconds(d);
    await cli(d, ['impair', 'imp_a--imp_b', '--rate', '1mbit']);
    const capped = await fetchSeconds(d);
    console.log(`256 KiB over HTTP: ${plain.toFixed(2)} s plain, ${capped.toFixed(2)} s at 1 Mbit/s`);
    expect(capped).toBeGreaterThanOrEqual((256 * 1024 * 8) / 1e6);
    expect(capped).toBeGreaterThan(plain);
  });

  it('bad values and targets are refused with what to do, and change nothing', async () => {
    await expect(cli(d, ['impair', 'imp_a--imp_b', '--loss', '150%'])).rejects.toThrow(/lossPct.*from 0 to 100/);
    await expect(cli(d, ['impair', 'imp_a--imp_b', '--delay', 'soon'])).rejects.toThrow(/--delay "soon" is not valid: give a duration such as 20ms/);
    await expect(cli(d, ['impair', 'imp_a:7', '--delay', '5ms'])).rejects.toThrow(/no endpoint imp_a:7.*imp_a:0--imp_b:0/);
    expect((await d.impairments())[0]!.directions.map((x) => x.text)).toEqual(['rate 1Mbit/s', 'rate 1Mbit/s']);
  });

  it('destroy leaves no helper process and no helper tap', async () => {
    expect((await d.impairments())[0]!.helperPid).toBeGreaterThan(0);
    await d.destroy();
    expect(leftovers(d)).toEqual([]);
    const names = (JSON.parse(execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' })) as { ifname: string }[]).map((l) => l.ifname);
    for (const t of helperTaps) expect(names).not.toContain(t);
  });
});
