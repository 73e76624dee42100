/**
 * Kubelet 1.20 sets machine-wide sysctls when it starts (setupKernelTunables: vm.overcommit_memory=1,
 * kernel.panic=10, kernel.panic_on_oops=1, ...). The harness puts them back when the last test
 * cluster on the machine goes: the values from before the first one are kept in
 * /run/falcon-k8s/sysctls.json with the clusters (state dirs) holding them, so two clusters up
 * at once, stopped in any order, still restore the machine's own values.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { acquireLock } from '../../src/util/lock.js';
import { tryRun } from './run.js';
import { STATE_FILE } from './state.js';

export const KUBELET_SYSCTLS = ['vm.overcommit_memory', 'vm.panic_on_oom', 'kernel.panic', 'kernel.panic_on_oops', 'kernel.keys.root_maxkeys', 'kernel.keys.root_maxbytes'];
export const REGISTRY_DIR = '/run/falcon-k8s';
const REGISTRY = path.join(REGISTRY_DIR, 'sysctls.json');

interface Registry {
  values: Record<string, string>;
  holders: string[];
}

export function readSysctl(key: string): string | undefined {
  try {
    return readFileSync(`/proc/sys/${key.replaceAll('.', '/')}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function read(): Registry | undefined {
  try {
    return JSON.parse(readFileSync(REGISTRY, 'utf8')) as Registry;
  } catch {
    return undefined;
  }
}

/** Holders whose cluster is gone (its state file removed) no longer hold. */
function live(holders: string[], except?: string): string[] {
  return holders.filter((h) => h !== except && existsSync(path.join(h, STATE_FILE)));
}

async function locked<T>(fn: () => Promise<T> | T): Promise<T> {
  mkdirSync(REGISTRY_DIR, { recursive: true, mode: 0o700 });
  const release = await acquireLock(path.join(REGISTRY_DIR, 'sysctls.lock'), { what: 'the test clusters\' sysctl registry', waitMs: 30_000 });
  try {
    return await fn();
  } finally {
    await release();
  }
}

/** Before a cluster's kubelets start: remember the machine's values (unless a cluster already did). */
export function holdSysctls(stateDir: string): Promise<void> {
  return locked(() => {
    const r = read();
    const values = r?.values ?? Object.fromEntries(KUBELET_SYSCTLS.map((k) => [k, readSysctl(k)]).filter((e): e is [string, string] => e[1] !== undefined));
    writeFileSync(REGISTRY, JSON.stringify({ values, holders: [...live(r?.holders ?? [], stateDir), stateDir] }, null, 2) + '\n', { mode: 0o600 });
  });
}

/** When a cluster goes: the last one restores the values. Returns what could not be restored. */
export function releaseSysctls(stateDir: string): Promise<string[]> {
  if (!existsSync(REGISTRY)) return Promise.resolve([]);
  return locked(async () => {
    const r = read();
    if (!r) {
      rmSync(REGISTRY, { force: true });
      return [];
    }
    const holders = live(r.holders, stateDir);
    if (holders.length) {
      writeFileSync(REGISTRY, JSON.stringify({ ...r, holders }, null, 2) + '\n', { mode: 0o600 });
      return [];
    }
    const failed: string[] = [];
    for (const [k, v] of Object.entries(r.values)) {
      if (readSysctl(k) === v) continue;
      const res = await tryRun('sysctl', ['-q', '-w', `${k}=${v}`], { timeoutMs: 10_000 });
      if (res.code !== 0) failed.push(`sysctl ${k}: could not restore ${v}: ${res.stderr.trim()}`);
    }
    if (!failed.length) rmSync(REGISTRY, { force: true });
    return failed;
  }).then((failed) => {
    try {
      if (!existsSync(REGISTRY)) rmdirSync(REGISTRY_DIR);
    } catch {
      /* a lock being taken by another run */
    }
    return failed;
  });
}

/** For leftovers(): the registry still naming this cluster, or sysctls not restored with no cluster up. */
export function sysctlLeftovers(stateDir: string): string[] {
  const r = read();
  if (!r) return [];
  const out: string[] = [];
  if (r.holders.includes(stateDir) && !existsSync(path.join(stateDir, STATE_FILE))) out.push(`${REGISTRY} still names ${stateDir}`);
  if (!live(r.holders).length) {
    for (const [k, v] of Object.entries(r.values)) if (readSysctl(k) !== v) out.push(`sysctl ${k} = ${readSysctl(k)}, the machine had ${v}`);
    out.push(`${REGISTRY} left with no cluster up`);
  }
  return out;
}
