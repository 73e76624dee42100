import { FalconError } from '../util/errors.js';

/** One problem with a topology, located by its path (e.g. `nodes.violin.cores`). */
export interface TopologyProblem {
  path: string;
  message: string;
  /** What to do about it, when the message does not already say. */
  fix?: string;
}

/** "<subject> has N problems:" and one line per problem: the shape of every problem-list error. */
export function formatProblems(subject: string, problems: readonly TopologyProblem[], suffix = ''): string {
  return (
    `${subject} ${problems.length === 1 ? 'has 1 problem' : `has ${problems.length} problems`}${suffix}:\n` +
    problems.map((p) => `  - ${p.path}: ${p.message}${p.fix ? `\n    fix: ${p.fix}` : ''}`).join('\n')
  );
}

/** A single topology mistake found as it is declared (e.g. a duplicate name). */
export class TopologyError extends FalconError {
  override name = 'TopologyError';
  constructor(
    readonly path: string,
    message: string,
  ) {
    super('TOPOLOGY_DECLARATION', `${path}: ${message}`);
  }
}

/**
 * Every problem found when a topology is validated, reported at once (the Pulumi
 * `InputPropertiesError` shape): the message lists each with its path.
 */
export class TopologyValidationError extends FalconError {
  override name = 'TopologyValidationError';
  constructor(
    readonly topology: string,
    readonly problems: readonly TopologyProblem[],
  ) {
    super('TOPOLOGY_INVALID', formatProblems(`topology "${topology}"`, problems));
  }
}

/** The saved topology (`.falcon/topology.json`) is missing, unreadable or of another version. */
export class TopologyFileError extends FalconError {
  override name = 'TopologyFileError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('TOPOLOGY_FILE', message, options);
  }
}
