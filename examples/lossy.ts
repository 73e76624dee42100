// Two nodes on a link made 100 ms slow and 10% lossy on purpose, changed while it runs.
//   npx tsx examples/lossy.ts launch
//   npx tsx examples/lossy.ts demo                               # 20 pings across: RTT and loss
//   npx tsx examples/lossy.ts impair violin--piano --delay 20ms  # no node restarts
//   npx tsx examples/lossy.ts impair --show
//   npx tsx examples/lossy.ts destroy
import { Runner, gb, runWithExtra } from '../src/index.ts';

const d = new Runner('lossy');
const violin = d.node('violin', 'tiny', 1, gb(1));
const piano = d.node('piano', 'tiny', 1, gb(1));
// Both directions; `aToB`/`bToA` set one (violin is a, piano is b).
d.link(violin, piano, { impair: { delayMs: 100, lossPct: 10 } });

await runWithExtra(d, [
  {
    name: 'demo',
    description: 'address both nodes (10.0.0.1, 10.0.0.2) and ping piano from violin 20 times',
    async action(r) {
      for (const [n, i] of [[violin, 1], [piano, 2]] as const) {
        // Idempotent: a second demo finds the address already there.
        await r.succeed(n, `ip link set eth0 up && { ip addr show eth0 | grep -q 10.0.0.${i}/ || ip addr add 10.0.0.${i}/24 dev eth0; }`);
      }
      const ping = await r.exec(violin, 'ping -c 20 -i 0.2 -W 2 10.0.0.2', { timeoutMs: 60_000 });
      console.log(ping.stdout.trim().split('\n').slice(-2).join('\n'));
    },
  },
]);
