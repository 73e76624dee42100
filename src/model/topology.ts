import path from 'node:path';
import { TopologyError, TopologyFileError, TopologyValidationError, type TopologyProblem } from './errors.js';
import {
  TOPOLOGY_FILE_VERSION,
  endpoints,
  topologySpecSchema,
  type LinkSpec,
  type NodeSpec,
  type SmbiosType1,
  type SoftnpuOptions,
  type TopologySpec,
} from './spec.js';
import { SOFTNPU_DEFAULTS, npuPlans } from './softnpu.js';
import { directedImpairment, impairmentProblems, linkImpairmentProblems, type DirectedImpairment, type LinkImpairment } from './impair.js';
import { MAX_MOUNTS, MAX_NICS, coresProblem, hostIfxProblem, macProblem, memoryProblem, nameProblem, push, tcgCacheProblem } from './validate.js';

/** Memory sizes are in MiB, as in the original. */
export const gb = (n: number): number => n * 1024;
export const mb = (n: number): number => n;

/** A handle on a declared node, returned by `node()`. */
export class Node {
  constructor(
    readonly name: string,
    /** Declaration order; the original's node id. */
    readonly id: number,
    /** @internal the topology that declared it */
    readonly topology: string,
  ) {}
  toString(): string {
    return this.name;
  }
}

/** A node handle or a node name. */
export type NodeRef = Node | string;

export interface LinkOptions {
  /** MAC of the interface on `a`; stable per topology, node and index when absent. */
  macA?: string;
  /** MAC of the interface on `b`. */
  macB?: string;
  /**
   * Make the link bad on purpose: delay, jitter, loss, duplication, corruption, reordering,
   * rate. The fields apply to both directions; `aToB`/`bToA` to one. Change it while the
   * topology runs with `impair()`. Checked here: a bad value throws at once.
   *
   * ```ts
   * d.link(violin, piano, { impair: { delayMs: 100, lossPct: 10 } });
   * d.link(a, b, { impair: { rateMbit: 10, bToA: { delayMs: 20 } } });
   * ```
   */
  impair?: LinkImpairment;
}

/**
 * A topology as pure data: nodes, links, mounts. Declaring things never touches the host;
 * `validate()` reports every problem at once. `Runner` adds the operations that do.
 */
export class Topology {
  /** Set once, except by a runner that adopts a saved topology (the generic CLI). */
  protected topologyName: string;
  protected readonly nodes = new Map<string, NodeSpec>();
  protected readonly links: LinkSpec[] = [];

  constructor(name: string) {
    this.topologyName = name;
  }

  /** The topology's name: host interfaces, disks and messages are named after it. */
  get name(): string {
    return this.topologyName;
  }

  /** Declare a VM: `memoryMiB` in MiB (use `gb(2)` or `mb(512)`). */
  node(name: string, image: string, cores: number, memoryMiB: number): Node {
    if (this.nodes.has(name)) {
      throw new TopologyError(`topology "${this.name}"`, `already has a node named "${name}"; give each node a unique name`);
    }
    const id = this.nodes.size;
    this.nodes.set(name, { name, id, image, cores, memoryMiB, mounts: [], backing: 'overlay', doSetup: true });
    return new Node(name, id, this.name);
  }

  /** A point-to-point link between two nodes. Interfaces appear in the guests in declaration order. */
  link(a: NodeRef, b: NodeRef, options: LinkOptions = {}): void {
    const at = `links[${this.links.length}].impair`;
    let impair: DirectedImpairment | undefined;
    if (options.impair !== undefined) {
      const problems = linkImpairmentProblems(options.impair, at);
      if (problems.length) throw new TopologyValidationError(this.name, problems);
      impair = directedImpairment(options.impair);
    }
    this.links.push({
      kind: 'link',
      a: { node: this.ref(a), mac: options.macA },
      b: { node: this.ref(b), mac: options.macB },
      ...(impair && (impair.ab || impair.ba) ? { impair } : {}),
    });
  }

