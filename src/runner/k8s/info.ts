/**
 * `info` of a topology on a cluster: the same nodes and links as locally (interfaces named
 * `<namespace>/<pod>:<device>`), and the cluster's side: which host each pod is on, its IP and
 * phase, what its supervisor says, and every tunnelled link's MTU verdict.
 */
import { k8sLinkEnds, linkMtuChecks } from '../../k8s/index.js';
import { currentImpairments } from '../impairments.js';
import { declaredNodeInfo, type NodeInfo, type LinkInfo, type TopologyInfo } from '../inspect.js';
import { switchPlans } from '../../model/softnpu.js';
import { switchInfo, type SwitchInfo } from '../switches.js';
import type { PodView } from './api.js';
import type { K8sInfo, PodInfo } from './info-types.js';
import type { K8sSession } from './session.js';

async function podInfo(s: K8sSession, node: string, p: PodView | undefined): Promise<PodInfo & { podMtu?: number }> {
  const base: PodInfo = { node, pod: s.pod(node), phase: p ? (p.deleting ? 'Terminating' : p.phase) : 'Missing', ready: p?.ready ?? false, restarts: p?.containers.reduce((n, c) => n + c.restartCount, 0) ?? 0 };
  if (p?.nodeName) base.host = p.nodeName;
  if (p?.podIP) base.podIP = p.podIP;
  if (!p || p.phase !== 'Running') return base;
  const st = await s.ctl(node, { op: 'status' }, { deadlineMs: 0 }).catch(() => undefined);
  if (!st) return base;
  return { ...base, supervisor: st.phase, ...(st.error ? { error: st.error } : {}), ...(st.podMtu ? { podMtu: st.podMtu } : {}) };
}

function nodeStatus(p: PodInfo): NodeInfo['status'] {
  if (p.phase === 'Missing') return 'pod gone';
  if (p.supervisor === 'ready' || p.supervisor === 'booting') return 'running';
  if (p.supervisor === 'stopped') return 'stopped';
  if (p.supervisor === 'failed' || p.phase === 'Failed') return 'failed';
  return p.phase === 'Pending' || p.supervisor === 'starting' ? 'starting' : 'stopped';
}

export async function k8sInfo(s: K8sSession): Promise<TopologyInfo> {
  const { spec } = s;
  const pods = await s.pods();
  const infos = await Promise.all(spec.nodes.map((n) => podInfo(s, n.name, pods.get(s.pod(n.name)))));
  // Extra disks live in the pods: none on this machine.
  const nodes: NodeInfo[] = spec.nodes.map((n, i) => ({ ...declaredNodeInfo(spec, n), disks: [], status: nodeStatus(infos[i]!) }));
  const ends = k8sLinkEnds(spec, s.namespace);
  const impaired = await currentImpairments(spec, s.c.paths);
  const links: LinkInfo[] = spec.links.map((l, i) => {
    const e = ends.get(i);
    const end = (x: NonNullable<typeof e>['a']) => ({ node: x.node, index: x.index, ifname: x.ifname, altname: x.altname, mac: x.mac, ...(x.port !== undefined ? { port: x.port } : {}) });
    const impairment = impaired.get(i);
    return e ? { kind: l.kind, a: end(e.a), b: end(e.b), ...(impairment ? { impairment } : {}) } : { kind: l.kind, a: { node: l.a.node, index: -1, ifname: '', altname: '', mac: '' } };
  });
  const podMtu = infos.find((x) => x.podMtu)?.podMtu;
  const mtu = podMtu
    ? linkMtuChecks(spec, podMtu).map((m) => ({ link: m.link, guestMtu: m.check.guestMtu, podMtu: m.check.podMtu, ok: m.check.ok, ...(m.check.ok ? {} : { problem: m.check.problem }) }))
    : [];
  const backend: K8sInfo = {
    kind: 'k8s',
    ...s.api.where,
    namespace: s.namespace,
    pods: infos.map(({ podMtu: _m, ...p }) => p),
    ...(podMtu ? { podMtu } : {}),
    mtu,
  };
  return { name: spec.name, falconDir: s.c.paths.dir, accel: String(s.record.options.kvm ? 'kvm' : 'tcg'), nodes, links, interfaces: [], switches: await podSwitchInfo(s, pods), backend };
}

/** The switches as locally, each running while its container in its owner's pod runs. */
async function podSwitchInfo(s: K8sSession, pods: Map<string, PodView>): Promise<SwitchInfo[]> {
  const owners = new Map(switchPlans(s.spec).map((p) => [p.npu, { owner: p.nodes[0]!, container: p.kind === 'softnpu' ? 'switch' : 'sidemux' }]));
  return (await switchInfo(s.spec, s.c.paths)).map((sw) => {
    const o = owners.get(sw.node)!;
    const pod = s.pod(o.owner);
    const running = pods.get(pod)?.containers.some((c) => c.name === o.container && c.state === 'running') ?? false;
    const where = `pod ${s.namespace}/${pod} container ${o.container}`;
    return { ...sw, status: running ? 'running' : 'stopped', config: where, log: `kubectl -n ${s.namespace} logs ${pod} -c ${o.container}`, controlSocket: where };
  });
}
