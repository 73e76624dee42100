/** Waiting for nodes on a cluster: each pod's supervisor says its guest answers, or why not. */
import { sleep } from '../../util/abort.js';
import { FalconError } from '../../util/errors.js';
import { LaunchError, type NodeFailure } from '../errors.js';
import { podFailure } from './api.js';
import type { K8sSession } from './session.js';

/** How long a node may take from its pod running to its guest answering (the pod has its own boot deadline). */
const READY_TIMEOUT_MS = 15 * 60_000;
const POLL_MS = 1500;

/**
 * Poll the supervisors of `nodes` until each is `ready`; a node whose supervisor reports
 * `failed`, or whose pod ends, fails with a LaunchError carrying its log's tail.
 */
export async function waitNodesReady(s: K8sSession, nodes: readonly string[]): Promise<void> {
  const t0 = Date.now();
  const pending = new Set(nodes);
  const failures: NodeFailure[] = [];
  let last = -1;
  while (pending.size) {
    await Promise.all(
      [...pending].map(async (n) => {
        const why = await nodeVerdict(s, n);
        if (why === 'ready') pending.delete(n);
        else if (why) {
          pending.delete(n);
          failures.push({ node: n, error: new FalconError('K8S_POD', why), logs: await s.logTail(n) });
        }
      }),
    );
    const done = nodes.length - pending.size;
    if (done !== last) s.c.log.log({ kind: 'progress', what: 'nodes ready', done, total: nodes.length });
    last = done;
    if (!pending.size) break;
    if (Date.now() - t0 > READY_TIMEOUT_MS) {
      for (const n of pending) failures.push({ node: n, error: new FalconError('TIMEOUT', `not ready ${READY_TIMEOUT_MS / 60_000} min after its pod started`), logs: await s.logTail(n) });
      break;
    }
    await sleep(POLL_MS, s.c.signal);
  }
  if (failures.length) throw new LaunchError(s.spec.name, failures);
}

/** 'ready', undefined (not yet), or why the node will not come up. */
async function nodeVerdict(s: K8sSession, node: string): Promise<'ready' | string | undefined> {
  const p = await s.api.getPod(s.namespace, s.pod(node));
  if (!p) return `pod ${s.pod(node)} is gone`;
  const why = podFailure(p);
  if (why) return why;
  const st = await s.ctl(node, { op: 'status' }, { deadlineMs: 0 }).catch(() => undefined);
  if (!st) return undefined;
  if (st.phase === 'ready') return 'ready';
  if (st.phase === 'failed') return `node did not come up in its pod: ${st.error ?? 'no reason given'}`;
  return undefined;
}
