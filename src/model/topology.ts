import path from 'node:path';
import { TopologyError, TopologyFileError, TopologyValidationError, type TopologyProblem } from './errors.js';
import {
  TOPOLOGY_FILE_VERSION,
  endpointsOf,
  topologySpecSchema,
  type DiskSpec,
  type LinkSpec,
  type NodeSpec,
  type QemuDeviceSpec,
  type SmbiosType1,
  type SoftnpuOptions,
  type TopologySpec,
} from './spec.js';
import { SOFTNPU_DEFAULTS, npuPlans } from './softnpu.js';
import { directedImpairment, impairmentProblems, linkImpairmentProblems, type DirectedImpairment, type LinkImpairment } from './impair.js';
import { MAX_MOUNTS, coresProblem, hostIfxProblem, macProblem, memoryProblem, nameProblem, push, tcgCacheProblem } from './validate.js';
import { defaultDiskName, defaultDiskSerial, nodeDeviceProblems, nodeDiskProblems } from './devices.js';
import { diskDriveId } from './pci.js';
import { nicProblems } from './nics.js';

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

/** How upstream mounts a host folder in the guest: illumos' p9kp (`mount`) or Linux's 9p (`mount_linux`); the same here. */
export type GuestMountMechanism = 'p9kp' | 'mount';

/** A node handle or a node name. */
export type NodeRef = Node | string;

/**
 * A handle on an extra disk, returned by `disk()`: its node and name. Pass it as a
 * qemuDevice's `drive` to attach a bus 'none' disk yourself.
 */
export class Disk {
  constructor(
    readonly node: string,
    readonly name: string,
    /** @internal the topology that declared it */
    readonly topology: string,
  ) {}
  toString(): string {
    return `${this.node}/${this.name}`;
  }
}

export interface DiskOptions {
  /** Virtual size in GiB, a whole number from 1 to 16384; the file grows as the guest writes. */
  sizeGiB: number;
  /**
   * `nvme` (default; /dev/nvme0n1, nvme1n1, ... in declaration order), `virtio` (/dev/vdb,
   * vdc, ... after the boot disk), or `none`: created and kept like the others but attached
   * only by a `qemuDevice` whose `drive` is this disk.
   */
  bus?: 'nvme' | 'virtio' | 'none';
  /** What the guest reads as its serial, printable ASCII, at most 20 characters; default `<node>-<name>`. */
  serial?: string;
  /** Unique on the node, `[a-z0-9][a-z0-9_-]*`, up to 32 characters; default `disk0`, `disk1`, ... */
  name?: string;
}

