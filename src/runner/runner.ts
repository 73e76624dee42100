import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Topology, parseTopologyFile, validateSpec, type NodeRef } from '../model/topology.js';
import type { TopologyProblem } from '../model/errors.js';
import { TopologyFileError } from '../model/errors.js';
import type { NodeSpec, TopologySpec } from '../model/spec.js';
import { hostInterfaces } from '../model/naming.js';
import { cachedKvmProbe, chooseAccel, type AccelDecision } from '../host/accel.js';
import { checkNetworkPreflight, createNetwork, destroyNetwork, listTopologyInterfaces, type NetdevInfo, type TopologyInterfaceInfo } from '../host/net.js';
import { createProcessRunner, type ProcessRunner } from '../host/process.js';
import { qemuArgs, type QemuBoot } from '../host/qemu.js';
import { OVMF_CODE, allVmPids, backupRunningDisk, ensureUefiVars, fdDevicesOf, nicsFor, resetVm, startVm, stopVm, vmPids, vmRunning, type StreamNetdev } from '../host/qemu-vm.js';
import { npuNodes, switchPlans } from '../model/softnpu.js';
import { sidemuxName } from '../model/spec.js';
import { SharedExecConnections, waitForAgent } from '../guest/exec-client.js';
import {
  ExecError,
  encodeResult,
  type ExecBufferOptions,
  type ExecOptions,
  type ExecResult,
  type ExecTextOptions,
} from '../guest/exec-types.js';
import { execOverSerial } from '../guest/serial-exec.js';
import { ConsoleNotRunningError } from '../guest/console.js';
import { retry } from '../util/retry.js';
import { SETUP_SCRIPT, setupCommandLine, setupEnv } from '../guest/setup.js';
import { ImageStore, type StoredImage } from '../images/store.js';
import { combineSignals } from '../util/abort.js';
import { exists, writeFileAtomic } from '../util/fs.js';
import { acquireLock } from '../util/lock.js';
import { consoleLogger, type Logger } from '../util/log.js';
import { FalconPaths } from './paths.js';
import { PreflightError, hostChecks, hostReferenceProblems, type HostCheck } from './preflight.js';
import { readState, writeState, STATE_VERSION, type NodeState, type RunState } from './state.js';
import { logTails, vmFiles } from './vm.js';
import { NpuControl, ensureSwitch, stopSwitches, streamNetdevs, switchInfo, switchLinkEnds, type LinkEndInfo, type SwitchContext, type SwitchInfo } from './switches.js';
import { FalconError } from '../util/errors.js';
import { captureEndpoints, resolveEndpoint } from '../model/capture.js';
import { captureAll, captureOne, type CaptureOptions, type CaptureResult } from './capture.js';
import { applyImpairments, currentImpairments, impairPreflightNote, impairStatus, setImpairment, type ImpairContext, type ImpairStatus } from './impairments.js';
import { stopImpairHelpers } from './impair-helpers.js';
import { resolveImpairTarget, type DirectedImpairment, type Impairment } from '../model/impair.js';

export interface RunnerOptions {
  /** Where state lives; default `.falcon` beside the topology program (or in the working directory). */
  falconDir?: string;
  logger?: Logger;
  /** A persistent runner is not destroyed when disposed. Default false, as the original. */
  persistent?: boolean;
  /** The image store; default $FALCON_IMAGE_DIR or /var/lib/falcon/images. */
  imageDir?: string;
  /** The host process layer; injectable for tests. */
  processRunner?: ProcessRunner;
  /**
   * How long a node may take to boot and answer its exec channel. Default $FALCON_BOOT_TIMEOUT
   * (seconds), else 180 s (TCG) or 60 s (KVM).
   */
  bootTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** The topology is the one saved in the falcon dir (the generic `falcon` CLI), not declared in code. */
  fromSaved?: boolean;
}

export interface NodeInfo {
  name: string;
  id: number;
  image: string;
  cores: number;
  memoryMiB: number;
  radix: number;
  mounts: { source: string; destination: string }[];
  status: 'running' | 'stopped' | 'not launched';
  pid?: number;
}

export type { LinkEndInfo } from './switches.js';

export interface LinkInfo {
  kind: string;
  a: LinkEndInfo;
  b?: LinkEndInfo;
  hostIfx?: string | null;
  exclusive?: boolean;
  /** The impairment in force (declared, or set at runtime by `impair`), per direction: `ab` is what `a` sends. */
  impairment?: DirectedImpairment;
}

export interface TopologyInfo {
  name: string;
  falconDir: string;
  accel?: string;
  nodes: NodeInfo[];
  links: LinkInfo[];
  interfaces: TopologyInterfaceInfo[];
  /** The SoftNPU switch processes, one per npu node. */
  switches: SwitchInfo[];
}

/** A failure of one or more nodes at launch, each named with the end of its logs. */
export class LaunchError extends FalconError {
  override name = 'LaunchError';
  constructor(
    readonly topology: string,
    readonly failures: { node: string; error: unknown; logs: string }[],
  ) {
    super(
      'LAUNCH_FAILED',
      `launch of topology "${topology}" failed on ${failures.map((f) => `"${f.node}"`).join(', ')}; ` +
        `run \`destroy\` to remove what was created\n` +
        failures.map((f) => `[${f.node}] ${(f.error as Error)?.message ?? String(f.error)}\n${f.logs}`).join('\n'),
    );
  }
}

