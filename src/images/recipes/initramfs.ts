/**
 * Pieces shared by the built-in recipes: kernel module selection from a depmod'ed tree, a
 * cpio (newc) writer, and the small busybox initramfs that mounts the root disk. Writing the
 * cpio here (rather than with cpio(1)) lets it hold /dev/console without mknod or root.
 */
import { copyFile, mkdir, readFile, readdir, lstat, readlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { ProcessRunner } from '../../host/process.js';
import { ImageError } from '../errors.js';

/** A module's file (relative to lib/modules/<release>) and the files it depends on. */
export interface ModuleInfo {
  path: string;
  deps: string[];
}

/** Module name as the kernel and modprobe see it: dashes are underscores. */
export function moduleName(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1).replace(/\.ko(\.(xz|zst|gz))?$/, '');
  return base.replace(/-/g, '_');
}

/** Parses modules.dep into name -> file and dependency files. */
export function parseModulesDep(text: string): Map<string, ModuleInfo> {
  const map = new Map<string, ModuleInfo>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const path = line.slice(0, colon).trim();
    const deps = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .filter(Boolean);
    map.set(moduleName(path), { path, deps });
  }
  return map;
}

/** The files of the named modules and everything they depend on. Unknown names throw. */
export function moduleClosure(dep: ReadonlyMap<string, ModuleInfo>, names: readonly string[], release: string): string[] {
  const byPath = new Map([...dep.values()].map((m) => [m.path, m]));
  const out = new Set<string>();
  const visit = (path: string) => {
    if (out.has(path)) return;
    out.add(path);
    for (const d of byPath.get(path)?.deps ?? []) visit(d);
  };
  for (const n of names) {
    const m = dep.get(n.replace(/-/g, '_'));
    if (!m) throw new ImageError('IMAGE_BUILD_FAILED', `Kernel ${release} has no module ${n} (not in its modules.dep): the image cannot be built with this kernel.`);
    visit(m.path);
  }
  return [...out].sort();
}

const SIG_MAGIC = Buffer.from('~Module signature appended~\n');

/**
 * A module without its appended signature. Checking a signature (SHA-256 of the whole module
 * plus an RSA verification) costs ~20 ms per module under TCG; Debian's kernel does not
 * enforce signatures (no module.sig_enforce) so an unsigned module loads, only setting the
 * kernel's 'E' taint flag.
 */
export function stripModuleSignature(ko: Buffer): Buffer {
  if (ko.length < SIG_MAGIC.length + 12 || !ko.subarray(ko.length - SIG_MAGIC.length).equals(SIG_MAGIC)) return ko;
  // struct module_signature (12 bytes, sig_len big-endian at its end) precedes the magic.
  const sigLen = ko.readUInt32BE(ko.length - SIG_MAGIC.length - 4);
  const end = ko.length - SIG_MAGIC.length - 12 - sigLen;
  return end > 0 ? ko.subarray(0, end) : ko;
}

/**
 * Copies the given module files (and the small modules.builtin* lists, so modprobe knows
 * built-in modules) from one modules tree to another, then runs depmod on the copy.
 */
export async function installModules(
  runner: ProcessRunner,
  srcBase: string,
  destBase: string,
  release: string,
  files: readonly string[],
  opts: { stripSignatures?: boolean; signal?: AbortSignal } = {},
): Promise<void> {
  const src = join(srcBase, 'lib/modules', release);
  const dest = join(destBase, 'lib/modules', release);
  for (const f of [...files, 'modules.builtin', 'modules.builtin.modinfo']) {
    await mkdir(dirname(join(dest, f)), { recursive: true });
    if (opts.stripSignatures && f.endsWith('.ko')) {
      await writeFile(join(dest, f), stripModuleSignature(await readFile(join(src, f))));
    } else {
      await copyFile(join(src, f), join(dest, f));
    }
  }
  await depmod(runner, destBase, release, opts.signal);
}

export async function depmod(runner: ProcessRunner, base: string, release: string, signal?: AbortSignal): Promise<void> {
  try {
    await runner.run('depmod', ['-b', base, release], { timeoutMs: 120_000, signal });
  } catch (err) {
    if (err instanceof Error && /could not run/.test(err.message)) {
      throw new ImageError('IMAGE_BUILD_FAILED', `depmod is not installed on this host; it is needed to build guest images. Fix: apt-get install kmod`, { cause: err });
    }
    throw err;
  }
}

export type CpioEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; data: Buffer; mode?: number }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'char'; path: string; major: number; minor: number; mode?: number };

