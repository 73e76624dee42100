/**
 * The names of exported OCI images (`falcon image export`, the k8s backend's image refs), apart
 * from the archive writer (oci.ts): pure, and cheap to load.
 */
import type { ImageMeta } from './types.js';

/** Where exported images are named by default: `falcon.local/images/<name>:<tag>`. */
export const EXPORT_REPOSITORY = 'falcon.local/images';

/**
 * The default reference of an exported image: its name as the repository and the first 12 hex
 * digits of its disk's sha256 as the tag, so a rebuilt image gets a new tag.
 *
 * ```ts
 * exportRef(meta); // 'falcon.local/images/tiny:40c7b5b6665e'
 * ```
 */
export function exportRef(meta: Pick<ImageMeta, 'name' | 'sha256'>): string {
  return `${EXPORT_REPOSITORY}/${repoComponent(meta.name)}:${meta.sha256.slice(0, 12)}`;
}

/**
 * An image name as a repository path component: lower case, separators that references allow
 * (`.`, `_`, `__`, runs of `-`), others turned into `-`. `Router.V2` -> `router.v2`.
 */
export function repoComponent(name: string): string {
  const lower = name.toLowerCase().replace(/[^a-z0-9._-]/g, '-');
  const parts = lower.match(/[a-z0-9]+|[._-]+/g) ?? [];
  let out = '';
  for (const p of parts) {
    if (/^[a-z0-9]/.test(p)) out += p;
    else if (out) out += p === '.' || p === '_' || p === '__' || /^-+$/.test(p) ? p : '-';
  }
  out = out.replace(/[._-]+$/, '');
  return out || 'image';
}
