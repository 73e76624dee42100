import { promises as fs, readFileSync } from 'node:fs';
import { sleep } from '../util/abort.js';
import { pidAlive } from '../util/fs.js';

/**
 * Pids of processes whose command line contains `needle` as one argument. Finds a topology's
 * QEMUs even when the CLI died before recording them (the pid file path is unique to the node).
 */
export async function findProcessesWithArg(needle: string): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = (await fs.readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0');
      if (args.includes(needle)) out.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return out;
}

/** Wait until the process is gone; true if it went within the deadline. */
export async function waitForExit(pid: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (pidAlive(pid) && !isZombie(pid)) {
    if (Date.now() > end) return false;
    await sleep(20, signal);
  }
  return true;
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
