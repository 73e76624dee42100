/**
 * What a topology's objects are called on a cluster: the namespace, pods, containers, labels,
 * annotations and image references. Pure functions of the topology, so launch, info, hyperstart
 * and destroy all derive the same names.
 */
import { createHash } from 'node:crypto';

/** Label on every object of a topology (and its namespace): the topology's {@link k8sName}. */
export const LABEL_TOPOLOGY = 'falcon.oxide/topology';
/** Label on a node's pod: the node's {@link k8sName} (= its pod name). */
export const LABEL_NODE = 'falcon.oxide/node';
/** The well-known label saying who manages an object. */
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
/** Annotations carrying the Falcon names exactly (label values cannot end in "_"). */
export const ANNOTATION_TOPOLOGY = 'falcon.oxide/topology-name';
export const ANNOTATION_NODE = 'falcon.oxide/node-name';
/** sha256 of the topology.json the pod was made from: a pod older than the spec is stale. */
export const ANNOTATION_SPEC = 'falcon.oxide/spec-sha256';
/** The ConfigMap holding topology.json, one per namespace. */
export const CONFIGMAP_NAME = 'falcon-topology';
/** The repository the falcon-node image is tagged under (node-image.ts builds it as `<version>-<inputs>`). */
const NODE_REPOSITORY = 'falcon.local/falcon-node';
/** The repository of base images exported with `falcon image export NAME --oci` (images/oci-export.ts). */
const BASE_REPOSITORY = 'falcon.local/images';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * A Falcon name (`[A-Za-z][A-Za-z0-9_]*`, at most 32 characters) as a DNS-1123 label, usable as
 * a pod name, a label value and part of a namespace name. A name of lower-case letters and
 * digits is itself; any other gets `_` as `-`, lower case, and `-` plus 8 hex digits of its
 * sha256, so the mapping stays one-to-one (a plain name never contains `-`).
 *
 * ```ts
 * k8sName('violin');    // 'violin'
 * k8sName('Gimlet_2');  // 'gimlet-2-' + 8 hex digits
 * ```
 */
export function k8sName(name: string): string {
  if (/^[a-z][a-z0-9]*$/.test(name)) return name;
  const base = name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'x';
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `${base}-${hash}`;
}

/**
 * True for a DNS-1123 label (a namespace or pod name Kubernetes takes): 1-63 of `[a-z0-9-]`,
 * alphanumeric at both ends.
 *
 * ```ts
 * isDnsLabel('falcon-duo'); // true
 * isDnsLabel('Falcon_Duo'); // false
 * ```
 */
export function isDnsLabel(s: string): boolean {
  return s.length <= 63 && DNS_LABEL.test(s);
}

/**
 * The namespace a topology gets unless one is given: `falcon-<topology>`.
 *
 * ```ts
 * defaultNamespace('duo'); // 'falcon-duo'
 * ```
 */
export function defaultNamespace(topology: string): string {
  return `falcon-${k8sName(topology)}`;
}

/**
 * The pod of a node: its {@link k8sName} (the namespace is the topology's, so no prefix).
 *
 * ```ts
 * podName('violin'); // 'violin'
 * ```
 */
export function podName(node: string): string {
  return k8sName(node);
}

/**
 * The labels of every object of a topology.
 *
 * ```ts
 * topologyLabels('duo'); // { 'app.kubernetes.io/managed-by': 'falcon', 'falcon.oxide/topology': 'duo' }
 * ```
 */
export function topologyLabels(topology: string): Record<string, string> {
  return { [LABEL_MANAGED_BY]: 'falcon', [LABEL_TOPOLOGY]: k8sName(topology) };
}

/**
 * The label selector of a topology's objects, for list, watch and delete calls.
 *
 * ```ts
 * topologySelector('duo'); // 'falcon.oxide/topology=duo'
 * ```
 */
export function topologySelector(topology: string): string {
  return `${LABEL_TOPOLOGY}=${k8sName(topology)}`;
}

/**
 * The default falcon-node image reference for a Falcon version.
 *
 * ```ts
 * defaultNodeImage('0.1.0'); // 'falcon.local/falcon-node:0.1.0'
 * ```
 */
export function defaultNodeImage(version: string): string {
  return `${NODE_REPOSITORY}:${version}`;
}

/**
 * The fallback OCI reference of a base image (containerDisk layout):
 * `falcon.local/images/<name>:latest`, the name in lower case (OCI repositories are lower case).
 * `falcon image export` tags by content (`falcon.local/images/tiny:<sha12>`, its exportRef), so
 * the runner passes those in the `baseImageRefs` option; this is for images tagged by hand.
 *
 * ```ts
 * defaultBaseImageRef('tiny'); // 'falcon.local/images/tiny:latest'
 * ```
 */
export function defaultBaseImageRef(image: string): string {
  return `${BASE_REPOSITORY}/${image.toLowerCase()}:latest`;
}

// The reference grammar of the distribution spec: [host[:port]/]path[:tag][@digest].
const REF_PATH = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const REF_HOST = '(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?/)?';
const REF_RE = new RegExp(`^${REF_HOST}${REF_PATH}(?:/${REF_PATH})*(?::[\\w][\\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$`);

/**
 * True for an image reference a container runtime takes (`registry/path:tag`, `@sha256:` digests).
 *
 * ```ts
 * isImageRef('falcon.local/falcon-node:0.1.0'); // true
 * isImageRef('Falcon Node');                    // false
 * ```
 */
export function isImageRef(ref: string): boolean {
  return ref.length <= 255 && REF_RE.test(ref);
}

/**
 * sha256 (hex) of a topology.json text: the {@link ANNOTATION_SPEC} of the pods made from it.
 *
 * ```ts
 * specDigest(JSON.stringify(spec)).length; // 64
 * ```
 */
export function specDigest(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * The ConfigMap key, and the file beside topology.json in the npu's pod, of the P4 program of
 * `npu`'s switch.
 *
 * ```ts
 * p4ProgramKey('scrimlet'); // 'p4-scrimlet.json'
 * ```
 */
export function p4ProgramKey(npu: string): string {
  return `p4-${npu}.json`;
}
