/**
 * What every `falcon-node` command in a pod works from: the pod's environment (set by the pod
 * manifest, src/k8s/pod.ts), the topology from the ConfigMap, and a RunContext over the pod's
 * own state folder and image store, so the node is run by the same code as on one host.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createProcessRunner } from '../host/process.js';
import { ImageStore } from '../images/store.js';
import { DEFAULT_VXLAN_PORT, POD_CONTROL_SOCKET, POD_PATHS } from '../k8s/index.js';
import type { TopologySpec } from '../model/spec.js';
import { parseTopologyFile } from '../model/topology.js';
import type { RunContext } from '../runner/context.js';
import { FalconPaths } from '../runner/paths.js';
import { FalconError } from '../util/errors.js';
import { consoleLogger, type Logger } from '../util/log.js';

export interface PodEnv {
  stateDir: string;
  imageDir: string;
  accel: 'kvm' | 'tcg';
  vxlanPort: number;
  podIp?: string;
  podName?: string;
  namespace?: string;
}

/** The pod's settings from its environment (defaults: the manifest's paths, TCG, port 4789). */
export function podEnv(env: NodeJS.ProcessEnv = process.env): PodEnv {
  const port = Number(env.FALCON_VXLAN_PORT ?? DEFAULT_VXLAN_PORT);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new FalconError('INVALID_ARGUMENT', `FALCON_VXLAN_PORT is ${env.FALCON_VXLAN_PORT}; give a UDP port from 1 to 65535`);
  const accel = env.FALCON_ACCEL === 'kvm' ? 'kvm' : 'tcg';
  return {
    stateDir: env.FALCON_STATE_DIR ?? POD_PATHS.stateDir,
    imageDir: env.FALCON_IMAGE_DIR ?? POD_PATHS.imageDir,
    accel,
    vxlanPort: port,
    podIp: env.FALCON_POD_IP || undefined,
    podName: env.FALCON_POD_NAME || undefined,
    namespace: env.FALCON_NAMESPACE || undefined,
  };
}

/** The topology as the ConfigMap holds it. */
export async function readPodTopology(file: string): Promise<TopologySpec> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new FalconError('TOPOLOGY_FILE', `cannot read the topology ${file} (${(e as Error).message}); the pod's ConfigMap volume is missing`, { cause: e });
  }
  return parseTopologyFile(text, file);
}

/** A RunContext over the pod's state folder and image store. */
export function podRunContext(e: PodEnv, log: Logger = consoleLogger()): RunContext {
  const proc = createProcessRunner(log);
  return { paths: new FalconPaths(e.stateDir), proc, log, env: process.env, store: new ImageStore({ root: e.imageDir, runner: proc, log, env: process.env }) };
}

/** The supervisor's control socket. */
export function controlSocket(paths: FalconPaths): string {
  return path.join(paths.socketDir, POD_CONTROL_SOCKET);
}
