/**
 * Which backend a topology runs on. `new Runner(name, { backend: kubernetes({...}) })` or
 * `launch --backend k8s` picks the cluster; launch records it in `.falcon/backend.json` before it
 * creates anything, so every later command (and `destroy` of a failed launch) finds the cluster
 * without a flag.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { K8sBackendOptions } from '../../k8s/index.js';
import { FalconError } from '../../util/errors.js';
import { writeFileAtomic } from '../../util/fs.js';
import type { FalconPaths } from '../paths.js';

/** The Kubernetes backend: where the cluster is, and the options of the topology's pods. */
export interface KubernetesBackend extends K8sBackendOptions {
  kind: 'k8s';
  /** Default $KUBECONFIG, else ~/.kube/config. */
  kubeconfig?: string;
  /** A context of the kubeconfig; default its current one. */
  context?: string;
}

/** Where a topology runs: this host (the default) or a Kubernetes cluster. */
export type Backend = { kind: 'local' } | KubernetesBackend;

/**
 * The Kubernetes backend, for `new Runner(name, { backend: kubernetes({ kubeconfig }) })`.
 *
 * ```ts
 * const d = new Runner('duo', { backend: kubernetes({ kubeconfig: 'k.yaml', namespace: 'lab' }) });
 * ```
 */
export function kubernetes(o: Omit<KubernetesBackend, 'kind'> = {}): KubernetesBackend {
  return { ...o, kind: 'k8s' };
}

/** The backend by its CLI name (`--backend local|k8s`). */
export function backendByName(name: string, o: Omit<KubernetesBackend, 'kind'> = {}): Backend {
  if (name === 'local') return { kind: 'local' };
  if (name === 'k8s' || name === 'kubernetes') return kubernetes(o);
  throw new FalconError('INVALID_ARGUMENT', `--backend ${name} is not a backend; use local (this host, the default) or k8s (a Kubernetes cluster)`);
}

const recordSchema = z
  .object({
    kind: z.literal('k8s'),
    kubeconfig: z.string(),
    context: z.string(),
    server: z.string(),
    namespace: z.string(),
    /** The namespace is the topology's own (made by launch, deleted by destroy). */
    ownsNamespace: z.boolean(),
    options: z.record(z.unknown()),
    createdAt: z.string(),
  })
  .strict();

/** What `.falcon/backend.json` holds for a topology on a cluster. */
export type BackendRecord = z.infer<typeof recordSchema>;

export function backendFile(paths: FalconPaths): string {
  return path.join(paths.dir, 'backend.json');
}

/** The recorded backend, or undefined for a local topology (no file). */
export async function readBackendRecord(paths: FalconPaths): Promise<BackendRecord | undefined> {
  const file = backendFile(paths);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new FalconError('STATE_FILE', `cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  const r = recordSchema.safeParse((() => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return undefined;
    }
  })());
  if (!r.success) throw new FalconError('STATE_FILE', `${file} is damaged (${r.error?.issues[0]?.message ?? 'not JSON'}); delete the topology's namespace with kubectl, then remove ${paths.dir}`);
  return r.data;
}

export async function writeBackendRecord(paths: FalconPaths, r: BackendRecord): Promise<void> {
  await fs.mkdir(paths.dir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(backendFile(paths), JSON.stringify(r, null, 2) + '\n');
}

export async function removeBackendRecord(paths: FalconPaths): Promise<void> {
  await fs.rm(backendFile(paths), { force: true });
}
