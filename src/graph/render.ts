/**
 * Text renderings of a topology graph: Mermaid (renders on GitHub as is), Graphviz DOT, JSON,
 * and SVG through Graphviz's `dot`.
 */
import type { ProcessRunner } from '../host/process.js';
import { HostCommandError } from '../host/process.js';
import { FalconError } from '../util/errors.js';
import type { GraphEdge, GraphEnd, GraphNode, TopologyGraph } from './model.js';

export type GraphFormat = 'mermaid' | 'dot' | 'svg' | 'json';
export const GRAPH_FORMATS: readonly GraphFormat[] = ['mermaid', 'dot', 'svg', 'json'];

/**
 * The lines of a node's label: name, then what it is, its extra disks and raw devices (one line
 * each), then its status.
 *
 * ```ts
 * nodeLines(vm); // ['sled', 'debian-12 · 2 cores · 1024 MiB', 'disk0: NVMe 10 GiB, serial sled-disk0', 'device pvpanic', 'running']
 * ```
 */
export function nodeLines(n: GraphNode): string[] {
  if (n.kind === 'host') return [`host ${n.name}`];
  if (n.kind === 'switch') return [n.name, `${n.program} switch · radix ${n.radix}`, n.status];
  const disks = (n.disks ?? []).map((d) =>
    d.bus === 'none' ? `${d.name}: ${d.sizeGiB} GiB, attached by a device` : `${d.name}: ${d.bus === 'nvme' ? 'NVMe' : 'virtio'} ${d.sizeGiB} GiB, serial ${d.serial}`,
  );
  const devices = (n.devices ?? []).map((d) => {
    const props = Object.entries(d.props).map(([k, v]) => `${k}=${String(v)}`);
    return `device ${d.driver}${props.length ? ` (${props.join(', ')})` : ''}`;
  });
  return [n.name, `${n.image} · ${n.cores} core${n.cores === 1 ? '' : 's'} · ${n.memoryMiB} MiB`, ...disks, ...devices, n.status];
}

/** `h1 NIC 0: tap (altname)`, `h1 NIC 2`, `s1 port 1`. */
function endText(e: GraphEnd): string {
  if (e.port !== undefined) return `${e.name} port ${e.port}`;
  if (e.nic === undefined) return e.name;
  return `${e.name} NIC ${e.nic}${e.ifname ? `: ${e.ifname} (${e.altname})` : ''}`;
}

/** The lines of an edge's label: its two ends (host interfaces, ports, NICs), then extra labels. */
export function edgeLines(e: GraphEdge): string[] {
  let lines: string[];
  if (e.kind === 'cpu') lines = [`${e.from.name} port 0 (CPU)`];
  else if (e.kind === 'ext') lines = [endText(e.from), `macvtap ${e.macvtapMode} on ${e.to.name}`];
  else if (e.kind === 'sidecar' && e.from.port === 1 && e.radix) {
    const nic = e.to.nic ?? 0;
    lines = [`${e.from.name} ports 1-${e.radix}`, `${e.to.name} NICs ${nic}-${nic + e.radix - 1}`, `sidemux radix ${e.radix}`];
  } else lines = [endText(e.from), endText(e.to)];
  return [...lines, ...e.labels];
}

const STATUS_CLASS: Record<GraphNode['status'], string> = { running: 'running', stopped: 'stopped', 'not launched': 'notlaunched', host: 'host' };

/** Mermaid text inside double quotes: its entity codes for what would end or break the string. */
function mq(s: string): string {
  return s.replace(/"/g, '#quot;').replace(/</g, '#lt;').replace(/>/g, '#gt;');
}

/** Mermaid `flowchart LR` text; nodes styled by status, switches as hexagons, host interfaces as trapezoids. */
export function toMermaid(g: TopologyGraph): string {
  const out = ['flowchart LR'];
  for (const n of g.nodes) {
    const label = `"${nodeLines(n).map(mq).join('<br>')}"`;
    out.push(`  ${n.id}${n.kind === 'switch' ? `{{${label}}}` : n.kind === 'host' ? `[/${label}/]` : `[${label}]`}`);
  }
  for (const e of g.edges) {
    const lines = edgeLines(e);
    const arrow = e.kind === 'cpu' ? '-.-' : '---';
    out.push(`  ${e.from.id} ${arrow}${lines.length ? `|"${lines.map(mq).join('<br>')}"|` : ''} ${e.to.id}`);
  }
  out.push(
    '  classDef running fill:#d9f2d9,stroke:#2e7d32',
    '  classDef stopped fill:#eeeeee,stroke:#757575',
    '  classDef notlaunched fill:#ffffff,stroke:#9e9e9e,stroke-dasharray:4 4',
    '  classDef host fill:#e3ecf7,stroke:#1565c0',
  );
  for (const cls of Object.values(STATUS_CLASS)) {
    const ids = g.nodes.filter((n) => STATUS_CLASS[n.status] === cls).map((n) => n.id);
    if (ids.length) out.push(`  class ${ids.join(',')} ${cls}`);
  }
  return `${out.join('\n')}\n`;
}

/** A DOT double-quoted string. */
function dq(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

const DOT_FILL: Record<GraphNode['status'], string> = { running: '#d9f2d9', stopped: '#eeeeee', 'not launched': '#ffffff', host: '#e3ecf7' };

/** Graphviz DOT: an undirected graph, left to right, nodes filled by status. */
export function toDot(g: TopologyGraph): string {
  const out = [
    `graph ${dq(g.topology)} {`,
    '  rankdir=LR;',
    '  node [fontname="Helvetica", fontsize=10, style="filled"];',
    '  edge [fontname="Helvetica", fontsize=9];',
  ];
  for (const n of g.nodes) {
    const shape = n.kind === 'switch' ? 'hexagon' : n.kind === 'host' ? 'cds' : 'box';
    const style = n.status === 'not launched' ? 'filled,dashed' : n.kind === 'node' ? 'filled,rounded' : 'filled';
    out.push(`  ${dq(n.id)} [shape=${shape}, style=${dq(style)}, fillcolor=${dq(DOT_FILL[n.status])}, label=${dq(nodeLines(n).join('\n'))}];`);
  }
  for (const e of g.edges) {
    const attrs = [`label=${dq(edgeLines(e).join('\n'))}`];
    if (e.kind === 'cpu') attrs.push('style=dashed');
    out.push(`  ${dq(e.from.id)} -- ${dq(e.to.id)} [${attrs.join(', ')}];`);
  }
  out.push('}');
  return `${out.join('\n')}\n`;
}

/** The graph as JSON (the `TopologyGraph` shape), two-space indented. */
export function toJson(g: TopologyGraph): string {
  return `${JSON.stringify(g, null, 2)}\n`;
}

/**
 * SVG from DOT text through Graphviz's `dot -Tsvg` (stdin to stdout). Throws a `GRAPHVIZ_MISSING`
 * FalconError when `dot` is not installed.
 */
export async function dotToSvg(dot: string, proc: ProcessRunner, o: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<string> {
  try {
    const r = await proc.run('dot', ['-Tsvg'], { input: dot, timeoutMs: o.timeoutMs ?? 30_000, signal: o.signal });
    return r.stdout;
  } catch (e) {
    if (e instanceof HostCommandError && (e.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
      throw new FalconError('GRAPHVIZ_MISSING', "topology graph: --format svg needs Graphviz's dot, which is not installed; run falcon setup (it installs graphviz), or use --format dot or mermaid", { cause: e });
    }
    throw e;
  }
}
