/**
 * Link impairment as pure data: what a direction of a node-to-node link does to its frames
 * (netem's delay, jitter, loss, duplication, corruption, reordering and rate), its limits, the
 * CLI's value syntax, and which direction of which link a user's target names.
 *
 * A link has two directions: `ab` carries the frames its `a` node sends, `ba` those of `b`.
 */
import { FalconError } from '../util/errors.js';
import type { TopologyProblem } from './errors.js';
import { altName } from './naming.js';
import { endpoints, type DirectedImpairment, type TopologySpec } from './spec.js';

/** What one direction of a link does to the frames crossing it. Every field is optional; absent means none. */
export interface Impairment {
  /** Added one-way delay in milliseconds (fractions allowed), 0..60000. */
  delayMs?: number;
  /** Uniform variation of the delay, +/- this many milliseconds (needs `delayMs`, at most `delayMs`). May reorder frames, as netem's does. */
  jitterMs?: number;
  /** Share of frames dropped, in percent (0..100). */
  lossPct?: number;
  /** Share of frames sent twice, in percent. */
  duplicatePct?: number;
  /** Share of frames with one random bit flipped, in percent. */
  corruptPct?: number;
  /** Share of frames sent at once, ahead of the delayed ones, in percent (needs `delayMs`). */
  reorderPct?: number;
  /** Bandwidth in Mbit/s (fractions allowed: 0.5 is 500 kbit/s), 0.008..100000. */
  rateMbit?: number;
}

/** `Topology.link`'s `impair`: fields for both directions, and `aToB`/`bToA` for one (they win over the shared ones). */
export interface LinkImpairment extends Impairment {
  /** Only the frames that the link's first node (`a`) sends. */
  aToB?: Impairment;
  /** Only the frames that the link's second node (`b`) sends. */
  bToA?: Impairment;
}

export const IMPAIRMENT_FIELDS = ['delayMs', 'jitterMs', 'lossPct', 'duplicatePct', 'corruptPct', 'reorderPct', 'rateMbit'] as const;
export type ImpairmentField = (typeof IMPAIRMENT_FIELDS)[number];

export type { DirectedImpairment } from './spec.js';
export type Direction = 'ab' | 'ba';

export const MAX_DELAY_MS = 60_000;
export const MIN_RATE_MBIT = 0.008;
export const MAX_RATE_MBIT = 100_000;

const RANGES: Record<ImpairmentField, { min: number; max: number; unit: string }> = {
  delayMs: { min: 0, max: MAX_DELAY_MS, unit: 'ms' },
  jitterMs: { min: 0, max: MAX_DELAY_MS, unit: 'ms' },
  lossPct: { min: 0, max: 100, unit: '%' },
  duplicatePct: { min: 0, max: 100, unit: '%' },
  corruptPct: { min: 0, max: 100, unit: '%' },
  reorderPct: { min: 0, max: 100, unit: '%' },
  rateMbit: { min: MIN_RATE_MBIT, max: MAX_RATE_MBIT, unit: 'Mbit/s' },
};

/**
 * Every problem with impairment values, each with the path of the field. `kind`: `one` is one
 * direction's complete values; `link` a link's declared form (with `aToB`/`bToA`); `part` a
 * part merged later (its cross-field checks wait for the merge).
 */
export function impairmentProblems(imp: unknown, at: string, kind: 'one' | 'link' | 'part' = 'one'): TopologyProblem[] {
  const out: TopologyProblem[] = [];
  if (typeof imp !== 'object' || imp === null || Array.isArray(imp)) return [{ path: at, message: 'is not an object of impairment fields', fix: `give { ${IMPAIRMENT_FIELDS.join(', ')} }` }];
  const rec = imp as Record<string, unknown>;
  for (const key of Object.keys(rec)) {
    if (!(IMPAIRMENT_FIELDS as readonly string[]).includes(key) && !(kind === 'link' && (key === 'aToB' || key === 'bToA')))
      out.push({ path: `${at}.${key}`, message: `is no impairment field`, fix: `use one of ${IMPAIRMENT_FIELDS.join(', ')}` });
  }
  for (const f of IMPAIRMENT_FIELDS) {
    const v = rec[f];
    if (v === undefined) continue;
    const r = RANGES[f];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < r.min || v > r.max)
      out.push({ path: `${at}.${f}`, message: `is ${JSON.stringify(v)}; it must be a number from ${r.min} to ${r.max} (${r.unit})`, fix: `give ${f} a value from ${r.min} to ${r.max}` });
  }
  if (kind === 'one') out.push(...crossProblems(rec, at));
  return out;
}

