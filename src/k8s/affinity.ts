/**
 * Where pods go: soft affinity toward the pods a node has links to, so tunnels stay on one host
 * where the resources allow (KNE spreads pods, and so maximises tunnels that cross hosts), and
 * an optional hard pin to a cluster node. Pure.
 */
import type { TopologySpec } from '../model/spec.js';
import { tunnels } from './links.js';
import { LABEL_NODE, podName } from './names.js';
import type { Affinity, WeightedPodAffinityTerm } from './types.js';

/** The node label the scheduler's topology domain and pins use: one domain per cluster node. */
export const HOSTNAME_KEY = 'kubernetes.io/hostname';
/** The scheduler's largest preferred-term weight. */
const MAX_WEIGHT = 100;

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
 * The pod's affinity: one preferred term per link peer (weight = the number of links to it, at
 * most 100; the scheduler normalises the sum per cluster node), and a required node affinity
 * when `pin` names a cluster node. Undefined when there is neither.
 *
 * ```ts
 * podAffinity(duo, 'violin')?.podAffinity?.preferredDuringSchedulingIgnoredDuringExecution[0];
 * // { weight: 1, podAffinityTerm: { labelSelector: { matchExpressions: [{ key: 'falcon.oxide/node', operator: 'In', values: ['piano'] }] }, topologyKey: 'kubernetes.io/hostname' } }
 * ```
 */
export function podAffinity(spec: TopologySpec, node: string, pin?: string): Affinity | undefined {
  const terms: WeightedPodAffinityTerm[] = [...linkPeers(spec, node)].map(([peer, links]) => ({
    weight: Math.min(links, MAX_WEIGHT),
    podAffinityTerm: {
      labelSelector: { matchExpressions: [{ key: LABEL_NODE, operator: 'In', values: [podName(peer)] }] },
      topologyKey: HOSTNAME_KEY,
    },
  }));
  const a: Affinity = {};
  if (pin !== undefined)
    a.nodeAffinity = { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: HOSTNAME_KEY, operator: 'In', values: [pin] }] }] } };
  if (terms.length) a.podAffinity = { preferredDuringSchedulingIgnoredDuringExecution: terms };
  return a.nodeAffinity || a.podAffinity ? a : undefined;
}
