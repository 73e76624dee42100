/** Removing a topology's host interfaces, and never anyone else's. */
import { randomInt } from 'node:crypto';
import type { TopologySpec } from '../model/spec.js';
import { silentLogger } from '../util/log.js';
import { NET_CMD_TIMEOUT_MS, queryLinks, runBatch, type HostLink } from './net-ip.js';
import { describeLink, isOurs } from './net-ownership.js';
import { NetworkError, planNetwork, type NetworkOptions, type NetworkPlan } from './net-plan.js';

export interface DestroyNetworkResult {
  removed: string[];
}

/**
 * Remove every host interface of the topology: those stamped with its alias (also ones no
 * longer in the topology) and unstamped ones with its exact names. Never touches interfaces of
 * other topologies; succeeds when nothing exists. A macvtap whose host interface vanished is
 * already gone with it.
 */
export async function destroyNetwork(spec: TopologySpec, o: NetworkOptions): Promise<DestroyNetworkResult> {
  const log = o.log ?? silentLogger;
  const plan = planNetwork(spec, { falconDir: o.falconDir });
  const ours = (links: HostLink[]) => links.filter((l) => isOurs(l, plan));
  const targets = ours(await queryLinks(o));
  if (targets.length === 0) {
    log.log({ kind: 'step', level: 'debug', msg: `network: nothing of topology "${spec.name}" on the host` });
    return { removed: [] };
  }
  log.log({ kind: 'step', level: 'debug', msg: `network: removing ${targets.length} interfaces` });
  await deleteLinks(targets, plan, o);
  let left = ours(await queryLinks(o));
  if (left.length) {
    // -force: one may vanish meanwhile (a macvtap with its lower device); the re-query decides.
    await runBatch('ip', left.map((l) => ['link', 'del', 'dev', l.ifname]), { ...o, force: true });
    left = ours(await queryLinks(o));
  }
  if (left.length) {
    throw new NetworkError(
      spec.name,
      left.map((l) => ({
        path: `host.${l.ifname}`,
        message: `could not remove host interface ${describeLink(l)}`,
        fix: `remove it by hand: ip link del ${l.ifname}`,
      })),
    );
  }
  return { removed: targets.map((l) => l.ifname) };
}

/**
 * Delete interfaces in one kernel operation: one `link del` each costs an RCU grace period
 * (~17 ms), while `ip link del group G` unregisters a whole group at once. The group is a fresh
 * random number, checked to hold nothing but ours before the delete.
 */
async function deleteLinks(targets: HostLink[], plan: NetworkPlan, o: NetworkOptions): Promise<void> {
  if (targets.length === 1) {
    await runBatch('ip', [['link', 'del', 'dev', targets[0]!.ifname]], { ...o, force: true });
    return;
  }
  const group = String(0x10000000 + randomInt(0x60000000));
  await runBatch('ip', targets.map((l) => ['link', 'set', 'dev', l.ifname, 'group', group]), { ...o, force: true });
  const inGroup = (await queryLinks(o)).filter((l) => l.group === group);
  if (inGroup.length && inGroup.every((l) => isOurs(l, plan))) {
    await o.runner.run('ip', ['link', 'del', 'group', group], { timeoutMs: NET_CMD_TIMEOUT_MS, signal: o.signal, reject: false });
  }
  // Otherwise (never in practice) the caller deletes what is left one by one.
}
