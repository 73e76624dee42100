/** A cluster's state file, <stateDir>/cluster.json: what was made, written as it is made. */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Daemon } from './daemons.js';

/** What a cluster's state file (<stateDir>/cluster.json) records, written as things are made. */
export interface ClusterState {
  name: string;
  stateDir: string;
  apiPort?: number;
  kubeconfig?: string;
  server?: string;
  hosts: { name: string; netns: string; nodeIP: string; podCIDR: string; mountNs: string; cgroupRoot: string; containerdSocket: string }[];
  cpNetns: string;
  cpIP: string;
  daemons: Daemon[];
  madeVarLibCni: boolean;
  binariesDir?: string;
  startedAt: string;
  readyAt?: string;
}

export const STATE_FILE = 'cluster.json';

export function readState(stateDir: string): ClusterState | undefined {
  try {
    return JSON.parse(readFileSync(path.join(stateDir, STATE_FILE), 'utf8')) as ClusterState;
  } catch {
    return undefined;
  }
}

export function writeState(s: ClusterState): void {
  const f = path.join(s.stateDir, STATE_FILE);
  writeFileSync(f + '.tmp', JSON.stringify(s, null, 2) + '\n', { mode: 0o600 });
  renameSync(f + '.tmp', f);
}

