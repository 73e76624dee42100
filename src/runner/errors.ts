/** The runner's own errors: a launch that failed on some nodes, preflight's problems, a falcon dir with no topology. */
import { formatProblems, TopologyFileError, type TopologyProblem } from '../model/errors.js';
import { FalconError } from '../util/errors.js';
import type { FalconPaths } from './paths.js';

/** One node that did not come up, with the end of its logs. */
export interface NodeFailure {
  node: string;
  error: unknown;
  logs: string;
}

/** A failure of one or more nodes at launch (or hyperstart), each named with the end of its logs. */
export class LaunchError extends FalconError {
  override name = 'LaunchError';
  constructor(
    readonly topology: string,
    readonly failures: NodeFailure[],
  ) {
    super(
      'LAUNCH_FAILED',
      `launch of topology "${topology}" failed on ${failures.map((f) => `"${f.node}"`).join(', ')}; ` +
        `run \`destroy\` to remove what was created\n` +
        failures.map((f) => `[${f.node}] ${(f.error as Error)?.message ?? String(f.error)}\n${f.logs}`).join('\n'),
    );
  }
}

/** Everything preflight found wrong; nothing was created. */
export class PreflightError extends FalconError {
  override name = 'PreflightError';
  constructor(
    readonly topology: string,
    readonly problems: readonly TopologyProblem[],
  ) {
    super('PREFLIGHT', formatProblems(`preflight: topology "${topology}"`, problems, '; nothing was created'));
  }
}

export function missingTopologyFile(paths: FalconPaths): TopologyFileError {
  return new TopologyFileError(
    `${paths.topologyFile} does not exist: no topology has been launched with falcon dir ${paths.dir}; launch one first, or pass the right --falcon-dir`,
  );
}
