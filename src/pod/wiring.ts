/**
 * A pod's links: the taps and VXLAN devices its node's tunnels need (made before QEMU starts),
 * the helpers that join a switch port's tap to the switch's socket, and pointing tunnels at
 * their peers' pod IPs when the runner gives them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readFile } from 'node:fs/promises';
import { tunnelPeerCommands, type PodWiring } from '../k8s/index.js';
import type { ProcessRunner } from '../host/process.js';
import { tapsockArgs } from '../host/tapsock.js';
import type { FalconPaths } from '../runner/paths.js';
import { FalconError } from '../util/errors.js';
import type { Logger } from '../util/log.js';

const CMD_TIMEOUT_MS = 10_000;

/** Run the wiring's set-up commands (taps, VXLAN devices, tc mirred), in order. */
export async function createTunnels(w: PodWiring, proc: ProcessRunner, signal?: AbortSignal): Promise<void> {
  for (const argv of w.setup) await proc.run(argv[0]!, argv.slice(1), { timeoutMs: CMD_TIMEOUT_MS, signal });
}

/**
 * Point every tunnel named in `peers` (link index → pod IP) at its peer; `current` holds what
 * each points at now and is updated. Unknown links are refused before anything changes.
 */
export async function pointTunnels(w: PodWiring, peers: Record<string, string>, current: Record<string, string>, proc: ProcessRunner): Promise<void> {
  const byLink = new Map(w.tunnels.map((t) => [String(t.link), t]));
  const unknown = Object.keys(peers).filter((l) => !byLink.has(l));
  if (unknown.length) throw new FalconError('INVALID_ARGUMENT', `node "${w.node}" has no tunnel for link ${unknown.join(', ')}; its tunnels are links ${[...byLink.keys()].join(', ') || '(none)'}`);
  for (const [link, ip] of Object.entries(peers)) {
    for (const argv of tunnelPeerCommands(byLink.get(link)!, ip, current[link])) await proc.run(argv[0]!, argv.slice(1), { timeoutMs: CMD_TIMEOUT_MS });
    current[link] = ip;
  }
}

/** The MTU of the pod's interface to the pod network. */
export async function podMtu(dev = 'eth0'): Promise<number | undefined> {
  const v = Number((await readFile(`/sys/class/net/${dev}/mtu`, 'utf8').catch(() => '')).trim());
  return Number.isInteger(v) && v > 0 ? v : undefined;
}

/** The static tap↔socket helper: the image's libexec copy. */
export function tapsockBinary(): string {
  const p = fileURLToPath(new URL('../../libexec/falcon-tapsock', import.meta.url));
  if (!existsSync(p)) throw new FalconError('NPU_SWITCH_FAILED', `the tap-to-switch helper ${p} is missing: this falcon-node image is incomplete; rebuild it (falcon image build-node --force)`);
  return p;
}

/**
 * The helpers that join each switch-port tunnel's tap (`swp<link>`) to the port socket the
 * switch serves in this pod; each is started again if it ends while the pod runs.
 */
export class PortHelpers {
  private readonly children = new Map<string, ChildProcess>();
  private stopping = false;

  constructor(private readonly w: PodWiring, private readonly paths: FalconPaths, private readonly log: Logger) {}

  start(): void {
    for (const t of this.w.tunnels) {
      if (t.attach.kind !== 'switch-port') continue;
      this.spawnOne(t.tap, this.paths.npuSockets(t.attach.npu).port(t.attach.port));
    }
  }

  private spawnOne(tap: string, socket: string): void {
    if (this.stopping) return;
    const child = spawn(tapsockBinary(), tapsockArgs({ tap, socket }), { stdio: ['ignore', 'inherit', 'inherit'] });
    this.children.set(tap, child);
    child.on('exit', (code, sig) => {
      if (this.stopping) return;
      this.log.log({ kind: 'warn', msg: `the helper of switch port tap ${tap} ended (${sig ?? `code ${code}`}); starting it again` });
      setTimeout(() => this.spawnOne(tap, socket), 500);
    });
  }

  stop(): void {
    this.stopping = true;
    for (const c of this.children.values()) c.kill('SIGTERM');
  }
}
