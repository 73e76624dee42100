/**
 * `Runner`: a topology plus the operations that bring it to life, the analogue of the
 * original's `Runner`. A façade, like `ImageStore` over src/images/: each job lives in a file
 * of its own in this folder (launch, bring-up, node-boot, power, exec-routing, inspect,
 * snapshots, teardown, preflight, switches, impairments, capture), and every one of them
 * works from one `RunContext` (context.ts).
 */
import path from 'node:path';
import { Topology, type NodeRef } from '../model/topology.js';
import type { TopologySpec } from '../model/spec.js';
import { sidemuxName } from '../model/spec.js';
import { switchPlans } from '../model/softnpu.js';
import { captureEndpoints, resolveEndpoint } from '../model/capture.js';
import { resolveImpairTarget, type Impairment } from '../model/impair.js';
import type { AccelDecision } from '../host/accel.js';
import { createProcessRunner, type ProcessRunner } from '../host/process.js';
import { encodeResult, type ExecBufferOptions, type ExecOptions, type ExecResult, type ExecTextOptions } from '../guest/exec-types.js';
import { ImageStore, type StoredImage } from '../images/store.js';
import { FalconError } from '../util/errors.js';
import { exists } from '../util/fs.js';
import { consoleLogger, type Logger } from '../util/log.js';
import type { CaptureOptions, CaptureResult } from './capture.js';
import { withSignal, type RunContext } from './context.js';
import { ExecRouter, dumpOptions, requireSuccess, type DumpTarget } from './exec-routing.js';
import type { ImpairStatus } from './impairments.js';
import type { TopologyInfo } from './inspect.js';
import type { TopologyLock } from './lock.js';
import { launchedNode, type LaunchedNode } from './node-state.js';
import type { BootDeps } from './node-boot.js';
import { DEFAULT_FALCON_DIR, FalconPaths } from './paths.js';
import { PreflightError } from './errors.js';
import type { HostCheck } from './preflight.js';
import { readSavedSpec, requireSavedSpec, saveSpec } from './saved-topology.js';
import { bootDeadlineMs, bootTimeoutSetting } from './settings.js';
import type { RunState } from './state.js';
import { NpuControl } from './npu-control.js';
import { readBackendRecord, type Backend } from './k8s/backend.js';
import type { K8sSession } from './k8s/session.js';
import type { SerialConsole } from './serial-console.js';
import { falconVersion } from '../util/version.js';

// Each operation loads its own modules when it runs (`await import`), so that a topology
// program's `exec` or `info` does not load launch, capture, impairments, the switches' lifecycle
// or the Kubernetes backend (and @kubernetes/client-node) at start (docs/performance.md).

export { LaunchError } from './errors.js';
export { bootTimeoutFromEnv } from './settings.js';
export type { NodeInfo, LinkInfo, TopologyInfo } from './inspect.js';
export type { LinkEndInfo } from './switches.js';
export type { DumpTarget } from './exec-routing.js';
export { kubernetes, type Backend, type KubernetesBackend } from './k8s/backend.js';
export type { K8sInfo, PodInfo } from './k8s/info-types.js';
export type { SerialConsole } from './serial-console.js';

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
  /**
   * Where launch puts the topology: this host (default) or a cluster (`kubernetes({...})`).
   * Later commands find it in `.falcon/backend.json` without being told.
   */
  backend?: Backend;
}

/** Options of `execDump`: those of `exec`, and where the output goes as it arrives. */
export type ExecDumpOptions = ExecTextOptions & {
  /** Default: this process's stdout and stderr. */
  to?: DumpTarget;
};

const defaultFalconDir = () => {
  const main = process.argv[1];
  return main ? path.join(path.dirname(path.resolve(main)), DEFAULT_FALCON_DIR) : path.resolve(DEFAULT_FALCON_DIR);
};


const STD_DUMP: DumpTarget = { stdout: (b) => void process.stdout.write(b), stderr: (b) => void process.stderr.write(b) };

/**
 * A topology plus the operations that bring it to life. Declare nodes and links, then
 * `launch()`; `destroy()` removes everything. A non-persistent runner destroys its topology when
 * disposed (`await using d = new Runner(...)`).
 */
export class Runner extends Topology implements AsyncDisposable {
  readonly log: Logger;
  readonly proc: ProcessRunner;
  readonly store: ImageStore;
  /** Not destroyed on dispose when true. */
  persistent: boolean;
  private ctx: RunContext;
  private readonly bootTimeoutMs?: number;
  /** Set when the topology comes from `.falcon/topology.json` rather than from code. */
  private loaded = false;
  private readonly fromSaved: boolean;
  private readonly execRouter = new ExecRouter();
  private readonly backend: Backend | undefined;

