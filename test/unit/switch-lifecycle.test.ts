/**
 * The runner's switch lifecycle (src/runner/switches.ts) with a real switch process and no
 * VMs: started once, found again, restarted after SIGKILL with its tables, stopped.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Topology, gb } from '../../src/model/index.js';
import { npuPlans } from '../../src/model/softnpu.js';
import { createProcessRunner } from '../../src/host/process.js';
import { waitForExit } from '../../src/host/procs.js';
import { FalconPaths } from '../../src/runner/paths.js';
import { NpuControl, ensureSwitch, stopSwitches, switchPids } from '../../src/runner/switches.js';
import { memoryLogger } from '../../src/util/log.js';
import { ImageStore } from '../../src/images/store.js';
import { parseBytes } from '../../src/cli/commands/npu.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'falcon-swlife-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('switch lifecycle', () => {
  it('starts a switch once, restarts it after SIGKILL with its tables, and stops it', async () => {
    const t = new Topology('swlife');
    const s = t.node('s', 'tiny', 1, gb(1));
    t.softnpuLink(s, t.node('g1', 'tiny', 1, gb(1)));
    t.softnpuLink(s, t.node('g2', 'tiny', 1, gb(1)));
    const plan = npuPlans(t.toSpec())[0]!;
    const paths = new FalconPaths(path.join(dir, '.falcon'));
    const proc = createProcessRunner();
    const log = memoryLogger();
    const c = { paths, proc, log, env: process.env, store: new ImageStore({ root: path.join(dir, 'images'), runner: proc, log }) };
    try {
      const first = await ensureSwitch(plan, c);
      expect(first.started).toBe(true);
      const files = paths.npuFiles('s');
      for (const f of [files.config, files.log]) expect(statSync(f).mode & 0o777).toBe(0o600);
      expect(await ensureSwitch(plan, c)).toEqual({ pid: first.pid, started: false });

      const npu = new NpuControl('s', paths.npuSockets('s').control);
      expect(await npu.radix()).toBe(2);
      await npu.addRoute4('10.0.2.0/24', 2, '10.0.2.2');
      const tables = await npu.dump();

      process.kill(first.pid, 'SIGKILL');
      expect(await waitForExit(first.pid, 5000)).toBe(true);
      const second = await ensureSwitch(plan, c);
      expect(second.started).toBe(true);
      expect(await npu.dump()).toEqual(tables);

      await stopSwitches(paths, ['s'], c.log);
      expect((await switchPids(paths, ['s'])).get('s')).toEqual([]);
      await expect(npu.radix()).rejects.toMatchObject({ code: 'NPU_CONTROL' });
    } finally {
      await stopSwitches(paths, ['s'], c.log);
    }
  });

  it('reads table bytes as the CLI takes them', () => {
    expect(parseBytes('1,0,2', 'key')).toEqual([1, 0, 2]);
    expect(parseBytes('[10, 0, 2, 0, 24]', 'key')).toEqual([10, 0, 2, 0, 24]);
    expect(parseBytes('[]', 'params')).toEqual([]);
    expect(() => parseBytes('1,256', 'key')).toThrow(/"256" is not a byte/);
  });
});
