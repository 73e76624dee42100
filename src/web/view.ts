/**
 * What the page draws: the topology graph of `Runner.info()` (src/graph), each node and edge with
 * its label lines, each edge with the capture endpoints of its NIC ends, and the info itself for
 * the side panel. Pure: info in, JSON-able data out.
 */
import { edgeLines, nodeLines, topologyGraph, type GraphEdge, type GraphEnd, type GraphNode } from '../graph/index.js';
import type { LinkInfo, TopologyInfo } from '../runner/runner.js';

/** A capturable end of an edge: `node:index`, with its host interface when it has one. */
export interface ViewEndpoint {
  endpoint: string;
  node: string;
  nic: number;
  ifname?: string;
  altname?: string;
}

export interface ViewNode extends GraphNode {
  lines: string[];
}

export interface ViewEdge extends GraphEdge {
  /** A stable id for the page: `e<index>`. */
  key: string;
  lines: string[];
  /** What to show at each end: the host interface, or the switch port. */
  fromLabel: string;
  toLabel: string;
  endpoints: ViewEndpoint[];
  /** The link's impairment as text (`delay 100ms loss 20%`), when it has one. */
  impairment?: string;
}

export interface WebView {
  topology: string;
  nodes: ViewNode[];
  edges: ViewEdge[];
  info: TopologyInfo;
}

/**
 * An impairment value as one short line: a string as it is, an object as `key value` pairs
 * (`{ delay: '100ms', loss: '20%' }` -> `delay 100ms loss 20%`); nothing for an empty one.
 */
export function impairmentText(v: unknown): string | undefined {
  if (v === undefined || v === null || v === false) return undefined;
  if (typeof v === 'string') return v.trim() || undefined;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return v.map(impairmentText).filter((x) => x !== undefined).join(', ') || undefined;
  if (typeof v === 'object') {
    const parts = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined && x !== null && x !== false)
      .map(([k, x]) => (x === true ? k : `${k} ${typeof x === 'object' ? JSON.stringify(x) : String(x)}`));
    return parts.join(' ') || undefined;
  }
  return undefined;
}

/** The link's optional `impairment` field (set by the impairment API when a link has one). */
function linkImpairment(l: LinkInfo): string | undefined {
  return impairmentText((l as LinkInfo & { impairment?: unknown }).impairment);
}

function endLabel(e: GraphEnd): string {
  if (e.port !== undefined) return `port ${e.port}`;
  return e.ifname ?? (e.nic !== undefined ? `NIC ${e.nic}` : '');
}

function endpointOf(e: GraphEnd, kind: GraphNode['kind'] | undefined): ViewEndpoint | undefined {
  if (kind !== 'node' || e.nic === undefined || e.port !== undefined) return undefined;
  return { endpoint: `${e.name}:${e.nic}`, node: e.name, nic: e.nic, ifname: e.ifname, altname: e.altname };
}

/** The page's data for `info`. */
export function webView(info: TopologyInfo): WebView {
  const g = topologyGraph(info, { linkLabels: (l) => [linkImpairment(l)].filter((x): x is string => !!x) });
  const kinds = new Map(g.nodes.map((n) => [n.id, n.kind]));
  return {
    topology: g.topology,
    nodes: g.nodes.map((n) => ({ ...n, lines: nodeLines(n) })),
    edges: g.edges.map((e, i) => {
      const impairment = e.link !== undefined ? linkImpairment(info.links[e.link]!) : undefined;
      return {
        ...e,
        key: `e${i}`,
        lines: edgeLines(e),
        fromLabel: endLabel(e.from),
        toLabel: endLabel(e.to),
        endpoints: [endpointOf(e.from, kinds.get(e.from.id)), endpointOf(e.to, kinds.get(e.to.id))].filter((x): x is ViewEndpoint => !!x),
        ...(impairment ? { impairment } : {}),
      };
    }),
    info,
  };
}
