/**
 * A link end that leaves the host (a Kubernetes pod) as a VXLAN tunnel: a vxlan device toward
 * the peer's address, wired back to back with the node's tap by tc mirred, exactly as two taps
 * are wired on one host (net-actions.ts), so frames cross unchanged and nothing bridges them.
 */
import { FalconError } from '../util/errors.js';
import { wireCommand } from './net-actions.js';
import { runBatch } from './net-ip.js';
import type { ProcessRunner } from './process.js';

/** IANA's VXLAN port. */
export const VXLAN_PORT = 4789;

export interface VxlanTunnel {
  /** The vxlan device's name (at most 15 characters). */
  ifname: string;
  /** The link's VXLAN network identifier, 1..16777215. */
  vni: number;
  /**
   * The peer's IPv4 or IPv6 address on the underlay. Absent: the device starts with no peer and
   * `peerCommands` points it at one (a pod learns its peer's IP later, and again when the peer
   * pod comes back with another).
   */
  remote?: string;
  /** This end's address, when the underlay has several. */
  local?: string;
  /** The underlay device (the pod's eth0), when the route alone should not choose it. */
  dev?: string;
  /** UDP port, both ends the same; default 4789. */
  port?: number;
  /** The vxlan device's MTU: the guest's, which must fit the underlay's minus the encapsulation. */
  mtu?: number;
}

/** Problems of a tunnel's values, before anything is created. */
export function tunnelProblems(t: VxlanTunnel): string[] {
  const out: string[] = [];
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(t.ifname)) out.push(`vxlan device name "${t.ifname}" is not 1-15 letters, digits, "_", "-" or "."`);
  if (!Number.isInteger(t.vni) || t.vni < 1 || t.vni > 0xffffff) out.push(`VNI ${t.vni} is out of range; give a whole number from 1 to 16777215`);
  const port = t.port ?? VXLAN_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535) out.push(`UDP port ${port} is out of range 1-65535`);
  for (const [what, a] of [['remote', t.remote], ['local', t.local]] as const)
    if (a !== undefined && !/^[0-9a-fA-F:.]+$/.test(a)) out.push(`${what} address "${a}" is not an IP address`);
  if (t.mtu !== undefined && (!Number.isInteger(t.mtu) || t.mtu < 68 || t.mtu > 65535)) out.push(`MTU ${t.mtu} is out of range 68-65535`);
  return out;
}

/** `ip link add` for the tunnel's device: learning off, since one peer is all it ever has. */
export function vxlanAddCommand(t: VxlanTunnel): string[] {
  return [
    'link', 'add', t.ifname, 'type', 'vxlan', 'id', String(t.vni),
    ...(t.remote ? ['remote', t.remote] : []),
    ...(t.local ? ['local', t.local] : []),
    ...(t.dev ? ['dev', t.dev] : []),
    'dstport', String(t.port ?? VXLAN_PORT), 'nolearning',
  ];
}

/**
 * The `ip` and `tc` commands that create the tunnel and wire it to `tap`: frames the guest sends
 * leave through the tunnel, frames from the tunnel reach the guest.
 */
export function tunnelCommands(t: VxlanTunnel, tap: string): { ip: string[][]; tc: string[][] } {
  const bad = tunnelProblems(t);
  if (bad.length) throw new FalconError('NETWORK', `VXLAN tunnel ${t.ifname}${t.remote ? ` to ${t.remote}` : ''}: ${bad.join('; ')}`);
  // No IPv6 link-local address: the host itself must not talk on the topology's links.
  const ip = [vxlanAddCommand(t), ['link', 'set', 'dev', t.ifname, ...(t.mtu ? ['mtu', String(t.mtu)] : []), 'addrgenmode', 'none', 'up']];
  const tc = [tap, t.ifname].flatMap((dev) => [['qdisc', 'replace', 'dev', dev, 'handle', 'ffff:', 'ingress']]);
  tc.push(wireCommand(tap, t.ifname), wireCommand(t.ifname, tap));
  return { ip, tc };
}

/**
 * The `bridge` commands pointing a tunnel without a fixed `remote` at its peer: the device's
 * default FDB entry. `bridge fdb replace` leaves an all-zero entry alone, so an old peer's entry
 * is deleted first; nothing when the peer is unchanged.
 *
 * ```ts
 * peerCommands('vxl0', '10.244.2.9', '10.244.1.7'); // [['fdb', 'del', ...], ['fdb', 'append', ...]]
 * ```
 */
export function peerCommands(ifname: string, peerIp: string, previousIp?: string): string[][] {
  const entry = ['00:00:00:00:00:00', 'dev', ifname, 'dst'];
  const out: string[][] = [];
  if (previousIp && previousIp !== peerIp) out.push(['fdb', 'del', ...entry, previousIp]);
  if (previousIp !== peerIp) out.push(['fdb', 'append', ...entry, peerIp]);
  return out;
}

export interface TunnelRunOptions {
  runner: ProcessRunner;
  signal?: AbortSignal;
}

/** Create the tunnel and wire it to `tap` (which must exist). */
export async function createTunnel(t: VxlanTunnel, tap: string, o: TunnelRunOptions): Promise<void> {
  const { ip, tc } = tunnelCommands(t, tap);
  await runBatch('ip', ip, o);
  await runBatch('tc', tc, o);
}

/** Point a tunnel at `peerIp` (see peerCommands). */
export async function pointTunnel(ifname: string, peerIp: string, previousIp: string | undefined, o: TunnelRunOptions): Promise<void> {
  for (const c of peerCommands(ifname, peerIp, previousIp)) await o.runner.run('bridge', c, { timeoutMs: 10_000, signal: o.signal });
}

/** Remove the tunnel's device (its qdisc and filters go with it); one already gone is fine. */
export async function destroyTunnel(ifname: string, o: TunnelRunOptions): Promise<void> {
  await runBatch('ip', [['link', 'del', 'dev', ifname]], { ...o, force: true });
}
