/**
 * Starting and stopping one node's QEMU. The process outlives the CLI; its stdout and stderr go
 * to `.falcon/<node>.out` and `.err`, its pid to `.falcon/<node>.pid`.
 */
import { openSync, closeSync, promises as fs } from 'node:fs';
import { findProcessesWithArgs, processHasArg, terminate, waitForExit } from '../host/procs.js';
import type { ProcessRunner } from '../host/process.js';
import { qmpOnce } from '../host/qmp.js';
import { tail } from '../util/fs.js';
import type { FalconPaths } from './paths.js';

export interface StartedVm {
  pid: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function startVm(
  proc: ProcessRunner,
  paths: FalconPaths,
  node: string,
  args: string[],
  fdDevices: string[] = [],
): Promise<StartedVm> {
  await fs.mkdir(paths.socketDir, { recursive: true, mode: 0o700 });
  await fs.rm(paths.pidFile(node), { force: true });
  const out = openSync(paths.out(node), 'a', 0o600);
  const err = openSync(paths.err(node), 'a', 0o600);
  const extra: number[] = [];
  try {
    for (const dev of fdDevices) extra.push(openSync(dev, 'r+'));
    return await proc.spawnDetached('qemu-system-x86_64', args, { stdout: out, stderr: err, extraFds: extra });
  } finally {
    for (const fd of [out, err, ...extra]) closeSync(fd);
  }
}

/**
 * Pids of the node's QEMU: the pid file when it names a QEMU of this node (the common case, one
 * read), else a scan of /proc for the node's unique pid-file argument.
 */
export async function vmPids(paths: FalconPaths, node: string): Promise<number[]> {
  const recorded = Number((await fs.readFile(paths.pidFile(node), 'utf8').catch(() => '')).trim());
  if (recorded > 0 && (await processHasArg(recorded, paths.pidFile(node)))) return [recorded];
  return (await findProcessesWithArgs([paths.pidFile(node)])).get(paths.pidFile(node))!;
}

/** Every QEMU of these nodes, pid file or not, in one scan of /proc: what destroy must stop. */
export async function allVmPids(paths: FalconPaths, nodes: readonly string[]): Promise<Map<string, number[]>> {
  const found = await findProcessesWithArgs(nodes.map((n) => paths.pidFile(n)));
  return new Map(nodes.map((n) => [n, found.get(paths.pidFile(n))!]));
}

export async function vmRunning(paths: FalconPaths, node: string): Promise<boolean> {
  return (await vmPids(paths, node)).length > 0;
}

/** Ask QEMU to quit over QMP; SIGTERM then SIGKILL when it does not. */
export async function stopVm(paths: FalconPaths, node: string, graceMs = 5000, known?: number[]): Promise<void> {
  const pids = known ?? (await vmPids(paths, node));
  if (pids.length === 0) return;
  try {
    await qmpOnce(paths.sockets(node).qmp, 'quit', undefined, 2000);
  } catch {
    // QMP gone or wedged: signals below do the job.
  }
  await Promise.all(
    pids.map(async (pid) => {
      if (!(await waitForExit(pid, graceMs))) await terminate(pid, 2000);
    }),
  );
  await fs.rm(paths.pidFile(node), { force: true });
}

/** The end of a node's logs, for an error message a user can act on. */
export async function logTails(paths: FalconPaths, node: string, bytes = 1500): Promise<string> {
  const parts: string[] = [];
  const raw = (await tail(paths.consoleLog(node), bytes)).replace(/\r/g, '');
  // Start at a line boundary: a cut line reads as garbage.
  const con = (raw.length >= bytes && raw.includes('\n') ? raw.slice(raw.indexOf('\n') + 1) : raw).trimEnd();
  const err = (await tail(paths.err(node), bytes)).trimEnd();
  if (con) parts.push(`--- last console output (${paths.consoleLog(node)}) ---\n${con}`);
  else parts.push(`--- the console (${paths.consoleLog(node)}) printed nothing ---`);
  if (err) parts.push(`--- QEMU stderr (${paths.err(node)}) ---\n${err}`);
  return parts.join('\n');
}
