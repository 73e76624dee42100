/**
 * The requests the runner (through `falcon-node ctl` over `pods/exec`) and the readiness probe
 * make of a pod's supervisor (`falcon-node run`), one JSON object per line on its control
 * socket. Shared by both ends; pure types and parsing.
 */
import { FalconError } from '../util/errors.js';

/** Where the supervisor is with its node. */
export type PodPhase = 'starting' | 'booting' | 'ready' | 'stopped' | 'failed';

export interface PodStatus {
  node: string;
  phase: PodPhase;
  /** Why the node failed, or what the last power operation hit. */
  error?: string;
  /** QEMU's pid when it runs. */
  pid?: number;
  /** The pod's own IP (`FALCON_POD_IP`). */
  podIp?: string;
  /** The MTU of the pod's interface to the pod network (eth0). */
  podMtu?: number;
  /** The peer IP each tunnel (by link index) sends to, once the runner gave it. */
  peers: Record<string, string>;
  /** The VM's accelerator. */
  accel: 'kvm' | 'tcg';
  /** When the node last became ready (ISO time). */
  readyAt?: string;
  /** The impairment helpers this pod runs, by link index (the pod of a link's `a` end runs its). */
  impair?: Record<string, PodImpairState>;
}

/** One link's impairment helper in a pod. */
export interface PodImpairState {
  /** The helper's config (falcon-impair's format: one line per impaired direction). */
  config: string;
  pid?: number;
  /** Its counters per direction (`ab`: what the link's `a` end sends), as falcon-impair writes them. */
  stats?: Record<string, Record<string, number>>;
}

export type PodRequest =
  | { op: 'status' }
  /** Point tunnels (by link index) at their peers' pod IPs. */
  | { op: 'peers'; peers: Record<string, string> }
  /** hyperstop: QEMU stops, the disk stays. */
  | { op: 'stop' }
  /** hyperstart: QEMU starts again with the same devices and disk; replies once the guest is ready. */
  | { op: 'start' }
  /** reboot: a reset through QMP, then the wait and the set-up. */
  | { op: 'reboot' }
  /** Route link `link` through an impairment helper with this config, or (null) straight again. */
  | { op: 'impair'; link: number; config: string | null };

export type PodReply = { ok: true; status: PodStatus } | { ok: false; error: string; code?: string; status?: PodStatus };

/** The control socket's name in the pod's socket folder. */
export const POD_CONTROL_SOCKET = 'pod.ctl';

const OPS = new Set(['status', 'peers', 'stop', 'start', 'reboot', 'impair']);

/** Parse one request line; throws with what is wrong. */
export function parsePodRequest(line: string): PodRequest {
  const v = JSON.parse(line) as { op?: unknown; peers?: unknown; link?: unknown; config?: unknown };
  if (typeof v !== 'object' || v === null || typeof v.op !== 'string' || !OPS.has(v.op)) throw new FalconError('INVALID_ARGUMENT', `unknown request ${line.slice(0, 80)}; the ops are ${[...OPS].join(', ')}`);
  if (v.op === 'peers') {
    const p = v.peers;
    if (typeof p !== 'object' || p === null || Object.values(p).some((ip) => typeof ip !== 'string' || !/^[0-9a-fA-F:.]+$/.test(ip)))
      throw new FalconError('INVALID_ARGUMENT', 'peers takes {"peers": {"<link>": "<pod IP>"}}');
  }
  if (v.op === 'impair' && (!Number.isInteger(v.link) || (v.link as number) < 0 || (v.config !== null && typeof v.config !== 'string')))
    throw new FalconError('INVALID_ARGUMENT', 'impair takes {"link": <link index>, "config": "<falcon-impair config>" | null}');
  return v as PodRequest;
}
