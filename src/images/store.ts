/**
 * The image store: base images (`<root>/<name>/meta.json` + `disk.qcow2` [+ kernel, initrd]),
 * a download cache (`<root>/cache/`), per-topology node disks (`<root>/topo/<topology>/<node>.qcow2`)
 * and staging (`<root>/.tmp/`). Every image is assembled in staging and renamed into place under
 * a per-name lock, so a half-made image is never visible and a failure leaves nothing behind.
 *
 * ImageStore is the façade; the work is done by its parts: catalogue.ts (list, get, inspect,
 * remove), builds.ts (recipes), imports.ts (import, pull), node-disks.ts, staging.ts (staging,
 * commits, snapshots), context.ts (paths, locks, staging directories) and helpers.ts.
 */
import path from 'node:path';
import type { ProcessRunner } from '../host/process.js';
import type { QemuImg } from '../host/qemu-img.js';
import { FalconError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import type { Builder, BuildOptions } from './builds.js';
import { Catalogue, type ImageInspection, type NodeDiskUse, type StoredImage } from './catalogue.js';
import { StoreContext } from './context.js';
import type { Importer, ImportOptions, PullOptions } from './imports.js';
import type { NodeSpec } from '../model/spec.js';
import { NodeDisks, type ExtraDisk, type ExtraDiskOptions, type NodeDiskOptions } from './node-disks.js';
import type { ExportOciOptions, ExportOciResult, OciExporter } from './oci-export.js';
import type { CommitOptions, SnapshotOptions, StagedImage, Staging } from './staging.js';
import type { Recipe } from './types.js';

export { ImageError, type ImageErrorCode } from './errors.js';
export { formatBytes } from './helpers.js';
export type { BuildOptions, CommitOptions, ExtraDisk, ExtraDiskOptions, ImageInspection, ImportOptions, NodeDiskOptions, NodeDiskUse, PullOptions, SnapshotOptions, StagedImage, StoredImage };
export type { StoreProgress } from './imports.js';
export type { ExportOciOptions, ExportOciResult };
export type { OciProgress } from './oci.js';

/** The parts of the store that write images. */
interface Writers {
  staging: Staging;
  builder: Builder;
  importer: Importer;
  oci: OciExporter;
}

export const DEFAULT_IMAGE_DIR = '/var/lib/falcon/images';

export interface ImageStoreOptions {
  /** Default: $FALCON_IMAGE_DIR, else /var/lib/falcon/images. */
  root?: string;
  runner: ProcessRunner;
  log: Logger;
  /** Where FALCON_IMAGE_DIR is read from; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Built-in recipes; default the real ones (tests inject small ones). */
  recipes?: Record<string, Recipe>;
}

export class ImageStore {
  readonly root: string;
  readonly qemuImg: QemuImg;
  private readonly ctx: StoreContext;
  private readonly catalogue: Catalogue;
  private readonly disks: NodeDisks;
  /** Staging, builds, imports and export: loaded by the first call that needs them (a topology's `exec` never does). */
  private writers?: Promise<Writers>;

  constructor(o: ImageStoreOptions) {
    const env = o.env ?? process.env;
    this.root = path.resolve(o.root ?? (env.FALCON_IMAGE_DIR || DEFAULT_IMAGE_DIR));
    // The built-in recipes load with the parts that build (parts()), or for inspect.
    this.ctx = new StoreContext(this.root, o.runner, o.log, o.recipes);
    this.qemuImg = this.ctx.qemuImg;
    this.catalogue = new Catalogue(this.ctx);
    this.disks = new NodeDisks(this.ctx, this.catalogue);
  }

  private parts(): Promise<Writers> {
    return (this.writers ??= (async () => {
      const [{ Staging }, { Builder }, { Importer }, { OciExporter }] = await Promise.all([import('./staging.js'), import('./builds.js'), import('./imports.js'), import('./oci-export.js'), this.ctx.loadRecipes()]);
      const staging = new Staging(this.ctx, this.catalogue);
      return {
        staging,
        builder: new Builder(this.ctx, this.catalogue, staging),
        importer: new Importer(this.ctx, this.catalogue, staging),
        oci: new OciExporter(this.ctx, this.catalogue),
      };
    })());
  }

  // ---- paths ---------------------------------------------------------------------------------

  get cacheDir(): string {
    return this.ctx.cacheDir;
  }
  get topoDir(): string {
    return this.ctx.topoDir;
  }

  imageDir(name: string): string {
    return this.ctx.imageDir(name);
  }

  /** `<root>/topo/<topology>/<node>.qcow2` */
  nodeDiskPath(topology: string, node: string): string {
    return this.disks.nodeDiskPath(topology, node);
  }

  /**
   * `<root>/topo/<topology>/<node>.<disk>.qcow2`: an extra disk (`Topology.disk`), beside the
   * node's boot disk, so `removeTopologyDisks` removes it with the rest.
   *
   * ```ts
   * store.extraDiskPath('lab', 'sled', 'disk0'); // /var/lib/falcon/images/topo/lab/sled.disk0.qcow2
   * ```
   */
  extraDiskPath(topology: string, node: string, disk: string): string {
    return this.disks.extraDiskPath(topology, node, disk);
  }

  /**
   * A node's extra disks in declaration order with their paths: `info`'s `disks`, and what
   * `qemuArgs` takes as `extraDisks`. Creates nothing.
   *
   * ```ts
   * store.extraDisks('lab', spec.nodes[0]); // [{ name: 'disk0', sizeGiB: 10, bus: 'nvme', serial: 'sled-disk0', path: '...' }]
   * ```
   */
  extraDisks(topology: string, node: Pick<NodeSpec, 'name' | 'disks'>): ExtraDisk[] {
    return this.disks.extraDisks(topology, node);
  }

  /** Names of the built-in recipes. */
  builtinNames(): string[] {
    return this.ctx.builtinNames();
  }

  isBuiltin(name: string): boolean {
    return this.ctx.isBuiltin(name);
  }

  // ---- reading -------------------------------------------------------------------------------

  /** All complete images, sorted by name. Directories without a valid meta.json are skipped. */
  list(): Promise<StoredImage[]> {
    return this.catalogue.list();
  }

  /** True when a complete image of that name exists. */
  has(name: string): Promise<boolean> {
    return this.catalogue.has(name);
  }

  /** The image, or an error that lists the images there are and how to get one. */
  get(name: string): Promise<StoredImage> {
    return this.catalogue.get(name);
  }

  /** Everything known about an image, including which node disks use it. */
  inspect(name: string, signal?: AbortSignal): Promise<ImageInspection> {
    return this.catalogue.inspect(name, signal);
  }

  /** Node disks (under topo/) whose backing chain includes the image. */
  usersOf(img: StoredImage, signal?: AbortSignal): Promise<NodeDiskUse[]> {
    return this.catalogue.usersOf(img, signal);
  }

  // ---- building ------------------------------------------------------------------------------

  /**
   * Runs a built-in recipe and stores its result: `build('debian-12', { name: 'router',
   * packages: ['bird2'] })` makes an image `router` with bird2 and its dependencies installed.
   */
  async build(recipeName: string, o: BuildOptions = {}): Promise<StoredImage> {
    return (await this.parts()).builder.build(recipeName, o);
  }

  /**
   * The image `name`, building it first if it is a missing built-in (what launch uses). Concurrent
   * calls share one build; another process building it is waited for.
   */
  async ensure(name: string, signal?: AbortSignal): Promise<StoredImage> {
    return (await this.parts()).builder.ensure(name, signal);
  }

  // ---- import and pull -----------------------------------------------------------------------

  /** Adds a disk image file (qcow2, raw or raw.xz; also vmdk/vdi/vhdx) under `name`. */
  async import(name: string, file: string, o: ImportOptions = {}): Promise<StoredImage> {
    return (await this.parts()).importer.import(name, file, o);
  }

  /** Downloads an image over HTTP(S), verifies its checksum, then imports it. */
  async pull(name: string, url: string, o: PullOptions = {}): Promise<StoredImage> {
    return (await this.parts()).importer.pull(name, url, o);
  }

  // ---- export --------------------------------------------------------------------------------

  /**
   * Writes the image as an OCI image archive in KubeVirt's containerDisk layout (`/disk/<name>.qcow2`,
   * `/disk/meta.json`, a direct-boot image's kernel and initrd; owned 107:107), for
   * `ctr -n k8s.io images import`. Deterministic: the same image gives the same digest.
   *
   * ```ts
   * const r = await store.exportOci('tiny', '/tmp/tiny.oci.tar', { signal });
   * r.digest; // 'sha256:...' (the manifest's), r.ref: 'falcon.local/images/tiny:40c7b5b6665e'
   * ```
   */
  async exportOci(name: string, file: string, o: ExportOciOptions = {}): Promise<ExportOciResult> {
    return (await this.parts()).oci.exportOci(name, file, o);
  }

  // ---- removal -------------------------------------------------------------------------------

  /** Removes an image; refused while a topology's node disk is backed by it, unless `force`. */
  remove(name: string, o: { force?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    return this.catalogue.remove(name, o);
  }

  // ---- node disks ----------------------------------------------------------------------------

  /** Creates a node's disk from an image and returns its path. */
  createNodeDisk(o: NodeDiskOptions): Promise<string> {
    return this.disks.createNodeDisk(o);
  }

  /**
   * Creates extra disk `disk` of a node: a blank qcow2 of `disk.sizeGiB` GiB at `extraDiskPath`.
   * One that exists is left alone, data and size (`created: false`; a size other than the
   * declared one is logged), so disks outlive hyperstop/hyperstart and relaunches until destroy.
   *
   * ```ts
   * const { path, created } = await store.createExtraDisk({ topology: 'lab', node: 'sled', disk: { name: 'disk0', sizeGiB: 10 } });
   * ```
   */
  createExtraDisk(o: ExtraDiskOptions): Promise<{ path: string; created: boolean }> {
    return this.disks.createExtraDisk(o);
  }

  /**
   * Creates every extra disk of a node that does not exist yet (what launch calls) and returns
   * them all with their paths, as `extraDisks` does.
   *
   * ```ts
   * const disks = await store.createExtraDisks('lab', node, signal);
   * qemuArgs({ ...config, extraDisks: disks });
   * ```
   */
  async createExtraDisks(topology: string, node: Pick<NodeSpec, 'name' | 'disks'>, signal?: AbortSignal): Promise<ExtraDisk[]> {
    for (const disk of node.disks ?? []) await this.disks.createExtraDisk({ topology, node: node.name, disk, signal });
    return this.extraDisks(topology, node);
  }

  /**
   * Removes the topology's node disks. With `owner`, only when the folder was claimed by that
   * owner (or by nobody): a same-named topology of another falcon dir keeps its disks.
   */
  removeTopologyDisks(topology: string, owner?: string): Promise<boolean> {
    return this.disks.removeTopologyDisks(topology, owner);
  }

  /** Who (a falcon dir) claimed `topo/<topology>/`, if anyone. */
  topologyDiskOwner(topology: string): Promise<string | undefined> {
    return this.disks.topologyDiskOwner(topology);
  }

  /** Claim `topo/<topology>/` for `owner` (a falcon dir), so other same-named topologies keep out. */
  claimTopologyDisks(topology: string, owner: string): Promise<void> {
    return this.disks.claimTopologyDisks(topology, owner);
  }

  // ---- snapshots -----------------------------------------------------------------------------

  /**
   * Makes a standalone image from a (stopped) node's disk: flattened with `qemu-img convert`, so it
   * depends on neither the base image nor the node. Boot/exec settings come from `parent`.
   */
  async snapshotFromDisk(o: SnapshotOptions): Promise<StoredImage> {
    return (await this.parts()).staging.snapshotFromDisk(o);
  }

  /**
   * Reserves `newName` and returns a staging area whose `disk` someone (QEMU's backup job, or
   * qemu-img) writes; `commit` then adds the image atomically. The name stays locked until
   * commit or discard.
   */
  async stageImage(newName: string, signal?: AbortSignal): Promise<StagedImage> {
    return (await this.parts()).staging.stageImage(newName, signal);
  }

  /** Reserves `newName` and returns the path its disk must be written to (see stageImage). */
  async stagingPathFor(newName: string, signal?: AbortSignal): Promise<string> {
    return (await this.stageImage(newName, signal)).disk;
  }

  /** Commits a disk written to `stagingPathFor(newName)` as a new image. */
  async commitStaged(newName: string, o: CommitOptions): Promise<StoredImage> {
    const s = this.writers && (await this.writers).staging.get(newName);
    if (!s) throw new FalconError('INTERNAL', `no staged image '${newName}': call stagingPathFor('${newName}') first`);
    return s.commit(o);
  }

  /** Throws away a disk staged with `stagingPathFor`. */
  async discardStaged(newName: string): Promise<void> {
    if (this.writers) await (await this.writers).staging.get(newName)?.discard();
  }
}
