// The original's duo: two nodes and a link between them.
//   npx tsx examples/duo.ts launch | info | exec violin 'ip addr show eth0' | serial violin | destroy
import { Runner, gb, run } from '../src/index.ts';

const d = new Runner('duo');
const violin = d.node('violin', 'tiny', 1, gb(1));
const piano = d.node('piano', 'tiny', 1, gb(1));
d.link(violin, piano);
await run(d);
