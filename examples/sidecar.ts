// The seed's Sidecar emulation: a sidecar node and its driver joined by a sidemux of radix 10.
// The driver gets 10 NICs (eth0..eth9); the sidecar one NIC (eth0) carrying frames with the
// sidecar header (ethertype 0x0901). Each node is tiny with 1 core.
//   npm run example -- sidecar launch       # or: npx tsx examples/sidecar.ts launch
//   npx tsx examples/sidecar.ts exec scdriver 'ip link set eth2 up; ip addr add 10.8.0.1/24 dev eth2; ping -c1 -W1 10.8.0.2'
//   npx tsx examples/sidecar.ts npu scdriver capture --port 0 --count 3    # what eth2 sends: header egress 2
//   npx tsx examples/sidecar.ts destroy
import { Runner, mb, run } from '../src/index.ts';

const d = new Runner('sidecar');
const sidecar = d.node('sidecar', 'tiny', 1, mb(256));
const scdriver = d.node('scdriver', 'tiny', 1, mb(256));
// Order matters: the sidecar node first, then its driver, then the radix.
d.sidecarLink(sidecar, scdriver, 10);
await run(d);
