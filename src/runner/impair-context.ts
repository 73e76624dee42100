/** The impairment modules' view of a run context. */
import type { TopologySpec } from '../model/spec.js';
import { cacheDir, type RunContext } from './context.js';
import { applyImpairments, type ImpairContext } from './impairments.js';

export function impairContext(c: RunContext, spec: TopologySpec): ImpairContext {
  return { spec, paths: c.paths, proc: c.proc, log: c.log, env: c.env, cacheDir: cacheDir(c), signal: c.signal };
}

/** Apply the declared and runtime impairments of `spec`'s links. */
export async function applyImpairmentsOf(c: RunContext, spec: TopologySpec): Promise<void> {
  await applyImpairments(impairContext(c, spec));
}
