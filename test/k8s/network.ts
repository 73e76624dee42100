/**
 * The cluster's network and the hosts' namespaces, all made inside namespaces of our own (no
 * address, route or link in the root namespace):
 *
 *   <name>-cp   the control plane's network namespace; it also holds the underlay: a bridge
 *               `k8s-underlay` (10.254.0.254/24) with one veth per host (`k8s-hN`), like a
 *               top-of-rack switch
 *   <name>-hN   host N's network namespace: `k8s-ul0` (10.254.0.N/24, the node IP) is the other end
 *               of its veth; pod CIDR 10.244.N.0/24 on the CNI bridge; a route to every other
 *               host's pod CIDR via that host's underlay address
 *
 * Each host also has a mount namespace of its own (a slave of the root's, pinned on a file under
 * the state dir): its kubelet and containerd share it, so the kubelet's mounts reach containerd,
 * and in it /var/log and /var/lib/cni are the host's own folders (kubelet 1.20 has
 * /var/log/pods hard-coded and removes the log folders of pods it does not know: two kubelets on
 * one /var/log/pods delete each other's logs). Its mounts vanish with it.
 *
 * And a cgroup root of its own (/<name>-hN in every hierarchy) for `--cgroup-root`: a kubelet
 * removes the pod cgroups it does not know under its root, so two kubelets on one kubepods would
 * kill each other's pods.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { run, tryRun } from './run.js';

export interface HostLayout {
  /** Node name = network namespace name, `<cluster>-hN`. */
  name: string;
  netns: string;
  index: number;
  nodeIP: string;
  podCIDR: string;
  /** The CNI bridge's address in the pod CIDR. */
  podGateway: string;
  /** This host's folder under the state dir. */
  dir: string;
  /** The file pinning the host's mount namespace. */
  mountNs: string;
  /** `--cgroup-root`, e.g. /falcon-k8s-h1. */
  cgroupRoot: string;
}

export interface Layout {
  name: string;
  stateDir: string;
  cpNetns: string;
  cpIP: string;
  underlayPrefixLen: number;
  hosts: HostLayout[];
}

export interface LayoutOptions {
  name: string;
  stateDir: string;
  hosts: number;
  /** First three octets of the underlay /24. Default 10.254.0. */
  underlay?: string;
  /** First two octets of the pod CIDRs: host N gets <podNet>.N.0/24. Default 10.244. */
  podNet?: string;
}

export function layout(o: LayoutOptions): Layout {
  const underlay = o.underlay ?? '10.254.0';
  const podNet = o.podNet ?? '10.244';
  if (o.hosts < 1 || o.hosts > 200) throw new Error(`hosts must be 1..200, not ${o.hosts}`);
  const hosts: HostLayout[] = [];
  for (let i = 1; i <= o.hosts; i++) {
    const name = `${o.name}-h${i}`;
    const dir = path.join(o.stateDir, `h${i}`);
    hosts.push({
      name,
      netns: name,
      index: i,
      nodeIP: `${underlay}.${i}`,
      podCIDR: `${podNet}.${i}.0/24`,
      podGateway: `${podNet}.${i}.1`,
      dir,
      mountNs: path.join(o.stateDir, 'ns', `h${i}.mnt`),
      cgroupRoot: `/${name}`,
    });
  }
  return { name: o.name, stateDir: o.stateDir, cpNetns: `${o.name}-cp`, cpIP: `${underlay}.254`, underlayPrefixLen: 24, hosts };
}

/** The interfaces' names, all inside the cluster's namespaces (none in the root namespace). */
export const LINKS = {
  underlay: 'k8s-underlay',
  cpPort: (i: number) => `k8s-h${i}`,
  hostUplink: 'k8s-ul0',
  podBridge: 'k8s-pods',
};
/** Any of them seen in the root namespace is a leftover. */
export const LINK_NAME = /^k8s-(underlay|ul0|pods|h\d+)$/;

const ip = (args: string[]) => run('ip', args, { timeoutMs: 30_000 });
const inNs = (ns: string, args: string[]) => ip(['-n', ns, ...args]);

