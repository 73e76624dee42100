/** The cluster's long-running processes: started detached, logged, found again by pid. */
import path from 'node:path';
import { errorLines, pidAlive, spawnDaemon } from './run.js';

export interface Daemon {
  /** e.g. "etcd", "kubelet-falcon-k8s-h1" */
  label: string;
  pid: number;
  log: string;
}

/**
 * Starts `cmd args` in a network namespace (and optionally a mount namespace) with nsenter,
 * which execs it: the pid is the daemon's own.
 */
export function startDaemon(
  label: string,
  logsDir: string,
  o: { netns?: string; mountNs?: string; cmd: string; args: string[]; env?: NodeJS.ProcessEnv },
): Daemon {
  const log = path.join(logsDir, `${label}.log`);
  const ns: string[] = [];
  if (o.netns) ns.push(`--net=/run/netns/${o.netns}`);
  if (o.mountNs) ns.push(`--mount=${o.mountNs}`);
  const pid = ns.length ? spawnDaemon('nsenter', [...ns, '--', o.cmd, ...o.args], log, o.env) : spawnDaemon(o.cmd, o.args, log, o.env);
  return { label, pid, log };
}

/** For waitFor's `alive`: a message when the daemon has exited. */
export function exited(d: Daemon): () => string | undefined {
  return () => (pidAlive(d.pid) ? undefined : `${d.label} (pid ${d.pid}) exited; from ${d.log}:\n${errorLines(d.log)}`);
}