/** Fields that only make sense together (checked on one direction's merged values). */
function crossProblems(rec: Record<string, unknown>, at: string): TopologyProblem[] {
  const out: TopologyProblem[] = [];
  const num = (f: ImpairmentField) => (typeof rec[f] === 'number' && Number.isFinite(rec[f]) ? (rec[f] as number) : undefined);
  const delay = num('delayMs') ?? 0;
  const jitter = num('jitterMs');
  if (jitter !== undefined && jitter > 0 && jitter > delay)
    out.push({ path: `${at}.jitterMs`, message: `is ${jitter} ms, more than the delay (${delay} ms): a frame cannot leave before it arrived`, fix: `set delayMs to at least ${jitter}, or lower jitterMs` });
  const reorder = num('reorderPct');
  if (reorder !== undefined && reorder > 0 && delay === 0)
    out.push({ path: `${at}.reorderPct`, message: 'reorders frames by sending some without the delay, but no delay is set', fix: 'set delayMs too (reordering needs a delay to jump)' });
  return out;
}

/** The impairment with its zero and absent fields left out (`{}` passes frames unchanged). */
export function compactImpairment(imp: Impairment): Impairment {
  const out: Impairment = {};
  for (const f of IMPAIRMENT_FIELDS) if (imp[f] !== undefined && imp[f] !== 0) out[f] = imp[f];
  return out;
}

export function isNoImpairment(imp: Impairment | undefined): boolean {
  return !imp || Object.keys(compactImpairment(imp)).length === 0;
}

/** The declared form (`link(a, b, { impair })`) as saved: per direction, empty directions left out. */
export function directedImpairment(li: LinkImpairment): DirectedImpairment {
  const shared: Impairment = {};
  for (const f of IMPAIRMENT_FIELDS) if (li[f] !== undefined) shared[f] = li[f];
  const ab = compactImpairment({ ...shared, ...li.aToB });
  const ba = compactImpairment({ ...shared, ...li.bToA });
  const out: DirectedImpairment = {};
  if (!isNoImpairment(ab)) out.ab = ab;
  if (!isNoImpairment(ba)) out.ba = ba;
  return out;
}

/** Problems of a `link(..., { impair })` value, with paths under `at` (e.g. `links[0].impair`). */
export function linkImpairmentProblems(li: unknown, at: string): TopologyProblem[] {
  const out = impairmentProblems(li, at, 'link');
  if (typeof li === 'object' && li !== null && !Array.isArray(li)) {
    const rec = li as Record<string, unknown>;
    for (const k of ['aToB', 'bToA'] as const) if (rec[k] !== undefined) out.push(...impairmentProblems(rec[k], `${at}.${k}`, 'part'));
    // Checked on each direction's merged values: the jitter may be shared and the delay in aToB.
    if (out.length === 0) {
      const d = directedImpairment(li as LinkImpairment);
      for (const dir of ['ab', 'ba'] as const) if (d[dir]) out.push(...crossProblems(d[dir] as Record<string, unknown>, `${at}.${dir === 'ab' ? 'aToB' : 'bToA'}`));
    }
  }
  return out;
}

