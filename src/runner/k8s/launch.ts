/**
 * launch on a cluster: preflight (the topology, the backend's refusals, the cluster answering),
 * `.falcon/` written before anything is created, then the namespace, the ConfigMap and a pod per
 * node; the tunnels pointed once the pods have IPs; ready when every supervisor says its guest
 * answers. A failed launch leaves what it made for `destroy`, which finds it through backend.json.
 */
import path from 'node:path';
import { exportRef } from '../../images/oci-export.js';
import { npuPlans } from '../../model/softnpu.js';
import { p4ProgramProblems } from '../switches.js';
import { k8sManifests, k8sPreflight, type K8sBackendOptions, type P4ProgramFiles, type TopologyManifests } from '../../k8s/index.js';
import type { TopologyProblem } from '../../model/errors.js';
import type { TopologySpec } from '../../model/spec.js';
import { validateSpec } from '../../model/topology.js';
import { FalconError } from '../../util/errors.js';
import type { RunContext } from '../context.js';
import { LaunchError, type NodeFailure } from '../errors.js';
import { ensureFalconDir } from '../lock.js';
import { PreflightError } from '../preflight.js';
import { saveSpec } from '../saved-topology.js';
import { KubeApi, podFailure } from './api.js';
import { writeBackendRecord, type KubernetesBackend } from './backend.js';
import { k8sApplyImpairments } from './impair.js';
import { K8sSession } from './session.js';
import { waitNodesReady } from './ready.js';

/** How long pods may take to be scheduled, pull their images and get an IP. */
const RUNNING_TIMEOUT_MS = 10 * 60_000;

/** The pods' options: the backend's, Falcon's version, and the OCI references of the base images this machine has. */
async function podOptions(c: RunContext, spec: TopologySpec, b: KubernetesBackend, version: string): Promise<K8sBackendOptions> {
  const { kind: _kind, kubeconfig: _kc, context: _ctx, ...o } = b;
  const refs: Record<string, string> = { ...(o.baseImageRefs ?? {}) };
  for (const image of new Set(spec.nodes.map((n) => n.image))) {
    if (refs[image]) continue;
    const meta = await c.store.get(image).catch(() => undefined);
    if (meta?.meta.sha256) refs[image] = exportRef({ name: image, sha256: meta.meta.sha256 });
  }
  return { version, ...o, baseImageRefs: refs, p4Programs: await p4Sources(spec) };
}

/** The source and includes of every switch program that is a P4 file: the ConfigMap carries them to the pods. */
async function p4Sources(spec: TopologySpec): Promise<Record<string, P4ProgramFiles>> {
  const files = npuPlans(spec).filter((p) => p.options.program.endsWith('.p4') && path.isAbsolute(p.options.program));
  if (!files.length) return {};
  const { programFromFile } = await import('../../switch/program-load.js');
  return Object.fromEntries(files.map((p) => [p.npu, programFromFile(p.options.program)]));
}

/** Everything that refuses the launch, before anything is made; the manifests when there is nothing. */
export async function k8sPreflightAll(c: RunContext, spec: TopologySpec, b: KubernetesBackend, version: string): Promise<TopologyManifests> {
  const problems: TopologyProblem[] = validateSpec(spec);
  if (!problems.length) problems.push(...(await p4ProgramProblems(spec)));
  if (problems.length) throw new PreflightError(spec.name, problems);
  let m: TopologyManifests;
  try {
    m = k8sManifests(spec, await podOptions(c, spec, b, version));
  } catch (e) {
    if (e instanceof FalconError && e.code === 'INVALID_ARGUMENT') throw new PreflightError(spec.name, [{ path: 'backend', message: e.message }]);
    throw e;
  }
  const pf = k8sPreflight(spec, m.options);
  if (pf.problems.length) throw new PreflightError(spec.name, pf.problems);
  for (const w of pf.warnings) c.log.log({ kind: 'warn', msg: `${w.path}: ${w.message}${w.fix ? `; ${w.fix}` : ''}` });
  return m;
}

