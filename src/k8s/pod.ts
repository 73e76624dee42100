/**
 * The pod of one node: the `falcon-node` container (Falcon's host layer for one node: QEMU, the
 * overlay disk, the exec agent and console sockets, the impairment helper, the tunnels), one
 * container per switch the pod runs, the base image staged by init containers, and the devices
 * and volumes they need. Pure.
 *
 * The contract with the falcon-node image (see node-image.ts):
 * - `falcon-node run --topology FILE --node NAME`: the node (container `falcon-node`);
 * - `falcon-node switch --topology FILE --switch NAME`: a switch process (containers `switch`, `sidemux`);
 * - `falcon-node ready [--switch NAME]`: exits 0 once the exec agent (the switch's control socket) answers;
 * - a static busybox at `/bin/busybox` (Debian's busybox-static), copied for the base image's init
 *   container so base images need no shell of their own.
 */
import type { NodeSpec, TopologySpec } from '../model/spec.js';
import { FalconError } from '../util/errors.js';
import { podAffinity } from './affinity.js';
import { podSwitches } from './links.js';
import { ANNOTATION_NODE, ANNOTATION_SPEC, ANNOTATION_TOPOLOGY, CONFIGMAP_NAME, LABEL_NODE, p4ProgramKey, podName, topologyLabels } from './names.js';
import type { ResolvedK8sOptions } from './options.js';
import { podResources, type ContainerRequests } from './resources.js';
import type { Container, EnvVar, Pod, Volume, VolumeMount } from './types.js';

/** Where things are inside a node's pod. */
export const POD_PATHS = {
  /** The ConfigMap, read-only: `topology.json`. */
  specDir: '/falcon/spec',
  specFile: '/falcon/spec/topology.json',
  /** The pod's image store (`FALCON_IMAGE_DIR`): `<image>/` the base image, `topo/` the node's disks. */
  imageDir: '/falcon/images',
  /** The node's `.falcon` state: sockets, logs, QEMU's files, the switch configs. */
  stateDir: '/falcon/state',
  /** The static busybox staged for the base image's init container. */
  toolsDir: '/falcon/tools',
  /** Mount i of the node (`Topology.mount`): `<mountsDir>/<i>`, a hostPath, read-only. */
  mountsDir: '/falcon/mounts',
  /** The node's boot ISO, when it has one. */
  bootIso: '/falcon/boot/boot.iso',
} as const;

/** The program in the falcon-node image. */
export const NODE_COMMAND = 'falcon-node';
/** The node's container; exec, serial and capture go through it. */
export const NODE_CONTAINER = 'falcon-node';

const NODE_PROBE = { periodSeconds: 2, timeoutSeconds: 5, failureThreshold: 3 } as const;

function mount(name: string, mountPath: string, readOnly?: boolean, subPath?: string): VolumeMount {
  const m: VolumeMount = { name, mountPath };
  if (readOnly) m.readOnly = true;
  if (subPath !== undefined) m.subPath = subPath;
  return m;
}

/** The image volume or PVC that holds the base image, when it is not copied. */
function baseVolume(n: NodeSpec, o: ResolvedK8sOptions): Volume[] {
  const b = o.baseImages;
  if (b.from === 'image-volume') return [{ name: 'base-image', image: { reference: o.baseImageRefs[n.image]!, pullPolicy: o.imagePullPolicy } }];
  if (b.from === 'pvc') return [{ name: 'base-image', persistentVolumeClaim: { claimName: b.claimName, readOnly: true } }];
  return [{ name: 'tools', emptyDir: {} }];
}

function volumes(n: NodeSpec, o: ResolvedK8sOptions): Volume[] {
  const v: Volume[] = [
    { name: 'spec', configMap: { name: CONFIGMAP_NAME, items: [{ key: 'topology.json', path: 'topology.json' }, ...(o.p4Programs[n.name] ? [{ key: p4ProgramKey(n.name), path: p4ProgramKey(n.name) }] : [])] } },
    { name: 'state', emptyDir: {} },
    { name: 'images', emptyDir: {} },
    ...baseVolume(n, o),
    { name: 'dev-net-tun', hostPath: { path: '/dev/net/tun', type: 'CharDevice' } },
  ];
  if (o.kvm) v.push({ name: 'dev-kvm', hostPath: { path: '/dev/kvm', type: 'CharDevice' } });
  n.mounts.forEach((m, i) => v.push({ name: `mount-${i}`, hostPath: { path: m.source, type: 'Directory' } }));
  if (n.bootIso) v.push({ name: 'boot-iso', hostPath: { path: n.bootIso, type: 'File' } });
  return v;
}

function nodeMounts(n: NodeSpec, o: ResolvedK8sOptions): VolumeMount[] {
  const m = [mount('spec', POD_PATHS.specDir, true), mount('state', POD_PATHS.stateDir), mount('images', POD_PATHS.imageDir)];
  const base = `${POD_PATHS.imageDir}/${n.image}`;
  // An image volume holds the containerDisk's root: its /disk folder is the store entry.
  if (o.baseImages.from === 'image-volume') m.push(mount('base-image', base, true, 'disk'));
  if (o.baseImages.from === 'pvc') m.push(mount('base-image', base, true, n.image));
  m.push(mount('dev-net-tun', '/dev/net/tun'));
  if (o.kvm) m.push(mount('dev-kvm', '/dev/kvm'));
  n.mounts.forEach((_, i) => m.push(mount(`mount-${i}`, `${POD_PATHS.mountsDir}/${i}`, true)));
  if (n.bootIso) m.push(mount('boot-iso', POD_PATHS.bootIso, true));
  return m;
}

