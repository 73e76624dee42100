/**
 * Removing a topology: all of it (destroy), or its host network alone (netdestroy). Destroy is
 * idempotent and works after a partial launch, a crashed CLI or a killed QEMU.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { destroyNetwork } from '../host/net.js';
import { allVmPids, stopVm } from '../host/qemu-vm.js';
import { switchPlans } from '../model/softnpu.js';
import type { TopologySpec } from '../model/spec.js';
import { netContext, type RunContext } from './context.js';
import { stopImpairHelpers } from './impair-helpers.js';
import type { TopologyLock } from './lock.js';
import { stopSwitches } from './switches.js';
import { vmFiles } from './vm.js';

/** Remove the topology's host network; the impairment helpers' taps go with it. */
export async function removeNetwork(c: RunContext, spec: TopologySpec): Promise<void> {
  await stopImpairHelpers(c.paths, c.log);
  await destroyNetwork(spec, netContext(c));
}

/**
 * VMs (QMP quit, then SIGKILL), switches, helpers, network, node disks, sockets and `.falcon`
 * state; image caches are kept. `lock` is released before the falcon dir itself goes.
 */
export async function destroyTopology(c: RunContext, spec: TopologySpec, lock: TopologyLock): Promise<void> {
  const started = Date.now();
  const pids = await allVmPids(spec.nodes.map((n) => c.paths.pidFile(n.name)));
  await Promise.all(spec.nodes.map((n) => stopVm(vmFiles(c.paths, n.name), undefined, pids.get(c.paths.pidFile(n.name)))));
  await stopSwitches(c.paths, switchPlans(spec).map((p) => p.npu), c.log);
  await removeNetwork(c, spec);
  if (!(await c.store.removeTopologyDisks(spec.name, c.paths.dir)))
    c.log.log({ kind: 'warn', msg: `node disks of "${spec.name}" belong to another falcon dir (${await c.store.topologyDiskOwner(spec.name)}); left alone` });
  await fs.rm(c.paths.socketDir, { recursive: true, force: true });
  for (const entry of await fs.readdir(c.paths.dir)) {
    if (entry !== 'lock') await fs.rm(path.join(c.paths.dir, entry), { recursive: true, force: true });
  }
  c.log.log({ kind: 'step', msg: `topology "${spec.name}" destroyed (${Date.now() - started} ms)` });
  await lock.release();
  await fs.rm(c.paths.dir, { recursive: true, force: true });
}
