/**
 * One node's way up: its QEMU command line (made once at launch and kept, so hyperstart
 * restarts it with exactly the same devices), the boot, the wait for its exec channel or
 * console, and the guest's set-up.
 */
import { waitForAgent } from '../guest/exec-client.js';
import { ConsoleNotRunningError } from '../guest/console.js';
import { execOverSerial } from '../guest/serial-exec.js';
import { SETUP_SCRIPT, setupCommandLine, setupEnv } from '../guest/setup.js';
import type { NetdevInfo } from '../host/net.js';
import { qemuArgs, type QemuBoot } from '../host/qemu.js';
import { OVMF_CODE, ensureUefiVars, nicsFor, startVm, type StreamNetdev } from '../host/qemu-vm.js';
import type { StoredImage } from '../images/store.js';
import { npuNodes } from '../model/softnpu.js';
import type { NodeSpec, TopologySpec } from '../model/spec.js';
import { combineSignals } from '../util/abort.js';
import { FalconError } from '../util/errors.js';
import { exists } from '../util/fs.js';
import { retry } from '../util/retry.js';
import type { RunContext } from './context.js';
import type { ExecRouter } from './exec-routing.js';
import type { NodeState, RunState } from './state.js';
import { vmFiles } from './vm.js';

/** What booting nodes needs besides the context: the exec channels, and how long a boot may take. */
export interface BootDeps {
  exec: ExecRouter;
  deadlineMs: (state: RunState) => number;
}

/** How QEMU boots an image: its kernel directly, or firmware from the disk. */
function bootOf(c: RunContext, n: NodeSpec, img: StoredImage): QemuBoot {
  if (img.meta.boot.method === 'direct') return { method: 'direct', kernel: img.kernel!, initrd: img.initrd, cmdline: img.meta.boot.cmdline };
  const firmware = img.meta.boot.firmware;
  return { method: 'firmware', firmware, varsFile: firmware === 'uefi' ? c.paths.uefiVars(n.name) : undefined };
}

/**
 * Create what a node needs on the host that launch makes once (its boot disk, its extra disks,
 * its UEFI variables) and record its QEMU command line in `ns`.
 */
export async function prepareNode(
  c: RunContext,
  spec: TopologySpec,
  n: NodeSpec,
  img: StoredImage,
  ns: NodeState,
  accel: 'kvm' | 'tcg',
  netdevs: (NetdevInfo | StreamNetdev)[],
): Promise<void> {
  if (!(await exists(ns.disk))) {
    c.log.log({ kind: 'node', node: n.name, state: 'creating disk', detail: `${n.backing} of ${n.image}` });
    await c.store.createNodeDisk({ topology: spec.name, node: n.name, image: n.image, mode: n.backing, sizeGiB: n.reserveGiB, signal: c.signal });
  }
  // Extra disks are made once and kept (hyperstop/hyperstart, relaunch) until destroy.
  const extraDisks = await c.store.createExtraDisks(spec.name, n, c.signal);
  const boot = bootOf(c, n, img);
  if (boot.method === 'firmware' && boot.varsFile) await ensureUefiVars(boot.varsFile);
  const { nics, fdDevices } = nicsFor(netdevs);
  ns.qemuArgs = qemuArgs({
    topology: spec.name,
    node: n,
    accel,
    disk: ns.disk,
    extraDisks,
    boot,
    nics,
    sockets: c.paths.sockets(n.name),
    consoleLog: c.paths.consoleLog(n.name),
    pidFile: c.paths.pidFile(n.name),
    ovmfCode: OVMF_CODE,
    npuMgmt: npuNodes(spec).includes(n.name) ? c.paths.npuSockets(n.name).mgmt : undefined,
  });
  ns.fdDevices = fdDevices;
  ns.launchedAt = new Date().toISOString();
}

/** Start QEMU from the recorded arguments, wait for the guest, set it up. */
export async function bootNode(c: RunContext, d: BootDeps, n: NodeSpec, ns: NodeState, state: RunState): Promise<void> {
  const accel = state.accel;
  const started = Date.now();
  c.log.log({ kind: 'node', node: n.name, state: 'starting', detail: `${n.cores} core${n.cores === 1 ? '' : 's'}, ${n.memoryMiB} MiB, ${accel}` });
  const vm = await startVm(c.proc, vmFiles(c.paths, n.name), ns.qemuArgs!, ns.fdDevices);
  const ac = new AbortController();
  using combined = combineSignals(undefined, c.signal, ac.signal);
  const died = vm.exited.then(({ code, signal: s }) => {
    ac.abort();
    throw new FalconError('BOOT_FAILED', `node "${n.name}": QEMU exited (${s ? `signal ${s}` : `code ${code}`}) before the guest was ready; its logs follow`);
  });
  died.catch(() => {});
  try {
    await Promise.race([died, waitReady(c, n, ns, d.deadlineMs(state), combined.signal)]);
  } catch (e) {
    if (ac.signal.aborted) await died; // report the death, not the abort it caused
    throw e;
  }
  c.log.log({ kind: 'node', node: n.name, state: 'booted', detail: `${((Date.now() - started) / 1000).toFixed(1)} s` });
  await setUpGuest(c, d.exec, n, ns);
  c.log.log({ kind: 'node', node: n.name, state: 'ready', detail: `${((Date.now() - started) / 1000).toFixed(1)} s` });
}

/** The guest's set-up (hostname, mounts), after every boot. */
export async function setUpGuest(c: RunContext, exec: ExecRouter, n: NodeSpec, ns: NodeState): Promise<void> {
  if (!n.doSetup) return;
  const r = await exec.run(c, n.name, ns, SETUP_SCRIPT, { env: setupEnv(n), timeoutMs: 60_000, signal: c.signal }, setupCommandLine(n));
  if (r.exitCode !== 0) {
    const out = r.stderr.toString().trim() || r.stdout.toString().trim();
    throw new FalconError('GUEST_SETUP_FAILED', `the set-up of node "${n.name}" (hostname, mounts) failed with exit status ${r.exitCode}: ${out}; check its mounts and image`);
  }
}

/** Wait until the node answers on its exec channel (or, without the agent, a serial login works). */
export async function waitReady(c: RunContext, n: NodeSpec, ns: NodeState, deadlineMs: number, signal: AbortSignal): Promise<void> {
  const socks = c.paths.sockets(n.name);
  try {
    if (ns.exec === 'agent') await waitForAgent(socks.exec, { deadlineMs, signal, log: c.log, node: n.name });
    else {
      const start = Date.now();
      // QEMU creates the console socket a moment after it starts.
      await retry(
        { what: `waiting for the console of ${n.name}`, deadlineMs, delayMs: 100, signal, log: c.log, retryIf: (e) => e instanceof ConsoleNotRunningError },
        () =>
          execOverSerial(socks.console, 'true', {
            user: ns.login?.user,
            password: ns.login?.password,
            timeoutMs: Math.max(1000, deadlineMs - (Date.now() - start)),
            signal,
            log: c.log,
          }),
      );
    }
  } catch (e) {
    if (signal.aborted) throw e;
    throw new FalconError(
      'BOOT_FAILED',
      `node "${n.name}" did not become ready within ${deadlineMs / 1000} s (${(e as Error).message.split('\n')[0]}); ` +
        'read its console log below, or raise FALCON_BOOT_TIMEOUT (seconds) on a slow host',
      { cause: e },
    );
  }
}
