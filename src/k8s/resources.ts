/**
 * What a node's pod asks the scheduler for: the node's cores and memory, plus what QEMU and
 * Falcon's own processes in the pod take beside the guest. Requests only, no limits: a memory
 * limit would OOM-kill a VM whose QEMU outgrew an estimate, and a CPU limit would throttle
 * vCPUs mid-instruction stream (KubeVirt requests and does not limit, for the same reasons).
 *
 * The memory overhead, from docs/performance.md's measurements of an idle `tiny` node
 * (`/proc/PID/smaps`: QEMU itself 48-49 MiB, kernel/initrd mappings 59 MiB, TCG code 56-62 MiB):
 *
 * | part | MiB | why |
 * | --- | --- | --- |
 * | QEMU itself | 64 | measured 49, rounded up: device models, I/O buffers, firmware |
 * | boot files | 64 | measured 59: the mapped kernel and initrd; on one host the page cache shares them between nodes, in a pod each pod's copy is charged to it |
 * | TCG code cache | min(tb-size, 128) | TCG only: measured 56-62 for a boot and a few commands; 128 leaves room for busier guests, and `setTcgCacheSize` bounds it |
 * | page tables | memory / 512 | KVM's and QEMU's per-page structures (KubeVirt's estimate) |
 * | per vCPU | 8 | vCPU thread stacks and state (KubeVirt's estimate) |
 * | falcon-node | 64 | the pod's Node.js program: exec and console relays, wiring |
 * | each switch | 64 (in its own container) | a SoftNPU switch or sidemux process (Node.js) |
 *
 * CPU: the node's cores (divided by `cpuAllocationRatio`), plus 100m for QEMU's main loop and
 * falcon-node, plus 250m per switch (it forwards every frame of its ports in JavaScript).
 */
import type { NodeSpec, TopologySpec } from '../model/spec.js';
import { podSwitches } from './links.js';

/** The overheads above, in MiB and milli-CPUs. */
export const OVERHEAD = {
  qemuMiB: 64,
  bootFilesMiB: 64,
  /** The cap of the TCG code cache's share: under TCG, min(tb-size, this). */
  tcgCodeMiB: 128,
  /** QEMU's own tb-size default. */
  tcgDefaultCacheMiB: 1024,
  pageTableDivisor: 512,
  perVcpuMiB: 8,
  falconNodeMiB: 64,
  switchMiB: 64,
  baseMilliCpu: 100,
  switchMilliCpu: 250,
} as const;

/** One container's requests, as numbers and as Kubernetes quantities. */
export interface ContainerRequests {
  milliCpu: number;
  memoryMiB: number;
  requests: { cpu: string; memory: string };
}

/** A node's pod: the main container (QEMU and falcon-node) and one container per switch. */
export interface PodResources {
  node: ContainerRequests;
  /** Per switch (container), by switch name. */
  switches: Record<string, ContainerRequests>;
  /** The main container's memory, part by part (MiB). */
  breakdown: { guest: number; qemu: number; bootFiles: number; tcgCode: number; pageTables: number; vcpus: number; falconNode: number };
  /** The whole pod's requests. */
  total: { milliCpu: number; memoryMiB: number };
}

function requests(milliCpu: number, memoryMiB: number): ContainerRequests {
  return { milliCpu, memoryMiB, requests: { cpu: `${milliCpu}m`, memory: `${memoryMiB}Mi` } };
}

/**
 * The main container's memory overhead beside the guest's own memory, part by part.
 *
 * ```ts
 * memoryOverhead({ cores: 1, memoryMiB: 1024 }, false).tcgCode; // 128
 * memoryOverhead({ cores: 1, memoryMiB: 1024 }, true).tcgCode;  // 0: KVM runs guest code natively
 * ```
 */
export function memoryOverhead(n: Pick<NodeSpec, 'cores' | 'memoryMiB' | 'tcgCacheMiB'>, kvm: boolean): Omit<PodResources['breakdown'], 'guest'> {
  return {
    qemu: OVERHEAD.qemuMiB,
    bootFiles: OVERHEAD.bootFilesMiB,
    tcgCode: kvm ? 0 : Math.min(n.tcgCacheMiB ?? OVERHEAD.tcgDefaultCacheMiB, OVERHEAD.tcgCodeMiB),
    pageTables: Math.ceil(n.memoryMiB / OVERHEAD.pageTableDivisor),
    vcpus: n.cores * OVERHEAD.perVcpuMiB,
    falconNode: OVERHEAD.falconNodeMiB,
  };
}

/**
 * A node's pod requests: cores / cpuAllocationRatio + 100m, memory + overhead; and 250m and
 * 64 MiB per switch container (the npu's switch, a driven sidecar link's sidemux).
 *
 * ```ts
 * const r = podResources(spec, 'violin', { kvm: false, cpuAllocationRatio: 1 });
 * r.node.requests; // { cpu: '1100m', memory: '1354Mi' } for 1 core, 1 GiB under TCG
 * ```
 */
export function podResources(spec: TopologySpec, node: string, o: { kvm: boolean; cpuAllocationRatio: number }): PodResources {
  const n = spec.nodes.find((x) => x.name === node);
  const cores = n?.cores ?? 1;
  const memoryMiB = n?.memoryMiB ?? 0;
  const over = memoryOverhead({ cores, memoryMiB, tcgCacheMiB: n?.tcgCacheMiB }, o.kvm);
  const breakdown = { guest: memoryMiB, ...over };
  const mem = Object.values(breakdown).reduce((s, x) => s + x, 0);
  const main = requests(Math.ceil((cores * 1000) / o.cpuAllocationRatio) + OVERHEAD.baseMilliCpu, mem);
  const switches: Record<string, ContainerRequests> = {};
  for (const s of podSwitches(spec, node)) switches[s.npu] = requests(OVERHEAD.switchMilliCpu, OVERHEAD.switchMiB);
  const all = [main, ...Object.values(switches)];
  return {
    node: main,
    switches,
    breakdown,
    total: { milliCpu: all.reduce((s, c) => s + c.milliCpu, 0), memoryMiB: all.reduce((s, c) => s + c.memoryMiB, 0) },
  };
}
