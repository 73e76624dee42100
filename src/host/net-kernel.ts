/**
 * Detecting what the host kernel can do for Falcon's links, by trying it on throwaway devices:
 * kernels differ (custom builds lack tc modules, containers lack CAP_NET_ADMIN), and a missing
 * piece must be reported before anything of a topology is created.
 */
import { randomBytes } from 'node:crypto';
import type { ProcessRunner } from './process.js';
import { HostCommandError } from './process.js';
import { NET_CMD_TIMEOUT_MS } from './net-ip.js';

/** One thing wrong with the host for a topology's network, with where, what and how to fix it. */
export interface NetworkProblem {
  /** Where: `host.kernel.mirred`, `links[2].hostIfx`, `links[0].a`, ... */
  path: string;
  message: string;
  fix: string;
}

export type Feature = 'tools' | 'permission' | 'tun' | 'altname' | 'ingress' | 'u32' | 'mirred' | 'macvtap' | 'netem';

/** Result of probing the kernel; a feature is false when missing, undefined when it could not be tried. */
export interface KernelFeatures {
  /** `ip` and `tc` (iproute2) can be run. */
  tools: boolean;
  /** Network devices can be created (root or CAP_NET_ADMIN). */
  permission: boolean | undefined;
  tun: boolean | undefined;
  altname: boolean | undefined;
  ingress: boolean | undefined;
  u32: boolean | undefined;
  mirred: boolean | undefined;
  macvtap: boolean | undefined;
  /** The netem qdisc, for link impairment (without it a userspace helper impairs). */
  netem: boolean | undefined;
  /** stderr of each failed probe, for the report. */
  errors: Partial<Record<Feature, string>>;
}

const cache = new WeakMap<ProcessRunner, Promise<KernelFeatures>>();

/**
 * Probe the kernel once per runner (so once per process in practice): creates two taps with a
 * unique temporary name, an ingress qdisc, a u32 filter with a mirred redirect and a macvtap,
 * then removes them.
 */
export function detectKernelFeatures(runner: ProcessRunner, signal?: AbortSignal): Promise<KernelFeatures> {
  let p = cache.get(runner);
  if (!p) {
    p = probe(runner, signal);
    cache.set(runner, p);
    // An aborted probe says nothing about the kernel: forget it.
    p.catch(() => cache.delete(runner));
  }
  return p;
}

async function probe(runner: ProcessRunner, signal?: AbortSignal): Promise<KernelFeatures> {
  const id = randomBytes(4).toString('hex');
  const a = `fnpr${id}a`;
  const b = `fnpr${id}b`;
  const m = `fnpr${id}m`;
  const f: KernelFeatures = {
    tools: true,
    permission: undefined,
    tun: undefined,
    altname: undefined,
    ingress: undefined,
    u32: undefined,
    mirred: undefined,
    macvtap: undefined,
    netem: undefined,
    errors: {},
  };
  /** Runs one probe step; false (with its stderr kept) when the command fails. */
  const attempt = async (feature: Feature, cmd: 'ip' | 'tc', args: string[]): Promise<boolean> => {
    try {
      await runner.run(cmd, args, { timeoutMs: NET_CMD_TIMEOUT_MS, signal });
      return true;
    } catch (e) {
      if (!(e instanceof HostCommandError) || e.timedOut || signal?.aborted) throw e;
      if (e.exitCode === null && !e.signal) {
        f.tools = false; // could not start ip/tc at all
        f.errors.tools = e.message;
      } else f.errors[feature] = e.stderr.trim() || e.message;
      return false;
    }
  };
  try {
    const tapA = await attempt('tun', 'ip', ['tuntap', 'add', 'dev', a, 'mode', 'tap']);
    if (!f.tools) return f;
    if (!tapA) {
      const err = f.errors.tun ?? '';
      if (/not permitted|permission denied/i.test(err)) {
        f.permission = false;
        f.errors.permission = err;
        delete f.errors.tun;
      } else f.tun = false;
      return f;
    }
    f.permission = true;
    f.tun = true;
    if (!(await attempt('tun', 'ip', ['tuntap', 'add', 'dev', b, 'mode', 'tap']))) {
      f.tun = false;
      return f;
    }
    f.altname = await attempt('altname', 'ip', ['link', 'property', 'add', 'dev', a, 'altname', `falcon_probe_${id}`]);
    f.netem = await attempt('netem', 'tc', ['qdisc', 'add', 'dev', b, 'root', 'handle', '1:', 'netem', 'delay', '1ms']);
    f.macvtap = await attempt('macvtap', 'ip', ['link', 'add', 'link', a, 'name', m, 'type', 'macvtap', 'mode', 'bridge']);
    f.ingress = await attempt('ingress', 'tc', ['qdisc', 'add', 'dev', a, 'handle', 'ffff:', 'ingress']);
    if (!f.ingress) return f;
    f.u32 = await attempt('u32', 'tc', ['filter', 'add', 'dev', a, 'parent', 'ffff:', 'protocol', 'all', 'pref', '1', 'u32', 'match', 'u32', '0', '0']);
    if (!f.u32) return f;
    f.mirred = await attempt('mirred', 'tc', [
      'filter', 'add', 'dev', a, 'parent', 'ffff:', 'protocol', 'all', 'pref', '2',
      'u32', 'match', 'u32', '0', '0', 'action', 'mirred', 'egress', 'redirect', 'dev', b,
    ]);
    return f;
  } finally {
    // Deleting `a` also removes the macvtap on it, its qdisc and filters.
    if (f.tools && f.permission) {
      for (const dev of [a, b]) {
        await runner.run('ip', ['link', 'del', 'dev', dev], { timeoutMs: NET_CMD_TIMEOUT_MS, reject: false }).catch(() => undefined);
      }
    }
  }
}

