import { promises as fs } from 'node:fs';
import { z } from 'zod';
import type { Accel } from '../host/qemu.js';
import type { ExecMethod } from '../images/types.js';
import { FalconError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import type { FalconPaths } from './paths.js';

export const STATE_VERSION = 1;

const nodeStateSchema = z.object({
  disk: z.string(),
  image: z.string(),
  exec: z.enum(['agent', 'serial-login']) satisfies z.ZodType<ExecMethod>,
  login: z.object({ user: z.string(), password: z.string().optional() }).optional(),
  /** The QEMU argument array, so hyperstart restarts the node with exactly the same devices. */
  qemuArgs: z.array(z.string()).optional(),
  /** Host devices opened and passed as fds (macvtap), in fd order from 3. */
  fdDevices: z.array(z.string()).optional(),
  launchedAt: z.string().optional(),
});

const runStateSchema = z.object({
  version: z.literal(STATE_VERSION),
  topology: z.string(),
  accel: z.enum(['kvm', 'tcg']) satisfies z.ZodType<Accel>,
  imageDir: z.string(),
  nodes: z.record(z.string(), nodeStateSchema),
});

/** What launch recorded about one node. */
export type NodeState = z.infer<typeof nodeStateSchema>;
/** What launch learned that later commands need; the topology itself is in topology.json. */
export type RunState = z.infer<typeof runStateSchema>;

/** state.json is damaged or of another version. */
export class StateFileError extends FalconError {
  override name = 'StateFileError';
  constructor(message: string) {
    super('STATE_FILE', message);
  }
}

const FIX = 'destroy the topology (destroy does not need this file) and launch it again';

/** Parse and check the text of `file` (a state.json). */
export function parseState(text: string, file: string): RunState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new StateFileError(`${file} is not valid JSON (${(e as Error).message}); it may be truncated. To recover, ${FIX}.`);
  }
  const v = (raw as { version?: unknown } | null)?.version;
  if (v !== STATE_VERSION) {
    throw new StateFileError(`${file} has format version ${JSON.stringify(v)}, this Falcon reads version ${STATE_VERSION}; ${FIX} with this Falcon.`);
  }
  const r = runStateSchema.safeParse(raw);
  if (!r.success) {
    const lines = r.error.issues.slice(0, 10).map((i) => `  - ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new StateFileError(`${file} is damaged:\n${lines.join('\n')}\nTo recover, ${FIX}.`);
  }
  return r.data;
}

/** The topology's state, or undefined before its first launch. Throws StateFileError when the file is damaged. */
export async function readState(paths: FalconPaths): Promise<RunState | undefined> {
  let text: string;
  try {
    text = await fs.readFile(paths.stateFile, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new StateFileError(`cannot read ${paths.stateFile}: ${(e as Error).message}; check its owner and mode (falcon runs as the user who launched)`);
  }
  return parseState(text, paths.stateFile);
}

export async function writeState(paths: FalconPaths, s: RunState): Promise<void> {
  await writeFileAtomic(paths.stateFile, JSON.stringify(s, null, 2) + '\n');
}
