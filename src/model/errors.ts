/** One problem with a topology, located by its path (e.g. `nodes.violin.cores`). */
export interface TopologyProblem {
  path: string;
  message: string;
}

/** A single topology mistake found as it is declared (e.g. a duplicate name). */
export class TopologyError extends Error {
  override name = 'TopologyError';
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
  }
}

/**
 * Every problem found when a topology is validated, reported at once (the Pulumi
 * `InputPropertiesError` shape): the message lists each with its path.
 */
export class TopologyValidationError extends Error {
  override name = 'TopologyValidationError';
  constructor(
    readonly topology: string,
    readonly problems: readonly TopologyProblem[],
  ) {
    super(
      `topology "${topology}" has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n` +
        problems.map((p) => `  - ${p.path}: ${p.message}`).join('\n'),
    );
  }
}

/** The saved topology (`.falcon/topology.json`) is missing, unreadable or of another version. */
export class TopologyFileError extends Error {
  override name = 'TopologyFileError';
}
