/**
 * The topology graph: `$topo graph [--format mermaid|dot|svg|json]`, and from the API
 * `renderGraph(await runner.info(), format)` (this layer sits above the runner: it draws what
 * `info()` returns).
 * Rendering is pure (TopologyInfo in, text out) except SVG, which runs Graphviz's `dot`.
 */
import { createProcessRunner, type ProcessRunner } from '../host/process.js';
import { FalconError } from '../util/errors.js';
import type { TopologyInfo } from '../runner/runner.js';
import { topologyGraph, type GraphOptions } from './model.js';
import { GRAPH_FORMATS, dotToSvg, toDot, toJson, toMermaid, type GraphFormat } from './render.js';

export { graphId, topologyGraph } from './model.js';
export type { GraphDevice, GraphDisk, GraphEdge, GraphEnd, GraphNode, GraphOptions, TopologyGraph } from './model.js';
export { GRAPH_FORMATS, dotToSvg, edgeLines, nodeLines, toDot, toJson, toMermaid } from './render.js';
export type { GraphFormat } from './render.js';

export interface RenderGraphOptions extends GraphOptions {
  /** Runs `dot` for SVG (default: a plain process runner). */
  proc?: ProcessRunner;
  /** For `dot -Tsvg`; default 30 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Check a format name (a CLI option value): one of mermaid, dot, svg, json. */
export function parseGraphFormat(v: string): GraphFormat {
  if (!(GRAPH_FORMATS as readonly string[]).includes(v)) {
    throw new FalconError('INVALID_ARGUMENT', `graph --format takes ${GRAPH_FORMATS.join(', ')}, not "${v}"`);
  }
  return v as GraphFormat;
}

/** The graph of `info` as text in `format`. */
export async function renderGraph(info: TopologyInfo, format: GraphFormat, o: RenderGraphOptions = {}): Promise<string> {
  const g = topologyGraph(info, o);
  if (format === 'mermaid') return toMermaid(g);
  if (format === 'json') return toJson(g);
  if (format === 'dot') return toDot(g);
  return dotToSvg(toDot(g), o.proc ?? createProcessRunner(), { timeoutMs: o.timeoutMs, signal: o.signal });
}
