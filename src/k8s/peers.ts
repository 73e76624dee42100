/**
 * What each pod's tunnels point at: for every pod, its links' peer pod IPs (the request
 * `falcon-node ctl peers` takes). Pure.
 */
import type { TopologySpec } from '../model/spec.js';
import { tunnels } from './links.js';

/**
 * Link index → peer pod IP, per pod, for the pods whose IPs are known. A tunnel with an end whose
 * pod has no IP is left out on both sides (pointed once that pod has one).
 *
 * ```ts
 * peerMaps(duo, new Map([['violin', '10.244.1.5'], ['piano', '10.244.2.7']]));
 * // Map { 'violin' => { '0': '10.244.2.7' }, 'piano' => { '0': '10.244.1.5' } }
 * ```
 */
export function peerMaps(spec: TopologySpec, podIps: ReadonlyMap<string, string>): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  const add = (pod: string, link: number, ip: string) => {
    const m = out.get(pod) ?? {};
    m[String(link)] = ip;
    out.set(pod, m);
  };
  for (const t of tunnels(spec)) {
    const [ia, ib] = [podIps.get(t.a.pod), podIps.get(t.b.pod)];
    if (!ia || !ib) continue;
    add(t.a.pod, t.link, ib);
    add(t.b.pod, t.link, ia);
  }
  return out;
}

/**
 * The pods whose tunnels reach `pod`: what must be pointed again when `pod` comes back with a
 * new IP.
 *
 * ```ts
 * tunnelNeighbours(softnpu, 'scrimlet'); // ['gc1', 'gc2']
 * ```
 */
export function tunnelNeighbours(spec: TopologySpec, pod: string): string[] {
  const out = new Set<string>();
  for (const t of tunnels(spec)) {
    if (t.a.pod === pod && t.b.pod !== pod) out.add(t.b.pod);
    if (t.b.pod === pod && t.a.pod !== pod) out.add(t.a.pod);
  }
  return [...out];
}
