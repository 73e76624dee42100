// The original's solo: one node with a host folder mounted read-only.
//   npx tsx examples/solo.ts launch
//   npx tsx examples/solo.ts exec violin cat /opt/cargo-bay/hello.txt
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Runner, gb, run } from '../src/index.ts';

const bay = path.join(import.meta.dirname, 'cargo-bay');
mkdirSync(bay, { recursive: true });
writeFileSync(path.join(bay, 'hello.txt'), 'hello from the host\n');

const d = new Runner('solo');
const violin = d.node('violin', 'tiny', 1, gb(1));
d.mount(bay, '/opt/cargo-bay', violin);
await run(d);
