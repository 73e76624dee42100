/**
 * `falcon-node run`: the first process of a node's pod. It makes the node's tunnels, boots its
 * VM with Falcon's own node code (the disk overlay, QEMU, the exec agent, the set-up), and then
 * serves the runner's requests on its control socket (peers, stop, start, reboot, impair, status) until
 * the pod ends. QEMU is its child, so a stopped QEMU is reaped and not left as a zombie.
 */
import { promises as fs } from 'node:fs';
import net from 'node:net';
import { vmRunning, vmPids, resetVm, stopVm } from '../host/qemu-vm.js';
import { parsePodRequest, podWiring, type PodPhase, type PodReply, type PodRequest, type PodStatus, type PodWiring } from '../k8s/index.js';
import type { NodeSpec, TopologySpec } from '../model/spec.js';
import type { RunContext } from '../runner/context.js';
import { ExecRouter } from '../runner/exec-routing.js';
import { bootNode, prepareNode, setUpGuest, waitReady, type BootDeps } from '../runner/node-boot.js';
import { saveSpec } from '../runner/saved-topology.js';
import { bootDeadlineMs, bootTimeoutSetting } from '../runner/settings.js';
import { STATE_VERSION, writeState, type NodeState, type RunState } from '../runner/state.js';
import { vmFiles } from '../runner/vm.js';
import type { NetdevInfo } from '../host/net.js';
import type { StreamNetdev } from '../host/qemu-vm.js';
import { FalconError } from '../util/errors.js';
import { controlSocket, type PodEnv } from './context.js';
import { PodImpairs } from './impair.js';
import { PortHelpers, createTunnels, podMtu, pointTunnels } from './wiring.js';

/** The node's NICs as QEMU gets them in the pod: tunnel taps, and stream sockets on switches in this pod. */
function podNetdevs(w: PodWiring, c: RunContext): (NetdevInfo | StreamNetdev)[] {
  return w.nics.map((n) =>
    n.kind === 'tap'
      ? { kind: 'tap' as const, index: n.index, ifname: n.tap, altname: '', mac: n.mac }
      : { kind: 'stream' as const, index: n.index, path: c.paths.nicSocket(n.role === 'port' ? w.node : n.npu, n.index), mac: n.mac },
  );
}

export class Supervisor {
  private phase: PodPhase = 'starting';
  private error: string | undefined;
  private readyAt: string | undefined;
  private readonly peers: Record<string, string> = {};
  private readonly exec = new ExecRouter();
  private readonly helpers: PortHelpers;
  private readonly impairs: PodImpairs;
  private readonly wiring: PodWiring;
  private readonly n: NodeSpec;
  private state!: RunState;
  private mtu: number | undefined;
  /** Power operations one at a time. */
  private queue: Promise<unknown> = Promise.resolve();
  private server: net.Server | undefined;
  /** Settles once the tunnels exist: a peers request that comes sooner waits for it. */
  private readonly tunnels: Promise<void>;
  private tunnelsMade!: (e?: Error) => void;

  constructor(private readonly c: RunContext, private readonly spec: TopologySpec, node: string, private readonly e: PodEnv) {
    const n = spec.nodes.find((x) => x.name === node);
    if (!n) throw new FalconError('NODE_NOT_FOUND', `topology "${spec.name}" has no node "${node}"; its nodes are ${spec.nodes.map((x) => x.name).join(', ')}`);
    this.n = n;
    this.wiring = podWiring(spec, node, { vxlanPort: e.vxlanPort, localIp: e.podIp });
    this.helpers = new PortHelpers(this.wiring, c.paths, c.log);
    this.impairs = new PodImpairs(this.wiring, c.paths, c.proc, c.log);
    this.tunnels = new Promise<void>((resolve, reject) => (this.tunnelsMade = (e) => (e ? reject(e) : resolve())));
    this.tunnels.catch(() => {});
  }

  private get ns(): NodeState {
    return this.state.nodes[this.n.name]!;
  }

  private deps(): BootDeps {
    const setting = bootTimeoutSetting(undefined, this.c.env);
    return { exec: this.exec, deadlineMs: (s) => bootDeadlineMs(setting, s) };
  }

  status(): PodStatus {
    return {
      node: this.n.name,
      phase: this.phase,
      ...(this.error ? { error: this.error } : {}),
      podIp: this.e.podIp,
      podMtu: this.mtu,
      peers: { ...this.peers },
      accel: this.e.accel,
      ...(this.readyAt ? { readyAt: this.readyAt } : {}),
    };
  }

  /** Everything up to a ready guest; a failure leaves the pod running with phase `failed`, for info and logs. */
  async start(): Promise<void> {
    try {
      await this.startNode();
    } catch (e) {
      this.phase = 'failed';
      this.error ??= (e as Error).message;
      throw e;
    }
  }

