/**
 * Planning a topology's host network: which interface each link end gets, pure. Also what the
 * other network jobs share: the options of calls that touch the host, and `NetworkError`.
 */
import path from 'node:path';
import { formatProblems } from '../model/errors.js';
import { hostEndpoints, hostInterfaces, ownerAlias } from '../model/naming.js';
import type { TopologySpec } from '../model/spec.js';
import { FalconError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import type { NetworkProblem } from './net-kernel.js';
import type { ProcessRunner } from './process.js';

interface PlannedBase {
  node: string;
  /** Index among the node's interfaces (the guest's order). */
  index: number;
  /** Kernel name, 15 characters at most. */
  ifname: string;
  /** The original's name (`<topology>_<node>_vn_sim<index>`), usable wherever an ifname is. */
  altname: string;
  /** MAC the guest's NIC gets. */
  guestMac: string;
  /** Index of the link in `spec.links`. */
  link: number;
  /** Where problems about this endpoint are reported, e.g. `links[3].b`. */
  path: string;
}

/**
 * A tap wired back to back to its peer's tap. Sidecar links are planned as these too; a
 * SoftNPU link is no host interface at all (its node end is a QEMU stream socket on a port of
 * the switch process, its npu end a switch port).
 */
export interface PlannedTap extends PlannedBase {
  kind: 'tap';
  linkKind: 'link' | 'sidecar';
  peerIfname: string;
}

/** A macvtap on a host interface, for an external link. */
export interface PlannedMacvtap extends PlannedBase {
  kind: 'macvtap';
  /** As declared; null for the default route's interface. */
  hostIfx: string | null;
  /** The host interface's kernel name, when resolved. */
  lower?: string;
  /** `bridge` for `extLink`, `passthru` for `extLinkExclusive`. */
  mode: 'bridge' | 'passthru';
}

export type PlannedInterface = PlannedTap | PlannedMacvtap;

/** The host objects of a topology. */
export interface NetworkPlan {
  topology: string;
  falconDir: string;
  /** The alias stamped on every interface of the topology. */
  alias: string;
  interfaces: PlannedInterface[];
}

export interface PlanOptions {
  falconDir: string;
  /**
   * Maps a declared host interface (null: the default route's) to its kernel name. Without it,
   * named interfaces are taken as is and the default route's stays unresolved.
   */
  hostIfxResolver?: (hostIfx: string | null) => string | undefined;
}

/** The host objects a topology needs. Pure: no host access. */
export function planNetwork(spec: TopologySpec, opts: PlanOptions): NetworkPlan {
  const falconDir = path.resolve(opts.falconDir);
  const resolve = opts.hostIfxResolver ?? ((h: string | null) => h ?? undefined);
  const eps = hostEndpoints(spec);
  // hostInterfaces() is hostEndpoints() named, in the same order.
  const interfaces = hostInterfaces(spec).map((h, i): PlannedInterface => {
    const e = eps[i]!;
    const base: PlannedBase = {
      node: h.node,
      index: h.index,
      ifname: h.ifname,
      altname: h.altname,
      guestMac: h.mac.toLowerCase(),
      link: e.link,
      path: `links[${e.link}].${e.side}`,
    };
    if (h.link.kind === 'ext') {
      return {
        ...base,
        kind: 'macvtap',
        hostIfx: h.link.hostIfx,
        lower: resolve(h.link.hostIfx),
        mode: h.link.exclusive ? 'passthru' : 'bridge',
      };
    }
    return { ...base, kind: 'tap', linkKind: h.link.kind === 'sidecar' ? 'sidecar' : 'link', peerIfname: h.peerIfname! };
  });
  return { topology: spec.name, falconDir, alias: ownerAlias(spec.name, falconDir), interfaces };
}

/** What the network layer needs from callers that touch the host. */
export interface NetworkOptions {
  runner: ProcessRunner;
  falconDir: string;
  log?: Logger;
  signal?: AbortSignal;
}

/** The network of a topology cannot be created as it stands; `problems` lists why. */
export class NetworkError extends FalconError {
  override name = 'NetworkError';
  constructor(
    readonly topology: string,
    readonly problems: readonly NetworkProblem[],
  ) {
    super('NETWORK', formatProblems(`the host network of topology "${topology}"`, problems));
  }
}