/** Forget cached probe results (tests, or after the user loaded a module). */
export function forgetKernelFeatures(runner: ProcessRunner): void {
  cache.delete(runner);
}

const CONFIG: Record<Exclude<Feature, 'tools' | 'permission'>, { what: string; config: string; module: string }> = {
  tun: { what: 'TUN/TAP devices', config: 'CONFIG_TUN', module: 'tun' },
  altname: { what: 'alternative interface names (ip link property add ... altname)', config: 'Linux 5.5 or later', module: '' },
  ingress: { what: 'the tc ingress qdisc', config: 'CONFIG_NET_SCH_INGRESS', module: 'sch_ingress' },
  u32: { what: 'the tc u32 classifier', config: 'CONFIG_NET_CLS_U32', module: 'cls_u32' },
  mirred: { what: 'the tc mirred action', config: 'CONFIG_NET_ACT_MIRRED', module: 'act_mirred' },
  macvtap: { what: 'macvtap devices (needed by external links)', config: 'CONFIG_MACVTAP', module: 'macvtap' },
  netem: { what: 'the tc netem qdisc', config: 'CONFIG_NET_SCH_NETEM', module: 'sch_netem' },
};

/** Why link impairment takes the path it takes, in one line: for preflight and `impair --show`. */
export function netemReason(f: KernelFeatures): string {
  if (f.netem) return 'the host kernel has the netem qdisc';
  const err = f.errors.netem?.split('\n')[0];
  const c = CONFIG.netem;
  return `the host kernel has no netem qdisc${err ? ` (tc: ${err})` : ''}; "modprobe ${c.module}" or a kernel with ${c.config} would let Falcon use it`;
}

/**
 * What is missing for a topology, as problems. `needMacvtap`: the topology has external links.
 */
export function featureProblems(f: KernelFeatures, needMacvtap: boolean): NetworkProblem[] {
  if (!f.tools) {
    return [
      {
        path: 'host.tools',
        message: `cannot run "ip"/"tc" (${f.errors.tools ?? 'not found'})`,
        fix: 'install iproute2 (apt-get install iproute2) and make sure ip and tc are on PATH',
      },
    ];
  }
  if (f.permission === false) {
    return [
      {
        path: 'host.permission',
        message: `not allowed to create network devices (${f.errors.permission ?? 'Operation not permitted'})`,
        fix: 'run Falcon as root (sudo) or give it CAP_NET_ADMIN',
      },
    ];
  }
  const out: NetworkProblem[] = [];
  const order: (keyof typeof CONFIG)[] = ['tun', 'altname', 'ingress', 'u32', 'mirred'];
  if (needMacvtap) order.push('macvtap');
  for (const k of order) {
    const v = f[k];
    if (v === true) continue;
    const c = CONFIG[k];
    const err = f.errors[k];
    if (v === false) {
      out.push({
        path: `host.kernel.${k}`,
        message: `the host kernel does not support ${c.what}${err ? ` (${err.split('\n')[0]})` : ''}`,
        fix: c.module
          ? `load the module with "modprobe ${c.module}", or use a kernel built with ${c.config}=y or =m`
          : `use ${c.config}`,
      });
    } else if (!out.length) {
      // Untested only because an earlier step failed; that step is already reported.
      out.push({ path: `host.kernel.${k}`, message: `could not test ${c.what}`, fix: 'fix the problems above, then retry' });
    }
  }
  return out;
}