/** A cpio archive in the kernel's initramfs format (newc), every file owned by root. */
export function writeCpio(entries: readonly CpioEntry[]): Buffer {
  const chunks: Buffer[] = [];
  let ino = 1;
  const pad4 = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
  const add = (name: string, mode: number, data: Buffer, rdev: [number, number] = [0, 0], nlink = 1) => {
    const nameBuf = Buffer.from(`${name}\0`);
    const fields = [ino++, mode, 0, 0, nlink, 0, data.length, 0, 0, rdev[0], rdev[1], nameBuf.length, 0];
    const header = Buffer.from(`070701${fields.map((f) => f.toString(16).padStart(8, '0')).join('')}`);
    chunks.push(header, nameBuf, pad4(header.length + nameBuf.length), data, pad4(data.length));
  };
  for (const e of entries) {
    const p = e.path.replace(/^\/+/, '');
    switch (e.type) {
      case 'dir':
        add(p, 0o040000 | (e.mode ?? 0o755), Buffer.alloc(0), [0, 0], 2);
        break;
      case 'file':
        add(p, 0o100000 | (e.mode ?? 0o644), e.data);
        break;
      case 'symlink':
        add(p, 0o120000 | 0o777, Buffer.from(e.target));
        break;
      case 'char':
        add(p, 0o020000 | (e.mode ?? 0o600), Buffer.alloc(0), [e.major, e.minor]);
        break;
    }
  }
  add('TRAILER!!!', 0, Buffer.alloc(0), [0, 0], 1);
  return Buffer.concat(chunks);
}

/** Every directory, file and symlink under `dir`, parents first, as cpio entries. */
export async function cpioEntriesFromDir(dir: string, prefix = ''): Promise<CpioEntry[]> {
  const out: CpioEntry[] = [];
  const walk = async (d: string) => {
    for (const name of (await readdir(d)).sort()) {
      const full = join(d, name);
      const path = join(prefix, relative(dir, full));
      const st = await lstat(full);
      if (st.isDirectory()) {
        out.push({ type: 'dir', path, mode: st.mode & 0o7777 });
        await walk(full);
      } else if (st.isSymbolicLink()) {
        out.push({ type: 'symlink', path, target: await readlink(full) });
      } else if (st.isFile()) {
        out.push({ type: 'file', path, data: await readFile(full), mode: st.mode & 0o7777 });
      }
    }
  };
  await walk(dir);
  return out;
}

/** The modules the initramfs loads to reach a virtio ext4 root disk. */
export const INITRAMFS_MODULES = ['virtio_pci', 'virtio_blk', 'crc32c_generic', 'ext4'] as const;

export interface InitramfsOptions {
  runner: ProcessRunner;
  /** Static busybox binary. */
  busybox: string;
  /** Root of an unpacked kernel package whose lib/modules/<release> has been depmod'ed. */
  kernelTree: string;
  release: string;
  modules: ReadonlyMap<string, ModuleInfo>;
  /** The init script. */
  init: Buffer;
  /** Scratch directory for the module tree. */
  workDir: string;
  /** See stripModuleSignature. */
  stripSignatures?: boolean;
  signal?: AbortSignal;
}

/**
 * A gzip'ed busybox initramfs: /init loads INITRAMFS_MODULES, mounts root= and switch_roots
 * to it. A few MB, so the kernel unpacks it quickly even under TCG.
 */
export async function buildInitramfs(o: InitramfsOptions): Promise<Buffer> {
  const modTree = join(o.workDir, 'initramfs-modules');
  const files = moduleClosure(o.modules, INITRAMFS_MODULES, o.release);
  await installModules(o.runner, o.kernelTree, modTree, o.release, files, { stripSignatures: o.stripSignatures, signal: o.signal });
  const entries: CpioEntry[] = [
    ...['bin', 'dev', 'etc', 'proc', 'sys', 'newroot', 'lib'].map((path): CpioEntry => ({ type: 'dir', path })),
    // The kernel opens /dev/console for init's stdio before init can mount devtmpfs.
    { type: 'char', path: 'dev/console', major: 5, minor: 1, mode: 0o600 },
    { type: 'file', path: 'bin/busybox', data: await readFile(o.busybox), mode: 0o755 },
    { type: 'file', path: 'init', data: o.init, mode: 0o755 },
    { type: 'file', path: 'etc/initramfs-modules', data: Buffer.from(`${INITRAMFS_MODULES.join('\n')}\n`) },
    ...(await cpioEntriesFromDir(join(modTree, 'lib'), 'lib')),
  ];
  return gzipSync(writeCpio(entries), { level: 6 });
}
