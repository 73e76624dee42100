/**
 * Builds the guest agent (guest-agent/falcon-agent.c) into a static binary, cached by the
 * sha256 of its source and compiler flags.
 */
import { fileURLToPath } from 'node:url';
import { buildStatic, STATIC_CFLAGS } from '../host/cbuild.js';
import type { ProcessRunner } from '../host/process.js';
import type { Logger } from '../util/log.js';

/** Absolute path of the agent's C source in this package. */
export function agentSourcePath(): string {
  return fileURLToPath(new URL('../../guest-agent/falcon-agent.c', import.meta.url));
}

export const AGENT_CFLAGS: readonly string[] = STATIC_CFLAGS;

export interface BuildAgentOptions {
  /** Where built binaries are kept (created 0700 if missing). */
  cacheDir: string;
  runner: ProcessRunner;
  log: Logger;
  signal?: AbortSignal;
  /** The C compiler; default "gcc". */
  cc?: string;
}

/**
 * Compiles the agent with `gcc -static -O2` into `cacheDir/falcon-agent-<hash>` and returns
 * that path. Instant when already built.
 */
export function buildAgent(opts: BuildAgentOptions): Promise<string> {
  return buildStatic({ ...opts, source: agentSourcePath(), name: 'falcon-agent', what: 'the guest agent', code: 'IMAGE_BUILD_FAILED' });
}
