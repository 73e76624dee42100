/**
 * `buildNodeImage` as the package exports it: the builder (agent, helpers, OCI archive writer)
 * loads when an image is built, not when a topology program imports falcon.
 */
import type { NodeImageOptions, NodeImageResult } from './node-image.js';

/**
 * The falcon-node image, built when its cached copy is missing or stale (or with `force`).
 * Concurrent builds (of any process) wait for one another.
 *
 * ```ts
 * const r = await buildNodeImage({ store, runner, log, out: '/tmp/falcon-node.tar', signal });
 * // ctr -n k8s.io images import /tmp/falcon-node.tar  -> r.ref, e.g. falcon.local/falcon-node:0.1.0-1a2b3c4d5e6f
 * ```
 */
export async function buildNodeImage(o: NodeImageOptions): Promise<NodeImageResult> {
  return (await import('./node-image.js')).buildNodeImage(o);
}
