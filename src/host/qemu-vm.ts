/**
 * One node's QEMU as the layers above see it: start it detached (its files owner-only), find
 * it, stop it, reset it, and copy its disk while it runs. The process outlives the CLI; paths
 * come from the caller, which decides where a topology keeps its state.
 */
import { closeSync, fchmodSync, openSync, promises as fs } from 'node:fs';
import { FalconError } from '../util/errors.js';
import type { NetdevInfo } from './net.js';
import type { ProcessRunner } from './process.js';
import { findProcessesWithArgs, processHasArg, terminate, waitForExit } from './procs.js';
import type { QemuNic } from './qemu.js';
import { QmpClient, qmpOnce } from './qmp.js';

/** Where one node's QEMU keeps its files. */
export interface VmFiles {
  /** QEMU's pid file; its path is also what identifies the process in /proc. */
  pidFile: string;
  /** QEMU's stdout and stderr. */
  out: string;
  err: string;
  /** The serial console's log, written by QEMU (chardev logfile=). */
  consoleLog: string;
  /** The QMP socket, and the folder of the node's sockets. */
  qmp: string;
  socketDir: string;
}

export interface StartedVm {
  pid: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Every file of a node that QEMU writes, made before it starts so it is owner-only (QEMU would create 0644). */
export function openOwnerOnly(file: string, flags = 'a'): number {
  const fd = openSync(file, flags, 0o600);
  // An older file may have been created with another mode.
  fchmodSync(fd, 0o600);
  return fd;
}

/** Start QEMU detached with `args`, stdout/stderr appended to the node's logs, `fdDevices` opened as fds 3, 4, ... */
export async function startVm(proc: ProcessRunner, files: VmFiles, args: string[], fdDevices: string[] = []): Promise<StartedVm> {
  await fs.mkdir(files.socketDir, { recursive: true, mode: 0o700 });
  await fs.rm(files.pidFile, { force: true });
  const fds: number[] = [];
  try {
    const out = openOwnerOnly(files.out);
    fds.push(out);
    const err = openOwnerOnly(files.err);
    fds.push(err);
    fds.push(openOwnerOnly(files.consoleLog));
    const extra: number[] = [];
    for (const dev of fdDevices) {
      const fd = openSync(dev, 'r+');
      fds.push(fd);
      extra.push(fd);
    }
    return await proc.spawnDetached('qemu-system-x86_64', args, { stdout: out, stderr: err, extraFds: extra });
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

/** A NIC on a switch port: `-netdev stream,server=on` on the unix socket `path`, which the switch connects to. */
export interface StreamNetdev {
  kind: 'stream';
  index: number;
  path: string;
  mac: string;
}

/**
 * The NICs QEMU gets for a node's host devices, in the order given: taps by name; macvtap
 * devices as the fds they are opened as (3, 4, ... in `fdDevices` order), since QEMU cannot
 * open them by name; stream sockets by path.
 */
export function nicsFor(netdevs: readonly (NetdevInfo | StreamNetdev)[]): { nics: QemuNic[]; fdDevices: string[] } {
  const fdDevices: string[] = [];
  const nics: QemuNic[] = netdevs.map((d) => {
    // The index fixes the NIC's PCI slot: a reserved index (bumpRadix) leaves its slot empty.
    if (d.kind === 'tap') return { kind: 'tap', ifname: d.ifname, mac: d.mac, index: d.index };
    if (d.kind === 'stream') return { kind: 'stream', path: d.path, mac: d.mac, index: d.index };
    fdDevices.push(d.tapDevice);
    return { kind: 'fd', fd: 2 + fdDevices.length, mac: d.mac, index: d.index };
  });
  return { nics, fdDevices };
}

/** The macvtap devices of `netdevs`, in fd order: what a restart opens (their numbers change when re-created). */
export function fdDevicesOf(netdevs: readonly (NetdevInfo | StreamNetdev)[]): string[] {
  return nicsFor(netdevs).fdDevices;
}

/** Debian's OVMF (package ovmf): the code is shared read-only, each node gets a copy of the variables. */
export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

/** Give a UEFI node its own variable store (owner-only), unless it has one. */
export async function ensureUefiVars(varsFile: string, template = OVMF_VARS): Promise<void> {
  try {
    await fs.copyFile(template, varsFile, fs.constants.COPYFILE_EXCL);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw new FalconError('QEMU_FAILED', `cannot copy the UEFI variable store ${template} to ${varsFile}: ${(e as Error).message}; install the ovmf package (falcon setup)`, {
      cause: e,
    });
  }
  await fs.chmod(varsFile, 0o600);
}

/**
 * Pids of the node's QEMU: the pid file when it names a QEMU of this node (the common case, one
 * read), else a scan of /proc for the node's unique pid-file argument.
 */
export async function vmPids(files: Pick<VmFiles, 'pidFile'>): Promise<number[]> {
  const recorded = Number((await fs.readFile(files.pidFile, 'utf8').catch(() => '')).trim());
  if (recorded > 0 && (await processHasArg(recorded, files.pidFile))) return [recorded];
  return (await findProcessesWithArgs([files.pidFile])).get(files.pidFile)!;
}

/** Every QEMU of these pid files, running or not, in one scan of /proc. */
export async function allVmPids(pidFiles: readonly string[]): Promise<Map<string, number[]>> {
  return findProcessesWithArgs(pidFiles);
}

export async function vmRunning(files: Pick<VmFiles, 'pidFile'>): Promise<boolean> {
  return (await vmPids(files)).length > 0;
}

/** Ask QEMU to quit over QMP; SIGTERM then SIGKILL when it does not. */
export async function stopVm(files: Pick<VmFiles, 'pidFile' | 'qmp'>, graceMs = 5000, known?: number[]): Promise<void> {
  const pids = known ?? (await vmPids(files));
  if (pids.length === 0) return;
  try {
    await qmpOnce(files.qmp, 'quit', undefined, 2000);
  } catch {
    // QMP gone or wedged: signals below do the job.
  }
  await Promise.all(
    pids.map(async (pid) => {
      if (!(await waitForExit(pid, graceMs))) await terminate(pid, 2000);
    }),
  );
  await fs.rm(files.pidFile, { force: true });
}

/** Press the VM's reset button. */
export async function resetVm(files: Pick<VmFiles, 'qmp'>): Promise<void> {
  await qmpOnce(files.qmp, 'system_reset');
}

/**
 * Copy a running VM's disk (drive `disk0`) to a new standalone qcow2 at `target`. The VM is
 * paused during the copy so the copy is consistent (as after a power cut) and resumed after.
 */
export async function backupRunningDisk(
  files: Pick<VmFiles, 'qmp'>,
  target: string,
  opts: { node: string; signal?: AbortSignal; timeoutMs?: number; onPause?: (paused: boolean) => void },
): Promise<void> {
  const qmp = await QmpClient.connect(files.qmp, { signal: opts.signal });
  try {
    await qmp.execute('stop');
    opts.onPause?.(true);
    try {
      const since = qmp.events.length;
      await qmp.execute('drive-backup', { 'job-id': 'falcon-snapshot', device: 'disk0', target, sync: 'full', format: 'qcow2', mode: 'absolute-paths' });
      const ev = await qmp.waitForEvent('BLOCK_JOB_COMPLETED', { timeoutMs: opts.timeoutMs ?? 30 * 60_000, since, signal: opts.signal });
      const data = ev.data as { error?: string } | undefined;
      if (data?.error) throw new FalconError('QEMU_FAILED', `QEMU could not copy the disk of "${opts.node}": ${data.error}; see its .err log, and check the free space of the image store`);
    } finally {
      await qmp.execute('cont');
      opts.onPause?.(false);
    }
  } finally {
    qmp.close();
  }
}
