/**
 * Tearing a test cluster down, and the check that nothing of it is left: processes (daemons,
 * containerd shims, pods), mounts, network namespaces, interfaces, cgroups, the state dir.
 * Works from the state file when there is one and from names alone when there is not (a crash
 * before it was written), so `down` always cleans up.
 */
import { existsSync, readFileSync, readdirSync, readlinkSync, rmSync, rmdirSync } from 'node:fs';
import path from 'node:path';
import { run, sleep, type Log } from './run.js';
import { cgroupPids, cgroupRootsOf, deleteNetns, escapeRe, LINK_NAME, mountPoints, netnsOf, nsInode, removeCgroupRoot, unmountUnder } from './network.js';
import { readState } from './state.js';
import { releaseSysctls, sysctlLeftovers } from './sysctls.js';

/** Our pid and our ancestors' (the CLI's own command line names the state dir). */
function ancestry(): Set<number> {
  const out = new Set<number>();
  let pid = process.pid;
  while (pid > 1 && !out.has(pid)) {
    out.add(pid);
    try {
      pid = Number(/^\d+ \(.*\) \S (\d+)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1] ?? 0);
    } catch {
      break;
    }
  }
  return out;
}

export interface Who {
  name: string;
  stateDir: string;
}

/** The namespaces' inodes (network and mount) of a cluster that still has them. */
function nsInodes(w: Who): Set<number> {
  const s = new Set<number>();
  for (const ns of netnsOf(w.name)) {
    const i = nsInode(`/run/netns/${ns}`);
    if (i) s.add(i);
  }
  const pins = path.join(w.stateDir, 'ns');
  if (existsSync(pins)) for (const f of readdirSync(pins)) {
    const p = path.join(pins, f);
    if (mountPoints().includes(p)) {
      const i = nsInode(p);
      if (i) s.add(i);
    }
  }
  return s;
}

/** The cluster's processes: pid → a description. */
export function clusterProcesses(w: Who, inodes = nsInodes(w)): Map<number, string> {
  const mine = ancestry();
  const found = new Map<number, string>();
  const inCgroups = new Set(cgroupRootsOf(w.name).flatMap((r) => cgroupPids(r)));
  const dir = path.resolve(w.stateDir) + '/';
  const netnsRe = new RegExp(`/run/netns/${escapeRe(w.name)}-(cp|h\\d+)\\b`);
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    const pid = Number(p);
    if (mine.has(pid)) continue;
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
    } catch {
      continue;
    }
    let why = '';
    if (inCgroups.has(pid)) why = 'in the cluster\'s cgroups';
    else if (cmd.includes(dir) || netnsRe.test(cmd)) why = 'names the cluster';
    else {
      for (const ns of ['net', 'mnt']) {
        try {
          const ino = Number(/\[(\d+)\]/.exec(readlinkSync(`/proc/${p}/ns/${ns}`))?.[1]);
          if (inodes.has(ino)) why = `in the cluster's ${ns} namespace`;
        } catch {
          /* gone or kernel thread */
        }
      }
    }
    if (why && cmd) found.set(pid, `${cmd.slice(0, 160)} (${why})`);
    else if (why) found.set(pid, `pid ${pid} (${why})`);
  }
  return found;
}

function kill(pids: Iterable<number>, sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      /* gone */
    }
  }
}

async function waitGone(pids: number[], ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  let left = pids;
  while (left.length && Date.now() < deadline) {
    await sleep(100);
    left = left.filter((p) => existsSync(`/proc/${p}`) && !/^\d+ \(.*\) Z/.test(safeRead(`/proc/${p}/stat`)));
  }
  return left;
}

function safeRead(f: string): string {
  try {
    return readFileSync(f, 'utf8');
  } catch {
    return '';
  }
}

