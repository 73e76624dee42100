/**
 * The SoftNPU switch processes of a topology: one per npu node (src/switch/ is the process).
 *
 * - Its config is written atomically to `.falcon/<npu>.npu.json` (0600); it logs to
 *   `.falcon/<npu>.switch.log` (0600) and holds `.falcon/<npu>.npu.pid` as its lock.
 * - It starts detached BEFORE the QEMUs: their NIC sockets are QEMU-served, and the switch
 *   connects and reconnects to them (50 ms -> 1 s), so either side may (re)start first.
 * - It is ready when its control socket answers. It is found again by its config path in
 *   /proc, which is unique per topology and node.
 * - Tables live in `.falcon/<npu>.npu-tables.json`, saved by the switch after every change.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { npuPlans, streamNics, switchPlans, type NpuPlan } from '../model/softnpu.js';
import type { TopologySpec } from '../model/spec.js';
import type { TopologyProblem } from '../model/errors.js';
import { findProcessesWithArgs, terminate } from '../host/procs.js';
import { startDaemon, waitUntilReady, type ReadyWait } from '../host/daemon.js';
import type { StreamNetdev } from '../host/qemu-vm.js';
import { BUILTIN_PROGRAMS, SwitchClient, switchCommand, type SwitchConfigInput } from '../switch/index.js';
import { writeFileAtomic } from '../util/fs.js';
import type { Logger } from '../util/log.js';
import type { FalconPaths } from './paths.js';
import type { RunContext } from './context.js';

export { NpuControl } from './npu-control.js';

/** How long a started switch may take to answer on its control socket (tsx start-up under load). */
const READY_TIMEOUT_MS = 30_000;

/** The config of each npu's switch, from the topology. Pure. */
export function switchConfig(plan: NpuPlan, paths: FalconPaths): SwitchConfigInput {
  const socks = paths.npuSockets(plan.npu);
  const files = paths.npuFiles(plan.npu);
  const sidemux = plan.kind === 'sidemux';
  const tfports = !sidemux && plan.options.cpuPort === 'tfports';
  const port0 = sidemux ? plan.port0! : tfports ? undefined : { node: plan.npu, index: plan.cpuNics[0]!.index };
  const ports: SwitchConfigInput['ports'] = [port0 ? paths.nicSocket(port0.node, port0.index) : null];
  for (const p of plan.ports) {
    const peer = p.peer;
    if (peer.kind === 'nic') ports.push(paths.nicSocket(peer.node, peer.index));
    else if (peer.serves) ports.push({ serve: socks.port(p.port) });
    else ports.push(paths.npuSockets(peer.npu).port(peer.port));
  }
  return {
    version: 1,
    name: plan.npu,
    program: plan.options.program,
    radix: plan.radix,
    ports,
    cpuPort: plan.options.cpuPort,
    ...(tfports ? { tfports: plan.cpuNics.map((n) => paths.nicSocket(n.node, n.index)) } : {}),
    // A sidemux has no management UART and no tables.
    ...(sidemux ? {} : { mgmtSocket: socks.mgmt, tablesFile: files.tables }),
    controlSocket: socks.control,
    pidFile: files.pidFile,
  };
}

/** Per node, its NICs that are stream sockets (on switch ports, and an npu's CPU NICs). Pure. */
export function streamNetdevs(spec: TopologySpec, paths: FalconPaths): Record<string, StreamNetdev[]> {
  const out: Record<string, StreamNetdev[]> = {};
  for (const s of streamNics(spec)) (out[s.node] ??= []).push({ kind: 'stream', index: s.index, path: paths.nicSocket(s.node, s.index), mac: s.mac });
  return out;
}

/** Problems of the switches' programs on this host: a module path that does not exist. */
export async function switchProgramProblems(spec: TopologySpec): Promise<TopologyProblem[]> {
  const problems: TopologyProblem[] = [];
  for (const p of npuPlans(spec)) {
    const prog = p.options.program;
    if ((BUILTIN_PROGRAMS as readonly string[]).includes(prog)) continue;
    if (!path.isAbsolute(prog))
      problems.push({
        path: `nodes.${p.npu}.softnpu.program`,
        message: `"${prog}" is not a built-in program (${BUILTIN_PROGRAMS.join(', ')}) nor a module path`,
        fix: 'name a built-in program, or give the path of a module exporting createPipeline(radix)',
      });
    else if (!(await fs.stat(prog).catch(() => undefined))?.isFile())
      problems.push({ path: `nodes.${p.npu}.softnpu.program`, message: `program module ${prog} does not exist`, fix: 'fix the path, or use a built-in program' });
    else if (prog.endsWith('.p4')) problems.push(...(await p4Problems(p.npu, prog, p.radix + 1)));
  }
  return problems;
}

