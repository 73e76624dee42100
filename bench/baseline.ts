/**
 * The launch baseline: the very QEMU command lines Falcon used (from `.falcon/state.json`),
 * started by a minimal script. It makes its own overlays, sockets, logs and taps (plain taps,
 * unwired: a guest boots the same whether or not a peer listens), starts every QEMU at once and
 * waits for each guest's agent to answer, noting when `FALCON-BOOTED` shows on the console.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { waitForAgent } from '../src/guest/exec-client.js';
import type { ProcessRunner } from '../src/host/process.js';
import { retry } from '../src/util/retry.js';
import { rmrf } from './lib.js';

export interface BaselineNodeInput {
  name: string;
  /** Falcon's argument array for the node. */
  args: string[];
  /** Falcon's node disk (replaced by a fresh overlay of `baseDisk`). */
  disk: string;
  /** The image's disk, the overlay's backing file. */
  baseDisk: string;
}

export interface BaselineInput {
  /** Falcon dir and socket dir the arguments refer to. */
  falconDir: string;
  socketDir: string;
  nodes: BaselineNodeInput[];
  /** The baseline's own folder (must not exist yet or be empty). */
  dir: string;
  /** Prefix of the baseline's tap names (≤ 10 characters). */
  tapPrefix: string;
}

export interface BaselineNode {
  name: string;
  args: string[];
  child: ChildProcess;
  pid: number;
  consoleLog: string;
  execSocket: string;
  /** ms from the start of launchBaseline until FALCON-BOOTED showed on the console. */
  markerMs?: number;
  /** ms from the start until the agent answered. */
  agentMs?: number;
  exited: Promise<void>;
}

export interface BaselineRun {
  dir: string;
  taps: string[];
  nodes: BaselineNode[];
}

/** Falcon's arguments pointed at the baseline's own files and taps. */
export function rewriteArgs(args: readonly string[], from: { falconDir: string; socketDir: string; disk: string }, to: { dir: string; disk: string }, taps: Map<string, string>): string[] {
  const sub = (s: string) => {
    let r = s.split(from.disk).join(to.disk);
    if (!from.socketDir.startsWith(from.falconDir + path.sep)) r = r.split(from.socketDir).join(path.join(to.dir, 'sock'));
    r = r.split(from.falconDir).join(to.dir);
    return r.replace(/ifname=([^,]+)/, (m, name: string) => (taps.has(name) ? `ifname=${taps.get(name)}` : m));
  };
  return args.map(sub);
}

/** The tap names in `-netdev tap,ifname=...` arguments. */
export function tapsOf(args: readonly string[]): string[] {
  return args.flatMap((a) => [...a.matchAll(/(?:^|,)ifname=([^,]+)/g)].map((m) => m[1]!));
}

/**
 * Start the baseline and resolve when every agent answered. Everything it creates is listed
 * in the result (also when it fails: `onCreated` gets the run as soon as it exists).
 */
export async function launchBaseline(
  proc: ProcessRunner,
  input: BaselineInput,
  o: { signal: AbortSignal; deadlineMs: number; onCreated(run: BaselineRun): void },
): Promise<BaselineRun> {
  const t0 = performance.now();
  const run: BaselineRun = { dir: input.dir, taps: [], nodes: [] };
  o.onCreated(run);
  await fs.mkdir(path.join(input.dir, 'sock'), { recursive: true, mode: 0o700 });

  // Taps: one per Falcon tap, same order, created in one `ip -batch` (Falcon batches too).
  const tapMap = new Map<string, string>();
  input.nodes.forEach((n, ni) => tapsOf(n.args).forEach((t, ti) => tapMap.set(t, `${input.tapPrefix}${ni}e${ti}`)));
  if (tapMap.size) {
    const lines = [...tapMap.values()].flatMap((t) => [`tuntap add dev ${t} mode tap`, `link set dev ${t} addrgenmode none`, `link set dev ${t} up`]);
    run.taps.push(...tapMap.values());
    await proc.run('ip', ['-batch', '-'], { input: lines.join('\n') + '\n', timeoutMs: 30_000, signal: o.signal });
  }

  await Promise.all(
    input.nodes.map(async (n) => {
      const disk = path.join(input.dir, `${n.name}.qcow2`);
      await proc.run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', n.baseDisk, '-F', 'qcow2', disk], { timeoutMs: 30_000, signal: o.signal });
      const args = rewriteArgs(n.args, { falconDir: input.falconDir, socketDir: input.socketDir, disk: n.disk }, { dir: input.dir, disk }, tapMap);
      const out = openSync(path.join(input.dir, `${n.name}.out`), 'a', 0o600);
      const err = openSync(path.join(input.dir, `${n.name}.err`), 'a', 0o600);
      let child: ChildProcess;
      try {
        child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', out, err] });
      } finally {
        closeSync(out);
        closeSync(err);
      }
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
      const sock = args.find((a) => a.startsWith('socket,id=exec0,'))?.match(/path=([^,]+)/)?.[1];
      if (!sock) throw new Error(`no exec socket in the arguments of ${n.name}`);
      run.nodes.push({
        name: n.name,
        args,
        child,
        pid: child.pid!,
        consoleLog: args.find((a) => a.startsWith('socket,id=con0,'))?.match(/logfile=([^,]+)/)?.[1] ?? path.join(input.dir, `${n.name}.console.log`),
        execSocket: sock,
        exited,
      });
    }),
  );

  await Promise.all(
    run.nodes.map(async (n) => {
      const died = n.exited.then(async () => {
        const err = await fs.readFile(path.join(input.dir, `${n.name}.err`), 'utf8').catch(() => '');
        throw new Error(`baseline QEMU of ${n.name} exited before its guest was ready: ${err.trim().slice(-400)}`);
      });
      died.catch(() => {});
      const marker = retry(
        { what: `FALCON-BOOTED on ${n.name}`, deadlineMs: o.deadlineMs, delayMs: 20, signal: o.signal },
        async () => {
          const text = await fs.readFile(n.consoleLog, 'utf8').catch(() => '');
          if (!text.includes('FALCON-BOOTED')) throw new Error('not yet');
          n.markerMs = performance.now() - t0;
        },
      );
      marker.catch(() => {});
      await Promise.race([died, waitForAgent(n.execSocket, { deadlineMs: o.deadlineMs, signal: o.signal, node: n.name })]);
      n.agentMs = performance.now() - t0;
      await Promise.race([died, marker]).catch(() => {});
    }),
  );
  return run;
}

/**
 * The by-hand destroy: SIGTERM every QEMU (it exits cleanly, as on QMP quit), wait for them,
 * delete the taps and the folder.
 */
export async function destroyBaseline(proc: ProcessRunner, run: BaselineRun, timeoutMs = 30_000): Promise<{ killMs: number; tapsMs: number; filesMs: number }> {
  const t0 = performance.now();
  await Promise.all(
    run.nodes.map(async (n) => {
      if (n.child.exitCode !== null || n.child.signalCode !== null) return;
      n.child.kill('SIGTERM');
      const t = setTimeout(() => n.child.kill('SIGKILL'), timeoutMs);
      await n.exited;
      clearTimeout(t);
    }),
  );
  const t1 = performance.now();
  if (run.taps.length) {
    await proc.run('ip', ['-batch', '-'], { input: run.taps.map((t) => `link del dev ${t}`).join('\n') + '\n', timeoutMs: 30_000, reject: false });
    run.taps.splice(0);
  }
  const t2 = performance.now();
  await rmrf(run.dir);
  return { killMs: t1 - t0, tapsMs: t2 - t1, filesMs: performance.now() - t2 };
}
