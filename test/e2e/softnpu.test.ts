/**
 * SoftNPU end to end: a scrimlet whose sidecar-lite switch routes between two gimlets on
 * different subnets, programmed from inside the scrimlet over its 4th UART (ttyS3, busybox
 * microcom), as the original's control plane does.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { mb, runCli, type Runner } from '../../src/index.js';
import { pidAlive } from '../../src/util/fs.js';
import { retry } from '../../src/util/retry.js';
import { readSidecarHeader, type CapturedFrame } from '../../src/switch/index.js';
import { leftovers, newRunner, tempDir } from './helpers.js';

const GC1_MAC = '02:00:00:00:01:02';
const GC2_MAC = '02:00:00:00:02:02';
const rev = (mac: string) => mac.split(':').map((x) => parseInt(x, 16)).reverse();

/** The worked table set of the design brief (§4), as the guest's control plane sends it. */
const ROUTE_GC2_IDX = { table: 'ingress.router.v4_idx.rtr', action: 'index', keyset_data: [10, 0, 2, 0, 24], parameter_data: [1, 0, 1] };
const TABLES = [
  { table: 'ingress.router.v4_route.rtr', action: 'forward', keyset_data: [0, 0], parameter_data: [1, 0, 2, 1, 0, 10] },
  { table: 'ingress.router.v4_route.rtr', action: 'forward', keyset_data: [1, 0], parameter_data: [2, 0, 2, 2, 0, 10] },
  { table: 'ingress.router.v4_idx.rtr', action: 'index', keyset_data: [10, 0, 1, 0, 24], parameter_data: [0, 0, 1] },
  ROUTE_GC2_IDX,
  { table: 'ingress.resolver.resolver_v4', action: 'rewrite_dst', keyset_data: [2, 1, 0, 10], parameter_data: rev(GC1_MAC) },
  { table: 'ingress.resolver.resolver_v4', action: 'rewrite_dst', keyset_data: [2, 2, 0, 10], parameter_data: rev(GC2_MAC) },
  { table: 'ingress.mac.mac_rewrite', action: 'rewrite', keyset_data: [1, 0], parameter_data: [1, 0, 0, 37, 64, 168] },
  { table: 'ingress.mac.mac_rewrite', action: 'rewrite', keyset_data: [2, 0], parameter_data: [2, 0, 0, 37, 64, 168] },
  { table: 'ingress.pxarp.proxy_arp', action: 'proxy_arp_reply', keyset_data: [1, 1, 0, 10, 1, 1, 0, 10], parameter_data: [1, 0, 0, 37, 64, 168] },
  { table: 'ingress.pxarp.proxy_arp', action: 'proxy_arp_reply', keyset_data: [1, 2, 0, 10, 1, 2, 0, 10], parameter_data: [2, 0, 0, 37, 64, 168] },
];

/** A shell command sending management requests over ttyS3 and printing the replies. */
function uart(requests: unknown[], waitMs = 1000): string {
  // Our own constants: JSON of numbers and names, no quote or % to escape.
  const lines = requests.map((r) => `\\345${JSON.stringify(r)}\\n`).join('');
  return `printf '${lines}' | microcom -t ${waitMs} /dev/ttyS3`;
}

async function ping(d: Runner, from: string, to: string, count = 3): Promise<boolean> {
  return (await d.exec(from, `ping -c ${count} -W 2 ${to}`)).exitCode === 0;
}

async function switchPid(d: Runner): Promise<number | undefined> {
  return (await d.info()).switches[0]?.pid;
}

