/** What every CLI command gets (src/cli/commands/*): one context, built once per CLI run. */
import type { Runner } from '../runner/runner.js';

/** The runner a command acts on and where its output goes. */
export interface CommandContext {
  /**
   * The runner the command acts on: the program's, or in the generic CLI the saved topology's,
   * with the CLI's --falcon-dir and log level. Made on the first call, so call it in the action.
   */
  runner(): Runner;
  /** The generic `falcon` CLI: there is no topology program; the topology comes from `.falcon` alone. */
  readonly generic: boolean;
  /** Standard output: text, the guest's bytes, pcap. */
  stdout(s: string | Buffer): void;
  /** Standard error, for messages. */
  stderr(s: string): void;
  /** A line on standard output (the newline is added when missing). */
  print(s: string): void;
  /** The exit code of the CLI once the command returns. */
  setExit(code: number): void;
}
