import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Topology, gb } from '../../src/model/index.js';
import { ImageStore } from '../../src/images/store.js';
import { recordingRunner } from '../../src/host/process.js';
import { hostReferenceProblems } from '../../src/runner/preflight.js';
import { silentLogger } from '../../src/util/log.js';

describe('preflight: the topology against the host', () => {
  it('reports a missing mount source, a file mounted as a folder, an unknown image and a missing switch program together', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'falcon-preflight-'));
    const file = path.join(dir, 'a-file');
    writeFileSync(file, 'x');
    const t = new Topology('pf');
    const a = t.node('a', 'tiny', 1, gb(1));
    t.node('b', 'no-such-image', 1, gb(1));
    t.mount(path.join(dir, 'missing'), '/opt/missing', a);
    t.mount(file, '/opt/file', a);
    const c = t.node('c', 'tiny', 1, gb(1));
    t.softnpuLink(c, a);
    t.softnpu(c, { program: path.join(dir, 'no-such-program.ts') });
    const store = new ImageStore({ root: path.join(dir, 'images'), runner: recordingRunner(), log: silentLogger });
    const problems = (await hostReferenceProblems(t.toSpec(), store)).map((p) => `${p.path}: ${p.message}`);
    rmSync(dir, { recursive: true, force: true });
    expect(problems).toEqual([
      `nodes.a.mounts[0]: mount source ${path.join(dir, 'missing')} does not exist; create it or fix the path`,
      `nodes.a.mounts[1]: mount source ${file} is not a folder; mount its parent folder`,
      expect.stringMatching(/^nodes\.b\.image: image "no-such-image" is not in .*images there: none\); build a built-in one \(debian-12, tiny\) with `falcon image build NAME`/),
      `nodes.c.softnpu.program: program module ${path.join(dir, 'no-such-program.ts')} does not exist`,
    ]);
  });
});
