import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Runner, mb, runCli } from '../../src/index.js';
import { silentLogger } from '../../src/util/log.js';
import { formatFrame } from '../../src/cli/commands/npu.js';
import { encapsulate } from '../../src/switch/index.js';
import { arpRequest } from './switch-frames.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'falcon-npucli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function topo(): Runner {
  const d = new Runner('npucli', { falconDir: path.join(dir, '.falcon'), logger: silentLogger, imageDir: path.join(dir, 'images') });
  const s = d.node('scrimlet', 'tiny', 1, mb(256));
  d.softnpuLink(s, d.node('gc1', 'tiny', 1, mb(256)));
  d.softnpuLink(s, d.node('gc2', 'tiny', 1, mb(256)));
  return d;
}

async function cli(r: Runner, argv: string[]) {
  let out = '';
  let err = '';
  const code = await runCli(r, [], { argv, stdout: (s) => (out += s.toString()), stderr: (s) => (err += s) });
  return { code, out, err };
}

describe('npu CLI', () => {
  it('refuses a node without a switch, an unknown action and bad arguments, each saying what to do', async () => {
    const d = topo();
    expect(await cli(d, ['npu', 'gc1', 'radix'])).toMatchObject({ code: 1, err: expect.stringContaining('node "gc1" of topology "npucli" runs no switch; the switches are: scrimlet') });
    expect(await cli(d, ['npu', 'scrimlet', 'frobnicate'])).toMatchObject({ code: 1, err: expect.stringContaining('unknown action "frobnicate"; use one of: radix, dump') });
    expect(await cli(d, ['npu', 'scrimlet', 'set-mac', 'x', '02:00:00:00:00:01'])).toMatchObject({ code: 1, err: expect.stringContaining('PORT must be a whole number') });
    expect(await cli(d, ['npu', 'scrimlet', 'add', 'ingress.mac.mac_rewrite', 'rewrite', '1,0'])).toMatchObject({ code: 1, err: expect.stringContaining('usage: npu NODE add TABLE ACTION KEY PARAMS') });
    // Not launched: the switch is not there to answer.
    expect(await cli(d, ['npu', 'scrimlet', 'radix'])).toMatchObject({ code: 1, err: expect.stringContaining('is the switch running (hyperstart starts it)?') });
  });

  it('shows the switch and its ports in info', async () => {
    const r = await cli(topo(), ['info']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/switch scrimlet: sidecar-lite, cpu port raw, stopped/);
    expect(r.out).toMatch(/0\s+scrimlet NIC 0 \(CPU, raw\)\n1\s+gc1 NIC 0\n2\s+gc2 NIC 0/);
    expect(r.out).toMatch(/softnpu\s+scrimlet switch port 1\s+gc1\[0\] stream \S+gc1\.nic0/);
  });

  it("shows a sidecar link's sidemux, and `npu DRIVER` addresses it", async () => {
    const d = new Runner('sccli', { falconDir: path.join(dir, 'sc', '.falcon'), logger: silentLogger, imageDir: path.join(dir, 'images') });
    d.sidecarLink(d.node('sidecar', 'tiny', 1, mb(256)), d.node('driver', 'tiny', 1, mb(256)), 3);
    const r = await cli(d, ['info']);
    expect(r.out).toMatch(/sidecar\s+sidecar\[0\] stream \S+sidecar\.nic0 \S+\s+driver\[0\] stream \S+driver\.nic0/);
    expect(r.out).toMatch(/switch driver\.sidemux: sidemux, stopped/);
    expect(r.out).toMatch(/0\s+sidecar NIC 0 \(sidecar\)\n1\s+driver NIC 0\n2\s+driver NIC 1\n3\s+driver NIC 2/);
    expect(d.npu('driver').controlSocket).toMatch(/driver\.sidemux\.npuctl$/);
  });

  it('prints a captured frame with its sidecar header decoded', () => {
    const f = encapsulate(arpRequest('02:00:00:00:00:01', '10.0.1.2', '10.0.1.1'), { code: 1, ingress: 1, egress: 1 });
    const line = formatFrame({ port: 0, dir: 'tx', time: 1_700_000_000.5, hex: f.toString('hex') });
    expect(line).toBe(`2023-11-14T22:13:20.500Z port 0 tx ${f.length} B sidecar code 1 ingress 1 egress 1 inner 0x0806 ${f.toString('hex')}`);
  });
});