const DEFAULT_FALCON_DIR = () => {
  const main = process.argv[1];
  return main ? path.join(path.dirname(path.resolve(main)), '.falcon') : path.resolve('.falcon');
};

/**
 * A topology plus the operations that bring it to life: the analogue of the original's
 * `Runner`. Declare nodes and links, then `launch()`; `destroy()` removes everything.
 * A non-persistent runner destroys its topology when disposed (`await using d = new Runner(...)`).
 */
export class Runner extends Topology implements AsyncDisposable {
  readonly paths: FalconPaths;
  readonly log: Logger;
  readonly proc: ProcessRunner;
  readonly store: ImageStore;
  /** Not destroyed on dispose when true. */
  persistent: boolean;
  private readonly env: NodeJS.ProcessEnv;
  private readonly bootTimeoutMs?: number;
  /** Set when the topology comes from `.falcon/topology.json` rather than from code. */
  private loaded = false;
  private readonly fromSaved: boolean;
  private readonly execConns = new SharedExecConnections();

  constructor(name: string, options: RunnerOptions = {}) {
    super(name);
    this.env = options.env ?? process.env;
    this.log = options.logger ?? consoleLogger();
    this.proc = options.processRunner ?? createProcessRunner(this.log);
    this.paths = new FalconPaths(options.falconDir ?? DEFAULT_FALCON_DIR());
    this.store = new ImageStore({ root: options.imageDir, runner: this.proc, log: this.log, env: this.env });
    this.persistent = options.persistent ?? false;
    this.fromSaved = options.fromSaved ?? false;
    this.bootTimeoutMs = options.bootTimeoutMs;
  }

  /** A runner for the topology saved in `falconDir/topology.json`: what later commands work from. */
  static async load(falconDir: string, options: Omit<RunnerOptions, 'falconDir'> = {}): Promise<Runner> {
    const paths = new FalconPaths(falconDir);
    let text: string;
    try {
      text = await fs.readFile(paths.topologyFile, 'utf8');
    } catch {
      throw missingTopologyFile(paths);
    }
    const spec = parseTopologyFile(text, paths.topologyFile);
    const r = new Runner(spec.name, { ...options, falconDir });
    r.adopt(spec);
    return r;
  }

  /** The same declared topology with other options (the CLI's falcon dir and log level). */
  derive(options: RunnerOptions): Runner {
    const r = new Runner(this.name, {
      imageDir: this.store.root,
      processRunner: options.logger ? undefined : this.proc,
      env: this.env,
      bootTimeoutMs: this.bootTimeoutMs,
      persistent: this.persistent,
      ...options,
    });
    r.adopt(this.toSpec());
    return r;
  }

  /** The console socket of a node of this topology. */
  async consoleSocket(node: NodeRef): Promise<string> {
    const { spec } = await this.nodeState(node);
    return this.paths.sockets(spec.name).console;
  }

  /** Take `spec` as the topology to act on (a saved one, or the program's for a derived runner). */
  private adopt(spec: TopologySpec): void {
    // The generic CLI starts as "unnamed": taps, altnames and disks are named after the real one.
    this.topologyName = spec.name;
    this.nodes.clear();
    for (const n of spec.nodes) this.nodes.set(n.name, structuredClone(n));
    this.links.splice(0, this.links.length, ...structuredClone(spec.links));
    this.loaded = true;
  }

  /**
   * The topology the operations act on: the one declared in code, or, for a runner that declared
   * nothing (the generic CLI, working from a `.falcon` directory alone), the saved one.
   */
  private async effectiveSpec(): Promise<TopologySpec> {
    if (this.nodes.size > 0 || this.loaded) return this.toSpec();
    const saved = await this.savedSpec();
    if (saved) this.adopt(saved);
    else if (this.fromSaved) throw missingTopologyFile(this.paths);
    return this.toSpec();
  }

  private async savedSpec(): Promise<TopologySpec | undefined> {
    let text: string;
    try {
      text = await fs.readFile(this.paths.topologyFile, 'utf8');
    } catch {
      return undefined;
    }
    return parseTopologyFile(text, this.paths.topologyFile);
  }

  private async ensureDir(): Promise<void> {
    await fs.mkdir(this.paths.dir, { recursive: true, mode: 0o700 });
  }

  /** Commands that change the topology hold this lock, so two never interleave. */
  private async lock(purpose: string): Promise<AsyncDisposable & { release(): Promise<void> }> {
    await this.ensureDir();
    const release = await acquireLock(this.paths.lockFile, { what: `topology "${this.name}" (${this.paths.dir})`, purpose, waitMs: 0, log: this.log });
    return { release, [Symbol.asyncDispose]: release };
  }

  /** The host's prerequisites and the accelerator Falcon would use. */
  async hostChecks(): Promise<{ checks: HostCheck[]; accel: AccelDecision }> {
    const checks = await hostChecks(this.proc, this.store.root);
    const accel = await this.decideAccel(false);
    checks.push({ name: 'accelerator', ok: true, detail: accel.reason });
    return { checks, accel };
  }

