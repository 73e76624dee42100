/**
 * The Kubernetes backend's pure core: what a topology becomes on a cluster (namespace, ConfigMap,
 * pods, VXLAN tunnels, resources, placement, MTU) and what cannot work there. No I/O.
 */
export * from './affinity.js';
export * from './exec-frames.js';
export * from './interfaces.js';
export * from './links.js';
export * from './manifests.js';
export * from './mtu.js';
export * from './names.js';
export * from './options.js';
export * from './pod.js';
export * from './peers.js';
export * from './pod-control.js';
export * from './preflight.js';
export * from './resources.js';
export * from './serialize.js';
export type * from './types.js';
