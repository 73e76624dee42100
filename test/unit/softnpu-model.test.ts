import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Topology, gb } from '../../src/model/index.js';
import { parseTopologyFile } from '../../src/model/topology.js';
import { cpuNicMac, npuPlans, streamNics, switchPlans } from '../../src/model/softnpu.js';
import { parseSwitchConfig } from '../../src/switch/config.js';
import { FalconPaths } from '../../src/runner/paths.js';
import { streamNetdevs, switchConfig } from '../../src/runner/switches.js';

function seed() {
  const t = new Topology('npue');
  const scrimlet = t.node('scrimlet', 'tiny', 1, gb(1));
  const gc1 = t.node('gc1', 'tiny', 1, gb(1));
  const gc2 = t.node('gc2', 'tiny', 1, gb(1));
  t.link(gc1, gc2);
  t.softnpuLink(scrimlet, gc1, '02:00:00:00:01:01');
  t.softnpuLink(scrimlet, gc2);
  return { t, scrimlet, gc1, gc2 };
}

const paths = new FalconPaths('/srv/lab/.falcon');

describe('SoftNPU in the model', () => {
  it("numbers ports by the npu's link order and keeps each node's NICs in declaration order, the CPU NIC last", () => {
    const { t } = seed();
    const [plan] = npuPlans(t.toSpec());
    expect(plan!.options).toEqual({ program: 'sidecar-lite', cpuPort: 'raw' });
    expect(plan!.ports.map((p) => [p.port, p.peer])).toEqual([
      [1, { kind: 'nic', node: 'gc1', index: 1 }],
      [2, { kind: 'nic', node: 'gc2', index: 1 }],
    ]);
    expect(streamNics(t.toSpec()).map((n) => [n.node, n.index, n.role, n.port, n.mac])).toEqual([
      ['gc1', 1, 'port', 1, '02:00:00:00:01:01'],
      ['gc2', 1, 'port', 2, expect.stringMatching(/^02:/)],
      // The scrimlet has no NIC for ports 1 and 2: its only NIC is the CPU port.
      ['scrimlet', 0, 'cpu', 0, cpuNicMac('npue', 'scrimlet')],
    ]);
    expect(cpuNicMac('npue', 'scrimlet')).toMatch(/^a8:40:25:f[0-9a-f]:[0-9a-f]{2}:[0-9a-f]{2}$/);
    expect(cpuNicMac('npue', 'scrimlet')).not.toBe(cpuNicMac('npue', 'other'));
  });

  it('gives the scrimlet one NIC per port in tfports mode, with the npu MAC when declared', () => {
    const t = new Topology('tf');
    const s = t.node('s', 'tiny', 1, gb(1));
    const g = t.node('g', 'tiny', 1, gb(1));
    const h = t.node('h', 'tiny', 1, gb(1));
    t.link(s, h);
    t.softnpuLink(s, g, undefined, '02:00:00:00:0a:01');
    t.softnpuLink(s, h);
    t.softnpu(s, { cpuPort: 'tfports' });
    const nics = streamNics(t.toSpec()).filter((n) => n.node === 's');
    expect(nics.map((n) => [n.index, n.role, n.port, n.mac])).toEqual([
      [1, 'tfport', 1, '02:00:00:00:0a:01'],
      [2, 'tfport', 2, expect.stringMatching(/^02:/)],
    ]);
    const cfg = parseSwitchConfig(switchConfig(npuPlans(t.toSpec())[0]!, paths));
    expect(cfg.ports[0]).toBeNull();
    expect(cfg.tfports).toEqual(['/srv/lab/.falcon/sock/s.nic1', '/srv/lab/.falcon/sock/s.nic2']);
  });

  it('writes a switch config the switch accepts: CPU NIC, port sockets, UART, control, tables, pid', () => {
    const { t } = seed();
    const cfg = parseSwitchConfig(switchConfig(npuPlans(t.toSpec())[0]!, paths));
    const sock = '/srv/lab/.falcon/sock';
    expect(cfg).toMatchObject({
      name: 'scrimlet',
      program: 'sidecar-lite',
      radix: 2,
      cpuPort: 'raw',
      ports: [`${sock}/scrimlet.nic0`, `${sock}/gc1.nic1`, `${sock}/gc2.nic1`],
      mgmtSocket: `${sock}/scrimlet.npumgmt`,
      controlSocket: `${sock}/scrimlet.npuctl`,
      tablesFile: '/srv/lab/.falcon/scrimlet.npu-tables.json',
      pidFile: '/srv/lab/.falcon/scrimlet.npu.pid',
    });
    expect(streamNetdevs(t.toSpec(), paths).gc1).toEqual([{ kind: 'stream', index: 1, path: `${sock}/gc1.nic1`, mac: '02:00:00:00:01:01' }]);
  });

  it('joins two switches port to port: the first serves, the second connects to it', () => {
    const t = new Topology('two');
    const a = t.node('a', 'tiny', 1, gb(1));
    const b = t.node('b', 'tiny', 1, gb(1));
    const g = t.node('g', 'tiny', 1, gb(1));
    t.softnpuLink(b, g);
    t.softnpuLinks(a, b);
    const [pa, pb] = npuPlans(t.toSpec());
    expect(switchConfig(pa!, paths).ports.slice(1)).toEqual([{ serve: '/srv/lab/.falcon/sock/a.port1' }]);
    expect(switchConfig(pb!, paths).ports.slice(1)).toEqual(['/srv/lab/.falcon/sock/g.nic0', '/srv/lab/.falcon/sock/a.port1']);
  });

  it('gives a sidecar link a sidemux switch: the sidecar one NIC on port 0, the driver radix NICs on ports 1..radix', () => {
    const t = new Topology('sc');
    const sidecar = t.node('sidecar', 'tiny', 1, gb(1));
    const driver = t.node('driver', 'tiny', 1, gb(1));
    t.link(driver, sidecar);
    t.sidecarLink(sidecar, driver, 3);
    const spec = t.toSpec();
    const [plan] = switchPlans(spec);
    expect(plan).toMatchObject({ kind: 'sidemux', npu: 'driver.sidemux', nodes: ['driver', 'sidecar'], radix: 3, port0: { node: 'sidecar', index: 1 } });
    const cfg = parseSwitchConfig(switchConfig(plan!, paths));
    const sock = '/srv/lab/.falcon/sock';
    expect(cfg).toMatchObject({ program: 'sidemux', radix: 3, ports: [`${sock}/sidecar.nic1`, `${sock}/driver.nic1`, `${sock}/driver.nic2`, `${sock}/driver.nic3`] });
    expect(cfg.mgmtSocket).toBeUndefined();
    expect(Object.keys(streamNetdevs(spec, paths))).toEqual(['sidecar', 'driver']);
    t.sidecarLink(t.node('other', 'tiny', 1, gb(1)), driver, 2);
    expect(t.problems().map((p) => p.path)).toEqual(['links[2]']);
  });

  it('keeps every switch socket path within the Unix limit, for the longest node names and any falcon dir', () => {
    const node = 'n'.repeat(32);
    for (let depth = 1; depth < 120; depth += 7) {
      const p = new FalconPaths('/' + 'd'.repeat(depth) + '/.falcon');
      const socks = [p.nicSocket(node, 15), p.npuSockets(node).mgmt, p.npuSockets(node).control, p.npuSockets(node).port(64), p.npuSockets(`${node}.sidemux`).control];
      for (const x of socks) expect(Buffer.byteLength(x), x).toBeLessThanOrEqual(107);
    }
  });

  it('reports every problem of the switch options at once, with paths', () => {
    const t = new Topology('bad');
    const s = t.node('s', 'tiny', 1, gb(1));
    const w = t.node('w', 'tiny', 1, gb(1));
    const lone = t.node('lone', 'tiny', 1, gb(1));
    const g = t.node('g', 'tiny', 1, gb(1));
    t.softnpuLink(s, g);
    t.softnpuLink(w, g);
    t.softnpu(s, { cpuPort: 'both' as 'raw', program: '' });
    t.softnpu(w, { program: 'wire' });
    t.softnpu(lone, {});
    expect(t.problems().map((p) => p.path)).toEqual(['nodes.s.softnpu.program', 'nodes.s.softnpu.cpuPort', 'nodes.w.softnpu.program', 'nodes.lone.softnpu']);
  });

  it('resolves a module program path and saves the options in topology.json', () => {
    const { t, scrimlet } = seed();
    t.softnpu(scrimlet, { program: './my-program.ts', cpuPort: 'tfports' });
    const text = JSON.stringify(t.toSpec());
    const back = parseTopologyFile(text, 'topology.json');
    expect(back.nodes[0]!.softnpu).toEqual({ program: path.resolve('my-program.ts'), cpuPort: 'tfports' });
  });
});
