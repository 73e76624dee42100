/** The cluster side of `info`'s result (apart from info.ts, which builds it from inspect's types). */
import type { PodPhase } from '../../k8s/index.js';

/** One node's pod as info shows it. */
export interface PodInfo {
  node: string;
  pod: string;
  /** The cluster node it runs on. */
  host?: string;
  podIP?: string;
  /** The pod's phase, or `Missing` when it is gone. */
  phase: string;
  ready: boolean;
  /** What the pod's supervisor says of its node. */
  supervisor?: PodPhase;
  error?: string;
  restarts: number;
}

/** The cluster side of `info`. */
export interface K8sInfo {
  kind: 'k8s';
  server: string;
  context: string;
  kubeconfig: string;
  namespace: string;
  pods: PodInfo[];
  /** The pods' interface MTU (the first pod's that reports it). */
  podMtu?: number;
  mtu: { link: number; guestMtu: number; podMtu: number; ok: boolean; problem?: string }[];
}
