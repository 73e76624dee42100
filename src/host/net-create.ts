/**
 * Creating a topology's host network, idempotently: inspect, decide (networkActions), run the
 * `ip` and `tc` batches, then tell QEMU what each NIC is.
 */
import { existsSync } from 'node:fs';
import type { TopologySpec } from '../model/spec.js';
import type { Logger } from '../util/log.js';
import { silentLogger } from '../util/log.js';
import { retry } from '../util/retry.js';
import { networkActions, type NetworkActions } from './net-actions.js';
import { queryIngressQdiscs, queryLinks, queryRedirects, runBatch, type HostLink } from './net-ip.js';
import { NetworkError, type NetworkOptions, type NetworkPlan } from './net-plan.js';
import { inspectNetwork } from './net-preflight.js';

/** What QEMU needs for one NIC of a node, in the guest's interface order. */
export type NetdevInfo =
  /** `-netdev tap,id=..,ifname=<ifname>,script=no,downscript=no` */
  | { kind: 'tap'; index: number; ifname: string; altname: string; mac: string }
  /** Open `tapDevice` read-write and pass the fd: `-netdev tap,id=..,fd=N`. */
  | { kind: 'macvtap'; index: number; ifname: string; altname: string; mac: string; tapDevice: string };

export interface CreateNetworkResult {
  /** Per node, its NICs in index order. */
  netdevs: Record<string, NetdevInfo[]>;
  actions: NetworkActions;
}

export interface CreateNetworkOptions extends NetworkOptions {
  /** How long to wait for /dev/tapN to appear (udev); default 5 s. */
  deviceTimeoutMs?: number;
  /** For tests: whether a device node exists. */
  deviceExists?: (path: string) => boolean;
}

/**
 * Create the topology's host network. Idempotent: creates what is missing, repairs what is
 * incomplete and leaves what is right, so it serves a first launch, a relaunch and a hyperstart
 * after the host lost its devices. Runs the preflight first and throws a `NetworkError` listing
 * every problem before changing anything.
 */
export async function createNetwork(spec: TopologySpec, o: CreateNetworkOptions): Promise<CreateNetworkResult> {
  const log = o.log ?? silentLogger;
  const insp = await inspectNetwork(spec, o);
  if (insp.problems.length) throw new NetworkError(spec.name, insp.problems);
  const { plan, links } = insp;

  const existing = new Set(links.map((l) => l.ifname));
  const ingress = await queryIngressQdiscs(o);
  const tapsToCheck = plan.interfaces.filter((p) => p.kind === 'tap' && existing.has(p.ifname) && ingress.has(p.ifname));
  const redirects = await queryRedirects(
    tapsToCheck.map((p) => p.ifname),
    o,
  );
  const actions = networkActions(plan, { links, ingress, redirects });
  const { created, recreated, repaired, removed } = actions;
  if (recreated.length) log.log({ kind: 'warn', msg: `network: recreating ${recreated.join(', ')}: not as the topology declares them` });
  if (removed.length) log.log({ kind: 'step', level: 'debug', msg: `network: removing ${removed.join(', ')}: no longer in the topology` });
  log.log({
    kind: 'step',
    level: created.length + recreated.length + repaired.length ? 'info' : 'debug',
    msg: `network: ${plan.interfaces.length} interfaces: ${created.length} to create, ${recreated.length} to recreate, ${repaired.length} to repair`,
  });
  await runBatch('ip', actions.ip, o);
  await runBatch('tc', actions.tc, o);
  return { netdevs: await netdevsOf(spec, plan, o, log), actions };
}

/** Each node's NICs once the interfaces exist; a macvtap's once its /dev/tapN has appeared. */
async function netdevsOf(spec: TopologySpec, plan: NetworkPlan, o: CreateNetworkOptions, log: Logger): Promise<Record<string, NetdevInfo[]>> {
  const netdevs: Record<string, NetdevInfo[]> = {};
  const macvtaps = plan.interfaces.filter((p) => p.kind === 'macvtap');
  const after = macvtaps.length ? new Map((await queryLinks(o)).map((l) => [l.ifname, l])) : new Map<string, HostLink>();
  const exists = o.deviceExists ?? existsSync;
  for (const p of plan.interfaces) {
    const base = { index: p.index, ifname: p.ifname, altname: p.altname, mac: p.guestMac };
    let info: NetdevInfo;
    if (p.kind === 'tap') info = { kind: 'tap', ...base };
    else {
      const l = after.get(p.ifname);
      if (!l) throw new NetworkError(spec.name, [{ path: p.path, message: `macvtap ${p.ifname} vanished right after it was created`, fix: `check that host interface ${p.lower} still exists, then retry` }]);
      const tapDevice = `/dev/tap${l.ifindex}`;
      await retry({ what: `waiting for ${tapDevice}`, deadlineMs: o.deviceTimeoutMs ?? 5000, delayMs: 50, signal: o.signal, log }, async () => {
        if (!exists(tapDevice)) {
          throw new NetworkError(spec.name, [
            {
              path: p.path,
              message: `${tapDevice} (macvtap ${p.ifname}) did not appear; /dev must be devtmpfs or udev must run`,
              fix: `create it by hand: mknod ${tapDevice} c $(tr : ' ' < /sys/class/net/${p.ifname}/macvtap/tap${l.ifindex}/dev)`,
            },
          ]);
        }
      });
      info = { kind: 'macvtap', ...base, tapDevice };
    }
    (netdevs[p.node] ??= []).push(info);
  }
  for (const list of Object.values(netdevs)) list.sort((x, y) => x.index - y.index);
  return netdevs;
}
