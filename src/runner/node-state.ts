/** A node as launch left it: its declaration and what state.json recorded. */
import type { NodeSpec, TopologySpec } from '../model/spec.js';
import { FalconError } from '../util/errors.js';
import type { RunContext } from './context.js';
import { readState, type NodeState, type RunState } from './state.js';

export interface LaunchedNode {
  spec: NodeSpec;
  ns: NodeState;
  state: RunState;
}

/**
 * The node `name` of `spec` with its recorded state.
 * @throws FalconError NODE_NOT_FOUND for a node the topology lacks, NODE_NOT_LAUNCHED before launch.
 */
export async function launchedNode(c: RunContext, spec: TopologySpec, name: string): Promise<LaunchedNode> {
  const n = spec.nodes.find((x) => x.name === name);
  if (!n) throw new FalconError('NODE_NOT_FOUND', `topology "${spec.name}" has no node "${name}"; its nodes are: ${spec.nodes.map((x) => x.name).join(', ') || '(none)'}`);
  const state = await readState(c.paths);
  const ns = state?.nodes[name];
  if (!state || !ns?.qemuArgs) throw new FalconError('NODE_NOT_LAUNCHED', `node "${name}" has not been launched (no state in ${c.paths.dir}); run launch first`);
  return { spec: n, ns, state };
}
