/** `$topo launch [--backend k8s ...]`: the whole topology, up and ready, on this host or a cluster. */
import { Command, Option } from 'commander';
import { backendByName, type KubernetesBackend } from '../../runner/k8s/backend.js';
import { FalconError } from '../../util/errors.js';
import type { CommandContext } from '../context.js';

interface LaunchFlags {
  backend?: string;
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  image?: string;
  placement: string[];
  cpuAllocationRatio?: string;
  kvm?: boolean;
  vxlanPort?: string;
}

/** `NODE=HOST` pairs into a placement map. Pure. */
export function parsePlacement(pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const m = /^([^=]+)=(.+)$/.exec(p);
    if (!m) throw new FalconError('INVALID_ARGUMENT', `--placement ${p}: give NODE=CLUSTER_NODE, e.g. --placement gc1=worker-2`);
    out[m[1]!] = m[2]!;
  }
  return out;
}

function num(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new FalconError('INVALID_ARGUMENT', `${flag} ${v} is not a number`);
  return n;
}

/** The backend the flags ask for. Pure. */
export function backendOf(f: LaunchFlags) {
  const k: Omit<KubernetesBackend, 'kind'> = {};
  if (f.kubeconfig) k.kubeconfig = f.kubeconfig;
  if (f.context) k.context = f.context;
  if (f.namespace) k.namespace = f.namespace;
  if (f.image) k.image = f.image;
  if (f.placement.length) k.placement = parsePlacement(f.placement);
  const ratio = num('--cpu-allocation-ratio', f.cpuAllocationRatio);
  if (ratio !== undefined) k.cpuAllocationRatio = ratio;
  const port = num('--vxlan-port', f.vxlanPort);
  if (port !== undefined) k.vxlanPort = port;
  if (f.kvm) k.kvm = true;
  const used = Object.keys(k);
  // No --backend and no cluster flag: the program's own choice (new Runner(name, { backend })).
  if (f.backend === undefined && !used.length) return undefined;
  const name = f.backend ?? 'k8s';
  if (name === 'local' && used.length) throw new FalconError('INVALID_ARGUMENT', `--${used[0]!.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} applies to --backend k8s only`);
  return backendByName(name, k);
}

export function launchCommand(ctx: CommandContext): Command {
  const collect = (v: string, prev: string[]) => [...prev, v];
  return new Command('launch')
    .description('preflight, then create the network and boot every node; returns when all are ready')
    .addOption(new Option('--backend <kind>', "where the topology runs: local (this host) or k8s (a Kubernetes cluster); default the program's choice, else local"))
    .option('--kubeconfig <file>', 'k8s: the kubeconfig (default $KUBECONFIG, else ~/.kube/config)')
    .option('--context <name>', 'k8s: a context of the kubeconfig (default its current one)')
    .option('--namespace <ns>', 'k8s: an existing namespace to use (default falcon-<topology>, made and deleted by Falcon)')
    .option('--image <ref>', 'k8s: the falcon-node image (default falcon.local/falcon-node:<version>)')
    .option('--placement <node=host>', 'k8s: pin a node to a cluster node (repeatable)', collect, [])
    .option('--cpu-allocation-ratio <n>', 'k8s: vCPUs per requested CPU (default 10, as KubeVirt)')
    .option('--vxlan-port <port>', "k8s: the links' UDP port in the pods (default 4789)")
    .option('--kvm', 'k8s: give the pods /dev/kvm and run QEMU under KVM')
    .action(async (f: LaunchFlags) => {
      await ctx.runner().launch({ backend: backendOf(f) });
    });
}
