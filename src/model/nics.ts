/**
 * How many NICs a node has and which indexes: its links' endpoints, the indexes it reserved
 * with `bumpRadix`, then its SoftNPU CPU NICs. NIC index i sits at PCI slot 0x10 + i (pci.ts).
 */
import type { TopologyProblem } from './errors.js';
import { MAX_NICS } from './pci.js';
import { npuPlans } from './softnpu.js';
import { endpoints, linkNicCount, type TopologySpec } from './spec.js';
import { push } from './validate.js';

/**
 * The node's radix as the original counts it: every NIC index it has, reserved ones included
 * (what `info` reports and what the next `bumpRadix` after the CPU NICs would return).
 *
 * ```ts
 * d.link(a, b); d.bumpRadix(a); d.link(a, c);
 * nicCount(d.toSpec(), 'a'); // 3: eth0, the reserved index 1, eth2
 * ```
 */
export function nicCount(spec: TopologySpec, node: string): number {
  const cpu = npuPlans(spec).find((p) => p.npu === node)?.cpuNics.length ?? 0;
  return linkNicCount(spec, node) + cpu;
}

/**
 * Reserved indexes that are not whole, repeat, or leave a gap no link fills; nodes with too many NICs.
 *
 * ```ts
 * nicProblems(spec); // [] when every node's NICs fit
 * ```
 */
export function nicProblems(spec: TopologySpec): TopologyProblem[] {
  const problems: TopologyProblem[] = [];
  const links = new Map<string, number>();
  for (const e of endpoints(spec)) links.set(e.node, (links.get(e.node) ?? 0) + 1);
  for (const n of spec.nodes) {
    const reserved = n.reservedNics ?? [];
    const total = (links.get(n.name) ?? 0) + reserved.length;
    reserved.forEach((r, i) => {
      const at = `nodes.${n.name}.reservedNics[${i}]`;
      if (!Number.isInteger(r) || r < 0) push(problems, at, `reserved NIC index ${r} is not a whole number from 0; bumpRadix() records the index it returns`);
      else if (reserved.indexOf(r) !== i) push(problems, at, `NIC index ${r} is reserved twice; reserve each index once`);
      else if (r >= total)
        push(problems, at, `reserved NIC index ${r} is past the node's ${total} interface${total === 1 ? '' : 's'}; bumpRadix() reserves the next index, so remove this one or add links before it`);
    });
  }
  for (const n of spec.nodes) {
    const count = nicCount(spec, n.name);
    if (count > MAX_NICS)
      push(problems, `nodes.${n.name}`, `has ${count} interfaces (reserved ones included); at most ${MAX_NICS} fit on a node (PCI slots 0x10-0x1f)`);
  }
  return problems;
}
