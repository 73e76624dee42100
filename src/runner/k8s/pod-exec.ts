/**
 * The runner's requests to a node's pod, all through `pods/exec` of `falcon-node` in the node's
 * container: the supervisor's operations (`ctl`), and guest commands with their exit status and
 * output framed apart (src/k8s/exec-frames.ts).
 */
import { ExecTimeoutError, type ExecOptions, type ExecResult } from '../../guest/exec-types.js';
import { FrameDecoder, NODE_COMMAND, NODE_CONTAINER, type PodReply, type PodRequest, type PodStatus } from '../../k8s/index.js';
import { FalconError, type FalconErrorCode, ERROR_CODES } from '../../util/errors.js';
import type { KubeApi } from './api.js';

/** Default of ExecOptions.timeoutMs, as locally. */
const EXEC_TIMEOUT_MS = 10 * 60_000;
/** What the runner adds to a guest command's timeout before it gives up on the exec itself. */
const EXEC_SLACK_MS = 30_000;
const CTL_TIMEOUT_MS = 15 * 60_000;

/** The `falcon-node` arguments of a supervisor request. Pure. */
export function ctlArgv(r: PodRequest): string[] {
  const { op, ...body } = r;
  return [NODE_COMMAND, 'ctl', op, ...(Object.keys(body).length ? ['--body', JSON.stringify(body)] : [])];
}

/** The `falcon-node` arguments of a guest command. Pure. */
export function guestExecArgv(node: string, command: string, o: { timeoutMs: number; stdinBytes?: number; env?: Record<string, string> }): string[] {
  return [
    NODE_COMMAND,
    'exec',
    '--node',
    node,
    '--timeout-ms',
    String(o.timeoutMs),
    ...(o.stdinBytes !== undefined ? ['--stdin-bytes', String(o.stdinBytes)] : []),
    ...(o.env && Object.keys(o.env).length ? ['--env-json', JSON.stringify(o.env)] : []),
    '--',
    command,
  ];
}

function codeOf(c: string | undefined, fallback: FalconErrorCode): FalconErrorCode {
  return c && c in ERROR_CODES ? (c as FalconErrorCode) : fallback;
}

/** One request to the supervisor of `pod`; rejects with its error (and code) when it refuses. */
export async function podCtl(api: KubeApi, namespace: string, pod: string, r: PodRequest, o: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<PodStatus> {
  const res = await api.exec(namespace, pod, NODE_CONTAINER, ctlArgv(r), { timeoutMs: o.timeoutMs ?? CTL_TIMEOUT_MS, signal: o.signal });
  let reply: PodReply;
  try {
    reply = JSON.parse(res.stdout.toString('utf8')) as PodReply;
  } catch {
    const err = res.stderr.toString('utf8').trim();
    throw new FalconError('K8S_POD', `pod ${namespace}/${pod} did not answer "${r.op}" (exit ${res.exitCode}${err ? `: ${err}` : ''})`);
  }
  if (!reply.ok) throw new FalconError(codeOf(reply.code, 'K8S_POD'), reply.error);
  return reply.status;
}

/**
 * A guest command through the pod: `ExecResult` as locally, `ExecTimeoutError` when the guest
 * command outlived its timeout, the node's own error otherwise.
 */
export async function podGuestExec(api: KubeApi, namespace: string, pod: string, node: string, command: string, o: ExecOptions = {}): Promise<ExecResult<Buffer>> {
  const timeoutMs = o.timeoutMs ?? EXEC_TIMEOUT_MS;
  const input = o.input === undefined ? undefined : Buffer.isBuffer(o.input) ? o.input : Buffer.from(o.input, 'utf8');
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const d = new FrameDecoder({
    stdout: (b) => (out.push(b), o.onStdout?.(b)),
    stderr: (b) => (err.push(b), o.onStderr?.(b)),
  });
  const argv = guestExecArgv(node, command, { timeoutMs, stdinBytes: input?.length, env: o.env });
  const res = await api.exec(namespace, pod, NODE_CONTAINER, argv, {
    ...(input ? { stdin: input } : {}),
    onStdout: (b) => d.push(b),
    timeoutMs: timeoutMs + EXEC_SLACK_MS,
    signal: o.signal,
  });
  const r = d.result;
  if (!r) {
    const why = res.stderr.toString('utf8').trim();
    throw new FalconError('K8S_POD', `exec on node "${node}" (pod ${namespace}/${pod}) ended without a result (exit ${res.exitCode}${why ? `: ${why}` : ''}${d.pending ? `, ${d.pending} bytes of a cut frame` : ''})`);
  }
  const stdout = Buffer.concat(out);
  const stderr = Buffer.concat(err);
  if ('error' in r) {
    if (r.error.code === 'EXEC_TIMEOUT') throw new ExecTimeoutError({ command, timeoutMs, stdout, stderr, exitCode: null, signal: null, node });
    throw new FalconError(codeOf(r.error.code, 'EXEC_FAILED'), r.error.message);
  }
  return { exitCode: r.exitCode, signal: r.signal, stdout, stderr, durationMs: r.durationMs };
}
