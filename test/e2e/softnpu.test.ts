/**
 * SoftNPU end to end: a scrimlet whose sidecar-lite switch routes between two gimlets on
 * different subnets, programmed from inside the scrimlet over its 4th UART (ttyS3, busybox
 * microcom), as the original's control plane does.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { mb, runCli, type Runner } from '../../src/index.js';
import { pidAlive } from '../../src/util/fs.js';
import { retry } from '../../src/util/retry.js';
import { SidecarCode, encapsulate, readSidecarHeader, type CapturedFrame } from '../../src/switch/index.js';
import type { NpuControl } from '../../src/runner/switches.js';
import { arpRequest, eth, ip4 } from '../unit/switch-frames.js';
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

/** Frames seen on `ports` from now until `stop()`. */
function startCapture(npu: NpuControl, ports: number[]): { frames: CapturedFrame[]; stop: () => Promise<void> } {
  const ac = new AbortController();
  const frames: CapturedFrame[] = [];
  const done = (async () => {
    for await (const f of npu.capture(ports, { signal: ac.signal })) frames.push(f);
  })().catch(() => {});
  return {
    frames,
    stop: async () => {
      ac.abort();
      await done;
    },
  };
}

/** The Internet checksum. */
function csum(b: Buffer): number {
  let s = 0;
  for (let i = 0; i < b.length; i += 2) s += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >> 16);
  return ~s & 0xffff;
}

/** An ICMP echo request with valid checksums. */
function echoRequest(dstMac: string, srcMac: string, src: string, dst: string): Buffer {
  const ip = Buffer.alloc(20 + 8 + 16);
  ip[0] = 0x45;
  ip.writeUInt16BE(ip.length, 2);
  ip[8] = 64;
  ip[9] = 1;
  ip4(src).copy(ip, 12);
  ip4(dst).copy(ip, 16);
  ip.writeUInt16BE(csum(ip.subarray(0, 20)), 10);
  ip[20] = 8;
  ip.writeUInt16BE(0x1234, 24);
  ip.writeUInt16BE(1, 26);
  ip.fill(0xab, 28);
  ip.writeUInt16BE(csum(ip.subarray(20)), 22);
  return eth(dstMac, srcMac, 0x0800, ip);
}

