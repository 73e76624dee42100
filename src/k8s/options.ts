/**
 * The k8s backend's options, as the runner is given them (`kubernetes({...})`, `--namespace`),
 * checked and completed with their defaults. Pure.
 */
import type { TopologySpec } from '../model/spec.js';
import { FalconError } from '../util/errors.js';
import { DEFAULT_VXLAN_PORT } from './links.js';
import { defaultBaseImageRef, defaultNamespace, defaultNodeImage, isDnsLabel, isImageRef } from './names.js';

/**
 * Where a pod's base image comes from:
 * - `init-container` (default, any cluster): an init container running the base image's OCI
 *   image (containerDisk layout, `/disk/<image>.qcow2` + `meta.json`) copies `/disk/` into the
 *   pod's image store with a static busybox staged from the falcon-node image, so the base image
 *   needs no shell.
 * - `image-volume`: the OCI image mounted read-only as a volume (Kubernetes 1.31+ with the
 *   ImageVolume feature; 1.33+ for its `subPath`), no copy.
 * - `pvc`: a PersistentVolumeClaim holding an image store (`<name>/meta.json`, ...), read-only.
 */
export type BaseImageSource = { from: 'init-container' } | { from: 'image-volume' } | { from: 'pvc'; claimName: string };

export interface K8sBackendOptions {
  /** Default `falcon-<topology>`. */
  namespace?: string;
  /** The falcon-node image; default `falcon.local/falcon-node:<version>`. */
  image?: string;
  /** Falcon's version, for the default `image` (package.json's). */
  version?: string;
  /** `Never` for images loaded into the nodes' runtimes (no registry); default `IfNotPresent`. */
  imagePullPolicy?: 'Never' | 'IfNotPresent';
  /** Mount `/dev/kvm` and run QEMU under KVM; default false (TCG: works on any node). */
  kvm?: boolean;
  /**
   * UDP port of the links' VXLAN tunnels in the pods; default 4789. A CNI that runs its own
   * VXLAN on 4789 may filter that port from pods (Calico drops VXLAN from workloads unless told
   * otherwise): pick another then (clabernetes uses 14789).
   */
  vxlanPort?: number;
  /**
   * vCPUs per requested CPU (KubeVirt's cpuAllocationRatio): a node of N cores requests N/ratio
   * CPUs. Default 10, KubeVirt's default (test VMs idle most of the time); 1 requests a whole
   * CPU per vCPU.
   */
  cpuAllocationRatio?: number;
  /** Default `{ from: 'init-container' }`. */
  baseImages?: BaseImageSource;
  /** OCI references of base images by Falcon image name; default {@link defaultBaseImageRef}. */
  baseImageRefs?: Record<string, string>;
  /** Pin nodes to cluster nodes (`kubernetes.io/hostname`), a required node affinity; others float. */
  placement?: Record<string, string>;
  /**
   * The P4 programs of switches whose program is a `.p4` file, by npu node: source and includes,
   * read by the runner at launch. P4 is data: it reaches the npu's pod in the ConfigMap.
   */
  p4Programs?: Record<string, P4ProgramFiles>;
}

/** A P4 program as the ConfigMap carries it: its file name, its source, its includes by relative path. */
export interface P4ProgramFiles {
  name: string;
  source: string;
  files: Record<string, string>;
}

/** vCPUs per requested CPU unless told otherwise: KubeVirt's default. */
export const DEFAULT_CPU_ALLOCATION_RATIO = 10;

/** {@link K8sBackendOptions} checked, every default filled in. */
export interface ResolvedK8sOptions {
  namespace: string;
  image: string;
  imagePullPolicy: 'Never' | 'IfNotPresent';
  kvm: boolean;
  vxlanPort: number;
  cpuAllocationRatio: number;
  baseImages: BaseImageSource;
  /** One entry per image the topology's nodes use. */
  baseImageRefs: Record<string, string>;
  placement: Record<string, string>;
  p4Programs: Record<string, P4ProgramFiles>;
}

function bad(option: string, value: unknown, takes: string): FalconError {
  return new FalconError('INVALID_ARGUMENT', `k8s backend option ${option} is ${JSON.stringify(value)}; ${takes}`);
}

