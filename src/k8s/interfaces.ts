/**
 * What `info`, `graph` and `capture` show for a link end on a cluster. A local topology's taps
 * are host interfaces with host-unique names (`fn<hash>e<i>`); on a cluster they live in the
 * node's pod, so a link end is named by where it is: `<namespace>/<pod>:<device>` (the tap
 * `nic<i>` of NIC i, or `swp<link>` for a switch port), with its VXLAN device and VNI beside
 * it. The tap keeps the original's altname inside the pod (`kubectl exec -n falcon-duo violin
 * -- ip link show duo_violin_vn_sim0` works), and a capture is a tcpdump on the tap in the pod.
 */
import type { TopologySpec } from '../model/spec.js';
import { tunnels, type TunnelEnd } from './links.js';

/** One end of a tunnelled link, as info reports it: LinkEndInfo's fields and where it is. */
export interface PodInterface {
  node: string;
  /** The NIC's index in the guest; -1 for a switch port. */
  index: number;
  /** `<namespace>/<pod>:<device>`, where the local backend shows a host interface name. */
  ifname: string;
  altname: string;
  mac: string;
  /** A switch end: the switch port (0 for a sidemux's port 0). */
  port?: number;
  namespace: string;
  pod: string;
  /** The tap in the pod. */
  device: string;
  vxlan: string;
  vni: number;
  link: number;
}

/**
 * The name info shows for a device in a pod.
 *
 * ```ts
 * podIfname('falcon-duo', 'violin', 'nic0'); // 'falcon-duo/violin:nic0'
 * ```
 */
export function podIfname(namespace: string, pod: string, device: string): string {
  return `${namespace}/${pod}:${device}`;
}

function describe(e: TunnelEnd, namespace: string, link: number, vni: number): PodInterface {
  const nic = e.attach.kind === 'nic' ? e.attach : undefined;
  const out: PodInterface = {
    node: e.node,
    index: nic ? nic.index : -1,
    ifname: podIfname(namespace, e.pod, e.tap),
    altname: e.altname ?? '',
    mac: nic ? nic.mac : '',
    namespace,
    pod: e.pod,
    device: e.tap,
    vxlan: e.vxlan,
    vni,
    link,
  };
  if (e.attach.kind === 'switch-port') out.port = e.attach.port;
  return out;
}

/**
 * Both ends of every tunnelled link, by link index.
 *
 * ```ts
 * k8sLinkEnds(duo, 'falcon-duo').get(0)?.a.ifname; // 'falcon-duo/violin:nic0'
 * ```
 */
export function k8sLinkEnds(spec: TopologySpec, namespace: string): Map<number, { a: PodInterface; b: PodInterface }> {
  return new Map(tunnels(spec).map((t) => [t.link, { a: describe(t.a, namespace, t.link, t.vni), b: describe(t.b, namespace, t.link, t.vni) }]));
}

/**
 * Every tunnel end of the topology, link by link (a then b), as info lists interfaces.
 *
 * ```ts
 * podInterfaces(duo, 'falcon-duo').map((i) => i.ifname); // ['falcon-duo/violin:nic0', 'falcon-duo/piano:nic0']
 * ```
 */
export function podInterfaces(spec: TopologySpec, namespace: string): PodInterface[] {
  return [...k8sLinkEnds(spec, namespace).values()].flatMap((e) => [e.a, e.b]);
}