async function sysctlIn(ns: string, key: string, value: string): Promise<void> {
  // /proc/sys/net follows the writer's network namespace.
  await run('nsenter', [`--net=/run/netns/${ns}`, 'sysctl', '-q', '-w', `${key}=${value}`]);
}

/** Network namespaces, the underlay and the routes between the pod CIDRs. */
export async function createNetwork(l: Layout): Promise<void> {
  for (const ns of [l.cpNetns, ...l.hosts.map((h) => h.netns)]) {
    if (existsSync(`/run/netns/${ns}`)) throw new Error(`network namespace ${ns} exists already: another cluster named '${l.name}' runs (or was left: npx tsx test/k8s/cluster.ts down)`);
  }
  await ip(['netns', 'add', l.cpNetns]);
  await inNs(l.cpNetns, ['link', 'set', 'lo', 'up']);
  await inNs(l.cpNetns, ['link', 'add', LINKS.underlay, 'type', 'bridge']);
  await inNs(l.cpNetns, ['addr', 'add', `${l.cpIP}/${l.underlayPrefixLen}`, 'dev', LINKS.underlay]);
  await inNs(l.cpNetns, ['link', 'set', LINKS.underlay, 'up']);
  await sysctlIn(l.cpNetns, 'net.ipv4.ip_forward', '1');
  for (const h of l.hosts) {
    await ip(['netns', 'add', h.netns]);
    await inNs(h.netns, ['link', 'set', 'lo', 'up']);
    // Made inside the namespaces: the pair never has a name in the root namespace.
    await inNs(h.netns, ['link', 'add', LINKS.hostUplink, 'type', 'veth', 'peer', 'name', LINKS.cpPort(h.index), 'netns', l.cpNetns]);
    await inNs(h.netns, ['addr', 'add', `${h.nodeIP}/${l.underlayPrefixLen}`, 'dev', LINKS.hostUplink]);
    await inNs(h.netns, ['link', 'set', LINKS.hostUplink, 'up']);
    await inNs(l.cpNetns, ['link', 'set', LINKS.cpPort(h.index), 'master', LINKS.underlay, 'up']);
    await sysctlIn(h.netns, 'net.ipv4.ip_forward', '1');
  }
  for (const h of l.hosts) {
    await inNs(l.cpNetns, ['route', 'add', h.podCIDR, 'via', h.nodeIP]);
    for (const o of l.hosts) if (o !== h) await inNs(h.netns, ['route', 'add', o.podCIDR, 'via', o.nodeIP]);
  }
}

/** The host's mount namespace, with its own /var/log and /var/lib/cni. */
/**
 * The folder of the hosts' mount namespace pins. A pin must not sit on a shared mount: the folder
 * gets a private mount of its own (as `ip netns` does for /run/netns). Once, before the hosts.
 */
export async function createPinDir(l: Layout): Promise<void> {
  const nsDir = path.join(l.stateDir, 'ns');
  mkdirSync(nsDir, { recursive: true, mode: 0o700 });
  if (!isMountPoint(nsDir)) {
    await run('mount', ['--bind', nsDir, nsDir]);
    await run('mount', ['--make-private', nsDir]);
  }
}

/** The host's mount namespace (createPinDir first), with its own /var/log and /var/lib/cni. */
export async function createMountNamespace(h: HostLayout): Promise<{ madeVarLibCni: boolean }> {
  writeFileSync(h.mountNs, '');
  await run('unshare', [`--mount=${h.mountNs}`, '--propagation', 'slave', 'true']);
  let madeVarLibCni = false;
  if (!existsSync('/var/lib/cni')) {
    mkdirSync('/var/lib/cni', { recursive: true });
    madeVarLibCni = true;
  }
  for (const [own, at] of [
    [path.join(h.dir, 'var-log'), '/var/log'],
    [path.join(h.dir, 'var-lib-cni'), '/var/lib/cni'],
  ] as const) {
    mkdirSync(path.join(own, at === '/var/log' ? 'pods' : ''), { recursive: true, mode: 0o755 });
    await run('nsenter', [`--mount=${h.mountNs}`, 'mount', '--bind', own, at]);
  }
  return { madeVarLibCni };
}

