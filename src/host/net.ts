/**
 * The host side of a topology's links.
 *
 * Each endpoint of a node-to-node link is a persistent tap device (`ip tuntap add`), opened later
 * by QEMU (`-netdev tap,ifname=...`). The two taps of a link are wired back to back in the
 * kernel: an ingress qdisc on each and a u32 filter whose mirred action redirects every frame to
 * the other tap's egress. No bridge, no MAC learning, and `tcpdump -i <ifname>` on the host sees
 * the traffic. An external link is a macvtap on a host interface, opened by QEMU as /dev/tapN.
 *
 * Every interface carries the endpoint's original name as an altname and the owning topology and
 * falcon dir in its alias, so any command can tell ours from another topology's.
 */
import { formatProblems } from '../model/errors.js';
import { randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { hostEndpoints, hostInterfaces, impairTapName, ownerAlias, parseOwnerAlias } from '../model/naming.js';
import type { TopologySpec } from '../model/spec.js';
import type { Logger } from '../util/log.js';
import { silentLogger } from '../util/log.js';
import { retry } from '../util/retry.js';
import {
  NET_CMD_TIMEOUT_MS,
  indexLinks,
  queryDefaultRouteIfx,
  queryIngressQdiscs,
  queryLinks,
  queryRedirects,
  runBatch,
  type HostLink,
} from './net-ip.js';
import { detectKernelFeatures, featureProblems, type NetworkProblem } from './net-kernel.js';
import type { ProcessRunner } from './process.js';
import { FalconError } from '../util/errors.js';

export type { NetworkProblem, KernelFeatures } from './net-kernel.js';
export { detectKernelFeatures, featureProblems, forgetKernelFeatures, netemReason } from './net-kernel.js';
export type { HostLink } from './net-ip.js';

/** The kernel limits an interface alias to 255 bytes. */
const MAX_ALIAS_BYTES = 255;
/** Handle of the one u32 filter Falcon puts on each tap, so `filter replace` is idempotent. */
const FILTER_HANDLE = '800::800';

interface PlannedBase {
  node: string;
  /** Index among the node's interfaces (the guest's order). */
  index: number;
  /** Kernel name, 15 characters at most. */
  ifname: string;
  /** The original's name (`<topology>_<node>_vn_sim<index>`), usable wherever an ifname is. */
  altname: string;
  /** MAC the guest's NIC gets. */
  guestMac: string;
  /** Index of the link in `spec.links`. */
  link: number;
  /** Where problems about this endpoint are reported, e.g. `links[3].b`. */
  path: string;
}

/**
 * A tap wired back to back to its peer's tap. Sidecar links are planned as these too; a
 * SoftNPU link is no host interface at all (its node end is a QEMU stream socket on a port of
 * the switch process, its npu end a switch port).
 */
export interface PlannedTap extends PlannedBase {
  kind: 'tap';
  linkKind: 'link' | 'sidecar';
  peerIfname: string;
}

/** A macvtap on a host interface, for an external link. */
export interface PlannedMacvtap extends PlannedBase {
  kind: 'macvtap';
  /** As declared; null for the default route's interface. */
  hostIfx: string | null;
  /** The host interface's kernel name, when resolved. */
  lower?: string;
  /** `bridge` for `extLink`, `passthru` for `extLinkExclusive`. */
  mode: 'bridge' | 'passthru';
}

export type PlannedInterface = PlannedTap | PlannedMacvtap;

/** The host objects of a topology. */
export interface NetworkPlan {
  topology: string;
  falconDir: string;
  /** The alias stamped on every interface of the topology. */
  alias: string;
  interfaces: PlannedInterface[];
}

export interface PlanOptions {
  falconDir: string;
  /**
   * Maps a declared host interface (null: the default route's) to its kernel name. Without it,
   * named interfaces are taken as is and the default route's stays unresolved.
   */
  hostIfxResolver?: (hostIfx: string | null) => string | undefined;
}

/** The host objects a topology needs. Pure: no host access. */
export function planNetwork(spec: TopologySpec, opts: PlanOptions): NetworkPlan {
  const falconDir = path.resolve(opts.falconDir);
  const resolve = opts.hostIfxResolver ?? ((h: string | null) => h ?? undefined);
  const eps = hostEndpoints(spec);
  // hostInterfaces() is hostEndpoints() named, in the same order.
  const interfaces = hostInterfaces(spec).map((h, i): PlannedInterface => {
    const e = eps[i]!;
    const base: PlannedBase = {
      node: h.node,
      index: h.index,
      ifname: h.ifname,
      altname: h.altname,
      guestMac: h.mac.toLowerCase(),
      link: e.link,
      path: `links[${e.link}].${e.side}`,
    };
    if (h.link.kind === 'ext') {
      return {
        ...base,
        kind: 'macvtap',
        hostIfx: h.link.hostIfx,
        lower: resolve(h.link.hostIfx),
        mode: h.link.exclusive ? 'passthru' : 'bridge',
      };
    }
    return { ...base, kind: 'tap', linkKind: h.link.kind === 'sidecar' ? 'sidecar' : 'link', peerIfname: h.peerIfname! };
  });
  return { topology: spec.name, falconDir, alias: ownerAlias(spec.name, falconDir), interfaces };
}

/** What the network layer needs from callers that touch the host. */
export interface NetworkOptions {
  runner: ProcessRunner;
  falconDir: string;
  log?: Logger;
  signal?: AbortSignal;
}

/** The network of a topology cannot be created as it stands; `problems` lists why. */
export class NetworkError extends FalconError {
  override name = 'NetworkError';
  constructor(
    readonly topology: string,
    readonly problems: readonly NetworkProblem[],
  ) {
    super('NETWORK', formatProblems(`the host network of topology "${topology}"`, problems));
  }
}

/** How an existing host interface relates to a topology. */
export type Ownership =
  | { owner: 'ours' }
  /** Has our exact name and kind but no alias: our own creation, interrupted before the alias. */
  | { owner: 'unstamped' }
  | { owner: 'other'; topology: string; falconDir: string }
  | { owner: 'foreign' };

export function ownershipOf(link: HostLink, plan: NetworkPlan): Ownership {
  if (link.alias === plan.alias) return { owner: 'ours' };
  const o = parseOwnerAlias(link.alias);
  if (o) return { owner: 'other', ...o };
  const p = plan.interfaces.find((i) => i.ifname === link.ifname);
  if (!link.alias && p && kindMatches(link, p)) return { owner: 'unstamped' };
  return { owner: 'foreign' };
}

function kindMatches(link: HostLink, p: PlannedInterface): boolean {
  return p.kind === 'tap' ? link.kind === 'tun' && link.tunType === 'tap' : link.kind === 'macvtap';
}

/** Whether an interface of ours is what the plan wants; if not it is deleted and recreated. */
function matchesPlan(link: HostLink, p: PlannedInterface): boolean {
  if (!kindMatches(link, p)) return false;
  if (p.kind === 'tap') return true;
  return (
    link.lower === p.lower &&
    link.macvMode === p.mode &&
    (p.mode === 'passthru' || link.address?.toLowerCase() === p.guestMac)
  );
}

function isOurs(link: HostLink, plan: NetworkPlan): boolean {
  const o = ownershipOf(link, plan).owner;
  return o === 'ours' || o === 'unstamped';
}

function describe(link: HostLink): string {
  return `${link.ifname}${link.altnames.length ? ` (altname ${link.altnames.join(', ')})` : ''}`;
}

interface Inspection {
  plan: NetworkPlan;
  links: HostLink[];
  problems: NetworkProblem[];
}

/** Everything preflight and create need to know about the host, in a few `ip` calls. */
async function inspect(spec: TopologySpec, o: NetworkOptions): Promise<Inspection> {
  const needMacvtap = spec.links.some((l) => l.kind === 'ext');
  const features = await detectKernelFeatures(o.runner, o.signal);
  const problems = featureProblems(features, needMacvtap);
  if (!features.tools || features.permission === false) {
    return { plan: planNetwork(spec, { falconDir: o.falconDir }), links: [], problems };
  }
  const links = await queryLinks(o);
  const byName = indexLinks(links);
  const needDefault = spec.links.some((l) => l.kind === 'ext' && l.hostIfx === null);
  const defaultIfx = needDefault ? await queryDefaultRouteIfx(o) : undefined;
  const plan = planNetwork(spec, {
    falconDir: o.falconDir,
    hostIfxResolver: (h) => (h === null ? defaultIfx : (byName.get(h)?.ifname ?? h)),
  });

  if (Buffer.byteLength(plan.alias) > MAX_ALIAS_BYTES) {
    problems.push({
      path: 'falconDir',
      message: `the falcon dir path ${plan.falconDir} is too long to record as the owner of the topology's interfaces (their alias is limited to ${MAX_ALIAS_BYTES} bytes)`,
      fix: 'run the topology from a directory with a shorter path',
    });
  }

  const planned = new Set(plan.interfaces.map((i) => i.ifname));
  for (const p of plan.interfaces) {
    if (p.kind === 'macvtap') problems.push(...extLinkProblems(p, byName, links, plan, planned));
    const seen = new Set<HostLink>();
    for (const name of [p.ifname, p.altname]) {
      const l = byName.get(name);
      if (!l || seen.has(l)) continue;
      seen.add(l);
      const own = ownershipOf(l, plan);
      const what = `host interface ${describe(l)}, which node "${p.node}" interface ${p.index} needs as ${name === p.ifname ? 'its name' : 'its altname'}`;
      if (own.owner === 'other') {
        problems.push({
          path: p.path,
          message: `${what}, belongs to topology "${own.topology}" of falcon dir ${own.falconDir}`,
          fix:
            own.topology === plan.topology
              ? `two topologies named "${plan.topology}" cannot run at once: destroy the one in ${own.falconDir} (falcon destroy there) or rename this one`
              : `destroy topology "${own.topology}" in ${own.falconDir}, or rename node "${p.node}" or this topology`,
        });
      } else if (own.owner === 'foreign') {
        problems.push({
          path: p.path,
          message: `${what}, already exists and was not made by Falcon${l.alias ? ` (alias "${l.alias}")` : ''}`,
          fix: `rename node "${p.node}" or topology "${plan.topology}", or delete the interface if it is stale: ip link del ${l.ifname}`,
        });
      }
    }
  }
  return { plan, links, problems };
}

function extLinkProblems(
  p: PlannedMacvtap,
  byName: Map<string, HostLink>,
  links: readonly HostLink[],
  plan: NetworkPlan,
  planned: Set<string>,
): NetworkProblem[] {
  const at = `${p.path.replace(/\.a$/, '')}.hostIfx`;
  const fn = p.hostIfx === null ? 'defaultExtLink' : p.mode === 'passthru' ? 'extLinkExclusive' : 'extLink';
  const names = links.filter((l) => l.linkType === 'ether' && !planned.has(l.ifname)).map((l) => l.ifname);
  const choose = `name one of the host's Ethernet interfaces (${names.join(', ') || 'none found'}; see "ip -br link")`;
  if (p.lower === undefined) {
    return [
      {
        path: at,
        message: `${fn} of node "${p.node}" uses the interface of the host's default route, but the host has no default route`,
        fix: `add a default route, or use extLink(<interface>, "${p.node}") and ${choose}`,
      },
    ];
  }
  const lower = byName.get(p.lower);
  const declared = p.hostIfx === null ? `${p.lower} (the default route's interface)` : p.hostIfx;
  if (!lower) {
    return [{ path: at, message: `${fn} of node "${p.node}" names host interface ${declared}, which does not exist`, fix: choose }];
  }
  if (planned.has(lower.ifname) || lower.linkType !== 'ether') {
    return [
      {
        path: at,
        message: `${fn} of node "${p.node}" names host interface ${declared}, which ${planned.has(lower.ifname) ? 'is one of this topology\'s own interfaces' : `is not an Ethernet device (link type ${lower.linkType ?? 'unknown'})`}`,
        fix: choose,
      },
    ];
  }
  // A passthru macvtap must be the only macvlan/macvtap on its lower device.
  const others = links.filter((l) => l.lower === lower.ifname && (l.kind === 'macvtap' || l.kind === 'macvlan') && !isOurs(l, plan));
  if (p.mode === 'passthru' && others.length) {
    return [
      {
        path: at,
        message: `extLinkExclusive of node "${p.node}" needs host interface ${lower.ifname} to itself, but it already carries ${others.map((l) => `${l.kind} ${l.ifname}`).join(', ')}`,
        fix: `use extLink (shared) instead, or remove ${others.map((l) => l.ifname).join(', ')}`,
      },
    ];
  }
  const passthru = others.find((l) => l.macvMode === 'passthru');
  if (passthru) {
    return [
      {
        path: at,
        message: `${fn} of node "${p.node}" cannot share host interface ${lower.ifname}: ${passthru.ifname} holds it exclusively (macvtap passthru)`,
        fix: `use another host interface, or stop whatever owns ${passthru.ifname}`,
      },
    ];
  }
  return [];
}

/**
 * Everything that would stop the topology's network from being created, without creating
 * anything: missing kernel features, missing or unusable host interfaces of external links, no
 * default route for `defaultExtLink`, and names taken by another topology or by a foreign
 * interface. Interfaces owned by this topology and falcon dir are fine (a relaunch).
 */
export async function checkNetworkPreflight(spec: TopologySpec, o: NetworkOptions): Promise<NetworkProblem[]> {
  return (await inspect(spec, o)).problems;
}

/** What the host has now, for deciding what to create or repair. */
export interface NetworkState {
  links: readonly HostLink[];
  /** Devices with an ingress qdisc. */
  ingress: ReadonlySet<string>;
  /** Where each existing tap's ingress filter redirects to. */
  redirects: ReadonlyMap<string, string | undefined>;
}

/** The commands that bring the host from `state` to `plan`, and what they do. */
export interface NetworkActions {
  /** `ip` commands (argument arrays without the leading `ip`), in order. */
  ip: string[][];
  /** `tc` commands, run after the `ip` ones. */
  tc: string[][];
  created: string[];
  /** Ours but not as planned (kind, lower device, mode or MAC): deleted and created again. */
  recreated: string[];
  /** Missing alias, altname or up state, or missing tc wiring. */
  repaired: string[];
  /** Ours but not in the plan any more (the topology changed): deleted. */
  removed: string[];
}

/** Decide what to do. Pure: leaves alone everything that is already right. */
export function networkActions(plan: NetworkPlan, state: NetworkState): NetworkActions {
  const a: NetworkActions = { ip: [], tc: [], created: [], recreated: [], repaired: [], removed: [] };
  const byIfname = new Map(state.links.map((l) => [l.ifname, l]));
  const planned = new Set(plan.interfaces.map((p) => p.ifname));
  const fresh = new Set<string>();
  const creates: string[][] = [];
  const repairs: string[][] = [];

  for (const l of state.links) {
    if (l.alias === plan.alias && !planned.has(l.ifname)) {
      a.ip.push(['link', 'del', 'dev', l.ifname]);
      a.removed.push(l.ifname);
    }
  }
  for (const p of plan.interfaces) {
    const l = byIfname.get(p.ifname);
    if (l && matchesPlan(l, p)) {
      const fixes: string[][] = [];
      if (l.alias !== plan.alias) fixes.push(['link', 'set', 'dev', p.ifname, 'alias', plan.alias, 'addrgenmode', 'none']);
      if (!l.altnames.includes(p.altname)) fixes.push(['link', 'property', 'add', 'dev', p.ifname, 'altname', p.altname]);
      if (!l.flags.includes('UP')) fixes.push(['link', 'set', 'dev', p.ifname, 'up']);
      if (fixes.length) {
        repairs.push(...fixes);
        a.repaired.push(p.ifname);
      }
      continue;
    }
    if (l) {
      a.ip.push(['link', 'del', 'dev', p.ifname]);
      a.recreated.push(p.ifname);
    } else a.created.push(p.ifname);
    fresh.add(p.ifname);
    creates.push(...createCommands(p, plan.alias));
  }
  a.ip.push(...creates, ...repairs);

  for (const p of plan.interfaces) {
    if (p.kind !== 'tap') continue;
    const isNew = fresh.has(p.ifname);
    const qdisc = isNew || !state.ingress.has(p.ifname);
    // A link routed through the impairment helper's tap (while that tap exists) is wired right.
    const target = state.redirects.get(p.ifname);
    const viaHelper = target !== undefined && target === impairTapName(p.ifname) && byIfname.has(target) && !fresh.has(p.peerIfname);
    const filter = qdisc || fresh.has(p.peerIfname) || (target !== p.peerIfname && !viaHelper);
    if (qdisc) a.tc.push(['qdisc', 'replace', 'dev', p.ifname, 'handle', 'ffff:', 'ingress']);
    if (filter) a.tc.push(wireCommand(p.ifname, p.peerIfname));
    if ((qdisc || filter) && !isNew && !a.repaired.includes(p.ifname)) a.repaired.push(p.ifname);
  }
  return a;
}

function createCommands(p: PlannedInterface, alias: string): string[][] {
  const first =
    p.kind === 'tap'
      ? ['tuntap', 'add', 'dev', p.ifname, 'mode', 'tap']
      : // passthru: the macvtap takes the lower device's MAC; setting one would change the NIC's.
        ['link', 'add', 'link', p.lower!, 'name', p.ifname, ...(p.mode === 'bridge' ? ['address', p.guestMac] : []), 'type', 'macvtap', 'mode', p.mode];
  return [
    first,
    // The alias right away, so an interrupted run leaves interfaces a later run recognizes.
    // No IPv6 link-local address: the host must not talk on a topology's links.
    ['link', 'set', 'dev', p.ifname, 'alias', alias, 'addrgenmode', 'none'],
    ['link', 'property', 'add', 'dev', p.ifname, 'altname', p.altname],
    ['link', 'set', 'dev', p.ifname, 'up'],
  ];
}

/** The filter that sends every frame arriving on `dev` out of `peer`. */
export function wireCommand(dev: string, peer: string): string[] {
  return [
    'filter', 'replace', 'dev', dev, 'parent', 'ffff:', 'protocol', 'all', 'pref', '1', 'handle', FILTER_HANDLE,
    'u32', 'match', 'u32', '0', '0', 'action', 'mirred', 'egress', 'redirect', 'dev', peer,
  ];
}

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
  const insp = await inspect(spec, o);
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
  return { netdevs, actions };
}

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
        message: `could not remove host interface ${describe(l)}`,
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

