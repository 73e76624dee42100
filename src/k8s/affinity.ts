/**
 * Where pods go: soft affinity toward the pods a node has links to, so tunnels stay on one host
 * where the resources allow (KNE spreads pods, and so maximises tunnels that cross hosts), a
 * weaker soft anti-affinity toward the topology's other pods, so a topology spreads over the
 * cluster where its links let it (a node with one peer there and nothing else follows it; one
 * whose peer's host is full of unrelated nodes goes elsewhere), and an optional hard pin to a
 * cluster node. Pure.
 *
 * The scheduler adds, per cluster node, the weights of the terms its pods match: each link to a
 * pod there counts {@link PEER_WEIGHT}, each other pod of the topology there -1 (its own peers
 * included, so a host with one peer and one stranger is neutral).
 */
import type { TopologySpec } from '../model/spec.js';
import { tunnels } from './links.js';
import { k8sName, LABEL_NODE, LABEL_TOPOLOGY, podName } from './names.js';
import type { Affinity, WeightedPodAffinityTerm } from './types.js';

/** The node label the scheduler's topology domain and pins use: one domain per cluster node. */
export const HOSTNAME_KEY = 'kubernetes.io/hostname';
/** The scheduler's largest preferred-term weight. */
const MAX_WEIGHT = 100;
/** A link to a pod on a cluster node counts this much toward it; another pod of the topology there, 1 against. */
export const PEER_WEIGHT = 2;

/**
 * The nodes `node` has tunnels to, with how many, in the order their first link was declared.
 *
 * ```ts
 * linkPeers(softnpu, 'scrimlet'); // Map { 'gc1' => 1, 'gc2' => 1 }
 * ```
 */
export function linkPeers(spec: TopologySpec, node: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const t of tunnels(spec)) {
    const peer = t.a.node === node ? t.b.node : t.b.node === node ? t.a.node : undefined;
    if (peer !== undefined && peer !== node) out.set(peer, (out.get(peer) ?? 0) + 1);
  }
  return out;
}

/**
 * The pod's affinity: one preferred term per link peer (weight = 2 × the links to it, at
 * most 100), one preferred anti-affinity
 * term toward the topology's pods (weight 1), both only for a node with peers (the scheduler
 * normalises the sums per cluster node); and a required node affinity
 * when `pin` names a cluster node. Undefined when there is neither.
 *
 * ```ts
 * podAffinity(duo, 'violin')?.podAffinity?.preferredDuringSchedulingIgnoredDuringExecution[0];
 * // { weight: 2, podAffinityTerm: { labelSelector: { matchExpressions: [{ key: 'falcon.oxide/node', operator: 'In', values: ['piano'] }] }, topologyKey: 'kubernetes.io/hostname' } }
 * ```
 */
export function podAffinity(spec: TopologySpec, node: string, pin?: string): Affinity | undefined {
  const terms: WeightedPodAffinityTerm[] = [...linkPeers(spec, node)].map(([peer, links]) => ({
    weight: Math.min(links * PEER_WEIGHT, MAX_WEIGHT),
    podAffinityTerm: {
      labelSelector: { matchExpressions: [{ key: LABEL_NODE, operator: 'In', values: [podName(peer)] }] },
      topologyKey: HOSTNAME_KEY,
    },
  }));
  const a: Affinity = {};
  if (pin !== undefined)
    a.nodeAffinity = { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: HOSTNAME_KEY, operator: 'In', values: [pin] }] }] } };
  if (terms.length) {
    a.podAffinity = { preferredDuringSchedulingIgnoredDuringExecution: terms };
    a.podAntiAffinity = {
      preferredDuringSchedulingIgnoredDuringExecution: [
        { weight: 1, podAffinityTerm: { labelSelector: { matchExpressions: [{ key: LABEL_TOPOLOGY, operator: 'In', values: [k8sName(spec.name)] }] }, topologyKey: HOSTNAME_KEY } },
      ],
    };
  }
  return a.nodeAffinity || a.podAffinity ? a : undefined;
}
