/**
 * SoftNPU running P4: the seed's softnpu topology with the switch running `sidecar-lite.p4`
 * (Falcon's P4 sidecar-lite, compiled in the switch), programmed from inside the scrimlet over
 * ttyS3 as the original's control plane does; then a P4 program loaded from inside the
 * scrimlet (LoadProgram over ttyS3, as scadm's load-program) takes effect, one that does not
 * compile is refused with its error while the loaded one keeps forwarding, and the loaded
 * program survives a hyperstop/hyperstart of the scrimlet.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { mb, type Runner } from '../../src/index.js';
import { addAddress, addNeighbor, addProxyArp, addRoute4, setMac, type TableAddRequest, type TableDump } from '../../src/switch/index.js';
import { leftovers, newRunner, tempDir } from './helpers.js';

const repo = path.resolve(__dirname, '../..');
const GC1 = '02:00:00:00:01:02';
const GC2 = '02:00:00:00:02:02';
const R1 = 'a8:40:25:00:00:01';
const R2 = 'a8:40:25:00:00:02';
const rev = (mac: string) => mac.split(':').map((x) => parseInt(x, 16)).reverse();

/** sidecar-lite's tables for the two gimlets (docs/softnpu.md), with the scadm-named builders. */
function sidecarTables(): TableAddRequest[] {
  const route1 = addRoute4({}, '10.0.1.0/24', 1, '10.0.1.2');
  const dump: TableDump = { 'ingress.router.v4_idx.rtr': [{ action_id: 'index', keyset_data: route1[1]!.keyset_data, parameter_data: route1[1]!.parameter_data }] };
  return [
    ...route1,
    ...addRoute4(dump, '10.0.2.0/24', 2, '10.0.2.2'),
    addNeighbor('10.0.1.2', GC1),
    addNeighbor('10.0.2.2', GC2),
    setMac(1, R1),
    setMac(2, R2),
    addProxyArp('10.0.1.1', '10.0.1.1', R1),
    addProxyArp('10.0.2.1', '10.0.2.1', R2),
    addAddress('10.0.1.1'),
  ];
}

/** examples/p4/router.p4's tables: 10.0.1.0/24 to gc1, 10.0.9.0/24 (gc2's second address) to gc2. */
const ROUTER_TABLES: TableAddRequest[] = [
  { table: 'ingress.routes', action: 'forward', keyset_data: [10, 0, 1, 0, 24], parameter_data: [1, 0, ...rev(GC1)] },
  { table: 'ingress.routes', action: 'forward', keyset_data: [10, 0, 9, 0, 24], parameter_data: [2, 0, ...rev(GC2)] },
  { table: 'ingress.port_mac', action: 'set_src', keyset_data: [1, 0], parameter_data: rev(R1) },
  { table: 'ingress.port_mac', action: 'set_src', keyset_data: [2, 0], parameter_data: rev(R2) },
];

/** Management requests over ttyS3 from inside the scrimlet; prints the switch's replies. */
function uart(requests: unknown[], waitMs = 1000): string {
  const lines = requests.map((r) => `\\345${JSON.stringify(r)}\\n`).join('');
  return `printf '${lines}' | microcom -t ${waitMs} /dev/ttyS3`;
}

/** LoadProgram of the scrimlet's file `file` over ttyS3, its source in base64 as a shell sends it. */
function loadFromScrimlet(file: string, name: string): string {
  return `printf '\\345{"LoadProgram":{"name":"${name}","source_b64":"%s"}}\\n' "$(base64 ${file} | tr -d '\\n')" | microcom -t 3000 /dev/ttyS3`;
}

async function ping(d: Runner, from: string, to: string): Promise<string> {
  const r = await d.exec(from, `ping -c 3 -W 2 ${to}`);
  return r.stdout;
}

