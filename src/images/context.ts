/**
 * What every part of the image store shares: its root and paths, the host tools, the recipes,
 * the per-name locks and the staging directories (`<root>/.tmp/`) images are assembled in.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { ProcessRunner } from '../host/process.js';
import { QemuImg } from '../host/qemu-img.js';
import { acquireLock } from '../util/lock.js';
import { pidAlive } from '../util/fs.js';
import type { Logger } from '../util/log.js';
import { FalconError } from '../util/errors.js';
import { checkName, noSpace } from './helpers.js';
import { BUILTIN_RECIPE_NAMES } from './recipes/names.js';
import type { Recipe } from './types.js';

export class StoreContext {
  readonly qemuImg: QemuImg;
  private loadedRecipes: Record<string, Recipe> | undefined;

  /** `recipes` undefined: the built-in ones, loaded by `loadRecipes` (what builds and inspect need). */
  constructor(
    readonly root: string,
    readonly runner: ProcessRunner,
    readonly log: Logger,
    recipes?: Record<string, Recipe>,
  ) {
    this.qemuImg = new QemuImg(runner);
    this.loadedRecipes = recipes;
  }

  /** The recipes; the built-in ones once `loadRecipes` has loaded them. */
  get recipes(): Record<string, Recipe> {
    if (!this.loadedRecipes) throw new FalconError('INTERNAL', 'the built-in recipes are not loaded yet: await loadRecipes() first');
    return this.loadedRecipes;
  }

  /** Load the built-in recipes (when none were given); a topology's `exec` never needs them. */
  async loadRecipes(): Promise<Record<string, Recipe>> {
    return (this.loadedRecipes ??= (await import('./recipes/index.js')).builtinRecipes);
  }

  get cacheDir(): string {
    return path.join(this.root, 'cache');
  }
  get topoDir(): string {
    return path.join(this.root, 'topo');
  }
  get tmpDir(): string {
    return path.join(this.root, '.tmp');
  }
  get locksDir(): string {
    return path.join(this.root, '.locks');
  }

  imageDir(name: string): string {
    checkName(name);
    return path.join(this.root, name);
  }

  builtinNames(): string[] {
    return this.loadedRecipes ? Object.keys(this.loadedRecipes).sort() : [...BUILTIN_RECIPE_NAMES].sort();
  }

  isBuiltin(name: string): boolean {
    return this.loadedRecipes ? Object.hasOwn(this.loadedRecipes, name) : BUILTIN_RECIPE_NAMES.includes(name);
  }

  async lock(name: string, waitMs: number, signal?: AbortSignal): Promise<() => Promise<void>> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    await mkdir(this.locksDir, { recursive: true, mode: 0o700 });
    return acquireLock(path.join(this.locksDir, `${name}.lock`), { what: `image '${name}'`, waitMs, signal, log: this.log });
  }

  async withLock<T>(name: string, waitMs: number, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    const release = await this.lock(name, waitMs, signal);
    try {
      return await fn();
    } finally {
      await release();
    }
  }

  /** Runs `fn` with a fresh staging dir, always removed afterwards; maps ENOSPC to a clear error. */
  async inStaging<T>(kind: string, name: string, what: string, fn: (stage: string) => Promise<T>): Promise<T> {
    const stage = await this.makeStaging(kind, name);
    try {
      return await fn(stage);
    } catch (err) {
      throw noSpace(err, what, this.root);
    } finally {
      await rm(stage, { recursive: true, force: true });
    }
  }

  /** Creates `.tmp/<kind>-<name>-<pid>-<random>`; also clears staging left by dead processes. */
  async makeStaging(kind: string, name: string): Promise<string> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    await mkdir(this.tmpDir, { recursive: true, mode: 0o700 });
    await this.cleanStaleStaging();
    const dir = path.join(this.tmpDir, `${kind}-${name}-${process.pid}-${randomBytes(4).toString('hex')}`);
    await mkdir(dir, { mode: 0o700 });
    return dir;
  }

  /** Moves a directory out of sight first, so a crash mid-delete leaves no half image. */
  async discardDir(dir: string): Promise<void> {
    const trash = await this.makeStaging('trash', path.basename(dir));
    await rm(trash, { recursive: true });
    await rename(dir, trash);
    await rm(trash, { recursive: true, force: true });
  }

  private async cleanStaleStaging(): Promise<void> {
    for (const entry of await readdir(this.tmpDir).catch(() => [] as string[])) {
      const m = /-(\d+)-[0-9a-f]{8}$/.exec(entry);
      if (m && !pidAlive(Number(m[1]))) {
        this.log.log({ kind: 'step', level: 'debug', msg: `removing staging ${entry} left by a dead process` });
        await rm(path.join(this.tmpDir, entry), { recursive: true, force: true });
      }
    }
  }
}