/** Short human text: `delay 100ms ±5ms, loss 20%, rate 10Mbit/s`; `none` when nothing is set. */
export function formatImpairment(imp: Impairment | undefined): string {
  if (isNoImpairment(imp)) return 'none';
  const i = compactImpairment(imp!);
  const parts: string[] = [];
  if (i.delayMs !== undefined) parts.push(`delay ${fmt(i.delayMs)}ms${i.jitterMs ? ` ±${fmt(i.jitterMs)}ms` : ''}`);
  else if (i.jitterMs) parts.push(`jitter ${fmt(i.jitterMs)}ms`);
  if (i.lossPct !== undefined) parts.push(`loss ${fmt(i.lossPct)}%`);
  if (i.duplicatePct !== undefined) parts.push(`duplicate ${fmt(i.duplicatePct)}%`);
  if (i.corruptPct !== undefined) parts.push(`corrupt ${fmt(i.corruptPct)}%`);
  if (i.reorderPct !== undefined) parts.push(`reorder ${fmt(i.reorderPct)}%`);
  if (i.rateMbit !== undefined) parts.push(`rate ${i.rateMbit >= 1 ? `${fmt(i.rateMbit)}Mbit/s` : `${fmt(i.rateMbit * 1000)}kbit/s`}`);
  return parts.join(', ');
}

function fmt(n: number): string {
  return String(Math.round(n * 1000) / 1000);
}

// ---- CLI value syntax ----

function badValue(option: string, text: string, expected: string): FalconError {
  return new FalconError('INVALID_ARGUMENT', `${option} ${JSON.stringify(text)} is not valid: give ${expected}`);
}

/** `20ms`, `1.5s`, `500us`, or a bare number of milliseconds. */
export function parseDuration(text: string, option = '--delay'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(us|µs|ms|s)?\s*$/i.exec(text);
  if (!m) throw badValue(option, text, 'a duration such as 20ms, 1.5s or 500us');
  const n = Number(m[1]);
  const unit = (m[2] ?? 'ms').toLowerCase();
  return unit === 's' ? n * 1000 : unit === 'ms' ? n : n / 1000;
}

/** `1%`, `0.5%` or a bare number of percent. */
export function parsePercent(text: string, option = '--loss'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*%?\s*$/.exec(text);
  if (!m) throw badValue(option, text, 'a percentage such as 1% or 0.5');
  return Number(m[1]);
}

/** `10mbit`, `500kbit`, `1gbit` (also `Mbit/s`, `mbps`), or a bare number of Mbit/s; returns Mbit/s. */
export function parseRate(text: string, option = '--rate'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:(k|m|g)(?:bit|bps)?(?:\/s)?)?\s*$/i.exec(text);
  if (!m) throw badValue(option, text, 'a rate such as 10mbit, 500kbit or 1gbit');
  const n = Number(m[1]);
  const unit = (m[2] ?? 'm').toLowerCase();
  return unit === 'k' ? n / 1000 : unit === 'g' ? n * 1000 : n;
}

// ---- What a target names ----

/** The node-to-node link and the directions a user's target names. */
export interface ImpairTarget {
  /** Index in `spec.links`. */
  link: number;
  directions: Direction[];
  /** `violin:0--piano:0`, the link's name in messages and `--show`. */
  label: string;
}

/** A link that can be impaired, with its two ends: `a` and `b` are `node:index`. */
export interface ImpairableLink {
  /** Index in `spec.links`. */
  link: number;
  a: string;
  b: string;
  aNode: string;
  aIndex: number;
  bNode: string;
  bIndex: number;
}

/** Links that can be impaired (node to node, on taps), with their endpoint names. */
export function impairableLinks(spec: TopologySpec): ImpairableLink[] {
  const eps = endpoints(spec);
  const out: ImpairableLink[] = [];
  spec.links.forEach((l, i) => {
    if (l.kind !== 'link') return;
    const a = eps.find((e) => e.link === i && e.side === 'a')!;
    const b = eps.find((e) => e.link === i && e.side === 'b')!;
    out.push({ link: i, a: `${a.node}:${a.index}`, b: `${b.node}:${b.index}`, aNode: a.node, aIndex: a.index, bNode: b.node, bIndex: b.index });
  });
  return out;
}