  /**
   * Check everything before anything is created: the topology itself, the host's
   * prerequisites and the topology's references to the host. Saves `.falcon/topology.json`.
   * Throws a `PreflightError` listing every problem.
   */
  async preflight(): Promise<void> {
    const spec = await this.effectiveSpec();
    const problems: TopologyProblem[] = validateSpec(spec);
    if (problems.length === 0) {
      const checks = await hostChecks(this.proc, this.store.root);
      for (const c of checks.filter((c) => !c.ok && !c.optional)) problems.push({ path: `host.${c.name}`, message: c.detail, fix: c.fix });
      problems.push(...(await hostReferenceProblems(spec, this.store)));
      const owner = await this.store.topologyDiskOwner(spec.name);
      if (owner && owner !== this.paths.dir && (await exists(path.join(owner, 'topology.json'))))
        problems.push({
          path: 'name',
          message: `topology "${spec.name}" of falcon dir ${owner} already has node disks in ${path.join(this.store.topoDir, spec.name)}; give this topology another name, or destroy that one first`,
        });
      if (!problems.some((p) => p.path === 'host.privileges')) {
        for (const p of await checkNetworkPreflight(spec, { runner: this.proc, falconDir: this.paths.dir, log: this.log }))
          problems.push(p);
      }
    }
    if (problems.length) throw new PreflightError(spec.name, problems);
    const note = await impairPreflightNote(this.impairContext(spec));
    if (note) this.log.log({ kind: 'step', msg: note });
    await this.ensureDir();
    await writeFileAtomic(this.paths.topologyFile, JSON.stringify(spec, null, 2) + '\n');
  }

  private impairContext(spec: TopologySpec, signal?: AbortSignal): ImpairContext {
    return { spec, paths: this.paths, proc: this.proc, log: this.log, env: this.env, cacheDir: path.join(this.store.root, 'cache'), signal };
  }

  private async decideAccel(allowBuild: boolean, signal?: AbortSignal): Promise<AccelDecision> {
    return chooseAccel(this.env, () =>
      cachedKvmProbe({
        cacheFile: path.join(this.store.root, 'cache', 'accel-probe.json'),
        runner: this.proc,
        log: this.log,
        signal,
        noKernelDetail: 'KVM was not probed yet (the probe boots the tiny image; `falcon image build tiny` or a launch does it)',
        // The probe boots the tiny image's kernel.
        kernel: async () => {
          let img: StoredImage | undefined;
          if (allowBuild) img = await this.store.ensure('tiny', signal);
          else if (await this.store.has('tiny')) img = await this.store.get('tiny');
          return img?.kernel ? { kernel: img.kernel, initrd: img.initrd } : undefined;
        },
      }),
    );
  }

  /**
   * Launch the topology: preflight, images, network, then every node in parallel. Returns when
   * every node has booted and finished its set-up, ready for `exec`.
   */
  async launch(opts: { signal?: AbortSignal } = {}): Promise<void> {
    this.bootTimeoutSetting(); // a bad setting fails before anything is created
    await this.preflight();
    await using _lock = await this.lock('launch');
    const spec = this.toSpec();
    const started = Date.now();
    this.log.log({ kind: 'step', msg: `launching topology "${spec.name}" (${spec.nodes.length} node${spec.nodes.length === 1 ? '' : 's'})` });
    const images = new Map<string, StoredImage>();
    for (const name of new Set(spec.nodes.map((n) => n.image))) images.set(name, await this.store.ensure(name, opts.signal));
    const accel = spec.nodes.length ? await this.decideAccel(true, opts.signal) : { accel: 'tcg' as const, reason: 'no nodes' };
    if (spec.nodes.length) this.log.log({ kind: 'step', level: accel.accel === 'kvm' ? 'debug' : 'info', msg: `accelerator ${accel.reason}` });
    const state: RunState = (await readState(this.paths)) ?? { version: STATE_VERSION, topology: spec.name, accel: accel.accel, imageDir: this.store.root, nodes: {} };
    state.accel = accel.accel;
    const net = await createNetwork(spec, { runner: this.proc, falconDir: this.paths.dir, log: this.log, signal: opts.signal });
    // Record disks and images before any QEMU starts, so destroy finds everything after a crash.
    for (const n of spec.nodes) {
      const img = images.get(n.image)!;
      state.nodes[n.name] = { ...state.nodes[n.name], disk: this.store.nodeDiskPath(spec.name, n.name), image: n.image, exec: img.meta.exec, login: img.meta.login };
    }
    await this.store.claimTopologyDisks(spec.name, this.paths.dir);
    await writeState(this.paths, state);
    // Impaired from the first frame: before any QEMU starts.
    await applyImpairments(this.impairContext(spec, opts.signal));
    // Switches first: they connect (and reconnect) to the sockets the QEMUs serve.
    await this.ensureSwitches(spec, spec.nodes.map((n) => n.name), opts.signal);
    const streams = streamNetdevs(spec, this.paths);
    const results = await Promise.allSettled(
      spec.nodes.map((n) =>
        this.launchNode(n, images.get(n.image)!, state, [...(net.netdevs[n.name] ?? []), ...(streams[n.name] ?? [])].sort((x, y) => x.index - y.index), opts.signal),
      ),
    );
    await writeState(this.paths, state);
    const failures = [];
    for (const [i, r] of results.entries()) {
      if (r.status === 'rejected') {
        const node = spec.nodes[i]!.name;
        failures.push({ node, error: r.reason, logs: await logTails(this.paths, node) });
      }
    }
    if (failures.length) throw new LaunchError(spec.name, failures);
    this.log.log({ kind: 'step', msg: `topology "${spec.name}" is up (${((Date.now() - started) / 1000).toFixed(1)} s)` });
  }

