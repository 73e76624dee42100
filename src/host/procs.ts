import { promises as fs, readFileSync } from 'node:fs';
import { retry } from '../util/retry.js';
import { pidAlive } from '../util/fs.js';
import { FalconError } from '../util/errors.js';

/**
 * For each needle, the pids of processes whose command line has it as one argument: one pass
 * over /proc for all of them. Finds a topology's QEMUs even when the CLI died before recording
 * them (each node's pid-file path is unique).
 */
export async function findProcessesWithArgs(needles: readonly string[]): Promise<Map<string, number[]>> {
  const out = new Map(needles.map((n) => [n, [] as number[]]));
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const args = await fs.readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => ''); // exited while we looked
    if (!args) continue;
    for (const a of args.split('\0')) out.get(a)?.push(Number(entry));
  }
  return out;
}

/** Whether process `pid` runs with `arg` as one of its arguments. */
export async function processHasArg(pid: number, arg: string): Promise<boolean> {
  const args = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return args.split('\0').includes(arg);
}

/** Wait until the process is gone; true if it went within the deadline. */
export async function waitForExit(pid: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
  // A process that is not our child cannot be waited for: watch /proc instead.
  return retry({ what: `waiting for process ${pid} to exit`, deadlineMs: timeoutMs, delayMs: 20, signal }, async () => {
    if (pidAlive(pid) && !isZombie(pid)) throw new FalconError('TIMEOUT', `process ${pid} is still running`);
    return true;
  }).catch((e) => {
    if (signal?.aborted) throw e;
    return false;
  });
}

/** An exited process not yet reaped by its parent still answers kill(0); its state is Z. */
function isZombie(pid: number): boolean {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = text.slice(text.lastIndexOf(')') + 2)[0];
    return state === 'Z' || state === 'X';
  } catch {
    return true;
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export async function terminate(pid: number, graceMs = 3000): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  if (await waitForExit(pid, graceMs)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  await waitForExit(pid, 5000);
}
