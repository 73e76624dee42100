/** A topology's host interfaces and their state, for `info`. */
import type { TopologySpec } from '../model/spec.js';
import { queryIngressQdiscs, queryLinks, queryRedirects, type HostLink } from './net-ip.js';
import { isOurs } from './net-ownership.js';
import { planNetwork, type NetworkOptions } from './net-plan.js';

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
