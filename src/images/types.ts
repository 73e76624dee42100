import type { ProcessRunner } from '../host/process.js';
import type { Logger } from '../util/log.js';

/** How QEMU boots an image. */
export type BootMethod =
  | {
      method: 'direct';
      /** File names inside the image's directory. */
      kernel: string;
      initrd?: string;
      cmdline: string;
    }
  | { method: 'firmware'; firmware: 'bios' | 'uefi' };

/** How Falcon runs commands in a guest of this image. */
export type ExecMethod =
  /** falcon-agent on the virtio-serial port org.falcon.exec (fast, exit status, concurrent). */
  | 'agent'
  /** The original's way: log in on the serial console, run, detect the end, log out. */
  | 'serial-login';

export interface LoginInfo {
  user: string;
  password?: string;
}

/** The metadata stored beside each image's disk, as `meta.json`. */
export interface ImageMeta {
  version: 1;
  name: string;
  /** File name of the qcow2 disk inside the image directory. */
  disk: string;
  boot: BootMethod;
  exec: ExecMethod;
  login?: LoginInfo;
  /** Image this one was snapshotted or derived from. */
  parent?: string;
  /** Built-in recipe that made it, with the recipe's version. */
  recipe?: { name: string; version: number };
  /** Extra packages the recipe installed (with their dependencies), as asked for at build. */
  packages?: string[];
  sizeBytes: number;
  virtualSizeBytes: number;
  sha256: string;
  createdAt: string;
  description?: string;
}

export interface RecipeContext {
  /** Where the recipe writes its outputs: the disk (and kernel/initrd for direct boot). */
  outDir: string;
  /** Scratch space, removed afterwards. */
  workDir: string;
  /** Download cache kept between builds (Debian packages). */
  cacheDir: string;
  /** Extra packages to install; only given to recipes with `acceptsPackages`. */
  packages?: readonly string[];
  runner: ProcessRunner;
  log: Logger;
  signal?: AbortSignal;
}

/** What a recipe returns; the store adds sizes, checksum and timestamps. */
export interface RecipeResult {
  disk: string;
  boot: BootMethod;
  exec: ExecMethod;
  login?: LoginInfo;
  description: string;
}

export interface Recipe {
  name: string;
  /** Bumped when the recipe changes, so a stale built image can be told apart. */
  version: number;
  description: string;
  /** True when the recipe installs `ctx.packages` (a Debian-based one); others refuse packages. */
  acceptsPackages?: boolean;
  build(ctx: RecipeContext): Promise<RecipeResult>;
}