/** The init containers that copy the base image into the pod's store (init-container mode). */
function initContainers(n: NodeSpec, o: ResolvedK8sOptions): Container[] {
  if (o.baseImages.from !== 'init-container') return [];
  const busybox = `${POD_PATHS.toolsDir}/busybox`;
  return [
    { name: 'stage-tools', image: o.image, imagePullPolicy: o.imagePullPolicy, command: ['cp', '/bin/busybox', busybox], volumeMounts: [mount('tools', POD_PATHS.toolsDir)] },
    {
      name: 'base-image',
      image: o.baseImageRefs[n.image]!,
      imagePullPolicy: o.imagePullPolicy,
      // containerDisk layout: /disk/<image>.qcow2 and meta.json (naming it) become <store>/<image>/.
      // The applets are called through busybox ($0): a base image has no PATH to find them on.
      // Idempotent, as init containers must be (a kubelet may run them again).
      command: [busybox, 'sh', '-c', '"$0" mkdir -p "$1" && "$0" cp -a /disk/. "$1"/', busybox, `${POD_PATHS.imageDir}/${n.image}`],
      volumeMounts: [mount('tools', POD_PATHS.toolsDir, true), mount('images', POD_PATHS.imageDir)],
    },
  ];
}

function env(o: ResolvedK8sOptions): EnvVar[] {
  const field = (name: string, fieldPath: string): EnvVar => ({ name, valueFrom: { fieldRef: { fieldPath } } });
  return [
    { name: 'FALCON_IMAGE_DIR', value: POD_PATHS.imageDir },
    { name: 'FALCON_STATE_DIR', value: POD_PATHS.stateDir },
    { name: 'FALCON_ACCEL', value: o.kvm ? 'kvm' : 'tcg' },
    { name: 'FALCON_VXLAN_PORT', value: String(o.vxlanPort) },
    field('FALCON_POD_IP', 'status.podIP'),
    field('FALCON_POD_NAME', 'metadata.name'),
    field('FALCON_NAMESPACE', 'metadata.namespace'),
  ];
}

function nodeContainer(n: NodeSpec, o: ResolvedK8sOptions, r: ContainerRequests): Container {
  return {
    name: NODE_CONTAINER,
    image: o.image,
    imagePullPolicy: o.imagePullPolicy,
    command: [NODE_COMMAND],
    args: ['run', '--topology', POD_PATHS.specFile, '--node', n.name],
    env: env(o),
    ports: [{ name: 'vxlan', containerPort: o.vxlanPort, protocol: 'UDP' }],
    resources: { requests: r.requests },
    securityContext: { privileged: true },
    volumeMounts: nodeMounts(n, o),
    readinessProbe: { exec: { command: [NODE_COMMAND, 'ready'] }, ...NODE_PROBE },
  };
}

function switchContainer(kind: 'softnpu' | 'sidemux', npu: string, o: ResolvedK8sOptions, r: ContainerRequests): Container {
  return {
    name: kind === 'softnpu' ? 'switch' : 'sidemux',
    image: o.image,
    imagePullPolicy: o.imagePullPolicy,
    command: [NODE_COMMAND],
    args: ['switch', '--topology', POD_PATHS.specFile, '--switch', npu],
    env: env(o).filter((e) => !['FALCON_ACCEL', 'FALCON_VXLAN_PORT', 'FALCON_IMAGE_DIR'].includes(e.name)),
    resources: { requests: r.requests },
    volumeMounts: [mount('spec', POD_PATHS.specDir, true), mount('state', POD_PATHS.stateDir)],
    readinessProbe: { exec: { command: [NODE_COMMAND, 'ready', '--switch', npu] }, ...NODE_PROBE },
  };
}

/**
 * The pod of node `node`. `specSha256` is {@link specDigest} of the ConfigMap's topology.json,
 * stamped on the pod so a pod made from an older spec can be told apart.
 *
 * ```ts
 * const pod = nodePod(spec, 'violin', resolveK8sOptions(spec, { version: '0.1.0' }), digest);
 * pod.spec.containers[0].args; // ['run', '--topology', '/falcon/spec/topology.json', '--node', 'violin']
 * ```
 */
export function nodePod(spec: TopologySpec, node: string, o: ResolvedK8sOptions, specSha256: string): Pod {
  const n = spec.nodes.find((x) => x.name === node);
  if (!n) throw new FalconError('NODE_NOT_FOUND', `topology "${spec.name}" has no node "${node}"; its nodes are ${spec.nodes.map((x) => x.name).join(', ')}`);
  const r = podResources(spec, node, o);
  const switches = podSwitches(spec, node).map((s) => switchContainer(s.kind, s.npu, o, r.switches[s.npu]!));
  const affinity = podAffinity(spec, node, o.placement[node]);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: podName(node),
      namespace: o.namespace,
      labels: { ...topologyLabels(spec.name), [LABEL_NODE]: podName(node) },
      annotations: { [ANNOTATION_TOPOLOGY]: spec.name, [ANNOTATION_NODE]: node, [ANNOTATION_SPEC]: specSha256 },
    },
    spec: {
      // A pod that ends stays ended: hyperstart makes it again, with its links.
      restartPolicy: 'Never',
      enableServiceLinks: false,
      // falcon-node does not talk to the API: the runner tells it its peers' IPs.
      automountServiceAccountToken: false,
      terminationGracePeriodSeconds: 30,
      // QEMU, ip and tc are Linux's (the falcon-node image is a Linux image).
      nodeSelector: { 'kubernetes.io/os': 'linux' },
      ...(affinity ? { affinity } : {}),
      ...(o.baseImages.from === 'init-container' ? { initContainers: initContainers(n, o) } : {}),
      containers: [nodeContainer(n, o, r.node), ...switches],
      volumes: volumes(n, o),
    },
  };
}
