/** `.falcon/topology.json`: the topology as preflight saved it, which later commands work from. */
import { promises as fs } from 'node:fs';
import { parseTopologyFile } from '../model/topology.js';
import type { TopologySpec } from '../model/spec.js';
import { writeFileAtomic } from '../util/fs.js';
import { missingTopologyFile } from './errors.js';
import type { FalconPaths } from './paths.js';

/** The saved topology, or undefined when there is none; a damaged file throws. */
export async function readSavedSpec(paths: FalconPaths): Promise<TopologySpec | undefined> {
  let text: string;
  try {
    text = await fs.readFile(paths.topologyFile, 'utf8');
  } catch {
    return undefined;
  }
  return parseTopologyFile(text, paths.topologyFile);
}

/** The saved topology; throws naming the falcon dir when there is none. */
export async function requireSavedSpec(paths: FalconPaths): Promise<TopologySpec> {
  const spec = await readSavedSpec(paths);
  if (!spec) throw missingTopologyFile(paths);
  return spec;
}

export async function saveSpec(paths: FalconPaths, spec: TopologySpec): Promise<void> {
  await writeFileAtomic(paths.topologyFile, JSON.stringify(spec, null, 2) + '\n');
}