  /** Put `node` on host interface `hostIfx`, shared with the host and other nodes (macvtap bridge). */
  extLink(hostIfx: string, node: NodeRef, mac?: string): void {
    this.links.push({ kind: 'ext', a: { node: this.ref(node), mac }, hostIfx, exclusive: false });
  }

  /** Give `node` the host interface `hostIfx` to itself (macvtap passthru). */
  extLinkExclusive(hostIfx: string, node: NodeRef, mac?: string): void {
    this.links.push({ kind: 'ext', a: { node: this.ref(node), mac }, hostIfx, exclusive: true });
  }

  /** Put `node` on the interface of the host's default route, found at launch. */
  defaultExtLink(node: NodeRef, mac?: string): void {
    this.links.push({ kind: 'ext', a: { node: this.ref(node), mac }, hostIfx: null, exclusive: false });
  }

  /** Mount host folder `source` read-only at `destination` in the guest (virtio-9p). */
  mount(source: string, destination: string, node: NodeRef): void {
    this.spec(node).mounts.push({ source: path.resolve(source), destination });
  }

  /** Give the node's disk a virtual size of `gib` GiB. */
  reserve(node: NodeRef, gib: number): void {
    this.spec(node).reserveGiB = gib;
  }

  /** `overlay` (default): a copy-on-write overlay on the base image; `copy`: a full copy. */
  setBacking(node: NodeRef, backing: 'overlay' | 'copy'): void {
    this.spec(node).backing = backing;
  }

  setVncPort(node: NodeRef, port: number): void {
    this.spec(node).vncPort = port;
  }

  /**
   * Cap QEMU's TCG translation cache (translated guest code) at `mib` MiB, for hosts short of
   * memory: 32 saves ~30 MiB of host memory per node for ~6 % longer boots (docs/performance.md).
   * QEMU's default is 1 GiB, of which a tiny node touches ~60 MiB. Ignored under KVM.
   */
  setTcgCacheSize(node: NodeRef, mib: number): void {
    this.spec(node).tcgCacheMiB = mib;
  }

  /** Attach an ISO as a CD-ROM that the node boots first. */
  setBootIso(node: NodeRef, iso: string): void {
    this.spec(node).bootIso = path.resolve(iso);
  }

  /** Whether Falcon sets up the guest at launch (hostname, /etc/hosts, mounts). Default true. */
  doSetup(node: NodeRef, enabled: boolean): void {
    this.spec(node).doSetup = enabled;
  }

  setSmbiosType1(node: NodeRef, fields: SmbiosType1): void {
    this.spec(node).smbiosType1 = { ...fields };
  }

  /**
   * Options of the SoftNPU switch of `npu` (defaults: `{ program: 'sidecar-lite', cpuPort: 'raw' }`):
   * - `program`: `'sidecar-lite'`, `'wire'` (ports 1 and 2 joined), or the path of a module
   *   exporting `createPipeline(radix)` (relative paths are taken from the working directory);
   * - `cpuPort`: `'raw'`, one CPU NIC (the scrimlet's last) carrying frames with the sidecar
   *   header; `'tfports'`, one scrimlet NIC per switch port with the header removed, so the
   *   scrimlet's kernel answers ARP and ping for its addresses.
   *
   * ```ts
   * d.softnpu(scrimlet, { program: './my-program.ts', cpuPort: 'tfports' });
   * ```
   */
  softnpu(npu: NodeRef, options: Partial<SoftnpuOptions>): void {
    const s = this.spec(npu);
    const merged = { ...SOFTNPU_DEFAULTS, ...s.softnpu, ...options };
    const p = merged.program;
    // A module path is fixed now, like a mount source: later commands run from elsewhere.
    if (typeof p === 'string' && (p.includes('/') || /\.[cm]?[jt]s$/.test(p))) merged.program = path.resolve(p);
    s.softnpu = merged;
  }

