/**
 * A topology on a cluster, as Kubernetes objects: its namespace, the ConfigMap holding its
 * topology.json, and one pod per node. Pure: the runner applies them (and learns the pods' IPs
 * from the API to wire the tunnels).
 *
 * No Service: a headless Service would give each pod a DNS name, but only with cluster DNS (the
 * two-host test cluster has none), only for ready pods unless told otherwise (and a pod must be
 * wired before its VM is ready), and with DNS caching in the way when a pod comes back with a new
 * IP. The runner reads the pods' IPs from the API it already talks to (watching the namespace)
 * and gives each pod its peers' IPs through `falcon-node` over `pods/exec`, so pods need no
 * service account and no API access of their own.
 */
import type { TopologySpec } from '../model/spec.js';
import { ANNOTATION_SPEC, ANNOTATION_TOPOLOGY, CONFIGMAP_NAME, defaultNamespace, p4ProgramKey, specDigest, topologyLabels } from './names.js';
import { resolveK8sOptions, type K8sBackendOptions, type P4ProgramFiles, type ResolvedK8sOptions } from './options.js';
import { nodePod } from './pod.js';
import type { ConfigMap, K8sObject, Namespace, Pod } from './types.js';

/** The objects of one topology, in the order they are applied. */
export interface TopologyManifests {
  options: ResolvedK8sOptions;
  namespace: Namespace;
  configMap: ConfigMap;
  pods: Pod[];
  /**
   * Whether the namespace is the topology's own (`falcon-<topology>`, the default): Falcon
   * creates it and destroy deletes it. A namespace given with `--namespace` is someone's: it must
   * exist, Falcon neither labels nor deletes it, and destroy deletes the topology's objects in it
   * by label ({@link topologySelector}).
   */
  ownsNamespace: boolean;
  /** The Namespace (when it is the topology's own), the ConfigMap, then the pods in node declaration order. */
  objects: K8sObject[];
  /** sha256 of the ConfigMap's topology.json, stamped on every pod. */
  specSha256: string;
}

/**
 * topology.json as the ConfigMap holds it (and falcon-node reads it): the spec, pretty-printed.
 *
 * ```ts
 * JSON.parse(topologyJson(spec)).name; // 'duo'
 * ```
 */
export function topologyJson(spec: TopologySpec): string {
  return `${JSON.stringify(spec, null, 2)}\n`;
}

/** Pod Security Admission (Kubernetes 1.23+): the topology's pods are privileged by design. */
const POD_SECURITY = { 'pod-security.kubernetes.io/enforce': 'privileged' } as const;

/**
 * The namespace of a topology, labelled with it, and allowed privileged pods where Pod Security
 * Admission would refuse them (a label older clusters ignore).
 *
 * ```ts
 * topologyNamespace('duo', 'falcon-duo').metadata.labels; // { ..., 'falcon.oxide/topology': 'duo', 'pod-security.kubernetes.io/enforce': 'privileged' }
 * ```
 */
export function topologyNamespace(topology: string, namespace: string): Namespace {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: namespace, labels: { ...topologyLabels(topology), ...POD_SECURITY }, annotations: { [ANNOTATION_TOPOLOGY]: topology } },
  };
}

/**
 * The ConfigMap `falcon-topology`: `topology.json`, mounted read-only in every pod.
 *
 * ```ts
 * topologyConfigMap(spec, 'falcon-duo').data['topology.json'] === topologyJson(spec); // true
 * ```
 */
export function topologyConfigMap(spec: TopologySpec, namespace: string, p4: Record<string, P4ProgramFiles> = {}): ConfigMap {
  const json = topologyJson(spec);
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: CONFIGMAP_NAME, namespace, labels: topologyLabels(spec.name), annotations: { [ANNOTATION_TOPOLOGY]: spec.name, [ANNOTATION_SPEC]: specDigest(json) } },
    data: { 'topology.json': json, ...Object.fromEntries(Object.entries(p4).map(([npu, prog]) => [p4ProgramKey(npu), JSON.stringify(prog)])) },
  };
}

/**
 * Every object of a topology on a cluster, for options as the runner is given them (checked:
 * an INVALID_ARGUMENT FalconError names a bad one).
 *
 * ```ts
 * const m = k8sManifests(spec, { version: '0.1.0', imagePullPolicy: 'Never' });
 * m.objects.map((o) => `${o.kind}/${o.metadata.name}`); // ['Namespace/falcon-duo', 'ConfigMap/falcon-topology', 'Pod/violin', 'Pod/piano']
 * ```
 */
export function k8sManifests(spec: TopologySpec, options: K8sBackendOptions): TopologyManifests {
  const o = resolveK8sOptions(spec, options);
  const namespace = topologyNamespace(spec.name, o.namespace);
  const configMap = topologyConfigMap(spec, o.namespace, o.p4Programs);
  const specSha256 = configMap.metadata.annotations![ANNOTATION_SPEC]!;
  const pods = spec.nodes.map((n) => nodePod(spec, n.name, o, specSha256));
  const ownsNamespace = o.namespace === defaultNamespace(spec.name);
  return { options: o, namespace, configMap, pods, ownsNamespace, objects: [...(ownsNamespace ? [namespace] : []), configMap, ...pods], specSha256 };
}
