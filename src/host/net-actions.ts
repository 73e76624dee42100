/**
 * Deciding what to do to the host: the `ip` and `tc` commands that bring what exists to what the
 * plan wants, leaving alone what is already right. Pure.
 */
import { impairTapName } from '../model/naming.js';
import type { HostLink } from './net-ip.js';
import { matchesPlan } from './net-ownership.js';
import type { NetworkPlan, PlannedInterface } from './net-plan.js';

/** Handle of the one u32 filter Falcon puts on each tap, so `filter replace` is idempotent. */
const FILTER_HANDLE = '800::800';

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
