/**
 * OCI images without a registry: a folder packed with Debian's umoci into an OCI layout, tarred,
 * then imported into a host's containerd with `ctr -n k8s.io images import`. Pods use them with
 * `imagePullPolicy: Never`. Every image gets a registry-style name (falcon.local/NAME:TAG): a
 * ref like `import-2026-12-02:pause` breaks the CRI.
 */
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from './run.js';

export interface ImageSpec {
  /** falcon.local/NAME:TAG */
  ref: string;
  /** A folder that becomes the image's root file system (one layer). */
  rootfs: string;
  entrypoint: string[];
  cmd?: string[];
  /** The OCI layout tar to write. */
  out: string;
}

/** `falcon.local/x:tag` → { base: 'falcon.local/x', tag: 'tag' }. */
export function splitRef(ref: string): { base: string; tag: string } {
  const m = /^([a-z0-9.-]+\/[a-z0-9._/-]+):([A-Za-z0-9._-]+)$/.exec(ref);
  if (!m) throw new Error(`image ref '${ref}' is not REGISTRY/NAME:TAG`);
  return { base: m[1]!, tag: m[2]! };
}

/** Builds an OCI layout tar for `spec` with umoci. */
export async function buildImage(spec: ImageSpec): Promise<void> {
  const { tag } = splitRef(spec.ref);
  const work = mkdtempSync(path.join(os.tmpdir(), 'falcon-k8s-oci-'));
  try {
    const layout = path.join(work, 'layout');
    const img = `${layout}:${tag}`;
    await run('umoci', ['init', '--layout', layout]);
    await run('umoci', ['new', '--image', img]);
    await run('umoci', ['insert', '--image', img, spec.rootfs + '/', '/'], { timeoutMs: 120_000 });
    const cfg = ['config', '--image', img, '--os', 'linux', '--architecture', 'amd64'];
    for (const e of spec.entrypoint) cfg.push('--config.entrypoint', e);
    for (const c of spec.cmd ?? []) cfg.push('--config.cmd', c);
    await run('umoci', cfg);
    await run('umoci', ['gc', '--layout', layout]);
    const tmp = `${spec.out}.tmp-${process.pid}`;
    await run('tar', ['-C', layout, '-cf', tmp, 'oci-layout', 'index.json', 'blobs'], { timeoutMs: 120_000 });
    await run('mv', ['-f', tmp, spec.out]);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Imports an OCI layout tar into a containerd (the CRI's `k8s.io` namespace) as `ref`. */
export async function importImage(containerdSocket: string, tar: string, ref: string): Promise<void> {
  const { base } = splitRef(ref);
  await run('ctr', ['--address', containerdSocket, '-n', 'k8s.io', 'images', 'import', '--base-name', base, tar], { timeoutMs: 300_000 });
  const { stdout } = await run('ctr', ['--address', containerdSocket, '-n', 'k8s.io', 'images', 'list', '-q']);
  if (!stdout.split('\n').includes(ref)) throw new Error(`imported ${tar} but containerd has no image ${ref} (it has: ${stdout.trim().split('\n').join(', ')})`);
}

/** The pause image from the binary built from Kubernetes' build/pause/linux/pause.c. */
export async function buildPauseImage(pauseBinary: string, ref: string, out: string): Promise<void> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'falcon-k8s-pause-'));
  try {
    copyFileSync(pauseBinary, path.join(root, 'pause'));
    chmodSync(path.join(root, 'pause'), 0o755);
    await buildImage({ ref, rootfs: root, entrypoint: ['/pause'], out });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** The test image's reference. */
export const BUSYBOX_REF = 'falcon.local/busybox:k8s-test';

/**
 * A busybox image from Debian's busybox-static (every applet linked), plus `udp` (test/k8s/udp.c,
 * static): busybox's nc has no UDP. Default command: sleep forever.
 */
export async function buildBusyboxImage(out: string): Promise<void> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'falcon-k8s-busybox-'));
  try {
    for (const d of ['bin', 'tmp', 'etc', 'proc', 'sys', 'dev']) mkdirSync(path.join(root, d), { recursive: true });
    chmodSync(path.join(root, 'tmp'), 0o1777);
    copyFileSync('/bin/busybox', path.join(root, 'bin', 'busybox'));
    chmodSync(path.join(root, 'bin', 'busybox'), 0o755);
    const { stdout } = await run('/bin/busybox', ['--list']);
    for (const applet of stdout.split('\n').filter((a) => a && a !== 'busybox' && !a.includes('/')))
      symlinkSync('busybox', path.join(root, 'bin', applet));
    const src = path.join(path.dirname(fileURLToPath(import.meta.url)), 'udp.c');
    await run('gcc', ['-static', '-O2', '-Wall', '-Werror', '-o', path.join(root, 'bin', 'udp'), src], { timeoutMs: 120_000 });
    await buildImage({ ref: BUSYBOX_REF, rootfs: root, entrypoint: ['/bin/sh', '-c'], cmd: ['exec sleep 2147483647'], out });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
