/**
 * What of a topology cannot work on a cluster, or works differently: the k8s backend's part of
 * preflight. Pure: problems refuse the launch (the runner throws its PreflightError with them),
 * warnings are printed and the launch goes on.
 *
 * Refused: external links (a pod has no host NIC to give a VM), switch programs given as a path
 * on this machine (the pod cannot load them), names or image references that collide once made
 * Kubernetes names. Mapped, with a warning: host folders (`mount`) and boot ISOs become hostPath
 * volumes, VNC ports listen in the pod, and tap names are per pod (info shows `ns/pod:tap`).
 */
import type { TopologyProblem } from '../model/errors.js';
import type { TopologySpec } from '../model/spec.js';
import { npuPlans } from '../model/softnpu.js';
import { tunnels } from './links.js';
import { checkMtu, guestMtu, type MtuCheck, type OuterNetwork } from './mtu.js';
import { defaultBaseImageRef, podName } from './names.js';
import type { ResolvedK8sOptions } from './options.js';

/** The k8s backend's verdict on a topology. */
export interface K8sPreflight {
  /** Each refuses the launch. */
  problems: TopologyProblem[];
  /** Each is reported; the launch goes on. */
  warnings: TopologyProblem[];
}

/** What preflight knows of the cluster's pod network, when it knows it. */
export interface PodNetwork {
  /** The MTU of the pods' interface (eth0 in a pod). */
  podMtu?: number;
  /** Default `ipv4`. */
  outer?: OuterNetwork;
}

function extProblems(spec: TopologySpec): TopologyProblem[] {
  const out: TopologyProblem[] = [];
  spec.links.forEach((l, i) => {
    if (l.kind !== 'ext') return;
    out.push({
      path: `links[${i}]`,
      message: `${l.exclusive ? 'extLinkExclusive' : 'extLink'} gives node "${l.a.node}" the host interface ${l.hostIfx ?? '(default route)'}, and on a cluster the node runs in a pod, which has no host interface to give`,
      fix: 'drop the external link for --backend k8s (or connect the node to a node that routes), or launch this topology with the local backend',
    });
  });
  return out;
}

/** A switch program given as a file: a P4 one travels in the ConfigMap (the runner reads it); a module cannot. */
function switchProblems(spec: TopologySpec, o: ResolvedK8sOptions): TopologyProblem[] {
  return npuPlans(spec)
    .filter((p) => p.options.program.includes('/') && !(p.options.program.endsWith('.p4') && o.p4Programs[p.npu]))
    .map((p) => ({
      path: `nodes.${p.npu}.softnpu.program`,
      message: p.options.program.endsWith('.p4')
        ? `the source of P4 program ${p.options.program} was not given (option p4Programs.${p.npu}); the switch runs in the pod of "${p.npu}"`
        : `switch program ${p.options.program} is a file on this machine; the switch runs in the pod of "${p.npu}", which cannot load it`,
      fix: p.options.program.endsWith('.p4')
        ? 'launch through the Runner (it reads the program and its includes), or pass p4Programs'
        : 'use a built-in program (sidecar-lite, sidecar-lite.p4, wire) or a P4 program (.p4), or build the module into your falcon-node image and launch with --image',
    }));
}

function collisionProblems(spec: TopologySpec, o: ResolvedK8sOptions): TopologyProblem[] {
  const out: TopologyProblem[] = [];
  const pods = new Map<string, string>();
  for (const n of spec.nodes) {
    const prev = pods.get(podName(n.name));
    if (prev !== undefined)
      out.push({ path: `nodes.${n.name}`, message: `node "${n.name}" and node "${prev}" get the same pod name ${podName(n.name)}`, fix: 'rename one of them' });
    else pods.set(podName(n.name), n.name);
  }
  const refs = new Map<string, string>();
  for (const [image, ref] of Object.entries(o.baseImageRefs)) {
    // Two images given one reference on purpose share it; only the defaults may collide by accident.
    if (ref !== defaultBaseImageRef(image)) continue;
    const prev = refs.get(ref);
    if (prev !== undefined)
      out.push({ path: `images.${image}`, message: `images "${prev}" and "${image}" both map to the OCI reference ${ref}`, fix: `give one its own reference with the baseImageRefs option` });
    else refs.set(ref, image);
  }
  return out;
}

function mappedWarnings(spec: TopologySpec, o: ResolvedK8sOptions): TopologyProblem[] {
  const out: TopologyProblem[] = [];
  for (const n of spec.nodes) {
    n.mounts.forEach((m, i) =>
      out.push({
        path: `nodes.${n.name}.mounts[${i}]`,
        message: `host folder ${m.source} is mounted from the cluster node the pod of "${n.name}" lands on (a hostPath volume); the pod does not start where it is missing`,
        fix: 'make the folder exist on every cluster node the pod may run on (or pin the node with the placement option)',
      }),
    );
    if (n.bootIso)
      out.push({ path: `nodes.${n.name}.bootIso`, message: `boot ISO ${n.bootIso} is read from the cluster node the pod lands on (a hostPath volume)`, fix: 'put the file there, or pin the node with the placement option' });
    if (n.vncPort !== undefined)
      out.push({
        path: `nodes.${n.name}.vncPort`,
        message: `VNC listens on port ${n.vncPort} in the pod, not on this machine`,
        fix: `kubectl port-forward -n ${o.namespace} pod/${podName(n.name)} ${n.vncPort}`,
      });
  }
  return out;
}

/** One tunnelled link's MTU verdict. */
export interface LinkMtu {
  link: number;
  check: MtuCheck;
}

/**
 * Every tunnelled link's guest MTU checked against the pod MTU (for info, and preflight's warnings).
 *
 * ```ts
 * linkMtuChecks(duo, 1450).map((m) => m.check.ok); // [false]: 1500 + 50 > 1450
 * ```
 */
export function linkMtuChecks(spec: TopologySpec, podMtu: number, outer: OuterNetwork = 'ipv4'): LinkMtu[] {
  return tunnels(spec).map((t) => ({ link: t.link, check: checkMtu(guestMtu(spec.links[t.link]), podMtu, outer) }));
}

function mtuWarnings(spec: TopologySpec, net: PodNetwork): TopologyProblem[] {
  if (net.podMtu === undefined) return [];
  const bad = linkMtuChecks(spec, net.podMtu, net.outer).filter((m) => !m.check.ok);
  const first = bad[0]?.check;
  if (!first || first.ok) return [];
  const path = bad.length === 1 ? `links[${bad[0]!.link}]` : `links (${bad.length} of them: ${bad.map((m) => m.link).join(', ')})`;
  return [{ path, message: first.problem, fix: first.fix }];
}

/**
 * The k8s backend's preflight of a topology: what it refuses, and what it maps with a warning.
 *
 * ```ts
 * const { problems, warnings } = k8sPreflight(spec, resolveK8sOptions(spec, opts), { podMtu: 1450 });
 * if (problems.length) throw new PreflightError(spec.name, problems);
 * ```
 */
export function k8sPreflight(spec: TopologySpec, o: ResolvedK8sOptions, net: PodNetwork = {}): K8sPreflight {
  return {
    problems: [...extProblems(spec), ...switchProblems(spec, o), ...collisionProblems(spec, o)],
    warnings: [...mappedWarnings(spec, o), ...mtuWarnings(spec, net)],
  };
}
