/**
 * A topology on a cluster as the runner works with it: the context, the saved spec, the
 * backend record and the API connection, and what every operation needs of them (pod names,
 * pod IPs, pointing tunnels, waiting for supervisors).
 */
import { NODE_CONTAINER, peerMaps, podName, tunnelNeighbours, type PodStatus } from '../../k8s/index.js';
import type { TopologySpec } from '../../model/spec.js';
import { FalconError } from '../../util/errors.js';
import { retry } from '../../util/retry.js';
import type { RunContext } from '../context.js';
import { KubeApi, type PodView } from './api.js';
import { readBackendRecord, type BackendRecord } from './backend.js';
import { podCtl } from './pod-exec.js';

export class K8sSession {
  constructor(
    readonly c: RunContext,
    readonly spec: TopologySpec,
    readonly record: BackendRecord,
    readonly api: KubeApi,
  ) {}

  /** The session of a launched topology, from `.falcon/backend.json`; undefined for a local one. */
  static async open(c: RunContext, spec: TopologySpec): Promise<K8sSession | undefined> {
    const record = await readBackendRecord(c.paths);
    if (!record) return undefined;
    return new K8sSession(c, spec, record, await KubeApi.connect({ kubeconfig: record.kubeconfig, context: record.context }, c.env));
  }

  get namespace(): string {
    return this.record.namespace;
  }

  pod(node: string): string {
    return podName(node);
  }

  /** The node's pod; a FalconError K8S_POD naming what to do when it is gone. */
  async requirePod(node: string): Promise<PodView> {
    if (!this.spec.nodes.some((n) => n.name === node))
      throw new FalconError('NODE_NOT_FOUND', `topology "${this.spec.name}" has no node "${node}"; its nodes are ${this.spec.nodes.map((n) => n.name).join(', ')}`);
    const p = await this.api.getPod(this.namespace, this.pod(node));
    if (!p || p.deleting) throw new FalconError('K8S_POD', `node "${node}" has no pod in namespace ${this.namespace} (it was ${p ? 'being deleted' : 'deleted or evicted'}); bring it back with hyperstart ${node}`);
    if (p.phase !== 'Running') throw new FalconError('K8S_POD', `the pod of node "${node}" is ${p.phase}${p.reason ? ` (${p.reason})` : ''}; hyperstart ${node} makes it again`);
    return p;
  }

  /** The topology's pods by pod name. */
  async pods(): Promise<Map<string, PodView>> {
    return new Map((await this.api.listPods(this.namespace)).filter((p) => p.node !== undefined && !p.deleting).map((p) => [p.name, p]));
  }

  /** A supervisor request, retried while the pod's supervisor is not listening yet. */
  async ctl(node: string, r: Parameters<typeof podCtl>[3], o: { deadlineMs?: number } = {}): Promise<PodStatus> {
    return retry(
      { what: `the supervisor of node "${node}"`, deadlineMs: o.deadlineMs ?? 60_000, delayMs: 500, log: this.c.log, signal: this.c.signal, retryIf: (e) => /not answering|did not answer/.test((e as Error).message) },
      () => podCtl(this.api, this.namespace, this.pod(node), r, { signal: this.c.signal }),
    );
  }

  /**
   * Point the tunnels of `nodes` at their peers' pod IPs (both ways: the peers' tunnels at
   * these pods too), from the pods as they are now.
   */
  async pointPeers(nodes: readonly string[]): Promise<void> {
    const pods = await this.pods();
    const ips = new Map([...pods].filter(([, p]) => p.podIP && p.phase === 'Running').map(([name, p]) => [name, p.podIP!]));
    const maps = peerMaps(this.spec, ips);
    // These pods, and those whose tunnels reach them (their peer's IP may have changed).
    const affected = new Set(nodes.flatMap((n) => [this.pod(n), ...tunnelNeighbours(this.spec, this.pod(n))]));
    const byPod = new Map(this.spec.nodes.map((n) => [this.pod(n.name), n.name]));
    await Promise.all([...affected].filter((pod) => maps.has(pod)).map((pod) => this.ctl(byPod.get(pod)!, { op: 'peers', peers: maps.get(pod)! })));
  }

  /** The last lines of a node's container log, for errors. */
  async logTail(node: string, lines = 15): Promise<string> {
    return this.api.podLog(this.namespace, this.pod(node), NODE_CONTAINER, lines).catch(() => '');
  }
}
