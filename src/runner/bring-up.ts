/**
 * The bring-up sequence that launch and hyperstart share: the host network, the links'
 * impairment, the switches, then every target node in parallel; the failures are collected
 * into one LaunchError naming each node with the end of its logs.
 */
import { createNetwork, type CreateNetworkResult } from '../host/net.js';
import { vmRunning } from '../host/qemu-vm.js';
import { switchPlans } from '../model/softnpu.js';
import type { NodeSpec, TopologySpec } from '../model/spec.js';
import { netContext, type RunContext } from './context.js';
import { LaunchError, type NodeFailure } from './errors.js';
import { applyImpairments } from './impairments.js';
import { ensureSwitch } from './switches.js';
import { logTails, vmFiles } from './vm.js';

export interface BringUpSteps {
  /** After the network exists and before anything starts: launch records disks and state here. */
  afterNetwork?(net: CreateNetworkResult): Promise<void>;
  /** Bring one node up (create what it lacks, boot it, set it up); a node whose QEMU runs is left as it is. */
  node(n: NodeSpec, net: CreateNetworkResult): Promise<void>;
  /** After every node has settled, whatever the outcome: launch saves the state here. */
  settled?(): Promise<void>;
}

/** Run the bring-up of `targets` (node names) of `spec`. */
export async function bringUp(c: RunContext, spec: TopologySpec, targets: readonly string[], steps: BringUpSteps): Promise<void> {
  const net = await createNetwork(spec, netContext(c));
  await steps.afterNetwork?.(net);
  // Impaired from the first frame: before any QEMU starts.
  await applyImpairments(c, spec);
  // Switches first: they connect (and reconnect) to the sockets the QEMUs serve.
  await ensureSwitches(c, spec, targets);
  const nodes = spec.nodes.filter((n) => targets.includes(n.name));
  const results = await Promise.allSettled(
    nodes.map(async (n) => {
      if (await vmRunning(vmFiles(c.paths, n.name))) return c.log.log({ kind: 'node', node: n.name, state: 'already running' });
      await steps.node(n, net);
    }),
  );
  await steps.settled?.();
  const failures: NodeFailure[] = [];
  for (const [i, r] of results.entries())
    if (r.status === 'rejected') failures.push({ node: nodes[i]!.name, error: r.reason, logs: await logTails(c.paths, nodes[i]!.name) });
  if (failures.length) throw new LaunchError(spec.name, failures);
}

/**
 * Start the switches that `nodes` need (theirs, and those of the npus they are attached
 * to) unless they run: after a kill or a host power loss, hyperstart brings them back.
 */
export async function ensureSwitches(c: RunContext, spec: TopologySpec, nodes: readonly string[]): Promise<void> {
  const wanted = switchPlans(spec).filter((p) => p.nodes.some((n) => nodes.includes(n)) || p.ports.some((x) => x.peer.kind === 'nic' && nodes.includes(x.peer.node)));
  await Promise.all(wanted.map((p) => ensureSwitch(p, c)));
}