/** The sidecar header and inner frame (decapsulated) of a captured frame. */
function sidecarOf(f: CapturedFrame): { code: number; ingress: number; egress: number; etherType: number; inner: Buffer } | undefined {
  const b = Buffer.from(f.hex, 'hex');
  const h = readSidecarHeader(b);
  return h && { ...h, inner: b.subarray(14 + 24) };
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

      // A running switch whose config is not the topology's (as after the topology changed and
      // was launched again) is restarted by hyperstart; it saves its tables and the new one loads them.
      const cfg = d.paths.npuFiles('scrimlet').config;
      writeFileSync(cfg, readFileSync(cfg, 'utf8') + '\n');
      await d.hyperstart();
      const pid3 = await switchPid(d);
      expect(pid3).toBeDefined();
      expect(pid3).not.toBe(pid2);
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

describe('SoftNPU tfports', () => {
  it("gives the scrimlet one NIC per port, so its own kernel answers ARP and ping for a local address", async () => {
    const d = newRunner('npute2e', tempDir('npu-tf'));
    const scrimlet = d.node('scrimlet', 'tiny', 1, mb(256));
    const gc1 = d.node('gc1', 'tiny', 1, mb(256));
    d.softnpuLink(scrimlet, gc1, GC1_MAC, 'a8:40:25:00:00:01');
    d.softnpu(scrimlet, { cpuPort: 'tfports' });
    try {
      await d.launch();
      expect((await d.info()).switches[0]!.ports[0]!.to).toBe('scrimlet NICs 0 (CPU, tfports)');
      // tfport 1 is the scrimlet's eth0, with the npu MAC of its link.
      expect((await d.succeed(scrimlet, 'cat /sys/class/net/eth0/address')).stdout.trim()).toBe('a8:40:25:00:00:01');
      await d.succeed(scrimlet, 'ip link set eth0 up && ip addr add 10.0.1.1/24 dev eth0');
      // No proxy ARP: gc1's ARP is punted to tfport 1 and the scrimlet answers it; local_v4
      // punts the echo requests too.
      await d.npu(scrimlet).addAddress('10.0.1.1');
      await d.succeed(gc1, 'ip link set eth0 up && ip addr add 10.0.1.2/24 dev eth0');
      const r = await d.exec(gc1, 'ping -c 3 -W 2 10.0.1.1');
      expect(r.exitCode, r.stdout).toBe(0);
      expect((await d.succeed(gc1, 'arp -a')).stdout).toContain('a8:40:25:00:00:01');
    } finally {
      await d.destroy();
    }
    expect(leftovers(d)).toEqual([]);
  });
});

describe('sidemux', () => {
  it('carries frames between a driver with radix 4 and its sidecar with the sidecar header; survives a driver restart, a killed sidemux and a sidecar restart; destroy leaves nothing', async () => {
    const d = newRunner('sme2e', tempDir('sidemux'));
    const sidecar = d.node('sidecar', 'tiny', 1, mb(256));
    const driver = d.node('driver', 'tiny', 1, mb(256));
    d.sidecarLink(sidecar, driver, 4);
    const PEER = '02:00:00:00:09:02';
    try {
      await d.launch();
      const sm = d.npu(driver);
      expect(await sm.radix()).toBe(4);
      expect((await d.info()).switches).toEqual([
        expect.objectContaining({ node: 'driver.sidemux', kind: 'sidemux', program: 'sidemux', status: 'running', radix: 4 }),
      ]);
      // The driver's NICs eth0..eth3 are sidemux ports 1..4 (header ports 0..3).
      await d.succeed(driver, 'ip link set eth3 up && ip addr add 10.9.0.1/24 dev eth3');
      const nic3 = (await d.succeed(driver, 'cat /sys/class/net/eth3/address')).stdout.trim();

      // From the sidecar side: an ARP request with ingress 3 reaches the driver's NIC 3, whose
      // reply comes back with egress 3.
      let cap = startCapture(sm, [0]);
      await new Promise((r) => setTimeout(r, 300));
      await sm.inject(0, encapsulate(arpRequest(PEER, '10.9.0.2', '10.9.0.1'), { code: SidecarCode.ForwardToUserspace, ingress: 3, egress: 0 }));
      const fromDriver = (pred: (h: NonNullable<ReturnType<typeof sidecarOf>>) => boolean, what: string) =>
        retry({ what, deadlineMs: 15_000, delayMs: 100 }, async () => {
          const hit = cap.frames.filter((f) => f.dir === 'tx').map(sidecarOf).find((h) => h && pred(h));
          if (!hit) throw new Error(`no ${what} yet among ${cap.frames.length} frames`);
          return hit;
        });
      const arpReply = await fromDriver((h) => h.etherType === 0x0806 && h.inner.readUInt16BE(6) === 2, 'ARP reply');
      expect(arpReply).toMatchObject({ code: SidecarCode.ForwardFromUserspace, egress: 3 });
      expect(arpReply.inner.subarray(8, 14).toString('hex')).toBe(nic3.replace(/:/g, '')); // the sender is NIC 3

      // And it answers ping.
      await sm.inject(0, encapsulate(echoRequest(nic3, PEER, '10.9.0.2', '10.9.0.1'), { code: SidecarCode.ForwardToUserspace, ingress: 3, egress: 0 }));
      const echoReply = await fromDriver((h) => h.etherType === 0x0800 && h.inner[9] === 1 && h.inner[20] === 0, 'ICMP echo reply');
      expect(echoReply).toMatchObject({ code: SidecarCode.ForwardFromUserspace, egress: 3 });

      // A frame the driver sends on NIC 2 reaches the sidecar's NIC with egress 2.
      await d.succeed(sidecar, 'ip link set eth0 up');
      const rx = async () => Number((await d.succeed(sidecar, 'cat /sys/class/net/eth0/statistics/rx_packets')).stdout.trim());
      const rxBefore = await rx();
      const fromNic2 = async () => {
        await d.succeed(driver, 'ip link set eth2 up && ip addr replace 10.8.0.1/24 dev eth2');
        // Pinged again on each try: right after a restart the first ARP request can go out
        // before the switch has reconnected to the NIC's socket.
        return retry({ what: 'an ARP request from NIC 2', deadlineMs: 20_000, delayMs: 200 }, async () => {
          await d.exec(driver, 'ping -c 1 -W 1 10.8.0.2'); // unanswered: its ARP requests are what we look for
          const hit = cap.frames.filter((f) => f.dir === 'tx').map(sidecarOf).find((h) => h && h.etherType === 0x0806 && h.egress === 2);
          if (!hit) throw new Error(`no ARP request from NIC 2 yet among ${cap.frames.length} frames`);
          return hit;
        });
      };
      expect(await fromNic2()).toMatchObject({ code: SidecarCode.ForwardFromUserspace, egress: 2 });
      expect(await rx()).toBeGreaterThan(rxBefore);
      await cap.stop();

      // The driver restarted: its sidemux stops and comes back with it.
      await d.hyperstop(driver);
      expect((await d.info()).switches[0]!.status).toBe('stopped');
      await d.hyperstart(driver);
      cap = startCapture(sm, [0]);
      await new Promise((r) => setTimeout(r, 300));
      expect(await fromNic2()).toMatchObject({ egress: 2 });
      await cap.stop();

      // The sidemux switch killed by its pid: hyperstart brings it back, and frames flow again.
      const pid = (await switchPid(d))!;
      process.kill(pid, 'SIGKILL');
      await retry({ what: 'waiting for the sidemux to die', deadlineMs: 10_000, delayMs: 50 }, async () => {
        if (pidAlive(pid) && (await switchPid(d)) === pid) throw new Error('still running');
      });
      await d.hyperstart();
      expect(await switchPid(d)).not.toBe(pid);
      cap = startCapture(sm, [0]);
      await new Promise((r) => setTimeout(r, 300));
      expect(await fromNic2()).toMatchObject({ egress: 2 });
      await cap.stop();

      // The sidecar node restarted: frames from NIC 2 reach its NIC again.
      await d.hyperstop(sidecar);
      await d.hyperstart(sidecar);
      await d.succeed(sidecar, 'ip link set eth0 up');
      const rxAfterRestart = await rx();
      cap = startCapture(sm, [0]);
      await new Promise((r) => setTimeout(r, 300));
      expect(await fromNic2()).toMatchObject({ egress: 2 });
      await cap.stop();
      await retry({ what: "the sidecar's rx_packets to rise", deadlineMs: 10_000, delayMs: 200 }, async () => {
        if ((await rx()) <= rxAfterRestart) throw new Error('no frame reached the sidecar yet');
      });
    } finally {
      await d.destroy();
    }
    expect(leftovers(d)).toEqual([]);
  });
});