  private async startNode(): Promise<void> {
    const { c, n } = this;
    await fs.mkdir(c.paths.socketDir, { recursive: true, mode: 0o700 });
    await saveSpec(c.paths, this.spec);
    this.mtu = await podMtu();
    await this.listen();
    try {
      await createTunnels(this.wiring, c.proc, c.signal);
      this.tunnelsMade();
    } catch (e) {
      this.tunnelsMade(e as Error);
      throw e;
    }
    this.helpers.start();
    const img = await c.store.ensure(n.image, c.signal);
    this.state = {
      version: STATE_VERSION,
      topology: this.spec.name,
      accel: this.e.accel,
      imageDir: c.store.root,
      nodes: { [n.name]: { disk: c.store.nodeDiskPath(this.spec.name, n.name), image: n.image, exec: img.meta.exec, login: img.meta.login } },
    };
    await prepareNode(c, this.spec, n, img, this.ns, this.e.accel, podNetdevs(this.wiring, c));
    await writeState(c.paths, this.state);
    await this.boot();
  }

  private async boot(): Promise<void> {
    this.phase = 'booting';
    this.error = undefined;
    try {
      await bootNode(this.c, this.deps(), this.n, this.ns, this.state);
      this.phase = 'ready';
      this.readyAt = new Date().toISOString();
    } catch (e) {
      this.phase = 'failed';
      this.error = (e as Error).message;
      this.c.log.log({ kind: 'node', node: this.n.name, state: 'failed', detail: this.error });
      throw e;
    }
  }

  private async stopVm(): Promise<void> {
    this.exec.closeAll();
    await stopVm(vmFiles(this.c.paths, this.n.name));
    this.phase = 'stopped';
    this.c.log.log({ kind: 'node', node: this.n.name, state: 'stopped' });
  }

  private async reboot(): Promise<void> {
    const files = vmFiles(this.c.paths, this.n.name);
    if (!(await vmRunning(files))) throw new FalconError('NODE_NOT_RUNNING', `node "${this.n.name}" is not running; start it with hyperstart ${this.n.name}`);
    this.exec.closeAll();
    this.phase = 'booting';
    await resetVm(files);
    await waitReady(this.c, this.n, this.ns, this.deps().deadlineMs(this.state), new AbortController().signal);
    await setUpGuest(this.c, this.exec, this.n, this.ns);
    this.phase = 'ready';
  }

  /** One request; power operations wait for the one before. */
  async handle(r: PodRequest): Promise<PodStatus> {
    if (r.op === 'status') {
      const pids = await vmPids(vmFiles(this.c.paths, this.n.name)).catch(() => []);
      return { ...(await this.statusWithImpair()), ...(pids[0] ? { pid: pids[0] } : {}) };
    }
    if (r.op === 'impair') {
      await this.tunnels;
      await this.impairs.apply(r.link, r.config);
      return this.statusWithImpair();
    }
    if (r.op === 'peers') {
      await this.tunnels;
      await pointTunnels(this.wiring, r.peers, this.peers, this.c.proc);
      return this.status();
    }
    const run = async () => {
      if (r.op === 'stop') await this.stopVm();
      else if (r.op === 'start') {
        if (await vmRunning(vmFiles(this.c.paths, this.n.name))) return;
        await this.boot();
      } else await this.reboot();
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => {});
    await p;
    return this.status();
  }

  private async statusWithImpair(): Promise<PodStatus> {
    const impair = await this.impairs.state();
    return { ...this.status(), ...(Object.keys(impair).length ? { impair } : {}) };
  }

  private async listen(): Promise<void> {
    const path = controlSocket(this.c.paths);
    await fs.rm(path, { force: true });
    this.server = net.createServer((sock) => {
      let buf = '';
      sock.on('data', (d) => {
        buf += d.toString('utf8');
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        const line = buf.slice(0, nl);
        buf = '';
        void this.reply(line).then((rep) => sock.end(JSON.stringify(rep) + '\n'));
      });
      sock.on('error', () => {});
    });
    await new Promise<void>((resolve, reject) => this.server!.once('error', reject).listen(path, resolve));
    await fs.chmod(path, 0o600);
  }

  private async reply(line: string): Promise<PodReply> {
    try {
      return { ok: true, status: await this.handle(parsePodRequest(line)) };
    } catch (e) {
      const code = e instanceof FalconError ? e.code : undefined;
      return { ok: false, error: (e as Error).message, ...(code ? { code } : {}), status: this.status() };
    }
  }

  /** The pod ends: QEMU quits (SIGKILL after its grace), the helpers stop. */
  async shutdown(): Promise<void> {
    this.helpers.stop();
    await this.impairs.stop();
    this.server?.close();
    await stopVm(vmFiles(this.c.paths, this.n.name)).catch(() => {});
  }
}