describe('SoftNPU running P4', () => {
  it('sidecar-lite.p4 routes gc1 to gc2 with tables from ttyS3; a program loaded from the scrimlet takes effect, a broken one is refused, the loaded one survives hyperstart', async () => {
    const d = newRunner('p4e2e', tempDir('p4e2e'));
    const scrimlet = d.node('scrimlet', 'tiny', 1, mb(256));
    const gc1 = d.node('gc1', 'tiny', 1, mb(256));
    const gc2 = d.node('gc2', 'tiny', 1, mb(256));
    d.softnpuLink(scrimlet, gc1, GC1);
    d.softnpuLink(scrimlet, gc2, GC2);
    d.softnpu(scrimlet, { program: 'sidecar-lite.p4' });
    try {
      await d.launch();
      expect((await d.info()).switches.map((s) => [s.program, s.status])).toEqual([['sidecar-lite.p4', 'running']]);
      await d.succeed(scrimlet, uart(sidecarTables().map((t) => ({ TableAdd: t })), 500));
      // Static neighbours: router.p4 (below) forwards IPv4 only, no ARP.
      for (const [g, i, r] of [[gc1, 1, R1], [gc2, 2, R2]] as const)
        await d.succeed(g, `ip link set eth0 up && ip addr add 10.0.${i}.2/24 dev eth0 && ip route add default via 10.0.${i}.1 && arp -s 10.0.${i}.1 ${r}`);
      await d.succeed(gc2, 'ip addr add 10.0.9.2/32 dev eth0');
      expect(await ping(d, 'gc1', '10.0.2.2')).toMatch(/3 packets transmitted, 3 packets received/);
      // No route to 10.0.9.0/24 in sidecar-lite's tables.
      expect(await ping(d, 'gc1', '10.0.9.2')).toMatch(/, 0 packets received/);

      // Load router.p4 from inside the scrimlet, then its tables.
      await d.succeed(scrimlet, 'cat > /tmp/router.p4', { input: readFileSync(path.join(repo, 'examples/p4/router.p4'), 'utf8') });
      const loaded = JSON.parse((await d.succeed(scrimlet, loadFromScrimlet('/tmp/router.p4', 'router.p4'))).stdout.trim()) as { ok: boolean; tables: { kept: number; dropped: number } };
      expect(loaded).toEqual({ ok: true, program: 'router.p4', tables: { kept: 0, dropped: sidecarTables().length } });
      await d.succeed(scrimlet, uart(ROUTER_TABLES.map((t) => ({ TableAdd: t })), 500));
      expect((await d.info()).switches[0]!.program).toBe('router.p4');
      expect(await ping(d, 'gc1', '10.0.9.2')).toMatch(/3 packets transmitted, 3 packets received/);

      // A program that does not compile: refused with its position, router.p4 keeps forwarding.
      await d.succeed(scrimlet, "sed 's/egress.port = port;/egress.port = prt;/' /tmp/router.p4 > /tmp/broken.p4");
      const refused = JSON.parse((await d.succeed(scrimlet, loadFromScrimlet('/tmp/broken.p4', 'broken.p4'))).stdout.trim()) as { ok: boolean; errors: string[] };
      expect(refused.ok).toBe(false);
      expect(refused.errors).toEqual([expect.stringMatching(/^broken\.p4:\d+:\d+: unknown name prt/)]);
      expect(await ping(d, 'gc1', '10.0.9.2')).toMatch(/3 packets transmitted, 3 packets received/);

      // The loaded program and its tables come back with the switch.
      await d.hyperstop(scrimlet);
      await d.hyperstart(scrimlet);
      const sw = (await d.info()).switches[0]!;
      expect([sw.program, sw.status]).toEqual(['router.p4', 'running']);
      expect(await ping(d, 'gc1', '10.0.9.2')).toMatch(/3 packets transmitted, 3 packets received/);
    } finally {
      await d.destroy();
    }
    expect(leftovers(d)).toEqual([]);
  });
});