/** One host interface of a topology, for `info`. */
export interface TopologyInterfaceInfo {
  /** Absent for an interface of ours that the topology no longer declares. */
  node?: string;
  index?: number;
  ifname: string;
  altname?: string;
  kind: 'tap' | 'macvtap' | string;
  exists: boolean;
  /** Kernel operstate (UP, DOWN, ...). DOWN for a tap no VM has open. */
  state?: string;
  up?: boolean;
  /** The host side has carrier: a VM has the tap open. */
  carrier?: boolean;
  ifindex?: number;
  /** The host device's own MAC. */
  hostMac?: string;
  /** The MAC the guest's NIC gets. */
  guestMac?: string;
  peerIfname?: string;
  /** Where the tap's ingress filter sends frames; should equal peerIfname. */
  wiredTo?: string;
  /** Lower device of a macvtap. */
  lower?: string;
  tapDevice?: string;
}

/** The topology's interfaces and their state on the host, planned ones first. */
export async function listTopologyInterfaces(spec: TopologySpec, o: NetworkOptions): Promise<TopologyInterfaceInfo[]> {
  const plan = planNetwork(spec, { falconDir: o.falconDir });
  const links = await queryLinks(o);
  const byIfname = new Map(links.map((l) => [l.ifname, l]));
  const ingress = await queryIngressQdiscs(o);
  const mine = (l: HostLink | undefined): l is HostLink => !!l && isOurs(l, plan);
  const taps = plan.interfaces.filter((p) => p.kind === 'tap' && mine(byIfname.get(p.ifname)) && ingress.has(p.ifname));
  const redirects = await queryRedirects(
    taps.map((p) => p.ifname),
    o,
  );
  const state = (l: HostLink) => ({
    exists: true,
    state: l.operstate,
    up: l.flags.includes('UP'),
    carrier: l.flags.includes('UP') && !l.flags.includes('NO-CARRIER') && l.operstate !== 'DOWN',
    ifindex: l.ifindex,
    hostMac: l.address,
  });
  const out: TopologyInterfaceInfo[] = plan.interfaces.map((p) => {
    const l = byIfname.get(p.ifname);
    const base: TopologyInterfaceInfo = { node: p.node, index: p.index, ifname: p.ifname, altname: p.altname, kind: p.kind, exists: false, guestMac: p.guestMac };
    if (!mine(l)) return p.kind === 'tap' ? { ...base, peerIfname: p.peerIfname } : { ...base, lower: p.lower };
    return p.kind === 'tap'
      ? { ...base, ...state(l), peerIfname: p.peerIfname, wiredTo: redirects.get(p.ifname) }
      : { ...base, ...state(l), lower: l.lower, tapDevice: `/dev/tap${l.ifindex}` };
  });
  const planned = new Set(plan.interfaces.map((p) => p.ifname));
  for (const l of links) {
    if (l.alias !== plan.alias || planned.has(l.ifname)) continue;
    out.push({ ifname: l.ifname, altname: l.altnames[0], kind: l.kind === 'tun' ? 'tap' : (l.kind ?? 'unknown'), ...state(l), lower: l.kind === 'macvtap' ? l.lower : undefined });
  }
  return out;
}
