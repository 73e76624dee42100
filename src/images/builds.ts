/** Builds: running a built-in recipe (with extra packages, under another name) into the store. */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Catalogue, StoredImage } from './catalogue.js';
import type { StoreContext } from './context.js';
import { ImageError } from './errors.js';
import { BUILD_WAIT_MS, checkName, SHORT_WAIT_MS } from './helpers.js';
import type { Staging } from './staging.js';
import type { ImageMeta, Recipe } from './types.js';

export interface BuildOptions {
  /** Store the result under this name (`--as`); default the recipe's name. */
  name?: string;
  /**
   * Extra packages to install (Debian package names for debian-12), with their dependencies.
   * Recorded in the image's meta.json. Refused by recipes that take none (tiny).
   */
  packages?: readonly string[];
  /** Replace an existing image of that name (refused while a topology uses it). */
  force?: boolean;
  signal?: AbortSignal;
}

/** Debian policy: lower case letters, digits, '+', '-', '.'; at least two; starts alphanumeric. */
const PACKAGE_NAME_RE = /^[a-z0-9][a-z0-9+.-]+$/;

/** Why `name` is not a valid package name, or undefined when it is. */
export function packageNameProblem(name: string): string | undefined {
  if (name.length > 100) return 'it is longer than 100 characters';
  if (!PACKAGE_NAME_RE.test(name)) {
    return "package names are at least two characters of lower-case letters, digits, '+', '-' and '.', starting with a letter or digit";
  }
  return undefined;
}

/**
 * The packages of a build, checked before anything runs: each a valid package name, no
 * duplicates, and a recipe that takes packages.
 */
export function checkBuildPackages(recipe: Recipe, packages: readonly string[] | undefined): string[] {
  const list = [...new Set((packages ?? []).map((p) => p.trim()).filter((p) => p !== ''))];
  for (const p of list) {
    const problem = packageNameProblem(p);
    if (problem) throw new ImageError('IMAGE_BAD_OPTION', `invalid package name '${p}': ${problem}`);
  }
  if (list.length && !recipe.acceptsPackages) {
    throw new ImageError(
      'IMAGE_BAD_OPTION',
      `the ${recipe.name} recipe takes no extra packages (asked for ${list.join(', ')}): ${recipe.description}. ` +
        'Build debian-12 with --packages instead, or import an image that has them.',
    );
  }
  return list;
}

/** The command that builds this image again, as a user would type it. */
export function rebuildCommand(meta: ImageMeta): string {
  return buildCommand(meta.recipe?.name ?? meta.name, meta.name, meta.packages ?? []);
}

function buildCommand(recipe: string, name: string, packages: readonly string[]): string {
  return `falcon image build ${recipe}${name !== recipe ? ` --as ${name}` : ''}${packages.length ? ` --packages ${packages.join(',')}` : ''} --force`;
}

export class Builder {
  private readonly ensuring = new Map<string, Promise<StoredImage>>();

  constructor(
    private readonly ctx: StoreContext,
    private readonly catalogue: Catalogue,
    private readonly staging: Staging,
  ) {}

  async build(recipeName: string, o: BuildOptions = {}): Promise<StoredImage> {
    const recipe = this.recipe(recipeName);
    const name = o.name ?? recipeName;
    checkName(name);
    const packages = checkBuildPackages(recipe, o.packages);
    return this.ctx.withLock(name, SHORT_WAIT_MS, o.signal, async () => {
      if (await this.catalogue.has(name)) {
        if (!o.force) {
          const again = buildCommand(recipeName, name, packages);
          throw new ImageError(
            'IMAGE_EXISTS',
            `image '${name}' already exists in ${this.ctx.root}; rebuild it with \`${again}\` or remove it first with \`falcon image rm ${name}\``,
          );
        }
        await this.catalogue.refuseIfUsed(await this.catalogue.get(name), 'rebuild', o.signal);
      }
      return this.buildLocked(recipe, name, packages, !!o.force, o.signal);
    });
  }

  async ensure(name: string, signal?: AbortSignal): Promise<StoredImage> {
    checkName(name);
    const running = this.ensuring.get(name);
    if (running) return running;
    const p = this.ensureOnce(name, signal).finally(() => this.ensuring.delete(name));
    this.ensuring.set(name, p);
    return p;
  }

  private async ensureOnce(name: string, signal?: AbortSignal): Promise<StoredImage> {
    const existing = await this.catalogue.read(name);
    if (existing) {
      const stale = this.catalogue.staleRecipe(existing.meta);
      if (stale) {
        this.ctx.log.log({
          kind: 'warn',
          msg: `image '${name}' was built by version ${stale.built} of its recipe, the current one is ${stale.current}; rebuild it with \`${rebuildCommand(existing.meta)}\``,
        });
      }
      return existing;
    }
    if (!this.ctx.isBuiltin(name)) throw await this.catalogue.notFound(name);
    return this.ctx.withLock(name, BUILD_WAIT_MS, signal, async () => {
      const built = await this.catalogue.read(name); // another process may have built it while we waited
      return built ?? this.buildLocked(this.recipe(name), name, [], false, signal);
    });
  }

  private recipe(name: string): Recipe {
    if (!this.ctx.isBuiltin(name)) {
      const list = this.ctx.builtinNames();
      throw new ImageError(
        'IMAGE_UNKNOWN_RECIPE',
        `there is no built-in image recipe '${name}'; built-ins: ${list.length ? list.join(', ') : 'none'}. ` +
          `For other images use \`falcon image import ${name} FILE\` or \`falcon image pull ${name} URL\`.`,
      );
    }
    return this.ctx.recipes[name]!;
  }

  private async buildLocked(recipe: Recipe, name: string, packages: string[], replace: boolean, signal?: AbortSignal): Promise<StoredImage> {
    const started = Date.now();
    const extra = packages.length ? ` + ${packages.join(', ')}` : '';
    this.ctx.log.log({ kind: 'step', msg: `building image '${name}' (recipe ${recipe.name} v${recipe.version}${extra}): ${recipe.description}` });
    return this.ctx.inStaging('build', name, `building image '${name}'`, async (stage) => {
      const outDir = path.join(stage, 'image');
      const workDir = path.join(stage, 'work');
      await mkdir(outDir, { mode: 0o700 });
      await mkdir(workDir, { mode: 0o700 });
      await mkdir(this.ctx.cacheDir, { recursive: true, mode: 0o700 });
      const res = await recipe.build({ outDir, workDir, cacheDir: this.ctx.cacheDir, packages, runner: this.ctx.runner, log: this.ctx.log, signal });
      await rm(workDir, { recursive: true, force: true });
      const meta = await this.staging.finishImageDir(outDir, name, {
        disk: res.disk,
        boot: res.boot,
        exec: res.exec,
        login: res.login,
        description: res.description + (packages.length ? `; extra packages: ${packages.join(', ')}` : ''),
        recipe: { name: recipe.name, version: recipe.version },
        packages,
        signal,
      });
      const img = await this.staging.publish(outDir, meta, replace);
      this.ctx.log.log({ kind: 'step', msg: `built image '${name}' in ${((Date.now() - started) / 1000).toFixed(1)} s` });
      return img;
    });
  }
}