  constructor(name: string, options: RunnerOptions = {}) {
    super(name);
    const env = options.env ?? process.env;
    this.log = options.logger ?? consoleLogger();
    this.proc = options.processRunner ?? createProcessRunner(this.log);
    this.store = new ImageStore({ root: options.imageDir, runner: this.proc, log: this.log, env });
    this.ctx = { paths: new FalconPaths(options.falconDir ?? defaultFalconDir()), proc: this.proc, log: this.log, env, store: this.store };
    this.persistent = options.persistent ?? false;
    this.fromSaved = options.fromSaved ?? false;
    this.bootTimeoutMs = options.bootTimeoutMs;
    this.backend = options.backend;
  }

  /** Where the topology keeps its state. */
  get paths(): FalconPaths {
    return this.ctx.paths;
  }

  /**
   * Keep the topology's state in `dir` (upstream's `set_falcon_dir`); no argument restores the
   * default, `.falcon` beside the topology program. Set it before `launch`: a launched
   * topology is found through its falcon dir.
   */
  setFalconDir(dir?: string): void {
    const next = new FalconPaths(dir ?? defaultFalconDir());
    if (next.dir === this.ctx.paths.dir) return;
    this.log.log({ kind: 'step', level: 'debug', msg: `falcon dir set to ${next.dir}` });
    this.ctx = { ...this.ctx, paths: next };
  }

  /** The absolute path of the falcon dir (upstream's `get_falcon_dir`). */
  getFalconDir(): string {
    return this.ctx.paths.dir;
  }

  /** A runner for the topology saved in `falconDir/topology.json`: what later commands work from. */
  static async load(falconDir: string, options: Omit<RunnerOptions, 'falconDir'> = {}): Promise<Runner> {
    const spec = await requireSavedSpec(new FalconPaths(falconDir));
    const r = new Runner(spec.name, { ...options, falconDir });
    r.adopt(spec);
    return r;
  }

  /** The same declared topology with other options (the CLI's falcon dir and log level). */
  derive(options: RunnerOptions): Runner {
    const r = new Runner(this.name, {
      imageDir: this.store.root,
      processRunner: options.logger ? undefined : this.proc,
      env: this.ctx.env,
      bootTimeoutMs: this.bootTimeoutMs,
      persistent: this.persistent,
      backend: this.backend,
      ...options,
    });
    r.adopt(this.toSpec());
    return r;
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
    const saved = this.fromSaved ? await requireSavedSpec(this.paths) : await readSavedSpec(this.paths);
    if (saved) this.adopt(saved);
    return this.toSpec();
  }

  private context(signal?: AbortSignal): RunContext {
    return withSignal(this.ctx, signal);
  }

  private async lock(purpose: string): Promise<TopologyLock> {
    const { topologyLock } = await import('./lock.js');
    return topologyLock(this.ctx, this.name, purpose);
  }

  /** What booting nodes needs: the exec channels and the boot deadline; a bad timeout setting throws before anything is created. */
  private bootDeps(): BootDeps {
    const setting = bootTimeoutSetting(this.bootTimeoutMs, this.ctx.env);
    return { exec: this.execRouter, deadlineMs: (state: RunState) => bootDeadlineMs(setting, state) };
  }

  /** The topology's session on its cluster when `.falcon/backend.json` says it runs on one. */
  private async cluster(): Promise<K8sSession | undefined> {
    const spec = await this.effectiveSpec();
    // A local topology has no backend record: it never loads the Kubernetes backend.
    if (!(await readBackendRecord(this.paths))) return undefined;
    const { K8sSession } = await import('./k8s/session.js');
    return K8sSession.open(this.ctx, spec);
  }

  /** The backend launch uses: the one asked for, else the runner's, else this host. */
  private async launchBackend(asked?: Backend): Promise<Backend> {
    const b = asked ?? this.backend ?? { kind: 'local' };
    const rec = await readBackendRecord(this.paths);
    if (rec && b.kind === 'local')
      throw new FalconError('INVALID_ARGUMENT', `topology "${this.name}" of ${this.paths.dir} runs on the cluster ${rec.server} (namespace ${rec.namespace}); destroy it there first, or launch with --backend k8s`);
    return b;
  }

