/**
 * Names that a topology gives host objects. Pure functions of the topology, node and index, so
 * every command (launch, hyperstart, destroy, a collision check) derives the same names.
 */
import { createHash } from 'node:crypto';
import { endpoints, type Endpoint, type EndpointSource, type LinkSpec, type TopologySpec } from './spec.js';

function digest(...parts: string[]): Buffer {
  return createHash('sha256').update(parts.join('\0')).digest();
}

/**
 * Kernel interface name of an endpoint's tap (15 characters at most): "fn", nine hex digits of
 * the topology and node, "e", the index.
 */
export function tapName(topology: string, node: string, index: number): string {
  return `fn${digest(topology, node).toString('hex').slice(0, 9)}e${index}`;
}

/**
 * Kernel name of the impairment helper's tap for the frames an endpoint sends: the endpoint's
 * tap name (`fn<hash>e<i>`) with `i` for `e`, so it is as unique and as short.
 */
export function impairTapName(tap: string): string {
  return tap.replace(/e(\d+)$/, 'i$1');
}

/** The original's device name, kept as the tap's altname so `ip link show duo_violin_vn_sim0` works. */
export function altName(topology: string, node: string, index: number): string {
  return `${topology}_${node}_vn_sim${index}`;
}

/** A stable, locally administered unicast MAC per topology, node and index. */
export function defaultMac(topology: string, node: string, index: number): string {
  const d = digest('mac', topology, node, String(index));
  const bytes = [0x02, d[0]!, d[1]!, d[2]!, d[3]!, d[4]!];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** The alias stamped on each host interface, so a collision can name the topology that owns it. */
export function ownerAlias(topology: string, falconDir: string): string {
  return `falcon:${topology}:${falconDir}`;
}

export function parseOwnerAlias(alias: string | undefined): { topology: string; falconDir: string } | undefined {
  const m = alias?.match(/^falcon:([^:]+):(.*)$/);
  return m ? { topology: m[1]!, falconDir: m[2]! } : undefined;
}

/** One host interface a topology creates, with the link it belongs to. */
export interface HostInterface {
  node: string;
  index: number;
  ifname: string;
  altname: string;
  mac: string;
  link: LinkSpec;
  /** The kernel name of the other end's tap, for node-to-node links. */
  peerIfname?: string;
}

/** The endpoints that are host interfaces (taps, macvtaps): NICs on switch ports are sockets instead. */
export function hostEndpoints(spec: EndpointSource): Endpoint[] {
  return endpoints(spec).filter((e) => !e.switchPort);
}

/** Every host interface of a topology, in declaration order. */
export function hostInterfaces(spec: TopologySpec): HostInterface[] {
  return hostEndpoints(spec).map((e: Endpoint) => ({
    node: e.node,
    index: e.index,
    ifname: tapName(spec.name, e.node, e.index),
    altname: altName(spec.name, e.node, e.index),
    mac: e.mac ?? defaultMac(spec.name, e.node, e.index),
    link: spec.links[e.link]!,
    peerIfname: e.peer ? tapName(spec.name, e.peer.node, e.peer.index) : undefined,
  }));
}
