/** The boot timeout a user can set, checked before anything is created. */
import { FalconError } from '../util/errors.js';
import type { RunState } from './state.js';

/**
 * $FALCON_BOOT_TIMEOUT (seconds) in milliseconds, or undefined when unset.
 * @throws FalconError INVALID_ARGUMENT when it is not a positive number.
 */
export function bootTimeoutFromEnv(env: NodeJS.ProcessEnv): number | undefined {
  const raw = env.FALCON_BOOT_TIMEOUT;
  if (raw === undefined || raw.trim() === '') return undefined;
  const seconds = Number(raw.trim());
  if (!Number.isFinite(seconds) || seconds <= 0)
    throw new FalconError(
      'INVALID_ARGUMENT',
      `FALCON_BOOT_TIMEOUT=${JSON.stringify(raw)} is not a positive number of seconds; set it to one (e.g. FALCON_BOOT_TIMEOUT=300), or unset it for the default (180 s under TCG, 60 s under KVM)`,
    );
  return seconds * 1000;
}

/** The boot timeout the user set (the runner option, else $FALCON_BOOT_TIMEOUT), checked; undefined for the default. */
export function bootTimeoutSetting(optionMs: number | undefined, env: NodeJS.ProcessEnv): number | undefined {
  if (optionMs === undefined) return bootTimeoutFromEnv(env);
  if (!(Number.isFinite(optionMs) && optionMs > 0))
    throw new FalconError('INVALID_ARGUMENT', `the runner option bootTimeoutMs is ${optionMs}; it takes a positive number of milliseconds`);
  return optionMs;
}

/** How long a node may take to boot: the user's setting, or the accelerator's default. */
export function bootDeadlineMs(setting: number | undefined, state: RunState): number {
  return setting ?? (state.accel === 'kvm' ? 60_000 : 180_000);
}
