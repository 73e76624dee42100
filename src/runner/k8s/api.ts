/**
 * The Kubernetes API as the k8s backend uses it, over `@kubernetes/client-node`: the objects of
 * a topology (namespace, ConfigMap, pods), waiting for pods, and `pods/exec`. Every failure is a
 * FalconError `K8S` naming the kubeconfig, context and server, or `K8S_POD` for a pod.
 */
import { PassThrough, Writable } from 'node:stream';
// Types only: the client (hundreds of modules) loads when a topology on a cluster connects.
import type { CoreV1Api, Exec, KubeConfig, V1Pod, V1Status } from '@kubernetes/client-node';
import { ANNOTATION_NODE, ANNOTATION_SPEC, type ConfigMap, type K8sObject, type Namespace, type Pod } from '../../k8s/index.js';
import { sleep } from '../../util/abort.js';
import { FalconError } from '../../util/errors.js';

/** Where the cluster is: the kubeconfig (default $KUBECONFIG, else ~/.kube/config) and its context. */
export interface KubeTarget {
  kubeconfig?: string;
  context?: string;
}

/** A container of a pod as `info` shows it. */
export interface ContainerView {
  name: string;
  ready: boolean;
  state: 'waiting' | 'running' | 'terminated' | 'unknown';
  reason?: string;
  exitCode?: number;
  restartCount: number;
}

/** What the backend needs of a pod. */
export interface PodView {
  name: string;
  namespace: string;
  uid: string;
  /** The Falcon node (annotation). */
  node?: string;
  /** The spec digest the pod was made from (annotation). */
  specDigest?: string;
  phase: string;
  ready: boolean;
  podIP?: string;
  hostIP?: string;
  nodeName?: string;
  deleting: boolean;
  reason?: string;
  message?: string;
  containers: ContainerView[];
  initContainers: ContainerView[];
}

/** The outcome of a command run with {@link KubeApi.exec}. */
export interface KubeExecResult {
  exitCode: number | null;
  signal: string | null;
  stdout: Buffer;
  stderr: Buffer;
  durationMs: number;
}

type ContainerStatus = NonNullable<NonNullable<V1Pod['status']>['containerStatuses']>[number];

function containerView(s: ContainerStatus): ContainerView {
  const st = s.state;
  const state = st?.running ? 'running' : st?.terminated ? 'terminated' : st?.waiting ? 'waiting' : 'unknown';
  const v: ContainerView = { name: s.name, ready: s.ready, state, restartCount: s.restartCount };
  const reason = st?.waiting?.reason ?? st?.terminated?.reason;
  if (reason) v.reason = reason;
  if (st?.terminated) v.exitCode = st.terminated.exitCode;
  return v;
}

