/**
 * launch: images, the accelerator, then the shared bring-up of every node. Disks and images are
 * recorded in state.json before any QEMU starts, so destroy finds everything after a crash.
 */
import type { StoredImage } from '../images/store.js';
import type { TopologySpec } from '../model/spec.js';
import { decideAccel } from './accel.js';
import { bringUp } from './bring-up.js';
import type { RunContext } from './context.js';
import { bootNode, prepareNode, type BootDeps } from './node-boot.js';
import { readState, writeState, STATE_VERSION, type RunState } from './state.js';
import { streamNetdevs } from './switches.js';

/** Launch `spec` (already preflighted, under the topology lock). */
export async function launchTopology(c: RunContext, spec: TopologySpec, d: BootDeps): Promise<void> {
  const started = Date.now();
  const count = spec.nodes.length;
  c.log.log({ kind: 'step', msg: `launching topology "${spec.name}" (${count} node${count === 1 ? '' : 's'})` });
  const images = new Map<string, StoredImage>();
  for (const name of new Set(spec.nodes.map((n) => n.image))) images.set(name, await c.store.ensure(name, c.signal));
  const accel = count ? await decideAccel(c, { allowBuild: true }) : { accel: 'tcg' as const, reason: 'no nodes' };
  if (count) c.log.log({ kind: 'step', level: accel.accel === 'kvm' ? 'debug' : 'info', msg: `accelerator ${accel.reason}` });
  const state: RunState = (await readState(c.paths)) ?? { version: STATE_VERSION, topology: spec.name, accel: accel.accel, imageDir: c.store.root, nodes: {} };
  state.accel = accel.accel;
  const streams = streamNetdevs(spec, c.paths);
  await bringUp(c, spec, spec.nodes.map((n) => n.name), {
    afterNetwork: async () => {
      for (const n of spec.nodes) {
        const img = images.get(n.image)!;
        state.nodes[n.name] = { ...state.nodes[n.name], disk: c.store.nodeDiskPath(spec.name, n.name), image: n.image, exec: img.meta.exec, login: img.meta.login };
      }
      await c.store.claimTopologyDisks(spec.name, c.paths.dir);
      await writeState(c.paths, state);
    },
    node: async (n, net) => {
      const ns = state.nodes[n.name]!;
      const netdevs = [...(net.netdevs[n.name] ?? []), ...(streams[n.name] ?? [])].sort((x, y) => x.index - y.index);
      await prepareNode(c, spec, n, images.get(n.image)!, ns, state.accel, netdevs);
      await bootNode(c, d, n, ns, state);
    },
    settled: () => writeState(c.paths, state),
  });
  c.log.log({ kind: 'step', msg: `topology "${spec.name}" is up (${((Date.now() - started) / 1000).toFixed(1)} s)` });
}