/** The v1 hierarchies (and the v2 one) mounted on this machine. */
export function cgroupMounts(): string[] {
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep > 0 && (f[sep + 1] === 'cgroup' || f[sep + 1] === 'cgroup2') && f[4]) out.push(f[4]);
  }
  return out;
}

export function createCgroupRoot(h: HostLayout): void {
  for (const m of cgroupMounts()) {
    const dir = path.join(m, h.cgroupRoot);
    mkdirSync(dir, { recursive: true });
    // A new cpuset cgroup has no CPUs or memory nodes: copy its parent's.
    for (const f of ['cpuset.cpus', 'cpuset.mems']) {
      if (existsSync(path.join(m, f)) && existsSync(path.join(dir, f)) && !readFileSync(path.join(dir, f), 'utf8').trim())
        writeFileSync(path.join(dir, f), readFileSync(path.join(m, f), 'utf8'));
    }
  }
}

/** Every pid in the cgroup trees `root` (e.g. /falcon-k8s-h1) in every hierarchy. */
export function cgroupPids(root: string): number[] {
  const pids = new Set<number>();
  const walk = (dir: string) => {
    try {
      for (const p of readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n')) if (p) pids.add(Number(p));
      for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(dir, e.name));
    } catch {
      /* gone meanwhile */
    }
  };
  for (const m of cgroupMounts()) if (existsSync(path.join(m, root))) walk(path.join(m, root));
  return [...pids];
}

/** Removes the cgroup trees `root`, deepest first; returns what could not be removed. */
export function removeCgroupRoot(root: string): string[] {
  const left: string[] = [];
  const rm = (dir: string) => {
    let entries: string[] = [];
    try {
      entries = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch {
      return;
    }
    for (const e of entries) rm(path.join(dir, e));
    try {
      rmdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') left.push(`${dir}: ${(err as Error).message}`);
    }
  };
  for (const m of cgroupMounts()) if (existsSync(path.join(m, root))) rm(path.join(m, root));
  return left;
}

/** The cgroup roots named like this cluster's hosts that exist, e.g. ['/falcon-k8s-h1']. */
export function cgroupRootsOf(name: string): string[] {
  const found = new Set<string>();
  for (const m of cgroupMounts()) {
    try {
      for (const e of readdirSync(m)) if (new RegExp(`^${escapeRe(name)}-h\\d+$`).test(e)) found.add(`/${e}`);
    } catch {
      /* unreadable */
    }
  }
  return [...found];
}

export function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The mount points in the root mount namespace (as /proc/self/mountinfo shows them, decoded). */
export function mountPoints(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ')[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
}

export function isMountPoint(p: string): boolean {
  return mountPoints().includes(path.resolve(p));
}

/** The network namespaces of this cluster (by name) that exist. */
export function netnsOf(name: string): string[] {
  if (!existsSync('/run/netns')) return [];
  return readdirSync('/run/netns').filter((n) => n === `${name}-cp` || new RegExp(`^${escapeRe(name)}-h\\d+$`).test(n));
}

/** Unmounts everything of ours under `dir` in the root mount namespace, deepest first. */
export async function unmountUnder(dir: string): Promise<string[]> {
  const left: string[] = [];
  const prefix = path.resolve(dir);
  const mine = mountPoints()
    .filter((m) => m === prefix || m.startsWith(prefix + '/'))
    .sort((a, b) => b.length - a.length);
  for (const m of mine) {
    const r = await tryRun('umount', [m], { timeoutMs: 30_000 });
    if (r.code !== 0) {
      const lazy = await tryRun('umount', ['-l', m], { timeoutMs: 30_000 });
      if (lazy.code !== 0) left.push(`${m}: ${lazy.stderr.trim()}`);
    }
  }
  return left;
}

export async function deleteNetns(ns: string): Promise<void> {
  await tryRun('ip', ['netns', 'delete', ns], { timeoutMs: 30_000 });
}

/** The inode of a namespace file (/run/netns/X, a pin, /proc/PID/ns/net), or undefined. */
export function nsInode(file: string): number | undefined {
  try {
    return statSync(file).ino;
  } catch {
    return undefined;
  }
}