/** The problems of the switches' P4 programs given as files (the k8s backend's preflight: it reads them too). */
export async function p4ProgramProblems(spec: TopologySpec): Promise<TopologyProblem[]> {
  const out: TopologyProblem[] = [];
  for (const p of npuPlans(spec)) {
    const prog = p.options.program;
    if (!prog.endsWith('.p4') || !path.isAbsolute(prog)) continue;
    if (!(await fs.stat(prog).catch(() => undefined))?.isFile()) out.push({ path: `nodes.${p.npu}.softnpu.program`, message: `P4 program ${prog} does not exist`, fix: 'fix the path, or use a built-in program' });
    else out.push(...(await p4Problems(p.npu, prog, p.radix + 1)));
  }
  return out;
}

/** A P4 program compiled at preflight: each of its problems, with its position, before anything starts. */
async function p4Problems(npu: string, file: string, radix: number): Promise<TopologyProblem[]> {
  const { compileP4Pipeline } = await import('../switch/p4-program.js');
  try {
    compileP4Pipeline(file, radix);
    return [];
  } catch (e) {
    const d = (e as { diagnostics?: { file: string; line: number; col: number; message: string; fix?: string }[] }).diagnostics;
    const at = `nodes.${npu}.softnpu.program`;
    if (!d?.length) return [{ path: at, message: `P4 program ${file} does not compile: ${(e as Error).message}` }];
    return d.map((x) => ({ path: at, message: `${x.file}:${x.line}:${x.col}: ${x.message}`, ...(x.fix ? { fix: x.fix } : {}) }));
  }
}

/** Pids of the switch processes of `npus`, found by their config file argument. */
export async function switchPids(paths: FalconPaths, npus: readonly string[]): Promise<Map<string, number[]>> {
  const byConfig = await findProcessesWithArgs(npus.map((n) => paths.npuFiles(n).config));
  return new Map(npus.map((n) => [n, byConfig.get(paths.npuFiles(n).config) ?? []]));
}

/** Whether the switch answers on its control socket. */
async function answers(control: string, signal?: AbortSignal): Promise<boolean> {
  try {
    const c = await SwitchClient.connect(control, { timeoutMs: 2000, signal });
    try {
      await c.radix({ timeoutMs: 2000, signal });
      return true;
    } finally {
      c.close();
    }
  } catch {
    return false;
  }
}

/**
 * Start the switch of `plan` unless it runs with the same config (a running switch whose
 * topology changed is restarted); resolves once its control socket answers.
 */
export async function ensureSwitch(plan: NpuPlan, c: RunContext): Promise<{ pid: number; started: boolean }> {
  const files = c.paths.npuFiles(plan.npu);
  const control = c.paths.npuSockets(plan.npu).control;
  await fs.mkdir(c.paths.socketDir, { recursive: true, mode: 0o700 });
  const config = JSON.stringify(switchConfig(plan, c.paths), null, 2) + '\n';
  let running = (await switchPids(c.paths, [plan.npu])).get(plan.npu)!;
  if (running.length && (await fs.readFile(files.config, 'utf8').catch(() => '')) !== config) {
    // The topology changed since it started (ports, program, CPU-port mode): its tables are
    // saved on SIGTERM and loaded again by the new one.
    c.log.log({ kind: 'node', node: plan.npu, state: 'switch restarting', detail: 'its ports or program changed' });
    await Promise.all(running.map((pid) => terminate(pid, 5000)));
    running = [];
  }
  const wait = switchWait(plan.npu, control, files.log, c);
  if (running.length) {
    await waitUntilReady({ ...wait, pid: running[0]! });
    c.log.log({ kind: 'node', node: plan.npu, state: 'switch already running', detail: `pid ${running[0]}` });
    return { pid: running[0]!, started: false };
  }
  await writeFileAtomic(files.config, config);
  const { cmd, args } = switchCommand(files.config);
  const child = await startDaemon({ ...wait, command: cmd, args, runner: c.proc, killGraceMs: 5000 });
  c.log.log({ kind: 'node', node: plan.npu, state: 'switch started', detail: `pid ${child.pid}, ${plan.options.program}, ${plan.radix} port${plan.radix === 1 ? '' : 's'}` });
  return { pid: child.pid, started: true };
}

/** How a switch is awaited: ready once its control socket answers. */
function switchWait(npu: string, control: string, log: string, c: RunContext): Omit<ReadyWait, 'pid'> {
  return {
    what: `the switch of node "${npu}"`,
    logFile: log,
    ready: (_pid, signal) => answers(control, signal),
    notReady: `did not answer on its control socket ${control}`,
    timeoutMs: READY_TIMEOUT_MS,
    code: 'NPU_SWITCH_FAILED',
    poll: { delayMs: 50, factor: 1.5, maxDelayMs: 500 },
    signal: c.signal,
  };
}

/** Stop the switches of `npus` (SIGTERM: they save their tables; SIGKILL after 5 s). */
export async function stopSwitches(paths: FalconPaths, npus: readonly string[], log: Logger): Promise<void> {
  const pids = await switchPids(paths, npus);
  await Promise.all(
    npus.map(async (npu) => {
      const list = pids.get(npu) ?? [];
      await Promise.all(list.map((pid) => terminate(pid, 5000)));
      if (list.length) log.log({ kind: 'node', node: npu, state: 'switch stopped', detail: `pid ${list.join(', ')}` });
    }),
  );
}

