/**
 * Saving a node's disk as a new standalone base image. A stopped node's disk is copied; a
 * running node is paused while QEMU copies its disk with a backup job, so the image is
 * consistent (as after a power cut: the guest's unsynced writes are not in it).
 */
import { backupRunningDisk, vmRunning } from '../host/qemu-vm.js';
import type { StoredImage } from '../images/store.js';
import type { RunContext } from './context.js';
import type { LaunchedNode } from './node-state.js';
import { vmFiles } from './vm.js';

export async function snapshotNode(c: RunContext, { spec: n, ns }: LaunchedNode, newImage: string): Promise<StoredImage> {
  const name = n.name;
  const parent = (await c.store.get(ns.image)).meta;
  const files = vmFiles(c.paths, name);
  if (!(await vmRunning(files))) {
    const img = await c.store.snapshotFromDisk({ diskPath: ns.disk, newName: newImage, parent, signal: c.signal });
    c.log.log({ kind: 'step', msg: `snapshot of "${name}" saved as image "${newImage}"` });
    return img;
  }
  const staged = await c.store.stageImage(newImage, c.signal);
  try {
    await backupRunningDisk(files, staged.disk, {
      node: name,
      signal: c.signal,
      onPause: (paused) => c.log.log({ kind: 'node', node: name, state: paused ? 'paused for snapshot' : 'resumed' }),
    });
    const img = await staged.commit({ parent, signal: c.signal });
    c.log.log({ kind: 'step', msg: `snapshot of running "${name}" saved as image "${newImage}"` });
    return img;
  } catch (e) {
    await staged.discard();
    throw e;
  }
}