/** The backend's view of a pod. Pure. */
export function podView(p: V1Pod): PodView {
  const ann = p.metadata?.annotations ?? {};
  const s = p.status ?? {};
  const ready = (s.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
  const v: PodView = {
    name: p.metadata?.name ?? '',
    namespace: p.metadata?.namespace ?? '',
    uid: p.metadata?.uid ?? '',
    phase: s.phase ?? 'Unknown',
    ready,
    deleting: Boolean(p.metadata?.deletionTimestamp),
    containers: (s.containerStatuses ?? []).map(containerView),
    initContainers: (s.initContainerStatuses ?? []).map(containerView),
  };
  if (ann[ANNOTATION_NODE]) v.node = ann[ANNOTATION_NODE];
  if (ann[ANNOTATION_SPEC]) v.specDigest = ann[ANNOTATION_SPEC];
  if (s.podIP) v.podIP = s.podIP;
  if (s.hostIP) v.hostIP = s.hostIP;
  if (p.spec?.nodeName) v.nodeName = p.spec.nodeName;
  if (s.reason) v.reason = s.reason;
  if (s.message) v.message = s.message;
  return v;
}

/** The exit code a `pods/exec` status carries (Success: 0; NonZeroExitCode: its ExitCode cause). Pure. */
export function exitCodeOf(s: V1Status): number | null {
  if (s.status === 'Success') return 0;
  const cause = s.details?.causes?.find((c) => c.reason === 'ExitCode');
  const n = cause?.message === undefined ? NaN : Number(cause.message);
  return Number.isInteger(n) ? n : null;
}

/** Why a pod cannot come up, if it cannot: a failed phase, or an image that cannot be pulled. Pure. */
export function podFailure(p: PodView): string | undefined {
  if (p.phase === 'Failed' || p.phase === 'Succeeded') return `pod ${p.name} ${p.phase.toLowerCase()}${p.reason ? ` (${p.reason}${p.message ? `: ${p.message}` : ''})` : ''}`;
  for (const c of [...p.initContainers, ...p.containers]) {
    if (c.state === 'waiting' && c.reason && /ErrImagePull|ImagePullBackOff|InvalidImageName|CreateContainerConfigError|CreateContainerError/.test(c.reason))
      return `container ${c.name} of pod ${p.name} cannot start: ${c.reason}`;
    if (c.state === 'terminated' && c.exitCode !== 0 && p.initContainers.includes(c)) return `init container ${c.name} of pod ${p.name} failed (exit ${c.exitCode}${c.reason ? `, ${c.reason}` : ''})`;
  }
  return undefined;
}

function statusCode(e: unknown): number | undefined {
  const c = (e as { code?: unknown }).code;
  return typeof c === 'number' ? c : undefined;
}

function bodyMessage(e: unknown): string {
  const b = (e as { body?: unknown }).body;
  if (typeof b === 'string') {
    try {
      return (JSON.parse(b) as { message?: string }).message ?? b;
    } catch {
      return b;
    }
  }
  return (b as { message?: string } | undefined)?.message ?? (e as Error).message;
}

/** The client library, loaded by {@link KubeApi.connect}. */
type KubeClient = typeof import('@kubernetes/client-node');

/** A connection to one cluster. */
export class KubeApi {
  private readonly core: CoreV1Api;
  private readonly execer: Exec;

  private constructor(
    private readonly client: KubeClient,
    private readonly kc: KubeConfig,
    /** For messages: which kubeconfig, context and server. */
    readonly where: { kubeconfig: string; context: string; server: string },
  ) {
    this.core = kc.makeApiClient(client.CoreV1Api);
    this.execer = new client.Exec(kc);
  }

  /** Load the kubeconfig and check the server answers (GET /version). */
  static async connect(t: KubeTarget = {}, env: NodeJS.ProcessEnv = process.env): Promise<KubeApi> {
    const client = await import('@kubernetes/client-node');
    const kc = new client.KubeConfig();
    const file = t.kubeconfig ?? env.KUBECONFIG?.split(':')[0] ?? `${env.HOME ?? '~'}/.kube/config`;
    try {
      kc.loadFromFile(file);
    } catch (e) {
      throw new FalconError('K8S', `cannot read the kubeconfig ${file} (${(e as Error).message}); pass --kubeconfig FILE or set KUBECONFIG`, { cause: e });
    }
    if (t.context) {
      if (!kc.getContexts().some((c) => c.name === t.context))
        throw new FalconError('K8S', `kubeconfig ${file} has no context "${t.context}"; it has ${kc.getContexts().map((c) => c.name).join(', ') || '(none)'}`);
      kc.setCurrentContext(t.context);
    }
    const server = kc.getCurrentCluster()?.server;
    if (!server) throw new FalconError('K8S', `kubeconfig ${file} names no cluster for context "${kc.getCurrentContext()}"; pick a context with a cluster (--context)`);
    const api = new KubeApi(client, kc, { kubeconfig: file, context: kc.getCurrentContext(), server });
    await api.serverVersion();
    return api;
  }

  private fail(what: string, e: unknown): FalconError {
    const code = statusCode(e);
    const why = code ? `HTTP ${code}: ${bodyMessage(e)}` : (e as Error).message;
    return new FalconError('K8S', `${what} on ${this.where.server} (context "${this.where.context}" of ${this.where.kubeconfig}) failed: ${why}`, { cause: e });
  }

  /** The server's version, e.g. `v1.20.2`. */
  async serverVersion(): Promise<string> {
    try {
      return (await this.kc.makeApiClient(this.client.VersionApi).getCode()).gitVersion;
    } catch (e) {
      throw this.fail('GET /version', e);
    }
  }

  /** The cluster's node names. */
  async nodeNames(): Promise<string[]> {
    try {
      return (await this.core.listNode()).items.map((n) => n.metadata?.name ?? '').filter(Boolean);
    } catch (e) {
      throw this.fail('listing nodes', e);
    }
  }

  /** Create a Namespace, ConfigMap or Pod; `exists` when one of that name is there already. */
  async create(o: K8sObject): Promise<'created' | 'exists'> {
    const ns = (o.metadata as { namespace?: string }).namespace ?? '';
    try {
      if (o.kind === 'Namespace') await this.core.createNamespace({ body: o as Namespace as never });
      else if (o.kind === 'ConfigMap') await this.core.createNamespacedConfigMap({ namespace: ns, body: o as ConfigMap as never });
      else if (o.kind === 'Pod') await this.core.createNamespacedPod({ namespace: ns, body: o as Pod as never });
      else throw new FalconError('INTERNAL', `KubeApi.create does not make ${(o as { kind: string }).kind} objects`);
      return 'created';
    } catch (e) {
      if (statusCode(e) === 409) return 'exists';
      if (e instanceof FalconError) throw e;
      throw this.fail(`creating ${o.kind} ${ns ? `${ns}/` : ''}${o.metadata.name}`, e);
    }
  }

  /** Create the ConfigMap, or replace the one of its name. */
  async replaceConfigMap(cm: ConfigMap): Promise<void> {
    const namespace = cm.metadata.namespace ?? '';
    if ((await this.create(cm)) === 'created') return;
    try {
      await this.core.replaceNamespacedConfigMap({ name: cm.metadata.name, namespace, body: cm as never });
    } catch (e) {
      throw this.fail(`replacing ConfigMap ${namespace}/${cm.metadata.name}`, e);
    }
  }

  async deleteConfigMap(namespace: string, name: string): Promise<void> {
    try {
      await this.core.deleteNamespacedConfigMap({ name, namespace });
    } catch (e) {
      if (statusCode(e) !== 404) throw this.fail(`deleting ConfigMap ${namespace}/${name}`, e);
    }
  }

  async namespaceExists(name: string): Promise<boolean> {
    try {
      await this.core.readNamespace({ name });
      return true;
    } catch (e) {
      if (statusCode(e) === 404) return false;
      throw this.fail(`reading namespace ${name}`, e);
    }
  }

  /** Delete a namespace and wait until it is gone (its pods with it). */
  async deleteNamespace(name: string, o: { timeoutMs?: number; signal?: AbortSignal; onWait?: (waitedMs: number) => void } = {}): Promise<void> {
    try {
      await this.core.deleteNamespace({ name });
    } catch (e) {
      if (statusCode(e) === 404) return;
      throw this.fail(`deleting namespace ${name}`, e);
    }
    const t0 = Date.now();
    const timeoutMs = o.timeoutMs ?? 180_000;
    while (await this.namespaceExists(name)) {
      if (Date.now() - t0 > timeoutMs) throw new FalconError('K8S', `namespace ${name} was not gone ${timeoutMs / 1000} s after its deletion; kubectl get all -n ${name} shows what holds it`);
      o.onWait?.(Date.now() - t0);
      await sleep(500, o.signal);
    }
  }

  /** A pod, or undefined when there is none of that name. */
  async getPod(namespace: string, name: string): Promise<PodView | undefined> {
    try {
      return podView(await this.core.readNamespacedPod({ name, namespace }));
    } catch (e) {
      if (statusCode(e) === 404) return undefined;
      throw this.fail(`reading pod ${namespace}/${name}`, e);
    }
  }

  async listPods(namespace: string, labelSelector?: string): Promise<PodView[]> {
    try {
      return (await this.core.listNamespacedPod({ namespace, ...(labelSelector ? { labelSelector } : {}) })).items.map(podView);
    } catch (e) {
      throw this.fail(`listing pods in ${namespace}`, e);
    }
  }

  /** The last lines of a container's log ('' when it has none yet). */
  async podLog(namespace: string, pod: string, container: string, tailLines = 20): Promise<string> {
    try {
      return String(await this.core.readNamespacedPodLog({ name: pod, namespace, container, tailLines }));
    } catch (e) {
      const code = statusCode(e);
      if (code === 400 || code === 404) return '';
      throw this.fail(`reading the log of ${namespace}/${pod} (${container})`, e);
    }
  }

  /** Delete a pod (grace `graceSeconds`, default the pod's) and, unless `wait` is false, wait until it is gone. */
  async deletePod(namespace: string, name: string, o: { graceSeconds?: number; wait?: boolean; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    try {
      await this.core.deleteNamespacedPod({ name, namespace, ...(o.graceSeconds !== undefined ? { gracePeriodSeconds: o.graceSeconds } : {}) });
    } catch (e) {
      if (statusCode(e) === 404) return;
      throw this.fail(`deleting pod ${namespace}/${name}`, e);
    }
    if (o.wait === false) return;
    const t0 = Date.now();
    const timeoutMs = o.timeoutMs ?? 120_000;
    while (await this.getPod(namespace, name)) {
      if (Date.now() - t0 > timeoutMs) throw new FalconError('K8S_POD', `pod ${namespace}/${name} was not gone ${timeoutMs / 1000} s after its deletion`);
      await sleep(300, o.signal);
    }
  }

  /**
   * Poll the pods until `until` says true for every one; `until` returns a string to give up
   * with that reason. Rejects with the pods' last states on timeout.
   */
  async waitPods(
    namespace: string,
    names: readonly string[],
    until: (p: PodView) => boolean | string,
    o: { timeoutMs: number; signal?: AbortSignal; what: string; onProgress?: (done: number, total: number) => void },
  ): Promise<PodView[]> {
    const t0 = Date.now();
    let last: PodView[] = [];
    let lastDone = -1;
    for (;;) {
      const byName = new Map((await this.listPods(namespace)).map((p) => [p.name, p]));
      last = names.map((n) => byName.get(n) ?? ({ name: n, namespace, uid: '', phase: 'Missing', ready: false, deleting: false, containers: [], initContainers: [] } as PodView));
      let done = 0;
      for (const p of last) {
        const v = p.phase === 'Missing' ? `pod ${p.name} is gone` : until(p);
        if (typeof v === 'string') throw new FalconError('K8S_POD', `${o.what}: ${v}; kubectl -n ${namespace} describe pod ${p.name} shows more`);
        if (v) done++;
      }
      if (done !== lastDone) o.onProgress?.(done, names.length);
      lastDone = done;
      if (done === names.length) return last;
      if (Date.now() - t0 > o.timeoutMs) {
        const states = last.filter((p) => until(p) !== true).map((p) => `${p.name}: ${p.phase}${p.ready ? ', ready' : ''}${p.containers.map((c) => ` ${c.name}=${c.state}${c.reason ? `(${c.reason})` : ''}`).join('')}`);
        throw new FalconError('K8S_POD', `${o.what}: not done after ${Math.round(o.timeoutMs / 1000)} s; ${states.join('; ')}`);
      }
      await sleep(500, o.signal);
    }
  }

  /**
   * Run `argv` in a container (`pods/exec`): stdout and stderr apart, the exit status from the
   * channel's status. `stdin` is written and left open (the v4 protocol cannot close it): the
   * command reads what it needs.
   */
  async exec(
    namespace: string,
    pod: string,
    container: string,
    argv: readonly string[],
    o: { stdin?: Buffer; onStdout?: (b: Buffer) => void; onStderr?: (b: Buffer) => void; timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<KubeExecResult> {
    const t0 = Date.now();
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const sink = (parts: Buffer[], cb?: (b: Buffer) => void) =>
      new Writable({
        write(chunk: Buffer, _enc, next) {
          parts.push(chunk);
          cb?.(chunk);
          next();
        },
      });
    const stdin = o.stdin ? new PassThrough() : null;
    return new Promise<KubeExecResult>((resolve, reject) => {
      let ws: { close(): void; terminate?(): void } | undefined;
      let settled = false;
      const finish = (e: Error | undefined, s?: V1Status) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        o.signal?.removeEventListener('abort', onAbort);
        ws?.close();
        if (e) return reject(e);
        const code = s ? exitCodeOf(s) : null;
        if (s && s.status !== 'Success' && code === null)
          return reject(new FalconError('K8S_POD', `exec of ${argv[0]} in ${namespace}/${pod} (${container}) failed: ${s.message ?? s.reason ?? 'no status'}`));
        resolve({ exitCode: code, signal: null, stdout: Buffer.concat(out), stderr: Buffer.concat(err), durationMs: Date.now() - t0 });
      };
      const timer = o.timeoutMs ? setTimeout(() => finish(new FalconError('TIMEOUT', `exec of ${argv[0]} in ${namespace}/${pod} did not end within ${o.timeoutMs! / 1000} s`)), o.timeoutMs) : undefined;
      const onAbort = () => finish(o.signal!.reason instanceof Error ? o.signal!.reason : new FalconError('EXEC_CLOSED', 'the exec was aborted'));
      o.signal?.addEventListener('abort', onAbort, { once: true });
      this.execer
        .exec(namespace, pod, container, [...argv], sink(out, o.onStdout), sink(err, o.onStderr), stdin, false, (s) => finish(undefined, s))
        .then((w) => {
          ws = w;
          if (settled) w.close();
          if (stdin && o.stdin) stdin.write(o.stdin);
          w.on('close', () => setTimeout(() => finish(undefined, undefined), 50));
        })
        .catch((e: unknown) => finish(this.fail(`exec in pod ${namespace}/${pod}`, e)));
    });
  }

  /**
   * An interactive exec (the serial console): `stdin` goes to the command, its output to
   * `stdout`; resolves when the command or the connection ends.
   */
  async execStream(
    namespace: string,
    pod: string,
    container: string,
    argv: readonly string[],
    io: { stdin: NodeJS.ReadableStream; stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream; signal?: AbortSignal },
  ): Promise<number | null> {
    return new Promise((resolve, reject) => {
      let code: number | null = null;
      this.execer
        .exec(namespace, pod, container, [...argv], io.stdout as Writable, io.stderr as Writable, io.stdin as never, false, (s) => (code = exitCodeOf(s)))
        .then((w) => {
          io.signal?.addEventListener('abort', () => w.close(), { once: true });
          w.on('close', () => resolve(code));
        })
        .catch((e: unknown) => reject(this.fail(`exec in pod ${namespace}/${pod}`, e)));
    });
  }
}
