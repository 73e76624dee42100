/**
 * What the page draws: the topology graph of `Runner.info()` (src/graph), each node and edge with
 * its label lines, each edge with the capture endpoints of its NIC ends, and the info itself for
 * the side panel. Pure: info in, JSON-able data out.
 */
import { edgeLines, nodeLines, topologyGraph, type GraphEdge, type GraphEnd, type GraphNode } from '../graph/index.js';
import type { TopologyInfo } from '../runner/runner.js';

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
  /**
   * The link's impairment as `graph` labels it (`delay 100ms, loss 20%`; one line per direction
   * when they differ), when it has one.
   */
  impairment?: string;
}

export interface WebView {
  topology: string;
  nodes: ViewNode[];
  edges: ViewEdge[];
  info: TopologyInfo;
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
  // The graph's default link labels are the impairment, as `graph` draws it.
  const g = topologyGraph(info);
  const kinds = new Map(g.nodes.map((n) => [n.id, n.kind]));
  return {
    topology: g.topology,
    nodes: g.nodes.map((n) => ({ ...n, lines: nodeLines(n) })),
    edges: g.edges.map((e, i) => {
      const impairment = e.labels.join('\n');
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