  /** Refuse an operation the cluster backend does not have, saying why. */
  private async localOnly(what: string, why: string): Promise<void> {
    if (await readBackendRecord(this.paths)) throw new FalconError('INVALID_ARGUMENT', `${what} is not available for a topology on a cluster: ${why}`);
  }

  /** The name of a node given by handle or name. */
  private nodeName(node: NodeRef): string {
    if (typeof node === 'string') return node;
    if (node.topology !== this.name)
      throw new FalconError('NODE_NOT_FOUND', `node "${node.name}" belongs to topology "${node.topology}", not "${this.name}"; pass a node of this topology`);
    return node.name;
  }

  private async launched(node: NodeRef): Promise<LaunchedNode> {
    const name = this.nodeName(node);
    return launchedNode(this.ctx, await this.effectiveSpec(), name);
  }

  /** Node names from handles or names; every node when none is given. */
  private async targetNames(nodes: NodeRef | readonly NodeRef[] | undefined): Promise<string[]> {
    if (nodes === undefined) return (await this.effectiveSpec()).nodes.map((n) => n.name);
    return (Array.isArray(nodes) ? (nodes as readonly NodeRef[]) : [nodes as NodeRef]).map((n) => this.nodeName(n));
  }

  /** The console socket of a node of this topology. */
  async consoleSocket(node: NodeRef): Promise<string> {
    await this.localOnly('the console socket', 'the console is in the node\'s pod; use console(node) or serial NODE');
    const { spec } = await this.launched(node);
    return this.paths.sockets(spec.name).console;
  }

  /** A node's serial console, on this host or in its pod on a cluster (what `serial NODE` attaches to). */
  async console(node: NodeRef): Promise<SerialConsole> {
    const k = await this.cluster();
    if (k) return (await import('./k8s/serial.js')).k8sConsole(k, this.nodeName(node));
    const { spec } = await this.launched(node);
    const { localConsole } = await import('./serial-console.js');
    return localConsole(this.paths.sockets(spec.name).console, { nodeName: spec.name });
  }

  /** The host's prerequisites and the accelerator Falcon would use; `reprobe` boots the KVM probe again instead of using its cached result. */
  async hostChecks(opts: { reprobe?: boolean } = {}): Promise<{ checks: HostCheck[]; accel: AccelDecision }> {
    const [{ hostChecks }, { decideAccel }] = await Promise.all([import('./preflight.js'), import('./accel.js')]);
    const checks = await hostChecks(this.proc, this.store.root);
    const accel = await decideAccel(this.ctx, { allowBuild: false, reprobe: opts.reprobe });
    checks.push({ name: 'accelerator', ok: true, detail: accel.reason });
    return { checks, accel };
  }

  /**
   * Check everything before anything is created: the topology itself, the host's
   * prerequisites and the topology's references to the host. Saves `.falcon/topology.json`.
   * Throws a `PreflightError` listing every problem.
   */
  async preflight(opts: { backend?: Backend } = {}): Promise<void> {
    const spec = await this.effectiveSpec();
    const b = await this.launchBackend(opts.backend);
    if (b.kind === 'k8s') {
      const { k8sPreflightAll } = await import('./k8s/launch.js');
      await k8sPreflightAll(this.ctx, spec, b, falconVersion());
      return;
    }
    const [{ topologyProblems }, { impairPreflightNote }, { ensureFalconDir }] = await Promise.all([import('./preflight.js'), import('./impairments.js'), import('./lock.js')]);
    const problems = await topologyProblems(this.ctx, spec);
    if (problems.length) throw new PreflightError(spec.name, problems);
    const note = await impairPreflightNote(this.ctx, spec);
    if (note) this.log.log({ kind: 'step', msg: note });
    await ensureFalconDir(this.ctx);
    await saveSpec(this.paths, spec);
  }

  /**
   * Launch the topology: preflight, images, network, then every node in parallel. Returns when
   * every node has booted and finished its set-up, ready for `exec`.
   */
  async launch(opts: { signal?: AbortSignal; backend?: Backend } = {}): Promise<void> {
    const b = await this.launchBackend(opts.backend);
    if (b.kind === 'k8s') {
      const spec = await this.effectiveSpec();
      await using _lock = await this.lock('launch');
      const { k8sLaunch } = await import('./k8s/launch.js');
      return k8sLaunch(this.context(opts.signal), spec, b, falconVersion());
    }
    const boot = this.bootDeps();
    await this.preflight();
    await using _lock = await this.lock('launch');
    const { launchTopology } = await import('./launch.js');
    await launchTopology(this.context(opts.signal), this.toSpec(), boot);
  }

