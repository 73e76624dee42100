// The seed's SoftNPU topology: a scrimlet whose switch ASIC (sidecar-lite) has two ports, one
// to each gimlet. Each node is tiny with 1 core (boots in a few seconds under TCG).
//   npm run example -- softnpu launch       # or: npx tsx examples/softnpu.ts launch
//   npx tsx examples/softnpu.ts demo        # program the switch over the scrimlet's ttyS3, then gc1 pings gc2
//   npx tsx examples/softnpu.ts npu scrimlet dump
//   npx tsx examples/softnpu.ts destroy
import { Runner, mb, runWithExtra } from '../src/index.ts';
import { addAddress, addNeighbor, addProxyArp, addRoute4, setMac, type TableAddRequest, type TableDump } from '../src/switch/index.ts';

const d = new Runner('softnpu');
const scrimlet = d.node('scrimlet', 'tiny', 1, mb(256));
const gc1 = d.node('gc1', 'tiny', 1, mb(256));
const gc2 = d.node('gc2', 'tiny', 1, mb(256));
// Port 1 and port 2 of the scrimlet's switch; port 0 (the CPU port) is the scrimlet's eth0.
d.softnpuLink(scrimlet, gc1, '02:00:00:00:01:02');
d.softnpuLink(scrimlet, gc2, '02:00:00:00:02:02');
d.softnpu(scrimlet, { program: 'sidecar-lite', cpuPort: 'raw' });

const R1 = 'a8:40:25:00:00:01';
const R2 = 'a8:40:25:00:00:02';

/** The two gimlets on their subnets, routed by the switch (docs/softnpu.md). */
function tables(): TableAddRequest[] {
  const route1 = addRoute4({}, '10.0.1.0/24', 1, '10.0.1.2');
  // The second route takes the next free path index.
  const dump: TableDump = { 'ingress.router.v4_idx.rtr': [{ action_id: 'index', keyset_data: route1[1]!.keyset_data, parameter_data: route1[1]!.parameter_data }] };
  return [
    ...route1,
    ...addRoute4(dump, '10.0.2.0/24', 2, '10.0.2.2'),
    addNeighbor('10.0.1.2', '02:00:00:00:01:02'),
    addNeighbor('10.0.2.2', '02:00:00:00:02:02'),
    setMac(1, R1),
    setMac(2, R2),
    addProxyArp('10.0.1.1', '10.0.1.1', R1),
    addProxyArp('10.0.2.1', '10.0.2.1', R2),
    addAddress('10.0.1.1'),
  ];
}

await runWithExtra(d, [
  {
    name: 'demo',
    description: "program the switch from inside the scrimlet over ttyS3 (microcom), address the gimlets, ping gc2 from gc1",
    async action(r) {
      // The management protocol: 0xE5, a JSON request, a newline.
      const lines = tables().map((t) => `\\345${JSON.stringify({ TableAdd: t })}\\n`).join('');
      await r.succeed(scrimlet, `printf '${lines}' | microcom -t 500 /dev/ttyS3`);
      const radix = await r.succeed(scrimlet, `printf '\\345"RadixRequest"\\n' | microcom -t 1000 /dev/ttyS3`);
      console.log(`switch radix (asked over ttyS3): ${radix.stdout.trim()}`);
      for (const [g, i] of [[gc1, 1], [gc2, 2]] as const)
        await r.succeed(g, `ip link set eth0 up && ip addr add 10.0.${i}.2/24 dev eth0 && ip route add default via 10.0.${i}.1`);
      const ping = await r.exec(gc1, 'ping -c 3 -W 2 10.0.2.2');
      console.log(ping.stdout.trim());
      process.exitCode = ping.exitCode ?? 1;
    },
  },
]);
