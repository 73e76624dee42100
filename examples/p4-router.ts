// A SoftNPU running our own P4 program (docs/p4.md): the scrimlet's switch runs
// examples/p4/router.p4, compiled at preflight and again in the switch; two gimlets on their
// subnets, routed by it.
//   npx tsx examples/p4-router.ts launch
//   npx tsx examples/p4-router.ts demo      # router.p4's tables over the scrimlet's ttyS3, then gc1 pings gc2
//   npx tsx examples/p4-router.ts npu scrimlet load examples/p4/router.p4
//   npx tsx examples/p4-router.ts destroy
import { fileURLToPath } from 'node:url';
import { Runner, mb, runWithExtra } from '../src/index.ts';

const d = new Runner('p4router');
const scrimlet = d.node('scrimlet', 'tiny', 1, mb(256));
const gc1 = d.node('gc1', 'tiny', 1, mb(256));
const gc2 = d.node('gc2', 'tiny', 1, mb(256));
const GC1 = '02:00:00:00:01:02';
const GC2 = '02:00:00:00:02:02';
d.softnpuLink(scrimlet, gc1, GC1);
d.softnpuLink(scrimlet, gc2, GC2);
d.softnpu(scrimlet, { program: fileURLToPath(new URL('./p4/router.p4', import.meta.url)) });

const R1 = 'a8:40:25:00:00:01';
const R2 = 'a8:40:25:00:00:02';
/** A MAC as x4c's parameter bytes: reversed. */
const rev = (mac: string) => mac.split(':').map((x) => parseInt(x, 16)).reverse();

/** router.p4's tables (falcon p4 tables examples/p4/router.p4 shows the layouts). */
const TABLES = [
  // routes: key = address (network order) + prefix length; forward(port LE, next-hop MAC).
  { table: 'ingress.routes', action: 'forward', keyset_data: [10, 0, 1, 0, 24], parameter_data: [1, 0, ...rev(GC1)] },
  { table: 'ingress.routes', action: 'forward', keyset_data: [10, 0, 2, 0, 24], parameter_data: [2, 0, ...rev(GC2)] },
  // port_mac: key = port (LE); set_src(the router's MAC on that port).
  { table: 'ingress.port_mac', action: 'set_src', keyset_data: [1, 0], parameter_data: rev(R1) },
  { table: 'ingress.port_mac', action: 'set_src', keyset_data: [2, 0], parameter_data: rev(R2) },
];

await runWithExtra(d, [
  {
    name: 'demo',
    description: "program router.p4's tables from inside the scrimlet over ttyS3, address the gimlets, ping gc2 from gc1",
    async action(r) {
      const lines = TABLES.map((t) => `\\345${JSON.stringify({ TableAdd: t })}\\n`).join('');
      await r.succeed(scrimlet, `printf '${lines}' | microcom -t 500 /dev/ttyS3`);
      // router.p4 forwards IPv4 only: the gimlets know their router's MAC without ARP.
      for (const [g, i, mac] of [[gc1, 1, R1], [gc2, 2, R2]] as const)
        await r.succeed(g, `ip link set eth0 up && ip addr add 10.0.${i}.2/24 dev eth0 && ip route add default via 10.0.${i}.1 && arp -s 10.0.${i}.1 ${mac}`);
      const ping = await r.exec(gc1, 'ping -c 3 -W 2 10.0.2.2');
      console.log(ping.stdout.trim());
      process.exitCode = ping.exitCode ?? 1;
    },
  },
]);