  private async launchNode(n: NodeSpec, img: StoredImage, state: RunState, netdevs: (NetdevInfo | StreamNetdev)[], signal?: AbortSignal): Promise<void> {
    const ns = state.nodes[n.name]!;
    if (await vmRunning(vmFiles(this.paths, n.name))) {
      this.log.log({ kind: 'node', node: n.name, state: 'already running' });
      return;
    }
    if (!(await exists(ns.disk))) {
      this.log.log({ kind: 'node', node: n.name, state: 'creating disk', detail: `${n.backing} of ${n.image}` });
      await this.store.createNodeDisk({ topology: this.name, node: n.name, image: n.image, mode: n.backing, sizeGiB: n.reserveGiB, signal });
    }
    const boot: QemuBoot =
      img.meta.boot.method === 'direct'
        ? { method: 'direct', kernel: img.kernel!, initrd: img.initrd, cmdline: img.meta.boot.cmdline }
        : { method: 'firmware', firmware: img.meta.boot.firmware, varsFile: img.meta.boot.firmware === 'uefi' ? this.paths.uefiVars(n.name) : undefined };
    if (boot.method === 'firmware' && boot.varsFile) await ensureUefiVars(boot.varsFile);
    const { nics, fdDevices } = nicsFor(netdevs);
    ns.qemuArgs = qemuArgs({
      topology: this.name,
      node: n,
      accel: state.accel,
      disk: ns.disk,
      boot,
      nics,
      sockets: this.paths.sockets(n.name),
      consoleLog: this.paths.consoleLog(n.name),
      pidFile: this.paths.pidFile(n.name),
      ovmfCode: OVMF_CODE,
      npuMgmt: npuNodes(this.toSpec()).includes(n.name) ? this.paths.npuSockets(n.name).mgmt : undefined,
    });
    ns.fdDevices = fdDevices;
    ns.launchedAt = new Date().toISOString();
    await this.bootNode(n, ns, state, signal);
  }

  /** Start QEMU from the recorded arguments, wait for the guest, set it up. */
  private async bootNode(n: NodeSpec, ns: NodeState, state: RunState, signal?: AbortSignal): Promise<void> {
    const started = Date.now();
    this.log.log({ kind: 'node', node: n.name, state: 'starting', detail: `${n.cores} core${n.cores === 1 ? '' : 's'}, ${n.memoryMiB} MiB, ${state.accel}` });
    const deadlineMs = this.bootDeadlineMs(state);
    const vm = await startVm(this.proc, vmFiles(this.paths, n.name), ns.qemuArgs!, ns.fdDevices);
    const ac = new AbortController();
    using combined = combineSignals(undefined, signal, ac.signal);
    const sig = combined.signal;
    const died = vm.exited.then(({ code, signal: s }) => {
      ac.abort();
      throw new FalconError('BOOT_FAILED', `node "${n.name}": QEMU exited (${s ? `signal ${s}` : `code ${code}`}) before the guest was ready; its logs follow`);
    });
    died.catch(() => {});
    try {
      await Promise.race([died, this.waitReady(n, ns, deadlineMs, sig)]);
    } catch (e) {
      if (ac.signal.aborted) await died; // report the death, not the abort it caused
      throw e;
    }
    this.log.log({ kind: 'node', node: n.name, state: 'booted', detail: `${((Date.now() - started) / 1000).toFixed(1)} s` });
    await this.setUp(n, ns, signal);
    this.log.log({ kind: 'node', node: n.name, state: 'ready', detail: `${((Date.now() - started) / 1000).toFixed(1)} s` });
  }

  /** The guest's set-up (hostname, mounts), after every boot. */
  private async setUp(n: NodeSpec, ns: NodeState, signal?: AbortSignal): Promise<void> {
    if (!n.doSetup) return;
    const r = await this.execOn(n.name, ns, SETUP_SCRIPT, { env: setupEnv(n), timeoutMs: 60_000, signal }, setupCommandLine(n));
    if (r.exitCode !== 0) {
      const out = r.stderr.toString().trim() || r.stdout.toString().trim();
      throw new FalconError('GUEST_SETUP_FAILED', `the set-up of node "${n.name}" (hostname, mounts) failed with exit status ${r.exitCode}: ${out}; check its mounts and image`);
    }
  }

  /** The boot timeout the user set (option, else $FALCON_BOOT_TIMEOUT), checked; undefined for the default. */
  private bootTimeoutSetting(): number | undefined {
    if (this.bootTimeoutMs === undefined) return bootTimeoutFromEnv(this.env);
    if (!(Number.isFinite(this.bootTimeoutMs) && this.bootTimeoutMs > 0))
      throw new FalconError('INVALID_ARGUMENT', `the runner option bootTimeoutMs is ${this.bootTimeoutMs}; it takes a positive number of milliseconds`);
    return this.bootTimeoutMs;
  }

  /** How long a node may take to boot: the user's setting, or the accelerator's default. */
  private bootDeadlineMs(state: RunState): number {
    return this.bootTimeoutSetting() ?? (state.accel === 'kvm' ? 60_000 : 180_000);
  }