  /**
   * Connect `node` to the next port of the SoftNPU switch of `npu`: port i is the npu's i-th
   * declared SoftNPU link (port 0 is the CPU port, a NIC of `npu`). The npu end is a switch
   * port, not a NIC of `npu`; `node` gets a NIC (MAC `nodeMac`) in its declaration order.
   * `npuMac` is the MAC of the scrimlet NIC standing for this port in `tfports` mode.
   */
  softnpuLink(npu: NodeRef, node: NodeRef, nodeMac?: string, npuMac?: string): void {
    this.links.push({
      kind: 'softnpu',
      a: { node: this.ref(npu), mac: npuMac },
      b: { node: this.ref(node), mac: nodeMac },
      bIsNpu: false,
    });
  }

  /** Join the next ports of two SoftNPU switches (no NICs: the switches are joined directly). */
  softnpuLinks(a: NodeRef, b: NodeRef, macA?: string, macB?: string): void {
    this.links.push({ kind: 'softnpu', a: { node: this.ref(a), mac: macA }, b: { node: this.ref(b), mac: macB }, bIsNpu: true });
  }

  /**
   * Sidecar CPU-port link: `sidecar` first, then its `driver`; `radix` is the sidemux's port
   * count. The driver gets `radix` NICs (in its declaration order); the sidecar one NIC. A
   * switch process running the `sidemux` program joins them: a frame the driver sends on its
   * NIC p reaches the sidecar with a sidecar header (code 0, egress p); a frame from the
   * sidecar with code 1 and ingress p reaches the driver's NIC p, header removed.
   */
  sidecarLink(sidecar: NodeRef, driver: NodeRef, radix: number): void {
    this.links.push({ kind: 'sidecar', a: { node: this.ref(sidecar) }, b: { node: this.ref(driver) }, radix });
  }

  /** The node called `name`, if declared. */
  findNode(name: string): Node | undefined {
    const s = this.nodes.get(name);
    return s && new Node(s.name, s.id, this.name);
  }

  /** The node called `name`; throws naming the nodes there are. */
  getNode(name: string): Node {
    const n = this.findNode(name);
    if (!n) throw new TopologyError(`topology "${this.name}"`, `has no node "${name}"; its nodes are: ${this.nodeNames().join(', ') || '(none)'}`);
    return n;
  }

  allNodes(): Node[] {
    return [...this.nodes.values()].map((s) => new Node(s.name, s.id, this.name));
  }

  nodeNames(): string[] {
    return [...this.nodes.keys()];
  }

  /** Every problem with the topology; empty when it is valid. Pure: no host checks. */
  problems(): TopologyProblem[] {
    return validateSpec(this.toSpec());
  }

  /** Throws a `TopologyValidationError` listing every problem. */
  validate(): void {
    const problems = this.problems();
    if (problems.length) throw new TopologyValidationError(this.name, problems);
  }

  toSpec(): TopologySpec {
    return structuredClone({
      version: TOPOLOGY_FILE_VERSION,
      name: this.name,
      nodes: [...this.nodes.values()],
      links: this.links,
    });
  }

  /** Rebuild a topology from its saved form. */
  static fromSpec(spec: TopologySpec): Topology {
    const t = new Topology(spec.name);
    for (const n of spec.nodes) t.nodes.set(n.name, structuredClone(n));
    t.links.push(...structuredClone(spec.links));
    return t;
  }

  private ref(n: NodeRef): string {
    const name = typeof n === 'string' ? n : n.name;
    if (typeof n !== 'string' && n.topology !== this.name) {
      throw new TopologyError(`topology "${this.name}"`, `node "${name}" belongs to topology "${n.topology}"; use a node declared on this runner`);
    }
    if (!this.nodes.has(name)) {
      throw new TopologyError(`topology "${this.name}"`, `has no node "${name}"; declare it with node() first`);
    }
    return name;
  }

  private spec(n: NodeRef): NodeSpec {
    return this.nodes.get(this.ref(n))!;
  }
}

