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
 *
 * This file is the façade; each job has its own: planning (net-plan), ownership (net-ownership),
 * preflight (net-preflight), deciding what to do (net-actions), create (net-create), destroy
 * (net-destroy) and listing (net-list), over the kernel probes (net-kernel) and `ip`/`tc`
 * (net-ip).
 */
export type { NetworkProblem, KernelFeatures } from './net-kernel.js';
export { detectKernelFeatures, featureProblems, forgetKernelFeatures, netemReason } from './net-kernel.js';
export type { HostLink } from './net-ip.js';
export type { NetworkOptions, NetworkPlan, PlanOptions, PlannedInterface, PlannedMacvtap, PlannedTap } from './net-plan.js';
export { NetworkError, planNetwork } from './net-plan.js';
export type { Ownership } from './net-ownership.js';
export { ownershipOf } from './net-ownership.js';
export { checkNetworkPreflight } from './net-preflight.js';
export type { NetworkActions, NetworkState } from './net-actions.js';
export { networkActions, wireCommand } from './net-actions.js';
export type { CreateNetworkOptions, CreateNetworkResult, NetdevInfo } from './net-create.js';
export { createNetwork } from './net-create.js';
export type { DestroyNetworkResult } from './net-destroy.js';
export { destroyNetwork } from './net-destroy.js';
export type { TopologyInterfaceInfo } from './net-list.js';
export { listTopologyInterfaces } from './net-list.js';