  private async waitReady(n: NodeSpec, ns: NodeState, deadlineMs: number, signal: AbortSignal): Promise<void> {
    const socks = this.paths.sockets(n.name);
    try {
      if (ns.exec === 'agent') await waitForAgent(socks.exec, { deadlineMs, signal, log: this.log, node: n.name });
      else {
        const start = Date.now();
        // QEMU creates the console socket a moment after it starts.
        await retry(
          { what: `waiting for the console of ${n.name}`, deadlineMs, delayMs: 100, signal, log: this.log, retryIf: (e) => e instanceof ConsoleNotRunningError },
          () =>
            execOverSerial(socks.console, 'true', {
              user: ns.login?.user,
              password: ns.login?.password,
              timeoutMs: Math.max(1000, deadlineMs - (Date.now() - start)),
              signal,
              log: this.log,
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

  private async execOn(node: string, ns: NodeState, command: string, o: ExecOptions, serialCommand = command): Promise<ExecResult<Buffer>> {
    const socks = this.paths.sockets(node);
    if (ns.exec === 'agent') return this.execConns.exec(socks.exec, command, { ...o, node });
    if (o.input !== undefined)
      throw new FalconError(
        'EXEC_STDIN_UNSUPPORTED',
        `node "${node}" runs commands over its serial console (its image has no falcon-agent), which cannot pass input; use an image with the agent, or put the data in the command`,
      );
    const started = Date.now();
    const r = await execOverSerial(socks.console, serialCommand, { user: ns.login?.user, password: ns.login?.password, timeoutMs: o.timeoutMs, signal: o.signal, log: this.log });
    return { exitCode: r.exitCode, signal: null, stdout: Buffer.from(r.stdout), stderr: Buffer.alloc(0), durationMs: Date.now() - started };
  }

  /** The name of a node given by handle or name. */
  private nodeName(node: NodeRef): string {
    if (typeof node === 'string') return node;
    if (node.topology !== this.name)
      throw new FalconError('NODE_NOT_FOUND', `node "${node.name}" belongs to topology "${node.topology}", not "${this.name}"; pass a node of this topology`);
    return node.name;
  }

  private async nodeState(node: NodeRef): Promise<{ spec: NodeSpec; ns: NodeState; state: RunState }> {
    const name = this.nodeName(node);
    const spec = await this.effectiveSpec();
    const n = spec.nodes.find((x) => x.name === name);
    if (!n)
      throw new FalconError('NODE_NOT_FOUND', `topology "${spec.name}" has no node "${name}"; its nodes are: ${spec.nodes.map((x) => x.name).join(', ') || '(none)'}`);
    const state = await readState(this.paths);
    const ns = state?.nodes[name];
    if (!state || !ns?.qemuArgs) throw new FalconError('NODE_NOT_LAUNCHED', `node "${name}" has not been launched (no state in ${this.paths.dir}); run launch first`);
    return { spec: n, ns, state };
  }

  /**
   * Run a shell command (`/bin/sh -c command`) in a node over its exec channel. Resolves with
   * the exit status and output whatever the status: stdout and stderr are strings (UTF-8), or
   * Buffers with `{ encoding: 'buffer' }`. Rejects on timeout (ExecTimeoutError), when the
   * node is not running, or on abort. See `succeed` for a form that rejects on failure.
   *
   * ```ts
   * const { stdout } = await d.exec(violin, 'cat /etc/hostname');
   * const raw = await d.exec(violin, 'cat /bin/busybox', { encoding: 'buffer' });
   * ```
   */
  async exec(node: NodeRef, command: string, opts: ExecBufferOptions): Promise<ExecResult<Buffer>>;
  async exec(node: NodeRef, command: string, opts?: ExecTextOptions): Promise<ExecResult<string>>;
  async exec(node: NodeRef, command: string, opts?: ExecOptions): Promise<ExecResult<string> | ExecResult<Buffer>>;
  async exec(node: NodeRef, command: string, opts: ExecOptions = {}): Promise<ExecResult<string> | ExecResult<Buffer>> {
    const { spec, ns } = await this.nodeState(node);
    return encodeResult(await this.execOn(spec.name, ns, command, opts), opts.encoding);
  }

  /**
   * Like `exec`, for test code: resolves with the result when the command exits 0, rejects
   * with an `ExecError` (node, command, exitCode or signal, stdout, stderr) otherwise.
   *
   * ```ts
   * await d.succeed(violin, 'ip link set eth0 up');
   * const { stdout } = await d.succeed(violin, 'cat /etc/hostname');
   * ```
   */
  async succeed(node: NodeRef, command: string, opts: ExecBufferOptions): Promise<ExecResult<Buffer>>;
  async succeed(node: NodeRef, command: string, opts?: ExecTextOptions): Promise<ExecResult<string>>;
  async succeed(node: NodeRef, command: string, opts?: ExecOptions): Promise<ExecResult<string> | ExecResult<Buffer>>;
  async succeed(node: NodeRef, command: string, opts: ExecOptions = {}): Promise<ExecResult<string> | ExecResult<Buffer>> {
    const r = await this.exec(node, command, opts);
    if (r.exitCode !== 0) throw new ExecError<string | Buffer>(this.nodeName(node), command, r);
    return r;
  }

  /** Node names from handles or names; every node when none is given. */
  private async targetNames(nodes: NodeRef | readonly NodeRef[] | undefined): Promise<string[]> {
    if (nodes === undefined) return (await this.effectiveSpec()).nodes.map((n) => n.name);
    return (Array.isArray(nodes) ? (nodes as readonly NodeRef[]) : [nodes as NodeRef]).map((n) => this.nodeName(n));
  }

  /** Stop nodes' VMs, keeping their disks and network. */
  async hyperstop(nodes?: NodeRef | readonly NodeRef[]): Promise<void> {
    const names = await this.targetNames(nodes);
    await using _lock = await this.lock('hyperstop');
    this.execConns.closeAll();
    await Promise.all(
      names.map(async (name) => {
        await this.nodeState(name);
        const files = vmFiles(this.paths, name);
        const running = await vmRunning(files);
        await stopVm(files);
        this.log.log({ kind: 'node', node: name, state: running ? 'stopped' : 'was not running' });
      }),
    );
    // A switch stops with its owner (the npu, or a sidemux's driver); tables stay on disk.
    const owned = switchPlans(await this.effectiveSpec()).filter((p) => names.includes(p.nodes[0]!));
    await stopSwitches(this.paths, owned.map((p) => p.npu), this.log);
  }

  /**
   * Start stopped nodes again with the same devices and disk, re-creating missing network
   * devices (after a host power loss only disks and `.falcon` remain).
   */
  async hyperstart(nodes?: NodeRef | readonly NodeRef[], opts: { signal?: AbortSignal } = {}): Promise<void> {
    this.bootTimeoutSetting();
    const names = await this.targetNames(nodes);
    const spec = await this.effectiveSpec();
    await using _lock = await this.lock('hyperstart');
    const targets = await Promise.all(names.map((n) => this.nodeState(n)));
    const net = await createNetwork(spec, { runner: this.proc, falconDir: this.paths.dir, log: this.log, signal: opts.signal });
    await applyImpairments(this.impairContext(spec, opts.signal));
    await this.ensureSwitches(spec, names, opts.signal);
    const results = await Promise.allSettled(
      targets.map(async ({ spec: n, ns, state }) => {
        if (await vmRunning(vmFiles(this.paths, n.name))) {
          this.log.log({ kind: 'node', node: n.name, state: 'already running' });
          return;
        }
        if (!(await exists(ns.disk)))
          throw new FalconError('NODE_DISK_MISSING', `the disk of node "${n.name}" (${ns.disk}) is gone; destroy the topology and launch it again`);
        // macvtap device numbers change when the devices are re-created.
        ns.fdDevices = fdDevicesOf(net.netdevs[n.name] ?? []);
        await this.bootNode(n, ns, state, opts.signal);
      }),
    );
    const failures = [];
    for (const [i, r] of results.entries())
      if (r.status === 'rejected') failures.push({ node: targets[i]!.spec.name, error: r.reason, logs: await logTails(this.paths, targets[i]!.spec.name) });
    if (failures.length) throw new LaunchError(spec.name, failures);
  }

  /** Reset a node through QMP (like pressing its reset button), then wait for it and set it up again. */
  async reboot(node: NodeRef, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const { spec: n, ns, state } = await this.nodeState(node);
    const files = vmFiles(this.paths, n.name);
    if (!(await vmRunning(files))) throw new FalconError('NODE_NOT_RUNNING', `node "${n.name}" is not running; start it with hyperstart ${n.name}`);
    // The agent's connection dies with the reset; the next exec opens a new one.
    this.execConns.closeAll();
    await resetVm(files);
    this.log.log({ kind: 'node', node: n.name, state: 'reset' });
    await this.waitReady(n, ns, this.bootDeadlineMs(state), opts.signal ?? new AbortController().signal);
    await this.setUp(n, ns, opts.signal);
    this.log.log({ kind: 'node', node: n.name, state: 'ready' });
  }

  /**
   * Save a node's disk as a new standalone base image. A stopped node's disk is copied; a
   * running node is paused while QEMU copies its disk with a backup job, so the image is
   * consistent (as after a power cut: the guest's unsynced writes are not in it).
   */
  async snapshot(node: NodeRef, newImage: string, opts: { signal?: AbortSignal } = {}): Promise<StoredImage> {
    const { spec: n, ns } = await this.nodeState(node);
    const name = n.name;
    await using _lock = await this.lock('snapshot');
    const parent = (await this.store.get(ns.image)).meta;
    const files = vmFiles(this.paths, name);
    if (!(await vmRunning(files))) {
      const img = await this.store.snapshotFromDisk({ diskPath: ns.disk, newName: newImage, parent, signal: opts.signal });
      this.log.log({ kind: 'step', msg: `snapshot of "${name}" saved as image "${newImage}"` });
      return img;
    }
    const staged = await this.store.stageImage(newImage, opts.signal);
    try {
      await backupRunningDisk(files, staged.disk, {
        node: name,
        signal: opts.signal,
        onPause: (paused) => this.log.log({ kind: 'node', node: name, state: paused ? 'paused for snapshot' : 'resumed' }),
      });
      const img = await staged.commit({ parent, signal: opts.signal });
      this.log.log({ kind: 'step', msg: `snapshot of running "${name}" saved as image "${newImage}"` });
      return img;
    } catch (e) {
      await staged.discard();
      throw e;
    }
  }

  /** Create the topology's host network alone (no VMs). */
  async netcreate(opts: { signal?: AbortSignal } = {}): Promise<void> {
    await this.preflight();
    await using _lock = await this.lock('netcreate');
    await createNetwork(this.toSpec(), { runner: this.proc, falconDir: this.paths.dir, log: this.log, signal: opts.signal });
    await applyImpairments(this.impairContext(this.toSpec(), opts.signal));
  }

  /** Remove the topology's host network alone. */
  async netdestroy(): Promise<void> {
    const spec = await this.effectiveSpec();
    await using _lock = await this.lock('netdestroy');
    // The impairment helpers' taps go with them.
    await stopImpairHelpers(this.paths, this.log);
    await destroyNetwork(spec, { runner: this.proc, falconDir: this.paths.dir, log: this.log });
  }

  /**
   * Remove everything of the topology: VMs (QMP quit, then SIGKILL), network, node disks,
   * sockets and `.falcon` state. Idempotent; works after a partial launch, a crashed CLI or a
   * killed QEMU. Image caches are kept.
   */
  async destroy(): Promise<void> {
    // A damaged topology.json cannot stop the program's own topology from being destroyed.
    const spec = (await this.savedSpec().catch((e) => (this.nodes.size ? undefined : Promise.reject(e)))) ?? this.toSpec();
    if (!(await exists(this.paths.dir)) && spec.nodes.length === 0) {
      this.log.log({ kind: 'step', msg: `nothing to destroy in ${this.paths.dir}` });
      return;
    }
    await this.ensureDir();
    await using _lock = await this.lock('destroy');
    this.execConns.closeAll();
    const started = Date.now();
    const pids = await allVmPids(spec.nodes.map((n) => this.paths.pidFile(n.name)));
    await Promise.all(spec.nodes.map((n) => stopVm(vmFiles(this.paths, n.name), undefined, pids.get(this.paths.pidFile(n.name)))));
    await stopSwitches(this.paths, switchPlans(spec).map((p) => p.npu), this.log);
    await stopImpairHelpers(this.paths, this.log);
    await destroyNetwork(spec, { runner: this.proc, falconDir: this.paths.dir, log: this.log });
    if (!(await this.store.removeTopologyDisks(spec.name, this.paths.dir)))
      this.log.log({ kind: 'warn', msg: `node disks of "${spec.name}" belong to another falcon dir (${await this.store.topologyDiskOwner(spec.name)}); left alone` });
    await fs.rm(this.paths.socketDir, { recursive: true, force: true });
    for (const entry of await fs.readdir(this.paths.dir)) {
      if (entry !== 'lock') await fs.rm(path.join(this.paths.dir, entry), { recursive: true, force: true });
    }
    this.log.log({ kind: 'step', msg: `topology "${spec.name}" destroyed (${Date.now() - started} ms)` });
    await _lock.release();
    await fs.rm(this.paths.dir, { recursive: true, force: true });
  }

  /** Nodes and links with their host interfaces and MACs, and what is running. */
  async info(): Promise<TopologyInfo> {
    const spec = await this.effectiveSpec();
    const state = await readState(this.paths);
    const ifs = await listTopologyInterfaces(spec, { runner: this.proc, falconDir: this.paths.dir, log: this.log }).catch(() => []);
    const planned = hostInterfaces(spec);
    const streams = streamNetdevs(spec, this.paths);
    const nodes: NodeInfo[] = await Promise.all(
      spec.nodes.map(async (n) => {
        const pids = state?.nodes[n.name] ? await vmPids(vmFiles(this.paths, n.name)) : [];
        return {
          name: n.name,
          id: n.id,
          image: n.image,
          cores: n.cores,
          memoryMiB: n.memoryMiB,
          radix: planned.filter((p) => p.node === n.name).length + (streams[n.name]?.length ?? 0),
          mounts: n.mounts,
          status: pids.length ? 'running' : state?.nodes[n.name]?.qemuArgs ? 'stopped' : 'not launched',
          pid: pids[0],
        } satisfies NodeInfo;
      }),
    );
    const impaired = await currentImpairments(spec, this.paths).catch(() => new Map<number, DirectedImpairment>());
    const links: LinkInfo[] = spec.links.map((l, i) => {
      const sw = switchLinkEnds(spec, i, this.paths);
      if (sw) return { kind: l.kind, ...sw };
      const ends = planned.filter((p) => p.link === spec.links[i]);
      const e = (x: (typeof planned)[number]) => ({ node: x.node, index: x.index, ifname: x.ifname, altname: x.altname, mac: x.mac });
      return {
        kind: l.kind,
        a: e(ends[0]!),
        b: ends[1] ? e(ends[1]) : undefined,
        hostIfx: l.kind === 'ext' ? l.hostIfx : undefined,
        exclusive: l.kind === 'ext' ? l.exclusive : undefined,
        impairment: impaired.get(i),
      };
    });
    return { name: spec.name, falconDir: this.paths.dir, accel: state?.accel, nodes, links, interfaces: ifs, switches: await switchInfo(spec, this.paths) };
  }

  /**
   * Start the switches that `nodes` need (theirs, and those of the npus they are attached
   * to) unless they run: after a kill or a host power loss, hyperstart brings them back.
   */
  private async ensureSwitches(spec: TopologySpec, nodes: readonly string[], signal?: AbortSignal): Promise<void> {
    const c: SwitchContext = { paths: this.paths, proc: this.proc, log: this.log, signal };
    const wanted = switchPlans(spec).filter((p) => p.nodes.some((n) => nodes.includes(n)) || p.ports.some((x) => x.peer.kind === 'nic' && nodes.includes(x.peer.node)));
    await Promise.all(wanted.map((p) => ensureSwitch(p, c)));
  }

  /**
   * The switch of an npu node (or the sidemux of a sidecar link, by its driver's name or
   * `<driver>.sidemux`), through its control socket: radix, dump, add,
   * remove, stats, clear, inject, capture and scadm-named helpers (addRoute4, addArpEntry,
   * addAddress, setMac, addProxyArp and their removals).
   *
   * ```ts
   * await d.npu(scrimlet).addRoute4('10.0.2.0/24', 2, '10.0.2.2');
   * ```
   * @throws FalconError NPU_NOT_A_SWITCH when the node runs no switch.
   */
  npu(node: NodeRef): NpuControl {
    let name = this.nodeName(node);
    const spec = this.nodes.size > 0 || this.loaded ? this.toSpec() : undefined;
    if (spec) {
      const names = switchPlans(spec).map((p) => p.npu);
      // A sidecar link's driver names its sidemux (unless it is an npu itself).
      if (!names.includes(name) && names.includes(sidemuxName(name))) name = sidemuxName(name);
      if (!names.includes(name))
        throw new FalconError('NPU_NOT_A_SWITCH', `node "${name}" of topology "${this.name}" runs no switch; the switches are: ${names.join(', ') || '(none)'}`);
    }
    return new NpuControl(name, this.paths.npuSockets(name).control);
  }

  /** `npu()` for a runner that works from the saved topology (the generic CLI): loads it first. */
  async npuOf(node: NodeRef): Promise<NpuControl> {
    await this.effectiveSpec();
    return this.npu(node);
  }

  /**
   * Capture the frames of one NIC, `node:index` or its altname (`info` lists them): pcap to
   * `output` (a path or a function), or one summary line per frame to `onLine`. Ends on
   * `signal`, `count` or `durationMs`; resolves once tcpdump has exited and the file is complete.
   *
   * ```ts
   * const ac = new AbortController();
   * const done = d.capture('violin:0', { output: 'violin.pcap', filter: ['icmp'], signal: ac.signal });
   * ...; ac.abort(); await done;
   * ```
   * @throws FalconError CAPTURE_ENDPOINT for an endpoint the topology does not have.
   */
  async capture(endpoint: string, opts: CaptureOptions = {}): Promise<CaptureResult> {
    const spec = await this.effectiveSpec();
    return captureOne({ proc: this.proc, paths: this.paths, log: this.log }, resolveEndpoint(spec, endpoint), opts);
  }

  /** Capture every NIC of the topology into one pcapng at `output`, one interface per NIC named by its altname. */
  async captureAll(opts: CaptureOptions & { output: string | ((chunk: Buffer) => void) }): Promise<CaptureResult> {
    const spec = await this.effectiveSpec();
    return captureAll({ proc: this.proc, paths: this.paths, log: this.log }, captureEndpoints(spec), opts);
  }

  /**
   * Make a link bad on purpose while the topology runs, without restarting a node: `target` is
   * a link (`violin--piano`, `violin:0--piano:0`, `links[0]`: both directions) or an endpoint
   * (`violin:0` or its altname: the frames it sends). Replaces the impairment there; kept across
   * hyperstop/hyperstart until destroy. Uses netem where the kernel has it, else the userspace
   * helper.
   *
   * ```ts
   * await d.impair('violin--piano', { delayMs: 20, lossPct: 1 });
   * await d.impair('violin:0', { rateMbit: 10 }); // only what violin sends
   * ```
   * @throws FalconError IMPAIR_TARGET for a target the topology does not have; TopologyValidationError for out-of-range values.
   */
  async impair(target: string, impairment: Impairment): Promise<ImpairStatus> {
    const spec = await this.effectiveSpec();
    await using _lock = await this.lock('impair');
    return await setImpairment(this.impairContext(spec), target, impairment);
  }

  /** Remove the impairment of a link or endpoint (also a declared one, until destroy). */
  async clearImpairment(target: string): Promise<ImpairStatus> {
    const spec = await this.effectiveSpec();
    await using _lock = await this.lock('impair');
    return await setImpairment(this.impairContext(spec), target, null);
  }

  /**
   * Every node-to-node link's impairment (or that of the link `target` names): values per
   * direction, where they come from, how they are applied, and the helper's counters.
   */
  async impairments(target?: string): Promise<ImpairStatus[]> {
    const spec = await this.effectiveSpec();
    return impairStatus(this.impairContext(spec), target === undefined ? undefined : [resolveImpairTarget(spec, target).link]);
  }

  /** The analogue of the original's Drop: a non-persistent runner destroys its topology. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.persistent) await this.destroy();
  }
}

function missingTopologyFile(paths: FalconPaths): TopologyFileError {
  return new TopologyFileError(
    `${paths.topologyFile} does not exist: no topology has been launched with falcon dir ${paths.dir}; launch one first, or pass the right --falcon-dir`,
  );
}

/**
 * $FALCON_BOOT_TIMEOUT (seconds) in milliseconds, or undefined when unset.
 * @throws FalconError INVALID_ARGUMENT when it is not a positive number.
 */
export function bootTimeoutFromEnv(env: NodeJS.ProcessEnv): number | undefined {
  const raw = env.FALCON_BOOT_TIMEOUT;
  if (raw === undefined || raw.trim() === '') return undefined;
  const seconds = Number(raw.trim());
  if (!Number.isFinite(seconds) || seconds <= 0)
    throw new FalconError(
      'INVALID_ARGUMENT',
      `FALCON_BOOT_TIMEOUT=${JSON.stringify(raw)} is not a positive number of seconds; set it to one (e.g. FALCON_BOOT_TIMEOUT=300), or unset it for the default (180 s under TCG, 60 s under KVM)`,
    );
  return seconds * 1000;
}