/** Tears the cluster down; returns what is left (empty when all is gone). */
export async function teardown(w: Who, o: { log: Log; keepLogs?: boolean }): Promise<string[]> {
  const state = readState(w.stateDir);
  const inodes = nsInodes(w);
  // 1. What makes new pods and restarts containers: the kubelets and the controllers.
  const first = (state?.daemons ?? []).filter((d) => /^(kubelet|kube-controller-manager|kube-scheduler)/.test(d.label)).map((d) => d.pid);
  const byName = [...clusterProcesses(w, inodes)].filter(([, c]) => /\/(kubelet|kube-controller-manager|kube-scheduler) /.test(c)).map(([p]) => p);
  const stopFirst = [...new Set([...first, ...byName])].filter((p) => existsSync(`/proc/${p}`));
  kill(stopFirst, 'SIGTERM');
  kill(await waitGone(stopFirst, 5_000), 'SIGKILL');
  // 2. The pods' processes, then everything else of the cluster (containerds, shims, etcd...).
  for (let round = 0; round < 20; round++) {
    const pods = cgroupRootsOf(w.name).flatMap((r) => cgroupPids(r));
    const rest = [...clusterProcesses(w, inodes).keys()];
    const all = [...new Set([...pods, ...rest])];
    if (!all.length) break;
    kill(all, 'SIGKILL');
    await waitGone(all, 2_000);
  }
  // 3. Mounts: the hosts' mount namespace pins (their mounts go with them), anything else ours.
  const left: string[] = [];
  left.push(...(await unmountUnder(w.stateDir)));
  // 4. Network namespaces: their veths, bridges and routes go with them.
  for (const ns of netnsOf(w.name)) await deleteNetns(ns);
  // 5. cgroups.
  for (const r of cgroupRootsOf(w.name)) left.push(...removeCgroupRoot(r));
  // 6. The machine-wide sysctls the kubelets changed.
  left.push(...(await releaseSysctls(path.resolve(w.stateDir))));
  if (state?.madeVarLibCni) {
    try {
      rmdirSync('/var/lib/cni');
    } catch {
      /* not empty: not ours alone */
    }
  }
  // 7. The state dir (the logs kept when asked).
  if (existsSync(w.stateDir)) {
    if (o.keepLogs) {
      for (const e of readdirSync(w.stateDir)) if (e !== 'logs') rmSync(path.join(w.stateDir, e), { recursive: true, force: true });
    } else rmSync(w.stateDir, { recursive: true, force: true });
  }
  return [...left, ...(await leftovers(w, { keepLogs: o.keepLogs }))];
}


/** Everything of the cluster still on the machine; empty when the teardown was complete. */
export async function leftovers(w: Who, o: { keepLogs?: boolean } = {}): Promise<string[]> {
  const out: string[] = [];
  for (const [pid, desc] of clusterProcesses(w)) out.push(`process ${pid}: ${desc}`);
  const dir = path.resolve(w.stateDir);
  for (const m of mountPoints()) {
    if (m === dir || m.startsWith(dir + '/') || new RegExp(`^/run/netns/${escapeRe(w.name)}-(cp|h\\d+)$`).test(m)) out.push(`mount ${m}`);
  }
  for (const ns of netnsOf(w.name)) out.push(`network namespace ${ns}`);
  // Pod network namespaces are pinned under containerd's state dir (netns_mounts_under_state_dir),
  // never in /run/netns: one there is a pod's left by a containerd.
  if (existsSync('/run/netns')) for (const f of readdirSync('/run/netns')) if (f.startsWith('cni-')) out.push(`pod network namespace /run/netns/${f}`);
  const { stdout } = await run('ip', ['-j', 'link', 'show'], { timeoutMs: 10_000 });
  for (const l of JSON.parse(stdout) as { ifname: string }[]) if (LINK_NAME.test(l.ifname)) out.push(`interface ${l.ifname} in the root namespace`);
  for (const r of cgroupRootsOf(w.name)) out.push(`cgroup ${r}`);
  if (existsSync(dir)) {
    const entries = readdirSync(dir).filter((e) => !(o.keepLogs && e === 'logs'));
    if (entries.length || !o.keepLogs) out.push(`state dir ${dir}${entries.length ? `: ${entries.join(', ')}` : ''}`);
  }
  out.push(...sysctlLeftovers(dir));
  return out;
}
