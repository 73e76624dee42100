/**
 * Falcon's images on the test cluster: the falcon-node image (`falcon image build-node`, cached
 * by its inputs) and base images exported as OCI containerDisks (`falcon image export --oci`),
 * imported into every host's containerd under the references the k8s backend asks for.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Cluster } from './cluster.js';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const falcon = path.join(root, 'bin/falcon.js');

export interface LoadedImages {
  node: string[];
  base: Record<string, string>;
  ms: number;
}

/** Build (or take from the cache) and import the falcon-node image and the base images `images`. */
export async function loadFalconImages(c: Pick<Cluster, 'importImage'>, images: readonly string[] = ['tiny'], log: (s: string) => void = () => {}): Promise<LoadedImages> {
  const t0 = Date.now();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'falcon-k8s-images-'));
  try {
    const nodeTar = path.join(dir, 'falcon-node.tar');
    log('building the falcon-node image (cached by its inputs)');
    const built = JSON.parse((await run(process.execPath, [falcon, 'image', 'build-node', '--out', nodeTar, '--json'], { maxBuffer: 1 << 24, timeout: 30 * 60_000 })).stdout) as { refs: string[] };
    for (const ref of built.refs) await c.importImage(nodeTar, ref);
    const base: Record<string, string> = {};
    for (const image of images) {
      const tar = path.join(dir, `${image}.oci.tar`);
      log(`exporting base image ${image}`);
      const r = JSON.parse((await run(process.execPath, [falcon, 'image', 'export', image, '--oci', tar, '--json'], { maxBuffer: 1 << 24, timeout: 10 * 60_000 })).stdout) as { ref: string };
      await c.importImage(tar, r.ref);
      base[image] = r.ref;
    }
    return { node: built.refs, base, ms: Date.now() - t0 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
