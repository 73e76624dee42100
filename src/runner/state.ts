import { promises as fs } from 'node:fs';
import type { Accel } from '../host/qemu.js';
import type { ExecMethod, LoginInfo } from '../images/types.js';
import { writeFileAtomic } from '../util/fs.js';
import type { FalconPaths } from './paths.js';

export const STATE_VERSION = 1;

export interface NodeState {
  disk: string;
  image: string;
  exec: ExecMethod;
  login?: LoginInfo;
  /** The QEMU argument array, so hyperstart restarts the node with exactly the same devices. */
  qemuArgs?: string[];
  /** Host devices opened and passed as fds (macvtap), in fd order from 3. */
  fdDevices?: string[];
  launchedAt?: string;
}

/** What launch learned that later commands need; the topology itself is in topology.json. */
export interface RunState {
  version: typeof STATE_VERSION;
  topology: string;
  accel: Accel;
  imageDir: string;
  nodes: Record<string, NodeState>;
}

export async function readState(paths: FalconPaths): Promise<RunState | undefined> {
  let text: string;
  try {
    text = await fs.readFile(paths.stateFile, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const s = JSON.parse(text) as RunState;
    if (s.version !== STATE_VERSION) return undefined;
    return s;
  } catch {
    // A damaged state file only loses what launch recorded; destroy works without it.
    return undefined;
  }
}

export async function writeState(paths: FalconPaths, s: RunState): Promise<void> {
  await writeFileAtomic(paths.stateFile, JSON.stringify(s, null, 2) + '\n');
}