async function checkNamespace(api: KubeApi, spec: TopologySpec, m: TopologyManifests): Promise<void> {
  const ns = m.options.namespace;
  const there = await api.namespaceExists(ns);
  if (!m.ownsNamespace && !there) throw new PreflightError(spec.name, [{ path: 'backend.namespace', message: `namespace ${ns} does not exist on the cluster`, fix: `create it (kubectl create namespace ${ns}), or leave --namespace out for falcon-${spec.name}` }]);
  if (!there) return;
  const pods = (await api.listPods(ns)).filter((p) => p.node !== undefined);
  if (pods.length)
    throw new PreflightError(spec.name, [
      { path: 'backend.namespace', message: `namespace ${ns} already holds pods of a topology (${pods.map((p) => p.name).join(', ')})`, fix: 'destroy that topology first, or launch this one with another --namespace' },
    ]);
}

/** Launch `spec` on the cluster `b` (preflight included). */
export async function k8sLaunch(c: RunContext, spec: TopologySpec, b: KubernetesBackend, version: string): Promise<void> {
  const started = Date.now();
  const m = await k8sPreflightAll(c, spec, b, version);
  const api = await KubeApi.connect({ kubeconfig: b.kubeconfig, context: b.context }, c.env);
  await checkNamespace(api, spec, m);
  const ns = m.options.namespace;
  c.log.log({ kind: 'step', msg: `launching topology "${spec.name}" (${spec.nodes.length} nodes) on ${api.where.server}, namespace ${ns}` });
  await ensureFalconDir(c);
  await saveSpec(c.paths, spec);
  const record = { kind: 'k8s' as const, ...api.where, namespace: ns, ownsNamespace: m.ownsNamespace, options: m.options as unknown as Record<string, unknown>, createdAt: new Date().toISOString() };
  await writeBackendRecord(c.paths, record);
  const s = new K8sSession(c, spec, record, api);
  if (m.ownsNamespace) await api.create(m.namespace);
  await api.replaceConfigMap(m.configMap);
  for (const p of m.pods) await api.create(p);
  await waitRunning(s, spec.nodes.map((n) => n.name));
  await s.pointPeers(spec.nodes.map((n) => n.name));
  await warnMtu(s, m.options);
  await k8sApplyImpairments(s);
  await waitNodesReady(s, spec.nodes.map((n) => n.name));
  c.log.log({ kind: 'step', msg: `topology "${spec.name}" is up on the cluster (${((Date.now() - started) / 1000).toFixed(1)} s)` });
}

/** Once a pod knows the pod network's MTU: the links whose guest MTU does not fit, as preflight words it. */
async function warnMtu(s: K8sSession, o: TopologyManifests['options']): Promise<void> {
  const first = s.spec.nodes[0];
  if (!first) return;
  const podMtu = (await s.ctl(first.name, { op: 'status' }).catch(() => undefined))?.podMtu;
  if (podMtu === undefined) return;
  for (const w of k8sPreflight(s.spec, o, { podMtu }).warnings.filter((x) => x.path.startsWith('links')))
    s.c.log.log({ kind: 'warn', msg: `${w.path}: ${w.message}${w.fix ? `; ${w.fix}` : ''}` });
}

/** Wait until the nodes' pods run and have IPs; a pod that cannot fails the launch with its reason and log. */
export async function waitRunning(s: K8sSession, nodes: readonly string[]): Promise<void> {
  try {
    await s.api.waitPods(s.namespace, nodes.map((n) => s.pod(n)), (p) => podFailure(p) ?? (p.phase === 'Running' && Boolean(p.podIP)), {
      timeoutMs: RUNNING_TIMEOUT_MS,
      signal: s.c.signal,
      what: `the pods of topology "${s.spec.name}" did not all start`,
      onProgress: (done, total) => s.c.log.log({ kind: 'progress', what: 'pods running', done, total }),
    });
  } catch (e) {
    if (!(e instanceof FalconError) || e.code !== 'K8S_POD') throw e;
    const failures: NodeFailure[] = [];
    for (const n of nodes) {
      const p = await s.api.getPod(s.namespace, s.pod(n));
      const why = p ? podFailure(p) : `pod ${s.pod(n)} is gone`;
      if (why || !p || p.phase !== 'Running') failures.push({ node: n, error: new FalconError('K8S_POD', why ?? `pod ${s.pod(n)} is ${p?.phase ?? 'gone'}`), logs: await s.logTail(n) });
    }
    throw failures.length ? new LaunchError(s.spec.name, failures) : e;
  }
}
