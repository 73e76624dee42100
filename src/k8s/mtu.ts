/**
 * MTU arithmetic of links carried as VXLAN over the pod network. A guest frame of MTU bytes
 * (its IP packet) crosses the pod network as one outer packet of MTU + overhead bytes:
 *
 * | outer | overhead | made of |
 * | --- | --- | --- |
 * | `ipv4` | 50 | inner Ethernet header 14 + VXLAN 8 + UDP 8 + IPv4 20 |
 * | `ipv4-vlan` | 54 | the same + an 802.1Q tag 4 the underlay counts against the pod's MTU |
 * | `ipv6` | 70 | inner Ethernet 14 + VXLAN 8 + UDP 8 + IPv6 40 |
 * | `ipv6-vlan` | 74 | the same + 4 |
 *
 * The pod interface's MTU (what the CNI gave `eth0` in the pod; 1450 on a VXLAN overlay such as
 * flannel's) must hold that. When it does not, Linux's VXLAN (DF clear by default) fragments the
 * outer packets: large frames still arrive, slower, and are lost where the path drops fragments.
 * So preflight and info report it with the fix, and do not refuse.
 */
import type { LinkSpec } from '../model/spec.js';

/** The guest MTU unless the topology sets one: Ethernet's. */
export const DEFAULT_GUEST_MTU = 1500;

/** What carries the tunnels between pods. */
export type OuterNetwork = 'ipv4' | 'ipv4-vlan' | 'ipv6' | 'ipv6-vlan';

/** Bytes VXLAN adds to a guest packet, per outer network. */
export const VXLAN_OVERHEAD: Readonly<Record<OuterNetwork, number>> = { ipv4: 50, 'ipv4-vlan': 54, ipv6: 70, 'ipv6-vlan': 74 };

/** Below this an IPv4 guest stops working (RFC 791's minimum datagram every host must take). */
const MIN_GUEST_MTU = 576;

/**
 * The guest MTU of a link: the link's own `mtu` where a topology sets one, else 1500.
 *
 * ```ts
 * guestMtu(spec.links[0]); // 1500
 * ```
 */
export function guestMtu(link: LinkSpec | undefined): number {
  const m = (link as { mtu?: unknown } | undefined)?.mtu;
  return typeof m === 'number' && Number.isInteger(m) && m > 0 ? m : DEFAULT_GUEST_MTU;
}

/**
 * The largest guest MTU a pod interface MTU carries without fragments.
 *
 * ```ts
 * maxGuestMtu(1500, 'ipv4'); // 1450
 * maxGuestMtu(1450, 'ipv4'); // 1400 (flannel's VXLAN underneath ours)
 * ```
 */
export function maxGuestMtu(podMtu: number, outer: OuterNetwork = 'ipv4'): number {
  return podMtu - VXLAN_OVERHEAD[outer];
}

/** The result of {@link checkMtu}. */
export type MtuCheck =
  | { ok: true; guestMtu: number; podMtu: number; overhead: number; headroom: number }
  | { ok: false; guestMtu: number; podMtu: number; overhead: number; problem: string; fix: string };

/**
 * Whether guest packets of `guestMtu` bytes fit, tunnelled, in a pod interface of `podMtu`.
 *
 * ```ts
 * checkMtu(1400, 1500, 'ipv4'); // { ok: true, headroom: 50, ... }
 * checkMtu(1500, 1500, 'ipv4').ok; // false: needs a pod MTU of 1550, or a guest MTU of 1450
 * ```
 */
export function checkMtu(guestMtu: number, podMtu: number, outer: OuterNetwork = 'ipv4'): MtuCheck {
  const overhead = VXLAN_OVERHEAD[outer];
  const need = guestMtu + overhead;
  if (need <= podMtu) return { ok: true, guestMtu, podMtu, overhead, headroom: podMtu - need };
  const max = podMtu - overhead;
  const lower =
    max >= MIN_GUEST_MTU
      ? `or lower the guest's MTU to ${max} (in the guest: ip link set dev eth0 mtu ${max}; or the link's mtu in the topology)`
      : `(a guest MTU of ${max} would be below IPv4's minimum of ${MIN_GUEST_MTU}, so the pod MTU must rise)`;
  return {
    ok: false,
    guestMtu,
    podMtu,
    overhead,
    problem: `guest MTU ${guestMtu} + ${overhead} bytes of VXLAN over ${outer} needs a pod MTU of ${need}, and the pod interface has ${podMtu}: larger frames are fragmented on the pod network, or lost where it drops fragments`,
    fix: `raise the pod network's MTU to ${need} or more (the CNI's mtu setting) ${lower}`,
  };
}
