/**
 * destroy on a cluster: the topology's own namespace and everything in it (or, in a namespace
 * given with --namespace, its pods and ConfigMap by label), waited for until gone; then `.falcon/`.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { CONFIGMAP_NAME, topologySelector } from '../../k8s/index.js';
import type { TopologyLock } from '../lock.js';
import type { K8sSession } from './session.js';

export async function k8sDestroy(s: K8sSession, lock: TopologyLock): Promise<void> {
  const started = Date.now();
  const { api, namespace: ns, c } = s;
  c.log.log({ kind: 'step', msg: `destroying topology "${s.spec.name}" on ${api.where.server}: ${s.record.ownsNamespace ? `namespace ${ns}` : `its pods in namespace ${ns}`}` });
  if (s.record.ownsNamespace) {
    let shown = 0;
    await api.deleteNamespace(ns, {
      signal: c.signal,
      onWait: (ms) => {
        if (ms - shown < 5000) return;
        shown = ms;
        c.log.log({ kind: 'progress', what: `namespace ${ns} terminating`, done: Math.round(ms / 1000), unit: 's' });
      },
    });
  } else {
    const pods = await api.listPods(ns, topologySelector(s.spec.name));
    await Promise.all(pods.map((p) => api.deletePod(ns, p.name, { graceSeconds: 5, signal: c.signal })));
    await api.deleteConfigMap(ns, CONFIGMAP_NAME);
  }
  for (const entry of await fs.readdir(c.paths.dir)) {
    if (entry !== 'lock') await fs.rm(path.join(c.paths.dir, entry), { recursive: true, force: true });
  }
  c.log.log({ kind: 'step', msg: `topology "${s.spec.name}" destroyed (${Date.now() - started} ms)` });
  await lock.release();
  await fs.rm(c.paths.dir, { recursive: true, force: true });
}