  /** Stop nodes' VMs (one, several, or every node when none is given), keeping their disks and network. */
  async hyperstop(nodes?: NodeRef | readonly NodeRef[]): Promise<void> {
    const names = await this.targetNames(nodes);
    await using _lock = await this.lock('hyperstop');
    const k = await this.cluster();
    if (k) return (await import('./k8s/power.js')).k8sHyperstop(k, names);
    const { hyperstopNodes } = await import('./power.js');
    await hyperstopNodes(this.ctx, await this.effectiveSpec(), names, this.execRouter);
  }

  /**
   * Start stopped nodes again with the same devices and disk, re-creating missing network
   * devices (after a host power loss only disks and `.falcon` remain).
   */
  async hyperstart(nodes?: NodeRef | readonly NodeRef[], opts: { signal?: AbortSignal } = {}): Promise<void> {
    const boot = this.bootDeps();
    const names = await this.targetNames(nodes);
    const spec = await this.effectiveSpec();
    await using _lock = await this.lock('hyperstart');
    const k = await this.cluster();
    if (k) return (await import('./k8s/power.js')).k8sHyperstart(k, names);
    const { hyperstartNodes } = await import('./power.js');
    await hyperstartNodes(this.context(opts.signal), spec, names, boot);
  }

  /** Reset a node through QMP (like pressing its reset button), then wait for it and set it up again. */
  async reboot(node: NodeRef, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const name = this.nodeName(node);
    const k = await this.cluster();
    if (k) return (await import('./k8s/power.js')).k8sReboot(k, name);
    const { rebootNode } = await import('./power.js');
    await rebootNode(this.context(opts.signal), await this.effectiveSpec(), name, this.bootDeps());
  }

  /**
   * Save a node's disk as a new standalone base image. A stopped node's disk is copied; a
   * running node is paused while QEMU copies its disk with a backup job, so the image is
   * consistent (as after a power cut: the guest's unsynced writes are not in it).
   */
  async snapshot(node: NodeRef, newImage: string, opts: { signal?: AbortSignal } = {}): Promise<StoredImage> {
    await this.localOnly('snapshot', "a node's disk lives in its pod's emptyDir; snapshot it on a local launch of the topology");
    const target = await this.launched(node);
    await using _lock = await this.lock('snapshot');
    const { snapshotNode } = await import('./snapshots.js');
    return snapshotNode(this.context(opts.signal), target, newImage);
  }

  /** Create the topology's host network alone (no VMs). */
  async netcreate(opts: { signal?: AbortSignal } = {}): Promise<void> {
    await this.localOnly('netcreate', 'the links are made by the pods');
    await this.preflight();
    await using _lock = await this.lock('netcreate');
    const c = this.context(opts.signal);
    const [{ createNetwork }, { netContext }, { applyImpairments }] = await Promise.all([import('../host/net.js'), import('./context.js'), import('./impairments.js')]);
    await createNetwork(this.toSpec(), netContext(c));
    await applyImpairments(c, this.toSpec());
  }

  /** Remove the topology's host network alone. */
  async netdestroy(): Promise<void> {
    await this.localOnly('netdestroy', 'the links go with the pods (destroy)');
    const spec = await this.effectiveSpec();
    await using _lock = await this.lock('netdestroy');
    const { removeNetwork } = await import('./teardown.js');
    await removeNetwork(this.ctx, spec);
  }

  /**
   * Remove everything of the topology: VMs (QMP quit, then SIGKILL), network, node disks,
   * sockets and `.falcon` state. Idempotent; works after a partial launch, a crashed CLI or a
   * killed QEMU. Image caches are kept.
   */
  async destroy(): Promise<void> {
    // A damaged topology.json cannot stop the program's own topology from being destroyed.
    const spec = (await readSavedSpec(this.paths).catch((e) => (this.nodes.size ? undefined : Promise.reject(e)))) ?? this.toSpec();
    if (!(await exists(this.paths.dir)) && spec.nodes.length === 0) {
      this.log.log({ kind: 'step', msg: `nothing to destroy in ${this.paths.dir}` });
      return;
    }
    const lock = await this.lock('destroy');
    try {
      const k = await readBackendRecord(this.paths).then(async (r) => (r ? (await import('./k8s/session.js')).K8sSession.open(this.ctx, spec) : undefined));
      if (k) return await (await import('./k8s/destroy.js')).k8sDestroy(k, lock);
      this.execRouter.closeAll();
      const { destroyTopology } = await import('./teardown.js');
      await destroyTopology(this.ctx, spec, lock);
    } finally {
      await lock.release();
    }
  }

