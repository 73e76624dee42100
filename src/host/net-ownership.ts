/**
 * Telling a topology's host interfaces from anyone else's: every interface Falcon makes carries
 * its topology and falcon dir in its alias.
 */
import { parseOwnerAlias } from '../model/naming.js';
import type { HostLink } from './net-ip.js';
import type { NetworkPlan, PlannedInterface } from './net-plan.js';

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
export function matchesPlan(link: HostLink, p: PlannedInterface): boolean {
  if (!kindMatches(link, p)) return false;
  if (p.kind === 'tap') return true;
  return (
    link.lower === p.lower &&
    link.macvMode === p.mode &&
    (p.mode === 'passthru' || link.address?.toLowerCase() === p.guestMac)
  );
}

/** Ours to change or delete: stamped with the plan's alias, or unstamped with our exact name. */
export function isOurs(link: HostLink, plan: NetworkPlan): boolean {
  const o = ownershipOf(link, plan).owner;
  return o === 'ours' || o === 'unstamped';
}

/** `tap1 (altname duo_violin_vn_sim0)`, for messages. */
export function describeLink(link: HostLink): string {
  return `${link.ifname}${link.altnames.length ? ` (altname ${link.altnames.join(', ')})` : ''}`;
}