describe('SoftNPU', () => {
  it('routes between two gimlets with tables programmed over the scrimlet\'s ttyS3; survives a killed switch and a scrimlet restart; destroy leaves nothing', async () => {
    const d = newRunner('npue2e', tempDir('npu'));
    const scrimlet = d.node('scrimlet', 'tiny', 1, mb(256));
    const gc1 = d.node('gc1', 'tiny', 1, mb(256));
    const gc2 = d.node('gc2', 'tiny', 1, mb(256));
    d.softnpuLink(scrimlet, gc1, GC1_MAC);
    d.softnpuLink(scrimlet, gc2, GC2_MAC);
    try {
      await d.launch();
      const info = (await d.info()).switches;
      expect(info).toEqual([
        expect.objectContaining({
          node: 'scrimlet',
          program: 'sidecar-lite',
          cpuPort: 'raw',
          status: 'running',
          ports: [
            { port: 0, to: 'scrimlet NIC 0 (CPU, raw)' },
            { port: 1, to: 'gc1 NIC 0' },
            { port: 2, to: 'gc2 NIC 0' },
          ],
        }),
      ]);

      // The management UART.
      await d.succeed(scrimlet, "dmesg | grep 'ttyS3 at I/O 0x2e8'");
      expect((await d.succeed(scrimlet, uart(['RadixRequest']))).stdout.trim()).toBe('2');

      // Program the tables from inside the scrimlet; the dump it reads equals the host's.
      await d.succeed(scrimlet, uart(TABLES.map((t) => ({ TableAdd: t })), 500));
      const guestDump = JSON.parse((await d.succeed(scrimlet, uart(['DumpRequest'], 1500))).stdout.trim()) as Record<string, unknown[]>;
      const out: string[] = [];
      const code = await runCli(d, [], { argv: ['npu', 'scrimlet', 'dump', '--json'], stdout: (s) => void out.push(s.toString()), stderr: (s) => void out.push(s) });
      expect(code, out.join('')).toBe(0);
      const hostDump = JSON.parse(out.join('')) as Record<string, unknown[]>;
      expect(guestDump).toEqual(hostDump);
      expect(Object.keys(hostDump)).toHaveLength(14);
      expect(hostDump['ingress.router.v4_route.rtr']).toHaveLength(2);

      // The gimlets on their subnets, the switch their router.
      for (const [g, i] of [[gc1, 1], [gc2, 2]] as const)
        await d.succeed(g, `ip link set eth0 up && ip addr add 10.0.${i}.2/24 dev eth0 && ip route add default via 10.0.${i}.1`);
      const first = await d.exec(gc1, 'ping -c 3 -W 2 10.0.2.2');
      expect(first.exitCode, first.stdout).toBe(0);
      expect(first.stdout).toContain('ttl=64'); // sidecar-lite does not decrement the TTL
      expect((await d.succeed(gc1, 'arp -a')).stdout).toContain('a8:40:25:00:00:01'); // proxy ARP answered for 10.0.1.1

      // A route removed stops the ping; re-added, it works again.
      await d.succeed(scrimlet, uart([{ TableRemove: { table: ROUTE_GC2_IDX.table, keyset_data: ROUTE_GC2_IDX.keyset_data } }], 500));
      expect(await ping(d, 'gc1', '10.0.2.2', 2)).toBe(false);
      await d.succeed(scrimlet, uart([{ TableAdd: ROUTE_GC2_IDX }], 500));
      expect(await ping(d, 'gc1', '10.0.2.2')).toBe(true);

      // A local address punts to the CPU port: the scrimlet's eth0, up so that QEMU reads it, and
      // promiscuous because punted frames keep their destination MAC (the router's), which
      // virtio-net would filter out.
      await d.succeed(scrimlet, 'ip link set eth0 up promisc on');
      const rx = async () => Number((await d.succeed(scrimlet, 'cat /sys/class/net/eth0/statistics/rx_packets')).stdout.trim());
      const rxBefore = await rx();
      await d.npu(scrimlet).addAddress('10.0.1.1');
      const ac = new AbortController();
      const frames: CapturedFrame[] = [];
      const capturing = (async () => {
        for await (const f of d.npu(scrimlet).capture([0], { signal: ac.signal })) frames.push(f);
      })();
      await new Promise((r) => setTimeout(r, 300)); // the capture is registered
      await d.exec(gc1, 'ping -c 2 -W 1 10.0.1.1'); // nobody answers: the frames go to the CPU port
      ac.abort();
      await capturing.catch(() => {});
      const punted = frames.map((f) => readSidecarHeader(Buffer.from(f.hex, 'hex'))).filter((h) => h?.etherType === 0x0800);
      expect(punted.length).toBeGreaterThan(0);
      expect(punted[0]).toMatchObject({ code: 1, ingress: 1, egress: 1 });
      expect(await rx()).toBeGreaterThan(rxBefore);

      // The switch killed by its pid: hyperstart brings it back with its tables.
      const tables = await d.npu(scrimlet).dump();
      const pid = (await switchPid(d))!;
      process.kill(pid, 'SIGKILL');
      await retry({ what: 'waiting for the switch to die', deadlineMs: 10_000, delayMs: 50 }, async () => {
        if (pidAlive(pid) && (await switchPid(d)) === pid) throw new Error('still running');
      });
      expect((await d.info()).switches[0]!.status).toBe('stopped');
      await d.hyperstart();
      const pid2 = await switchPid(d);
      expect(pid2).toBeDefined();
      expect(pid2).not.toBe(pid);
      expect(await d.npu(scrimlet).dump()).toEqual(tables);
      expect(await ping(d, 'gc1', '10.0.2.2')).toBe(true);

      // hyperstop of the scrimlet stops its switch; hyperstart restores both, tables kept.
      await d.hyperstop(scrimlet);
      expect((await d.info()).switches[0]!.status).toBe('stopped');
      await d.hyperstart(scrimlet);
      expect(await d.npu(scrimlet).dump()).toEqual(tables);
      expect((await d.succeed(scrimlet, uart(['RadixRequest']))).stdout.trim()).toBe('2');
      expect(await ping(d, 'gc1', '10.0.2.2')).toBe(true);
    } finally {
      await d.destroy();
    }
    expect(leftovers(d)).toEqual([]);
    expect(existsSync(d.paths.npuSockets('scrimlet').control)).toBe(false);
  });
});