function nodeImage(o: K8sBackendOptions): string {
  if (o.image !== undefined) {
    if (!isImageRef(o.image)) throw bad('image', o.image, 'give an image reference such as falcon.local/falcon-node:0.1.0');
    return o.image;
  }
  if (o.version === undefined) throw bad('image', undefined, 'give the falcon-node image, or Falcon\'s version for the default falcon.local/falcon-node:<version>');
  const ref = defaultNodeImage(o.version);
  if (!isImageRef(ref)) throw bad('version', o.version, 'give a version usable as an image tag, such as 0.1.0');
  return ref;
}

function baseRefs(spec: TopologySpec, o: K8sBackendOptions): Record<string, string> {
  const out: Record<string, string> = {};
  for (const image of [...new Set(spec.nodes.map((n) => n.image))].sort()) {
    const ref = o.baseImageRefs?.[image] ?? defaultBaseImageRef(image);
    if (!isImageRef(ref)) throw bad(`baseImageRefs.${image}`, ref, 'give an image reference such as falcon.local/images/tiny:latest');
    out[image] = ref;
  }
  return out;
}

function checkPlacement(spec: TopologySpec, placement: Record<string, string>): void {
  for (const [node, host] of Object.entries(placement)) {
    if (!spec.nodes.some((n) => n.name === node))
      throw bad(`placement.${node}`, host, `name a node of topology "${spec.name}" (${spec.nodes.map((n) => n.name).join(', ')})`);
    if (!host || host.length > 253) throw bad(`placement.${node}`, host, 'give the cluster node\'s kubernetes.io/hostname label');
  }
}

function baseSource(o: K8sBackendOptions): BaseImageSource {
  const b = o.baseImages ?? { from: 'init-container' };
  if (b.from === 'pvc' && (b.claimName.length > 253 || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(b.claimName)))
    throw bad('baseImages.claimName', b.claimName, 'give the name of a PersistentVolumeClaim in the namespace');
  if (!['init-container', 'image-volume', 'pvc'].includes(b.from)) throw bad('baseImages.from', b.from, 'use init-container, image-volume or pvc');
  return b;
}

/**
 * Checks the options and fills in every default; throws an INVALID_ARGUMENT FalconError naming
 * the option and what it takes.
 *
 * ```ts
 * resolveK8sOptions(spec, { version: '0.1.0' }).image;      // 'falcon.local/falcon-node:0.1.0'
 * resolveK8sOptions(spec, { version: '0.1.0' }).namespace;  // 'falcon-duo'
 * ```
 */
export function resolveK8sOptions(spec: TopologySpec, o: K8sBackendOptions): ResolvedK8sOptions {
  const namespace = o.namespace ?? defaultNamespace(spec.name);
  if (!isDnsLabel(namespace)) throw bad('namespace', namespace, 'give a DNS label: up to 63 of a-z, 0-9 and "-", starting and ending with a letter or digit');
  const vxlanPort = o.vxlanPort ?? DEFAULT_VXLAN_PORT;
  if (!Number.isInteger(vxlanPort) || vxlanPort < 1 || vxlanPort > 65535) throw bad('vxlanPort', vxlanPort, 'give a UDP port from 1 to 65535');
  const ratio = o.cpuAllocationRatio ?? DEFAULT_CPU_ALLOCATION_RATIO;
  if (!Number.isFinite(ratio) || ratio < 1 || ratio > 100) throw bad('cpuAllocationRatio', ratio, 'give a number from 1 (a core per vCPU) to 100');
  const policy = o.imagePullPolicy ?? 'IfNotPresent';
  if (policy !== 'Never' && policy !== 'IfNotPresent') throw bad('imagePullPolicy', policy, 'use Never or IfNotPresent');
  const placement = { ...(o.placement ?? {}) };
  checkPlacement(spec, placement);
  return {
    namespace,
    image: nodeImage(o),
    imagePullPolicy: policy,
    kvm: o.kvm ?? false,
    vxlanPort,
    cpuAllocationRatio: ratio,
    baseImages: baseSource(o),
    baseImageRefs: baseRefs(spec, o),
    placement,
    p4Programs: { ...(o.p4Programs ?? {}) },
  };
}