/**
 * One end of a link: a NIC (a tap, a macvtap, or a stream socket on a switch port), or a
 * switch port. `ifname` and `altname` are '' when the end is no host interface; an npu end
 * has `port` (and index -1, no MAC).
 */
export interface LinkEndInfo {
  node: string;
  /** The NIC's index in the guest; -1 for a switch port. */
  index: number;
  ifname: string;
  altname: string;
  mac: string;
  /** A NIC on a switch port: the unix socket its QEMU serves. */
  socket?: string;
  /** An npu end: the switch port (1-based). */
  port?: number;
}

/** The ends of a SoftNPU or sidecar link as `info` shows them; undefined for other links. */
export function switchLinkEnds(spec: TopologySpec, link: number, paths: FalconPaths): { a: LinkEndInfo; b: LinkEndInfo } | undefined {
  const l = spec.links[link];
  if (l?.kind !== 'softnpu' && l?.kind !== 'sidecar') return undefined;
  const plans = switchPlans(spec);
  const streams = streamNetdevs(spec, paths);
  const nicEnd = (n: { node: string; index: number } | undefined): LinkEndInfo => {
    const st = n && streams[n.node]?.find((x) => x.index === n.index);
    return { node: n?.node ?? '', index: n?.index ?? -1, ifname: '', altname: '', mac: st?.mac ?? '', socket: st?.path };
  };
  const portOf = (sw: string) => plans.find((p) => p.npu === sw)?.ports.find((x) => x.link === link);
  if (l.kind === 'sidecar') {
    // Both ends are NICs on the sidemux; `switches` lists every driver NIC, this the first.
    const p = plans.find((x) => x.kind === 'sidemux' && x.ports[0]?.link === link);
    const first = p?.ports[0]?.peer;
    return { a: nicEnd(p?.port0), b: nicEnd(first?.kind === 'nic' ? first : undefined) };
  }
  const npuEnd = (npu: string): LinkEndInfo => ({ node: npu, index: -1, ifname: '', altname: '', mac: '', port: portOf(npu)?.port });
  const peer = portOf(l.a.node)?.peer;
  return { a: npuEnd(l.a.node), b: l.bIsNpu ? npuEnd(l.b.node) : nicEnd(peer?.kind === 'nic' ? peer : undefined) };
}

/** One switch as `info` shows it. */
export interface SwitchInfo {
  /** The npu node, or `<driver>.sidemux` for a sidecar link's switch. */
  node: string;
  kind: 'softnpu' | 'sidemux';
  /** The program it runs: the topology's, or the P4 program loaded last (`loaded`). */
  program: string;
  /** True when `program` was loaded at run time (LoadProgram), not declared by the topology. */
  loaded?: boolean;
  cpuPort: 'raw' | 'tfports';
  radix: number;
  status: 'running' | 'stopped';
  pid?: number;
  /** Port 0 (the CPU port) and the data ports, each with what it connects. */
  ports: { port: number; to: string }[];
  /** The switch's files. */
  config: string;
  log: string;
  controlSocket: string;
}

/** The topology's switches and their ports. */
/** The name of the P4 program saved by the last LoadProgram, if any. */
async function loadedProgramName(file: string): Promise<string | undefined> {
  const text = await fs.readFile(file, 'utf8').catch(() => undefined);
  if (!text) return undefined;
  const name = (JSON.parse(text) as { name?: unknown }).name;
  return typeof name === 'string' ? name : undefined;
}

export async function switchInfo(spec: TopologySpec, paths: FalconPaths): Promise<SwitchInfo[]> {
  const plans = switchPlans(spec);
  const pids = await switchPids(paths, plans.map((p) => p.npu));
  const loaded = new Map(await Promise.all(plans.map(async (p) => [p.npu, await loadedProgramName(paths.npuFiles(p.npu).program)] as const)));
  return plans.map((p) => {
    const pid = pids.get(p.npu)?.[0];
    const l = loaded.get(p.npu);
    const cpu = p.port0
      ? `${p.port0.node} NIC ${p.port0.index} (sidecar)`
      : p.options.cpuPort === 'raw'
        ? `${p.npu} NIC ${p.cpuNics[0]!.index} (CPU, raw)`
        : `${p.npu} NICs ${p.cpuNics.map((n) => n.index).join(', ')} (CPU, tfports)`;
    return {
      node: p.npu,
      kind: p.kind,
      program: l ?? p.options.program,
      ...(l ? { loaded: true } : {}),
      cpuPort: p.options.cpuPort,
      radix: p.radix,
      status: pid ? 'running' : 'stopped',
      pid,
      ports: [
        { port: 0, to: cpu },
        ...p.ports.map((x) => ({ port: x.port, to: x.peer.kind === 'nic' ? `${x.peer.node} NIC ${x.peer.index}` : `${x.peer.npu} port ${x.peer.port}` })),
      ],
      config: paths.npuFiles(p.npu).config,
      log: paths.npuFiles(p.npu).log,
      controlSocket: paths.npuSockets(p.npu).control,
    };
  });
}