  /** Nodes and links with their host interfaces and MACs, and what is running. */
  async info(): Promise<TopologyInfo> {
    const k = await this.cluster();
    if (k) return (await import('./k8s/info.js')).k8sInfo(k);
    const { topologyInfo } = await import('./inspect.js');
    return topologyInfo(this.ctx, await this.effectiveSpec());
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
    await this.localOnly('npu from this machine', "the switch's control socket is in its pod; program it from inside the npu node over its management UART (/dev/ttyS3), as the softnpu example's demo does");
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
    const k = await this.cluster();
    const at = resolveEndpoint(spec, endpoint);
    if (k) return (await import('./k8s/capture.js')).k8sCapture(k, at, opts);
    return (await import('./capture.js')).captureOne(this.ctx, at, opts);
  }

  /** Capture every NIC of the topology into one pcapng at `output`, one interface per NIC named by its altname. */
  async captureAll(opts: CaptureOptions & { output: string | ((chunk: Buffer) => void) }): Promise<CaptureResult> {
    const spec = await this.effectiveSpec();
    const k = await this.cluster();
    if (k) return (await import('./k8s/capture.js')).k8sCaptureAll(k, captureEndpoints(spec), opts);
    return (await import('./capture.js')).captureAll(this.ctx, captureEndpoints(spec), opts);
  }

  /**
   * Make a link bad on purpose while the topology runs, without restarting a node: `target` is
   * a link (`violin--piano`, `violin:0--piano:0`, `links[0]`: both directions) or an endpoint
   * (`violin:0` or its altname: the frames it sends). Replaces the impairment there; kept across
   * hyperstop/hyperstart until destroy. Uses netem where the kernel has it, else the userspace
   * helper; on a cluster, the helper in the pod of the link's first node.
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
    const k = await this.cluster();
    if (k) return (await import('./k8s/impair.js')).k8sSetImpairment(k, target, impairment);
    return await (await import('./impairments.js')).setImpairment(this.ctx, spec, target, impairment);
  }

  /** Remove the impairment of a link or endpoint (also a declared one, until destroy). */
  async clearImpairment(target: string): Promise<ImpairStatus> {
    const spec = await this.effectiveSpec();
    await using _lock = await this.lock('impair');
    const k = await this.cluster();
    if (k) return (await import('./k8s/impair.js')).k8sSetImpairment(k, target, null);
    return await (await import('./impairments.js')).setImpairment(this.ctx, spec, target, null);
  }

  /**
   * Every node-to-node link's impairment (or that of the link `target` names): values per
   * direction, where they come from, how they are applied, and the helper's counters.
   */
  async impairments(target?: string): Promise<ImpairStatus[]> {
    const spec = await this.effectiveSpec();
    const only = target === undefined ? undefined : [resolveImpairTarget(spec, target).link];
    const k = await this.cluster();
    if (k) return (await import('./k8s/impair.js')).k8sImpairStatus(k, only);
    return (await import('./impairments.js')).impairStatus(this.ctx, spec, only);
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
    const k = await this.cluster();
    if (k) {
      const name = this.nodeName(node);
      await k.requirePod(name);
      const { podGuestExec } = await import('./k8s/pod-exec.js');
      return encodeResult(await podGuestExec(k.api, k.namespace, k.pod(name), name, command, opts), opts.encoding);
    }
    const { spec, ns } = await this.launched(node);
    return encodeResult(await this.execRouter.run(this.ctx, spec.name, ns, command, opts), opts.encoding);
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
    return requireSuccess(this.nodeName(node), command, await this.exec(node, command, opts));
  }

  /**
   * `exec` that shows the guest's output as it arrives (upstream's `exec_dump`, `exec --dump`):
   * stdout and stderr go to `opts.to` (default: this process's), and the result is `exec`'s.
   * Images without falcon-agent show the output when the command ends.
   *
   * ```ts
   * const { exitCode } = await d.execDump(violin, 'apt-get install -y frr');
   * ```
   */
  async execDump(node: NodeRef, command: string, opts: ExecDumpOptions = {}): Promise<ExecResult<string>> {
    const { to = STD_DUMP, ...rest } = opts;
    return this.exec(node, command, dumpOptions(rest, to) as ExecTextOptions);
  }

  /** The analogue of the original's Drop: a non-persistent runner destroys its topology. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.persistent) await this.destroy();
  }
}
