/**
 * A node's power: hyperstop (QEMU stops, disk and network stay), hyperstart (the same devices
 * and disk again, through the bring-up launch uses) and reboot (a reset through QMP).
 */
import { fdDevicesOf, resetVm, stopVm, vmRunning } from '../host/qemu-vm.js';
import { switchPlans } from '../model/softnpu.js';
import type { TopologySpec } from '../model/spec.js';
import { FalconError } from '../util/errors.js';
import { exists } from '../util/fs.js';
import { bringUp } from './bring-up.js';
import type { RunContext } from './context.js';
import type { ExecRouter } from './exec-routing.js';
import { bootNode, setUpGuest, waitReady, type BootDeps } from './node-boot.js';
import { launchedNode } from './node-state.js';
import { stopSwitches } from './switches.js';
import { vmFiles } from './vm.js';

/** Stop the VMs of `names`, keeping their disks and network; a switch stops with its owner. */
export async function hyperstopNodes(c: RunContext, spec: TopologySpec, names: readonly string[], exec: ExecRouter): Promise<void> {
  exec.closeAll();
  await Promise.all(
    names.map(async (name) => {
      await launchedNode(c, spec, name);
      const files = vmFiles(c.paths, name);
      const running = await vmRunning(files);
      await stopVm(files);
      c.log.log({ kind: 'node', node: name, state: running ? 'stopped' : 'was not running' });
    }),
  );
  // The owner of a switch is its npu, or a sidemux's driver; tables stay on disk.
  const owned = switchPlans(spec).filter((p) => names.includes(p.nodes[0]!));
  await stopSwitches(c.paths, owned.map((p) => p.npu), c.log);
}

/**
 * Start stopped nodes again with the same devices and disk, re-creating missing network
 * devices (after a host power loss only disks and `.falcon` remain).
 */
export async function hyperstartNodes(c: RunContext, spec: TopologySpec, names: readonly string[], d: BootDeps): Promise<void> {
  const targets = new Map((await Promise.all(names.map((n) => launchedNode(c, spec, n)))).map((t) => [t.spec.name, t]));
  await bringUp(c, spec, names, {
    node: async (n, net) => {
      const { ns, state } = targets.get(n.name)!;
      if (!(await exists(ns.disk)))
        throw new FalconError('NODE_DISK_MISSING', `the disk of node "${n.name}" (${ns.disk}) is gone; destroy the topology and launch it again`);
      // macvtap device numbers change when the devices are re-created.
      ns.fdDevices = fdDevicesOf(net.netdevs[n.name] ?? []);
      await bootNode(c, d, n, ns, state);
    },
  });
}

/** Reset a node through QMP (like pressing its reset button), then wait for it and set it up again. */
export async function rebootNode(c: RunContext, spec: TopologySpec, name: string, d: BootDeps): Promise<void> {
  const { spec: n, ns, state } = await launchedNode(c, spec, name);
  const files = vmFiles(c.paths, n.name);
  if (!(await vmRunning(files))) throw new FalconError('NODE_NOT_RUNNING', `node "${n.name}" is not running; start it with hyperstart ${n.name}`);
  // The agent's connection dies with the reset; the next exec opens a new one.
  d.exec.closeAll();
  await resetVm(files);
  c.log.log({ kind: 'node', node: n.name, state: 'reset' });
  await waitReady(c, n, ns, d.deadlineMs(state), c.signal ?? new AbortController().signal);
  await setUpGuest(c, d.exec, n, ns);
  c.log.log({ kind: 'node', node: n.name, state: 'ready' });
}
