/** `info`: nodes and links with their host interfaces and MACs, and what is running. */
import { listTopologyInterfaces, type TopologyInterfaceInfo } from '../host/net.js';
import { vmPids } from '../host/qemu-vm.js';
import type { DirectedImpairment } from '../model/impair.js';
import { hostInterfaces } from '../model/naming.js';
import { nicCount } from '../model/nics.js';
import { switchPlans } from '../model/softnpu.js';
import type { TopologySpec } from '../model/spec.js';
import { netContext, type RunContext } from './context.js';
import type { K8sInfo } from './k8s/info-types.js';
import { currentImpairments } from './impairments.js';
import { readState, type RunState } from './state.js';
import type { LinkEndInfo, SwitchInfo } from './switches.js';
import { vmFiles } from './vm.js';

export interface NodeInfo {
  name: string;
  id: number;
  image: string;
  cores: number;
  memoryMiB: number;
  radix: number;
  mounts: { source: string; destination: string }[];
  /** Extra disks (`disk()`), in declaration order, with their qcow2 files. */
  disks: { name: string; sizeGiB: number; bus: 'nvme' | 'virtio' | 'none'; serial: string; path: string }[];
  /** Raw QEMU devices (`qemuDevice()`), passed to QEMU as is. */
  devices: { driver: string; props: Record<string, string | number | boolean> }[];
  /** NIC indexes reserved with `bumpRadix` (counted in `radix`; no link takes them). */
  reservedNics: number[];
  /** `pod gone`, `starting` and `failed` occur on a cluster only (the node's pod is gone, not yet running, or its node did not come up). */
  status: 'running' | 'stopped' | 'not launched' | 'pod gone' | 'starting' | 'failed';
  pid?: number;
}

export interface LinkInfo {
  kind: string;
  a: LinkEndInfo;
  b?: LinkEndInfo;
  hostIfx?: string | null;
  exclusive?: boolean;
  /** The impairment in force (declared, or set at runtime by `impair`), per direction: `ab` is what `a` sends. */
  impairment?: DirectedImpairment;
}

export interface TopologyInfo {
  name: string;
  falconDir: string;
  accel?: string;
  nodes: NodeInfo[];
  links: LinkInfo[];
  interfaces: TopologyInterfaceInfo[];
  /** The SoftNPU switch processes, one per npu node. */
  switches: SwitchInfo[];
  /** On a cluster: where the pods are and what they say (absent for the local backend). */
  backend?: K8sInfo;
}

/** What info says of a node from the topology alone, whatever the backend. */
export function declaredNodeInfo(spec: TopologySpec, n: TopologySpec['nodes'][number]): Omit<NodeInfo, 'disks' | 'status' | 'pid'> {
  return {
    name: n.name,
    id: n.id,
    image: n.image,
    cores: n.cores,
    memoryMiB: n.memoryMiB,
    radix: nicCount(spec, n.name),
    mounts: n.mounts,
    devices: (n.devices ?? []).map((d) => structuredClone(d)),
    reservedNics: [...(n.reservedNics ?? [])],
  };
}

async function nodeInfos(c: RunContext, spec: TopologySpec, state: RunState | undefined): Promise<NodeInfo[]> {
  return Promise.all(
    spec.nodes.map(async (n) => {
      const pids = state?.nodes[n.name] ? await vmPids(vmFiles(c.paths, n.name)) : [];
      return {
        ...declaredNodeInfo(spec, n),
        disks: c.store.extraDisks(spec.name, n).map(({ name, sizeGiB, bus, serial, path }) => ({ name, sizeGiB, bus, serial, path })),
        status: pids.length ? 'running' : state?.nodes[n.name]?.qemuArgs ? 'stopped' : 'not launched',
        pid: pids[0],
      } satisfies NodeInfo;
    }),
  );
}

/**
 * The switches' module (their processes, control client and programs), loaded only for a
 * topology that has switches: `info` of one without stays cheap to start.
 */
async function switchesOf(spec: TopologySpec): Promise<typeof import('./switches.js') | undefined> {
  const any = switchPlans(spec).length > 0 || spec.links.some((l) => l.kind === 'softnpu' || l.kind === 'sidecar');
  return any ? import('./switches.js') : undefined;
}

async function linkInfos(c: RunContext, spec: TopologySpec): Promise<LinkInfo[]> {
  const sws = await switchesOf(spec);
  const planned = hostInterfaces(spec);
  const impaired = await currentImpairments(spec, c.paths).catch(() => new Map<number, DirectedImpairment>());
  return spec.links.map((l, i) => {
    const sw = sws?.switchLinkEnds(spec, i, c.paths);
    if (sw) return { kind: l.kind, ...sw };
    const ends = planned.filter((p) => p.link === spec.links[i]);
    const e = (x: (typeof planned)[number]) => ({ node: x.node, index: x.index, ifname: x.ifname, altname: x.altname, mac: x.mac });
    return {
      kind: l.kind,
      a: e(ends[0]!),
      b: ends[1] ? e(ends[1]) : undefined,
      hostIfx: l.kind === 'ext' ? l.hostIfx : undefined,
      exclusive: l.kind === 'ext' ? l.exclusive : undefined,
      impairment: impaired.get(i),
    };
  });
}

export async function topologyInfo(c: RunContext, spec: TopologySpec): Promise<TopologyInfo> {
  const state = await readState(c.paths);
  const ifs = await listTopologyInterfaces(spec, netContext(c)).catch(() => []);
  return {
    name: spec.name,
    falconDir: c.paths.dir,
    accel: state?.accel,
    nodes: await nodeInfos(c, spec, state),
    links: await linkInfos(c, spec),
    interfaces: ifs,
    switches: (await (await switchesOf(spec))?.switchInfo(spec, c.paths)) ?? [],
  };
}