/** Semantic checks of a topology spec, all problems at once. */
export function validateSpec(spec: TopologySpec): TopologyProblem[] {
  const problems: TopologyProblem[] = [];
  push(problems, 'name', nameProblem('topology', spec.name));
  const seenNodes = new Set<string>();
  const vnc = new Map<number, string>();
  for (const n of spec.nodes) {
    const p = `nodes.${n.name}`;
    push(problems, p, nameProblem('node', n.name));
    if (seenNodes.has(n.name)) push(problems, p, `duplicate node name "${n.name}"; give each node a unique name`);
    seenNodes.add(n.name);
    if (!n.image) push(problems, `${p}.image`, 'image name is empty; name a base image such as "tiny"');
    push(problems, `${p}.cores`, coresProblem(n.cores));
    push(problems, `${p}.memoryMiB`, memoryProblem(n.memoryMiB));
    n.mounts.forEach((m, i) => {
      if (!m.destination.startsWith('/'))
        push(problems, `${p}.mounts[${i}]`, `destination "${m.destination}" must be an absolute path in the guest, like /opt/cargo-bay`);
      if (n.mounts.findIndex((o) => o.destination === m.destination) !== i)
        push(problems, `${p}.mounts[${i}]`, `destination "${m.destination}" is mounted twice; use one mount per guest folder`);
    });
    if (n.reserveGiB !== undefined && (!Number.isInteger(n.reserveGiB) || n.reserveGiB < 1 || n.reserveGiB > 16384))
      push(problems, `${p}.reserveGiB`, `reserve is ${n.reserveGiB} GiB; give a whole number of GiB from 1 to 16384`);
    if (n.vncPort !== undefined) {
      if (!Number.isInteger(n.vncPort) || n.vncPort < 5900 || n.vncPort > 65535)
        push(problems, `${p}.vncPort`, `VNC port ${n.vncPort} is out of range; use 5900-65535`);
      else if (vnc.has(n.vncPort))
        push(problems, `${p}.vncPort`, `VNC port ${n.vncPort} is also used by node "${vnc.get(n.vncPort)}"; give each node its own port`);
      else vnc.set(n.vncPort, n.name);
    }
    if (n.tcgCacheMiB !== undefined) push(problems, `${p}.tcgCacheMiB`, tcgCacheProblem(n.tcgCacheMiB));
    const uuid = n.smbiosType1?.uuid;
    if (uuid !== undefined && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(uuid))
      push(problems, `${p}.smbiosType1.uuid`, `"${uuid}" is not a UUID; write it like 123e4567-e89b-12d3-a456-426614174000`);
    if (n.mounts.length > MAX_MOUNTS)
      push(problems, `${p}.mounts`, `has ${n.mounts.length} mounts; at most ${MAX_MOUNTS} fit on a node: mount a common parent folder instead`);
  }

  const macs = new Map<string, string>();
  const hostUse = new Map<string, { exclusive: boolean; at: string }>();
  spec.links.forEach((l, i) => {
    const p = `links[${i}]`;
    if (l.kind === 'link' && l.impair)
      for (const dir of ['ab', 'ba'] as const) if (l.impair[dir]) problems.push(...impairmentProblems(l.impair[dir], `${p}.impair.${dir}`));
    const ends = l.kind === 'ext' ? [l.a] : [l.a, l.b];
    for (const e of ends) {
      if (!seenNodes.has(e.node)) push(problems, p, `node "${e.node}" is not declared in topology "${spec.name}"`);
      if (e.mac !== undefined) {
        const bad = macProblem(e.mac);
        push(problems, `${p}.${e === l.a ? 'a' : 'b'}.mac`, bad);
        const key = e.mac.toLowerCase();
        if (!bad && macs.has(key)) push(problems, `${p}.mac`, `MAC ${e.mac} is also used at ${macs.get(key)}; MACs must be unique`);
        macs.set(key, p);
      }
    }
    if (l.kind !== 'ext' && l.a.node === l.b.node)
      push(problems, p, `${l.kind} from node "${l.a.node}" to itself; connect two different nodes`);
    if (l.kind === 'sidecar' && (!Number.isInteger(l.radix) || l.radix < 1 || l.radix > 64))
      push(problems, `${p}.radix`, `sidecar radix is ${l.radix}; give a whole number of ports from 1 to 64`);
    if (l.kind === 'ext') {
      const ifx = l.hostIfx ?? '(default route)';
      if (l.hostIfx !== null) push(problems, `${p}.hostIfx`, hostIfxProblem(l.hostIfx));
      const prev = hostUse.get(ifx);
      if (prev && (prev.exclusive || l.exclusive)) {
        push(
          problems,
          p,
          `host interface ${ifx} is used exclusively and also by ${prev.at} (ExternalNicReused); an exclusive external link must be the interface's only user`,
        );
      }
      hostUse.set(ifx, { exclusive: l.exclusive || (prev?.exclusive ?? false), at: `${p} (node "${l.a.node}")` });
    }
  });
  const plans = npuPlans(spec);
  for (const np of plans) {
    const p = `nodes.${np.npu}.softnpu`;
    const o = np.options as { program: unknown; cpuPort: unknown };
    if (typeof o.program !== 'string' || !o.program)
      push(problems, `${p}.program`, `program is ${JSON.stringify(o.program)}; name a built-in program ("sidecar-lite", "wire") or the path of a module exporting createPipeline(radix)`);
    else if (o.program.includes('/') && !path.isAbsolute(o.program))
      push(problems, `${p}.program`, `program path "${o.program}" is relative; give an absolute path (softnpu() resolves relative ones)`);
    if (o.cpuPort !== 'raw' && o.cpuPort !== 'tfports')
      push(problems, `${p}.cpuPort`, `cpuPort is ${JSON.stringify(o.cpuPort)}; use "raw" (one CPU NIC with sidecar headers) or "tfports" (one NIC per switch port)`);
    if (np.radix === 0)
      push(problems, p, `node "${np.npu}" has SoftNPU options but no SoftNPU link; add softnpuLink(${np.npu}, node) or drop the options`);
    if (o.program === 'wire' && np.radix !== 2)
      push(problems, `${p}.program`, `the wire program joins ports 1 and 2, but node "${np.npu}" has ${np.radix} SoftNPU link${np.radix === 1 ? '' : 's'}; give it exactly two`);
  }
  const drivers = new Map<string, number>();
  spec.links.forEach((l, i) => {
    if (l.kind !== 'sidecar') return;
    const prev = drivers.get(l.b.node);
    if (prev !== undefined)
      push(problems, `links[${i}]`, `node "${l.b.node}" already drives the sidecar link links[${prev}]; a driver has one sidemux: give this link another driver`);
    else drivers.set(l.b.node, i);
  });
  // Interface counts are bounded by the PCI slots a node has for NICs.
  const perNode = new Map<string, number>();
  for (const e of endpoints(spec)) perNode.set(e.node, (perNode.get(e.node) ?? 0) + 1);
  for (const np of plans) perNode.set(np.npu, (perNode.get(np.npu) ?? 0) + np.cpuNics.length);
  for (const [node, count] of perNode)
    if (count > MAX_NICS) push(problems, `nodes.${node}`, `has ${count} interfaces; at most ${MAX_NICS} fit on a node`);
  return problems;
}

/** Parse and check a saved topology; a clear error for a corrupt, truncated or foreign file. */
export function parseTopologyFile(text: string, file: string): TopologySpec {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new TopologyFileError(
      `${file} is not valid JSON (${(e as Error).message}); it may be truncated. Re-run the topology's launch or preflight to rewrite it, or destroy and relaunch.`,
    );
  }
  const v = (raw as { version?: unknown } | null)?.version;
  if (v !== TOPOLOGY_FILE_VERSION) {
    throw new TopologyFileError(
      `${file} has format version ${JSON.stringify(v)}, this Falcon reads version ${TOPOLOGY_FILE_VERSION}; re-run the topology's preflight with this Falcon to rewrite it`,
    );
  }
  const r = topologySpecSchema.safeParse(raw);
  if (!r.success) {
    const lines = r.error.issues.slice(0, 10).map((i) => `  - ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new TopologyFileError(`${file} is damaged:\n${lines.join('\n')}\nRe-run the topology's preflight to rewrite it.`);
  }
  const problems = validateSpec(r.data);
  if (problems.length) throw new TopologyValidationError(r.data.name, problems);
  return r.data;
}
