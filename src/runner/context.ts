/**
 * What every runner operation works with: where the topology's state is, how host commands
 * run, where events go, the environment, the image store and the signal that cancels it.
 * One value instead of a bag of options per module.
 */
import path from 'node:path';
import type { ProcessRunner } from '../host/process.js';
import type { ImageStore } from '../images/store.js';
import type { Logger } from '../util/log.js';
import type { FalconPaths } from './paths.js';

export interface RunContext {
  readonly paths: FalconPaths;
  readonly proc: ProcessRunner;
  readonly log: Logger;
  readonly env: NodeJS.ProcessEnv;
  readonly store: ImageStore;
  /** Cancels the operation in progress; absent for one that cannot be cancelled. */
  readonly signal?: AbortSignal;
}

/** The same context with another signal (one operation's). */
export function withSignal(c: RunContext, signal: AbortSignal | undefined): RunContext {
  return signal === c.signal ? c : { ...c, signal };
}

/** Where helpers that Falcon builds (the impairment helper, the agent) are kept: the store's cache. */
export function cacheDir(c: RunContext): string {
  return path.join(c.store.root, 'cache');
}

/** The host network layer's view of the context. */
export function netContext(c: RunContext): { runner: ProcessRunner; falconDir: string; log: Logger; signal?: AbortSignal } {
  return { runner: c.proc, falconDir: c.paths.dir, log: c.log, signal: c.signal };
}
