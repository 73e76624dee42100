/**
 * A node's power on a cluster. hyperstop and reboot ask the pod's supervisor (the pod, its disk
 * and its tunnels stay). hyperstart starts the VM in its pod again, or, when the pod is gone
 * (deleted, evicted, its host lost) or ended, makes the pod again (a fresh disk: pods keep
 * theirs in an emptyDir) and points its links, and its peers' links to it, at its new IP; the
 * impairment of the links it holds the helper of is set again.
 */
import { ANNOTATION_NODE, k8sManifests, type K8sBackendOptions } from '../../k8s/index.js';
import { FalconError } from '../../util/errors.js';
import type { PodView } from './api.js';
import { k8sApplyImpairments } from './impair.js';
import { waitRunning } from './launch.js';
import { waitNodesReady } from './ready.js';
import type { K8sSession } from './session.js';

export async function k8sHyperstop(s: K8sSession, nodes: readonly string[]): Promise<void> {
  await Promise.all(
    nodes.map(async (n) => {
      const p = await s.api.getPod(s.namespace, s.pod(n));
      if (!p || p.phase !== 'Running') {
        s.c.log.log({ kind: 'node', node: n, state: 'was not running', detail: p ? `pod ${p.phase}` : 'no pod' });
        return;
      }
      const st = await s.ctl(n, { op: 'stop' });
      s.c.log.log({ kind: 'node', node: n, state: st.phase });
    }),
  );
}

function usable(p: PodView | undefined): p is PodView {
  return p !== undefined && !p.deleting && p.phase === 'Running' && !p.containers.some((c) => c.name === 'falcon-node' && c.state === 'terminated');
}

export async function k8sHyperstart(s: K8sSession, nodes: readonly string[]): Promise<void> {
  const remake: string[] = [];
  await Promise.all(
    nodes.map(async (n) => {
      const p = await s.api.getPod(s.namespace, s.pod(n));
      if (!usable(p)) {
        remake.push(n);
        return;
      }
      const st = await s.ctl(n, { op: 'start' });
      s.c.log.log({ kind: 'node', node: n, state: st.phase });
    }),
  );
  if (!remake.length) return;
  const m = k8sManifests(s.spec, s.record.options as K8sBackendOptions);
  await Promise.all(
    remake.map(async (n) => {
      s.c.log.log({ kind: 'node', node: n, state: 'making its pod again', detail: 'its disk starts from the base image' });
      await s.api.deletePod(s.namespace, s.pod(n), { graceSeconds: 0, signal: s.c.signal });
      const pod = m.pods.find((p) => p.metadata.annotations?.[ANNOTATION_NODE] === n);
      if (!pod) throw new FalconError('INTERNAL', `no pod manifest for node "${n}"`);
      await s.api.create(pod);
    }),
  );
  await waitRunning(s, remake);
  await s.pointPeers(remake);
  await k8sApplyImpairments(s, { nodes: remake });
  await waitNodesReady(s, remake);
}

export async function k8sReboot(s: K8sSession, node: string): Promise<void> {
  await s.requirePod(node);
  const st = await s.ctl(node, { op: 'reboot' });
  s.c.log.log({ kind: 'node', node, state: st.phase });
}
