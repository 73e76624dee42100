/**
 * Link impairment on a topology: what the topology declares, what `impair` changed at runtime
 * (`.falcon/impair.json`, kept across hyperstop/hyperstart, dropped by destroy), applied
 * through netem or the userspace helper, and reported by `impair --show` and `info`.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import {
  compactImpairment,
  effectiveImpairments,
  isNoImpairment,
  formatImpairment,
  impairableLinks,
  impairmentProblems,
  linkLabel,
  resolveImpairTarget,
  type DirectedImpairment,
  type Direction,
  type ImpairableLink,
  type Impairment,
} from '../model/impair.js';
import { impairTapName, tapName } from '../model/naming.js';
import { linkImpairSchema, type TopologySpec } from '../model/spec.js';
import type { TopologyProblem } from '../model/errors.js';
import { TopologyValidationError } from '../model/errors.js';
import {
  helperWireCommands,
  netemCommands,
  plainWireCommands,
  queryNetemRoots,
  runTc,
  type HelperDirectionStats,
  type ImpairPath,
  type LinkTaps,
} from '../host/impair.js';
import { detectKernelFeatures, netemReason } from '../host/net.js';
import { queryLinks } from '../host/net-ip.js';
import type { ProcessRunner } from '../host/process.js';
import { terminate } from '../host/procs.js';
import { FalconError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import type { FalconPaths } from './paths.js';
import { ensureHelper, helperFiles, helperPids, impairDir, stopStrayHelpers } from './impair-helpers.js';
import type { RunContext } from './context.js';


// ---- runtime settings ----

const overridesSchema = z.object({ version: z.literal(1), links: z.record(linkImpairSchema) }).strict();

function overridesFile(paths: FalconPaths): string {
  return path.join(paths.dir, 'impair.json');
}

/** Runtime settings by link label; `{}` when none were made. */
export async function readOverrides(paths: FalconPaths): Promise<Record<string, DirectedImpairment>> {
  let text: string;
  try {
    text = await fs.readFile(overridesFile(paths), 'utf8');
  } catch {
    return {};
  }
  const parsed = overridesSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new FalconError('STATE_FILE', `${overridesFile(paths)} is damaged (${parsed.error.issues[0]?.message}); delete it to go back to the declared impairment`);
  return parsed.data.links;
}

/** The impairment in force per link index: runtime settings over the declared ones. */
export async function currentImpairments(spec: TopologySpec, paths: FalconPaths): Promise<Map<number, DirectedImpairment>> {
  return effectiveImpairments(spec, await readOverrides(paths));
}

// ---- the path ----

