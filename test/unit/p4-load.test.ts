/**
 * Loading a P4 program into a running switch (a real switch process, no VMs): the new program
 * runs and its tables replace the old ones where their layout matches; a program that does not
 * compile is refused with its positions and the old one keeps running; the loaded program
 * survives a restart; a loaded program cannot include a file of the switch's host.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Topology, gb } from '../../src/model/index.js';
import { npuPlans } from '../../src/model/softnpu.js';
import { createProcessRunner } from '../../src/host/process.js';
import { waitForExit } from '../../src/host/procs.js';
import { FalconPaths } from '../../src/runner/paths.js';
import { NpuControl, ensureSwitch, stopSwitches } from '../../src/runner/switches.js';
import { SwitchClient } from '../../src/switch/index.js';
import { programFromFile } from '../../src/switch/program-load.js';
import { memoryLogger } from '../../src/util/log.js';
import { ImageStore } from '../../src/images/store.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'falcon-p4load-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const HEADERS = `header ethernet_h { bit<48> dst; bit<48> src; bit<16> ether_type; }
struct headers_t { ethernet_h eth; }
`;
/** Every frame leaves by the port the table gives its ingress port. */
const PORTMAP = `#include <core.p4>
#include <softnpu.p4>
#include "headers.p4"
SoftNPU(parse(), ingress(), egress()) main;
parser parse(packet_in pkt, out headers_t hdr, inout ingress_metadata_t ingress) {
  state start { pkt.extract(hdr.eth); transition accept; }
}
control ingress(inout headers_t hdr, inout ingress_metadata_t ingress, inout egress_metadata_t egress) {
  action fwd(bit<16> port) { egress.port = port; }
  action drop() { egress.drop = true; }
  table portmap { key = { ingress.port: exact; } actions = { fwd; drop; } default_action = drop; }
  apply { portmap.apply(); }
}
control egress(inout headers_t hdr, inout ingress_metadata_t ingress, inout egress_metadata_t egress) { apply { } }
`;

describe('LoadProgram', () => {
  it('swaps the program of a running switch, refuses one that does not compile, and keeps the loaded one across a restart', async () => {
    const t = new Topology('p4load');
    const s = t.node('s', 'tiny', 1, gb(1));
    t.softnpuLink(s, t.node('g1', 'tiny', 1, gb(1)));
    t.softnpuLink(s, t.node('g2', 'tiny', 1, gb(1)));
    const plan = npuPlans(t.toSpec())[0]!;
    const paths = new FalconPaths(path.join(dir, '.falcon'));
    const proc = createProcessRunner();
    const log = memoryLogger();
    const c = { paths, proc, log, env: process.env, store: new ImageStore({ root: path.join(dir, 'images'), runner: proc, log }) };
    const src = path.join(dir, 'p4');
    rmSync(src, { recursive: true, force: true });
    const { mkdirSync } = await import('node:fs');
    mkdirSync(src, { recursive: true });
    writeFileSync(path.join(src, 'headers.p4'), HEADERS);
    writeFileSync(path.join(src, 'portmap.p4'), PORTMAP);
    writeFileSync(path.join(src, 'bad.p4'), PORTMAP.replace('egress.port = port;', 'egress.port = prot;'));
    try {
      const first = await ensureSwitch(plan, c);
      const npu = new NpuControl('s', paths.npuSockets('s').control);
      await npu.addRoute4('10.0.2.0/24', 2, '10.0.2.2');
      expect(programFromFile(path.join(src, 'portmap.p4')).files).toEqual({ 'headers.p4': HEADERS });

      const r = await npu.load(path.join(src, 'portmap.p4'));
      // sidecar-lite's two route entries have no table in portmap.p4.
      expect(r).toEqual({ ok: true, program: 'portmap.p4', tables: { kept: 0, dropped: 2 } });
      expect((await npu.stats()).program).toBe('portmap.p4');
      await npu.add({ table: 'ingress.portmap', action: 'fwd', keyset_data: [1, 0], parameter_data: [2, 0] });
      expect(Object.keys(await npu.dump())).toEqual(['ingress.portmap']);

      const bad = await npu.load(path.join(src, 'bad.p4'));
      expect(bad.ok).toBe(false);
      expect(bad.ok ? [] : bad.errors).toEqual([expect.stringMatching(/^bad\.p4:9:44: unknown name prot; declare it/)]);
      expect((await npu.stats()).program).toBe('portmap.p4');
      expect((await npu.dump())['ingress.portmap']).toHaveLength(1);

      // Reloading the same program keeps its entries: same table, same layout.
      expect(await npu.load(path.join(src, 'portmap.p4'))).toMatchObject({ ok: true, tables: { kept: 1, dropped: 0 } });

      process.kill(first.pid, 'SIGKILL');
      expect(await waitForExit(first.pid, 5000)).toBe(true);
      await ensureSwitch(plan, c);
      expect((await npu.stats()).program).toBe('portmap.p4');
      expect((await npu.dump())['ingress.portmap']).toEqual([{ action_id: 'fwd', keyset_data: [1, 0], parameter_data: [2, 0] }]);

      // A loaded program's includes come from the request: the switch's own files are out of reach.
      const cl = await SwitchClient.connect(paths.npuSockets('s').control);
      try {
        const sneaky = (await cl.request({ LoadProgram: { name: 'x.p4', source: '#include "/etc/hostname"\n' } })) as { ok: boolean; errors: string[] };
        expect(sneaky.ok).toBe(false);
        expect(sneaky.errors.join('\n')).toMatch(/cannot find include file \/etc\/hostname/);
      } finally {
        cl.close();
      }
    } finally {
      await stopSwitches(paths, ['s'], c.log);
    }
  });
});