export function linkLabel(l: { a: string; b: string }): string {
  return `${l.a}--${l.b}`;
}

/**
 * Resolve a target: a link as `nodeA--nodeB` (when one link joins them), `nodeA:i--nodeB:j`, or
 * `links[N]`, names both directions; an endpoint `node:index` (or its altname, as `info`
 * shows it) names the frames that endpoint sends.
 * @throws FalconError IMPAIR_TARGET listing the links that exist when nothing matches.
 */
export function resolveImpairTarget(spec: TopologySpec, text: string): ImpairTarget {
  const links = impairableLinks(spec);
  const listing = links.map(linkLabel).join(', ') || '(none: the topology has no node-to-node links)';
  const fail = (why: string) => new FalconError('IMPAIR_TARGET', `topology "${spec.name}": ${why}; the links that can be impaired are: ${listing}`);
  const both = (l: (typeof links)[number]): ImpairTarget => ({ link: l.link, directions: ['ab', 'ba'], label: linkLabel(l) });
  const idx = /^links\[(\d+)\]$/.exec(text);
  if (idx) {
    const l = links.find((x) => x.link === Number(idx[1]));
    if (!l) throw fail(`links[${idx[1]}] is no node-to-node link`);
    return both(l);
  }
  const sep = text.indexOf('--');
  if (sep > 0) {
    const [x, y] = [text.slice(0, sep), text.slice(sep + 2)];
    const match = (side: string, end: string, node: string) => (side.includes(':') ? side === end : side === node);
    const hits = links.filter((l) => (match(x, l.a, l.aNode) && match(y, l.b, l.bNode)) || (match(x, l.b, l.bNode) && match(y, l.a, l.aNode)));
    if (hits.length === 1) return both(hits[0]!);
    if (hits.length > 1) throw fail(`"${text}" matches ${hits.length} links (${hits.map(linkLabel).join(', ')}); name one by its endpoints, node:index--node:index`);
    throw fail(`no link joins ${x} and ${y}`);
  }
  const byAltname = links.flatMap((l) => [
    [altName(spec.name, l.aNode, l.aIndex), l.a],
    [altName(spec.name, l.bNode, l.bIndex), l.b],
  ]);
  const ep = byAltname.find(([alt]) => alt === text)?.[1] ?? text;
  for (const l of links) {
    if (l.a === ep) return { link: l.link, directions: ['ab'], label: `${l.a} -> ${l.b}` };
    if (l.b === ep) return { link: l.link, directions: ['ba'], label: `${l.b} -> ${l.a}` };
  }
  if (/^[^:]+:\d+$/.test(ep)) {
    const e = endpoints(spec).find((x) => `${x.node}:${x.index}` === ep);
    if (e) throw fail(`${ep} is on a ${spec.links[e.link]!.kind === 'ext' ? 'external link' : `${spec.links[e.link]!.kind} link`}, which cannot be impaired (only links between two nodes can)`);
    throw fail(`there is no endpoint ${ep}`);
  }
  throw fail(`"${text}" names no link or endpoint (write nodeA--nodeB, node:index--node:index, links[N], or node:index for one direction)`);
}

/**
 * The impairment in force on every impairable link: runtime settings (`overrides`, by link
 * label, replacing the declared one for that link) over what the topology declares.
 */
export function effectiveImpairments(spec: TopologySpec, overrides: Readonly<Record<string, DirectedImpairment>> = {}): Map<number, DirectedImpairment> {
  const out = new Map<number, DirectedImpairment>();
  for (const l of impairableLinks(spec)) {
    const link = spec.links[l.link]!;
    const declared = link.kind === 'link' ? link.impair : undefined;
    const o = overrides[linkLabel(l)];
    const d = o ?? declared;
    if (d && (d.ab || d.ba)) out.set(l.link, d);
  }
  return out;
}