/** Which way this host impairs, and why: FALCON_IMPAIR=netem|userspace|auto (default auto). */
export async function decideImpairPath(proc: ProcessRunner, env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<{ path: ImpairPath; reason: string }> {
  const setting = (env.FALCON_IMPAIR ?? 'auto').trim() || 'auto';
  if (!['auto', 'netem', 'userspace'].includes(setting))
    throw new FalconError('INVALID_ARGUMENT', `FALCON_IMPAIR=${JSON.stringify(setting)} is not valid: give auto, netem or userspace`);
  if (setting === 'userspace') return { path: 'userspace', reason: 'FALCON_IMPAIR=userspace' };
  const f = await detectKernelFeatures(proc, signal);
  if (setting === 'netem' && !f.netem) throw new FalconError('IMPAIR_FAILED', `FALCON_IMPAIR=netem, but ${netemReason(f)}; unset FALCON_IMPAIR to use the userspace helper`);
  return { path: f.netem ? 'netem' : 'userspace', reason: netemReason(f) };
}

function linkTaps(spec: TopologySpec, l: ImpairableLink): LinkTaps {
  return { a: tapName(spec.name, l.aNode, l.aIndex), b: tapName(spec.name, l.bNode, l.bIndex) };
}

/**
 * Bring the host in line with the impairment in force, for `only` (link indexes) or every
 * link: netem qdiscs set or removed, helpers started, reloaded or stopped, taps rewired. Needs
 * the topology's taps to exist (after createNetwork). Idempotent.
 */
export async function applyImpairments(c: RunContext, spec: TopologySpec, only?: readonly number[]): Promise<void> {
  const want = await currentImpairments(spec, c.paths);
  const links = impairableLinks(spec).filter((l) => !only || only.includes(l.link));
  // A relaunch after links were removed: their helpers would otherwise run until destroy.
  if (!only) await stopStrayHelpers(c, new Set(impairableLinks(spec).map((l) => helperFiles(c.paths, linkLabel(l)).config)));
  if (!links.length) return;
  const files = new Map(links.map((l) => [l.link, helperFiles(c.paths, linkLabel(l))]));
  // No helper ever ran here (no .falcon/impair): no need to look for one in /proc.
  const everRan = await fs.stat(impairDir(c.paths)).then(() => true, () => false);
  const running = everRan ? await helperPids([...files.values()].map((f) => f.config)) : new Map<string, number[]>();
  // Nothing impaired and nothing left to undo: a plain topology pays (almost) nothing.
  if (!links.some((l) => want.has(l.link)) && ![...running.values()].some((p) => p.length) && !(await anyNetem(c, spec, links))) return;
  const { path: way, reason } = await decideImpairPath(c.proc, c.env, c.signal);
  if (way === 'netem') {
    const current = await queryNetemRoots(c.proc, c.signal);
    const cmds = links.flatMap((l) => netemCommands(linkTaps(spec, l), want.get(l.link), current));
    await runTc(cmds, c.proc, c.signal).catch((e) => {
      throw new FalconError('IMPAIR_FAILED', `topology "${spec.name}": tc could not set netem: ${(e as Error).message}`, { cause: e });
    });
  }
  for (const l of links) {
    const taps = linkTaps(spec, l);
    const f = files.get(l.link)!;
    const pids = running.get(f.config) ?? [];
    const w = way === 'userspace' ? want.get(l.link) : undefined;
    if (w) {
      await ensureHelper(c, taps, f, w, pids);
      await runTc(helperWireCommands(taps), c.proc, c.signal);
      c.log.log({ kind: 'step', level: 'debug', msg: `impairment: ${linkLabel(l)} through falcon-impair (${reason})` });
    } else if (pids.length) {
      await runTc(plainWireCommands(taps), c.proc, c.signal);
      await Promise.all(pids.map((p) => terminate(p, 2000)));
      c.log.log({ kind: 'step', level: 'debug', msg: `impairment: ${linkLabel(l)} wired straight again; its helper stopped` });
    }
  }
}

/** Whether any of `links`' taps has a netem root (left by an earlier setting). */
async function anyNetem(c: RunContext, spec: TopologySpec, links: ImpairableLink[]): Promise<boolean> {
  // The kernel probe ran at preflight (cached): without netem there is nothing to look for.
  if (!(await detectKernelFeatures(c.proc, c.signal)).netem) return false;
  const roots = await queryNetemRoots(c.proc, c.signal).catch(() => new Set<string>());
  return links.some((l) => {
    const t = linkTaps(spec, l);
    return roots.has(t.a) || roots.has(t.b);
  });
}

// ---- changing and showing ----

/**
 * Set the impairment of what `target` names (both directions of a link, or the direction an
 * endpoint sends), replacing what was there; `null` clears it. Saved at once; applied at once
 * when the topology's network exists, else at its next launch or hyperstart.
 */
export async function setImpairment(c: RunContext, spec: TopologySpec, target: string, imp: Impairment | null): Promise<ImpairStatus> {
  const saved = await saveImpairment(c, spec, target, imp);
  const link = impairableLinks(spec).find((l) => l.link === saved.link)!;
  if (await tapsExist(c, spec, link)) await applyImpairments(c, spec, [saved.link]);
  c.log.log({ kind: 'step', msg: saved.message });
  return (await impairStatus(c, spec, [saved.link]))[0]!;
}

/**
 * Validate and save (in `.falcon/impair.json`) the impairment of what `target` names; applying
 * it is the backend's. Returns the link's index and what to tell the user.
 */
export async function saveImpairment(c: RunContext, spec: TopologySpec, target: string, imp: Impairment | null): Promise<{ link: number; message: string }> {
  const t = resolveImpairTarget(spec, target);
  if (imp) {
    const problems: TopologyProblem[] = impairmentProblems(imp, target);
    if (problems.length) throw new TopologyValidationError(spec.name, problems);
  }
  const overrides = await readOverrides(c.paths);
  const link = impairableLinks(spec).find((l) => l.link === t.link)!;
  const label = linkLabel(link);
  const now: DirectedImpairment = { ...(effectiveImpairments(spec, overrides).get(t.link) ?? {}) };
  // All-zero values are no impairment: that direction is cleared (and needs no helper).
  const set = imp && !isNoImpairment(imp) ? compactImpairment(imp) : undefined;
  for (const d of t.directions) {
    if (set) now[d] = set;
    else delete now[d];
  }
  overrides[label] = now;
  await fs.mkdir(c.paths.dir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(overridesFile(c.paths), JSON.stringify({ version: 1, links: overrides }, null, 2) + '\n');
  const what = t.directions.length === 2 ? label : t.label;
  return { link: t.link, message: `impairment of ${what}: ${set ? formatImpairment(set) : 'cleared'}` };
}

async function tapsExist(c: RunContext, spec: TopologySpec, l: ImpairableLink): Promise<boolean> {
  const t = linkTaps(spec, l);
  const names = new Set((await queryLinks({ runner: c.proc, signal: c.signal })).map((x) => x.ifname));
  return names.has(t.a) && names.has(t.b);
}

/** One direction of a link as `impair --show` reports it. */
export interface ImpairDirectionStatus {
  /** `violin:0 -> piano:0`: the frames the first endpoint sends. */
  direction: string;
  impairment: Impairment | null;
  /** Text form: `delay 100ms, loss 20%` or `none`. */
  text: string;
  /** The helper's counters for this direction (userspace path, while it runs). */
  stats?: HelperDirectionStats;
}

/** A link's impairment as `impair --show` and `impairments()` report it. */
export interface ImpairStatus {
  /** `violin:0--piano:0` */
  link: string;
  /** Index in the topology's links. */
  index: number;
  /** Where the setting comes from: the topology's declaration, a runtime `impair`, or nothing. */
  source: 'declared' | 'runtime' | 'none';
  /** How it is applied on this host (absent when nothing is impaired). */
  path?: ImpairPath;
  /** Why that path. */
  reason?: string;
  /** The helper's pid when it runs (userspace path). */
  helperPid?: number;
  /** The helper's kernel taps, for tcpdump. */
  helperTaps?: { ab: string; ba: string };
  directions: ImpairDirectionStatus[];
}

/** What applies a link's impairment now, for {@link linkImpairStatus}. */
export interface ImpairRuntime {
  path?: ImpairPath;
  reason?: string;
  helperPid?: number;
  helperTaps?: { ab: string; ba: string };
  stats?: Partial<Record<Direction, HelperDirectionStats>>;
}

/** One link's status from its settings (`overrides`, `eff`) and what runs it (`rt`). Pure. */
export function linkImpairStatus(spec: TopologySpec, l: ImpairableLink, overrides: Record<string, DirectedImpairment>, eff: Map<number, DirectedImpairment>, rt: ImpairRuntime): ImpairStatus {
  const label = linkLabel(l);
  const w = eff.get(l.link);
  const link = spec.links[l.link]!;
  const stats = rt.stats ?? {};
  return {
    link: label,
    index: l.link,
    source: label in overrides ? (w ? 'runtime' : 'none') : link.kind === 'link' && link.impair && w ? 'declared' : 'none',
    ...(w && (rt.path ?? rt.reason) !== undefined ? { path: rt.path, reason: rt.reason } : {}),
    ...(rt.helperPid ? { helperPid: rt.helperPid, ...(rt.helperTaps ? { helperTaps: rt.helperTaps } : {}) } : {}),
    directions: (['ab', 'ba'] as const).map((d) => ({
      direction: d === 'ab' ? `${l.a} -> ${l.b}` : `${l.b} -> ${l.a}`,
      impairment: w?.[d] ?? null,
      text: formatImpairment(w?.[d]),
      ...(stats[d] ? { stats: stats[d] } : {}),
    })),
  };
}

/** The impairment of every impairable link (or of `only`), with the path and helper counters. */
export async function impairStatus(c: RunContext, spec: TopologySpec, only?: readonly number[]): Promise<ImpairStatus[]> {
  const overrides = await readOverrides(c.paths);
  const eff = effectiveImpairments(spec, overrides);
  const links = impairableLinks(spec).filter((l) => !only || only.includes(l.link));
  const files = new Map(links.map((l) => [l.link, helperFiles(c.paths, linkLabel(l))]));
  const pids = await helperPids([...files.values()].map((f) => f.config));
  const decided = eff.size ? await decideImpairPath(c.proc, c.env, c.signal).catch((e: Error) => ({ path: undefined, reason: e.message })) : undefined;
  const out: ImpairStatus[] = [];
  for (const l of links) {
    const f = files.get(l.link)!;
    const pid = pids.get(f.config)?.[0];
    let stats: Partial<Record<Direction, HelperDirectionStats>> = {};
    if (pid) stats = JSON.parse(await fs.readFile(f.stats, 'utf8').catch(() => '{}')) as typeof stats;
    const taps = linkTaps(spec, l);
    out.push(linkImpairStatus(spec, l, overrides, eff, { ...decided, ...(pid ? { helperPid: pid, helperTaps: { ab: impairTapName(taps.a), ba: impairTapName(taps.b) } } : {}), stats }));
  }
  return out;
}

/** Preflight's report: which path the declared impairment takes on this host, and why. */
export async function impairPreflightNote(c: RunContext, spec: TopologySpec): Promise<string | undefined> {
  const eff = await currentImpairments(spec, c.paths);
  if (!eff.size) return undefined;
  const { path: way, reason } = await decideImpairPath(c.proc, c.env, c.signal);
  const names = impairableLinks(spec)
    .filter((l) => eff.has(l.link))
    .map(linkLabel);
  return `impairment: ${names.join(', ')} use${names.length === 1 ? 's' : ''} the ${way === 'netem' ? 'netem qdisc' : 'userspace helper (falcon-impair)'}: ${reason}`;
}