/** A raw QEMU device: the driver and its properties, passed to `-device` as they are. */
export interface QemuDeviceOptions {
  driver: string;
  /** Properties; a `Disk` handle (for `drive`) stands for that disk's QEMU drive id. */
  [prop: string]: string | number | boolean | Disk;
}

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

  /**
   * The original's `mount_linux`: there it mounts with Linux's 9p client where `mount` uses
   * illumos' p9kp. Falcon's guests are Linux and `mount` already mounts with Linux's 9p, so
   * this is the same mount, saved the same way; it exists so upstream topologies port as is.
   *
   * ```ts
   * d.mountLinux('./cargo-bay', '/opt/cargo-bay', violin);
   * ```
   */
  mountLinux(source: string, destination: string, node: NodeRef): void {
    this.mount(source, destination, node);
  }

  /**
   * The original's `do_mount` with its mechanism: `'p9kp'` (upstream's `mount`) or `'mount'`
   * (upstream's `mount_linux`). Both are the same read-only 9p mount in Falcon's Linux guests.
   *
   * ```ts
   * d.doMount('./cargo-bay', '/opt/cargo-bay', violin, 'mount');
   * ```
   */
  doMount(source: string, destination: string, node: NodeRef, mechanism: GuestMountMechanism): void {
    if (mechanism !== 'p9kp' && mechanism !== 'mount')
      throw new TopologyError(`node "${typeof node === 'string' ? node : node.name}"`, `mount mechanism ${JSON.stringify(mechanism)} is unknown; use "p9kp" or "mount"`);
    this.mount(source, destination, node);
  }

  /**
   * Give `node` an extra disk: a blank qcow2 of `sizeGiB` GiB beside its boot disk, created at
   * launch and kept across hyperstop/hyperstart and relaunches until destroy. NVMe by default,
   * as omicron's and voxel's sleds have (docs/devices.md). Returns a handle; a bad option throws
   * a TopologyValidationError, a name the node already has a TopologyError.
   *
   * ```ts
   * d.disk(sled, { sizeGiB: 10 });                                    // /dev/nvme0n1, serial "sled-disk0"
   * d.disk(sled, { sizeGiB: 2, bus: 'virtio', name: 'scratch' });    // /dev/vdb
   * const raw = d.disk(sled, { sizeGiB: 1, bus: 'none' });           // for a qemuDevice's drive
   * ```
   */
  disk(node: NodeRef, options: DiskOptions): Disk {
    const s = this.spec(node);
    const disks = (s.disks ??= []);
    const name = options.name ?? defaultDiskName(disks.map((d) => d.name));
    if (disks.some((d) => d.name === name))
      throw new TopologyError(`node "${s.name}"`, `already has a disk named "${name}"; give each disk of a node its own name`);
    const d: DiskSpec = { name, sizeGiB: options.sizeGiB, bus: options.bus ?? 'nvme', serial: options.serial ?? defaultDiskSerial(s.name, name) };
    // The new disk's problems, and the node's disk count with it.
    const at = `nodes.${s.name}.disks`;
    const problems = nodeDiskProblems({ name: s.name, disks: [...disks, d] }).filter((p) => p.path === at || p.path.startsWith(`${at}[${disks.length}]`));
    if (problems.length) throw new TopologyValidationError(this.name, problems);
    disks.push(d);
    return new Disk(s.name, name, this.name);
  }

  /**
   * The escape hatch for what Falcon does not model (the original's `Node.components`): one
   * `-device driver,prop=value,...` on the node's QEMU command line, after Falcon's own devices,
   * values passed as they are (booleans as on/off, commas escaped). Checked now, so nothing
   * starts with a device that would take Falcon's backends, ids or PCI slots (docs/devices.md).
   *
   * ```ts
   * d.qemuDevice(sled, { driver: 'nvme', serial: 'u2-7', drive: d.disk(sled, { sizeGiB: 4, bus: 'none' }) });
   * d.qemuDevice(sled, { driver: 'pvpanic' });
   * d.qemuDevice(sled, { driver: 'e1000', addr: '0x11' }); // in the slot of an index reserved with bumpRadix
   * ```
   */
  qemuDevice(node: NodeRef, options: QemuDeviceOptions): void {
    const s = this.spec(node);
    const { driver, ...rest } = options;
    const props: QemuDeviceSpec['props'] = {};
    for (const [k, v] of Object.entries(rest)) props[k] = v instanceof Disk ? this.diskRef(s.name, v) : v;
    const dev: QemuDeviceSpec = { driver, props };
    const devices = s.devices ?? [];
    const at = `nodes.${s.name}.devices[${devices.length}]`;
    const problems = nodeDeviceProblems({ ...s, devices: [...devices, dev] }).filter((p) => p.path.startsWith(at));
    if (problems.length) throw new TopologyValidationError(this.name, problems);
    (s.devices ??= []).push(dev);
  }

  /**
   * The original's `bump_radix`: reserve the node's next NIC index for a device you bring
   * yourself and return it. The next link on the node gets the index after it; the reserved
   * index's PCI slot (0x10 + index) stays empty unless a qemuDevice takes it with `addr`, and
   * later NICs keep their slots. Tap names, altnames and MACs skip the index too.
   *
   * ```ts
   * d.link(sled, peer);                  // sled NIC 0
   * const i = d.bumpRadix(sled);         // 1: slot 0x11
   * d.link(sled, peer);                  // sled NIC 2
   * d.qemuDevice(sled, { driver: 'e1000', addr: `0x${(0x10 + i).toString(16)}` });
   * ```
   */
  bumpRadix(node: NodeRef): number {
    const s = this.spec(node);
    const reserved = (s.reservedNics ??= []);
    const index = endpointsOf(this.toSpec(), s.name).length + reserved.length;
    reserved.push(index);
    return index;
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
   * - `program`: `'sidecar-lite'`, `'sidecar-lite.p4'` (the same in P4), `'wire'` (ports 1
   *   and 2 joined), the path of a P4 program (`./router.p4`, compiled at preflight; see
   *   docs/p4.md), or the path of a module exporting `createPipeline(radix)` (relative paths
   *   are taken from the working directory);
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
    if (typeof p === 'string' && (p.includes('/') || /\.[cm]?[jt]s$/.test(p) || (p.endsWith('.p4') && p !== 'sidecar-lite.p4'))) merged.program = path.resolve(p);
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

  /** A disk handle as a drive id, checked to be a disk of `node` in this topology. */
  private diskRef(node: string, d: Disk): string {
    if (d.topology !== this.name || d.node !== node)
      throw new TopologyError(`node "${node}"`, `cannot attach disk "${d.name}" of node "${d.node}"${d.topology !== this.name ? ` in topology "${d.topology}"` : ''}; a qemuDevice attaches disks of its own node`);
    return diskDriveId(d.name);
  }
}

/** Semantic checks of a topology spec, all problems at once. */
export function validateSpec(spec: TopologySpec): TopologyProblem[] {
  const problems: TopologyProblem[] = [];
  push(problems, 'name', nameProblem('topology', spec.name));
  problems.push(...nodeProblems(spec), ...linkProblems(spec), ...switchProblems(spec), ...nicProblems(spec));
  return problems;
}

/** Every node's own settings: name, image, sizes, mounts, ports, disks and raw devices. */
function nodeProblems(spec: TopologySpec): TopologyProblem[] {
  const problems: TopologyProblem[] = [];
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
    problems.push(...mountProblems(n, p));
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
    problems.push(...nodeDiskProblems(n, p), ...nodeDeviceProblems(n, p));
  }
  return problems;
}

function mountProblems(n: NodeSpec, p: string): TopologyProblem[] {
  const problems: TopologyProblem[] = [];
  n.mounts.forEach((m, i) => {
    if (!m.destination.startsWith('/'))
      push(problems, `${p}.mounts[${i}]`, `destination "${m.destination}" must be an absolute path in the guest, like /opt/cargo-bay`);
    if (n.mounts.findIndex((o) => o.destination === m.destination) !== i)
      push(problems, `${p}.mounts[${i}]`, `destination "${m.destination}" is mounted twice; use one mount per guest folder`);
  });
  if (n.mounts.length > MAX_MOUNTS)
    push(problems, `${p}.mounts`, `has ${n.mounts.length} mounts; at most ${MAX_MOUNTS} fit on a node: mount a common parent folder instead`);
  return problems;
}

/** Every link: its ends, MACs, impairment, radix, host interfaces. */
function linkProblems(spec: TopologySpec): TopologyProblem[] {
  const problems: TopologyProblem[] = [];
  const declared = new Set(spec.nodes.map((n) => n.name));
  const macs = new Map<string, string>();
  const hostUse = new Map<string, { exclusive: boolean; at: string }>();
  spec.links.forEach((l, i) => {
    const p = `links[${i}]`;
    if (l.kind === 'link' && l.impair)
      for (const dir of ['ab', 'ba'] as const) if (l.impair[dir]) problems.push(...impairmentProblems(l.impair[dir], `${p}.impair.${dir}`));
    const ends = l.kind === 'ext' ? [l.a] : [l.a, l.b];
    for (const e of ends) {
      if (!declared.has(e.node)) push(problems, p, `node "${e.node}" is not declared in topology "${spec.name}"`);
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
  return problems;
}

/** SoftNPU switches (program, CPU port, ports) and sidecar drivers. */
function switchProblems(spec: TopologySpec): TopologyProblem[] {
  const problems: TopologyProblem[] = [];
  for (const np of npuPlans(spec)) {
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
