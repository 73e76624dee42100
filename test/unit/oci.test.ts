/**
 * OCI archives of images (src/images/oci.ts, oci-export.ts): the JSON (media types, digests and
 * sizes that match the blobs, diff_id = sha256 of the uncompressed layer), the containerDisk
 * layout, determinism, and the CLI. Real tar and qemu-img on small synthetic images; no root.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageCommandOn } from '../../src/cli/commands/image.js';
import { createProcessRunner } from '../../src/host/process.js';
import {
  descriptorOf,
  imageConfigJson,
  indexJson,
  layerTarArgs,
  manifestJson,
  OCI_MEDIA_TYPES,
  ociArchitecture,
  refProblem,
  refTag,
  repoComponent,
} from '../../src/images/oci.js';
import { containerDiskFile, exportRef } from '../../src/images/oci-export.js';
import { ImageStore } from '../../src/images/store.js';
import type { ImageMeta } from '../../src/images/types.js';
import { memoryLogger } from '../../src/util/log.js';

const MiB = 1024 * 1024;
const top = mkdtempSync(path.join(os.tmpdir(), 'falcon-oci-'));
const root = path.join(top, 'store');
const log = memoryLogger();
const store = new ImageStore({ root, runner: createProcessRunner(), log, recipes: {} });

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** A raw disk with an MBR signature and some data. */
function makeRaw(file: string, fill: number): string {
  const buf = Buffer.alloc(4 * MiB);
  buf.fill(fill, 4096, 65536);
  buf[510] = 0x55;
  buf[511] = 0xaa;
  writeFileSync(file, buf);
  return file;
}

interface Unpacked {
  dir: string;
  index: { schemaVersion: number; mediaType: string; manifests: { mediaType: string; digest: string; size: number; platform: unknown; annotations: Record<string, string> }[] };
  manifest: { schemaVersion: number; mediaType: string; config: { mediaType: string; digest: string; size: number }; layers: { mediaType: string; digest: string; size: number }[] };
  config: { architecture: string; os: string; config: { Labels?: Record<string, string> }; rootfs: { type: string; diff_ids: string[] } };
  blob(digest: string): Buffer;
  /** `tar -tv` of the (uncompressed) layer, one line per entry. */
  layerListing: string[];
  layerTar: Buffer;
}

function unpack(archive: string): Unpacked {
  const dir = mkdtempSync(path.join(top, 'unpacked-'));
  execFileSync('tar', ['-xf', archive, '-C', dir]);
  const blob = (d: string) => readFileSync(path.join(dir, 'blobs', 'sha256', d.replace(/^sha256:/, '')));
  const index = JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8')) as Unpacked['index'];
  const manifest = JSON.parse(blob(index.manifests[0]!.digest).toString('utf8')) as Unpacked['manifest'];
  const config = JSON.parse(blob(manifest.config.digest).toString('utf8')) as Unpacked['config'];
  const layer = blob(manifest.layers[0]!.digest);
  const layerTar = manifest.layers[0]!.mediaType === OCI_MEDIA_TYPES.layerGzip ? gunzipSync(layer) : layer;
  const tarFile = path.join(dir, 'layer.tar');
  writeFileSync(tarFile, layerTar);
  const layerListing = execFileSync('tar', ['-tvf', tarFile, '--numeric-owner', '--full-time'], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } })
    .trim()
    .split('\n');
  return { dir, index, manifest, config, blob, layerListing, layerTar };
}

beforeAll(async () => {
  const raw = makeRaw(path.join(top, 'disk.raw'), 0x11);
  const kernel = path.join(top, 'vmlinuz');
  writeFileSync(kernel, 'KERNEL');
  const initrd = path.join(top, 'initrd.img');
  writeFileSync(initrd, 'INITRD');
  await store.import('small', raw, { kernel, initrd, cmdline: 'console=ttyS0', exec: 'agent' });
  await store.import('fw', makeRaw(path.join(top, 'disk2.raw'), 0x22), { firmware: 'uefi' });
});
afterAll(async () => {
  await rm(top, { recursive: true, force: true });
});

describe('OCI JSON', () => {
  const platform = { architecture: 'amd64', os: 'linux' };
  const layer = descriptorOf(OCI_MEDIA_TYPES.layerGzip, Buffer.from('layer bytes'));
  const config = descriptorOf(OCI_MEDIA_TYPES.config, imageConfigJson(platform, ['sha256:' + 'a'.repeat(64)]));

  it('descriptors carry the sha256 and size of the blob', () => {
    expect(layer).toEqual({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${sha256('layer bytes')}`, size: 11 });
  });

  it('the config has the platform, the diff_ids and no timestamp', () => {
    const c = JSON.parse(imageConfigJson(platform, ['sha256:' + 'b'.repeat(64)], { Entrypoint: ['/x'] }).toString()) as Record<string, unknown>;
    expect(c).toEqual({ architecture: 'amd64', os: 'linux', config: { Entrypoint: ['/x'] }, rootfs: { type: 'layers', diff_ids: ['sha256:' + 'b'.repeat(64)] } });
    expect(c).not.toHaveProperty('created');
  });

  it('the manifest names the config and layers with their media types; annotations sorted', () => {
    const m = JSON.parse(manifestJson(config, [layer], { z: '1', a: '2' }).toString()) as Record<string, unknown>;
    expect(m).toEqual({ schemaVersion: 2, mediaType: OCI_MEDIA_TYPES.manifest, config, layers: [layer], annotations: { a: '2', z: '1' } });
    expect(Object.keys(m.annotations as object)).toEqual(['a', 'z']);
  });

  it('the index has one entry per reference: the full name for containerd, the tag for OCI tools', () => {
    const manifest = descriptorOf(OCI_MEDIA_TYPES.manifest, manifestJson(config, [layer]));
    const i = JSON.parse(indexJson(manifest, platform, ['falcon.local/falcon-node:0.1.0-abc', 'falcon.local/falcon-node:0.1.0']).toString()) as Unpacked['index'];
    expect(i.schemaVersion).toBe(2);
    expect(i.mediaType).toBe(OCI_MEDIA_TYPES.index);
    expect(i.manifests.map((m) => m.annotations)).toEqual([
      { 'io.containerd.image.name': 'falcon.local/falcon-node:0.1.0-abc', 'org.opencontainers.image.ref.name': '0.1.0-abc' },
      { 'io.containerd.image.name': 'falcon.local/falcon-node:0.1.0', 'org.opencontainers.image.ref.name': '0.1.0' },
    ]);
    for (const m of i.manifests) expect(m).toMatchObject({ mediaType: OCI_MEDIA_TYPES.manifest, digest: manifest.digest, size: manifest.size, platform });
  });

  it('references are registry/repository:tag in lower case', () => {
    for (const good of ['falcon.local/images/tiny:40c7b5b6665e', 'falcon.local/falcon-node:0.1.0', 'localhost:5000/a/b_c:v1', 'falcon.local/x:latest']) expect(refProblem(good), good).toBeUndefined();
    for (const bad of ['tiny', 'tiny:latest', 'falcon.local/Tiny:v1', 'falcon.local/tiny', 'falcon.local/tiny:', 'falcon.local/tiny:-x', 'import-2026-12-02:pause']) expect(refProblem(bad), bad).toBeDefined();
    expect(refTag('localhost:5000/a:v1')).toBe('v1');
  });

  it('image names become repository components', () => {
    expect(repoComponent('tiny')).toBe('tiny');
    expect(repoComponent('Router.V2')).toBe('router.v2');
    expect(repoComponent('debian-12')).toBe('debian-12');
    expect(repoComponent('a._b')).toBe('a-b');
    expect(repoComponent('a__b')).toBe('a__b');
    expect(repoComponent('a..b-')).toBe('a-b');
    for (const n of ['tiny', 'Router.V2', 'a._b', 'x-', 'A.b_c-1']) expect(refProblem(`falcon.local/images/${repoComponent(n)}:v1`), n).toBeUndefined();
    expect(exportRef({ name: 'Debian-12', sha256: 'f'.repeat(64) })).toBe('falcon.local/images/debian-12:ffffffffffff');
  });

  it('architectures in OCI terms', () => {
    expect(ociArchitecture('x64')).toBe('amd64');
    expect(ociArchitecture('arm64')).toBe('arm64');
  });

  it('GNU tar is asked for a deterministic layer', () => {
    const args = layerTarArgs({ dir: '/d', owner: { uid: 107, gid: 107 }, mode: 'u=rwX,go=rX', exclude: ['dev/*'] }, ['disk'], '/o.tar');
    for (const a of ['--sort=name', '--mtime=@0', '--numeric-owner', '--owner=107', '--group=107', '--format=posix', '--mode=u=rwX,go=rX', '--anchored', '--exclude=dev/*']) expect(args).toContain(a);
    expect(args.find((a) => a.startsWith('--pax-option'))).toMatch(/delete=atime,delete=ctime/);
    expect(args.slice(-2)).toEqual(['--', 'disk']);
  });
});

describe('exportOci', () => {
  it('writes an OCI layout whose digests and sizes match its blobs', async () => {
    const out = path.join(top, 'small.tar');
    const r = await store.exportOci('small', out);
    const u = unpack(out);
    expect(JSON.parse(readFileSync(path.join(u.dir, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    expect(readdirSync(u.dir).sort()).toEqual(['blobs', 'index.json', 'layer.tar', 'oci-layout']);
    // Every blob is named by its own sha256.
    for (const f of readdirSync(path.join(u.dir, 'blobs', 'sha256'))) expect(sha256(u.blob(f))).toBe(f);
    const entry = u.index.manifests[0]!;
    expect(u.index.manifests).toHaveLength(1);
    expect(entry).toMatchObject({ mediaType: OCI_MEDIA_TYPES.manifest, digest: r.digest, size: u.blob(r.digest).length, platform: { architecture: ociArchitecture(), os: 'linux' } });
    expect(entry.annotations).toEqual({ 'io.containerd.image.name': r.ref, 'org.opencontainers.image.ref.name': refTag(r.ref) });
    expect(u.manifest.mediaType).toBe(OCI_MEDIA_TYPES.manifest);
    expect(u.manifest.config).toEqual({ mediaType: OCI_MEDIA_TYPES.config, digest: r.config.digest, size: u.blob(r.config.digest).length });
    expect(u.manifest.layers).toEqual([{ mediaType: OCI_MEDIA_TYPES.layerGzip, digest: r.layers[0]!.digest, size: u.blob(r.layers[0]!.digest).length }]);
    // diff_id: the sha256 of the uncompressed layer.
    expect(u.config.rootfs).toEqual({ type: 'layers', diff_ids: [`sha256:${sha256(u.layerTar)}`] });
    expect(r.diffIds).toEqual(u.config.rootfs.diff_ids);
    expect(u.config).toMatchObject({ architecture: ociArchitecture(), os: 'linux' });
    expect(r).toMatchObject({ path: out, size: readFileSync(out).length, image: 'small', flattened: false });
    const meta = (await store.get('small')).meta;
    expect(r.ref).toBe(`falcon.local/images/small:${meta.sha256.slice(0, 12)}`);
    // Nothing left in staging, no temp file beside the archive.
    expect(readdirSync(path.join(root, '.tmp'))).toEqual([]);
    expect(readdirSync(top).filter((f) => f.includes('.tmp'))).toEqual([]);
  });

  it('the layer is the containerDisk layout: /disk/<name>.qcow2, meta.json, the boot files; 107:107, mtime 0', async () => {
    const out = path.join(top, 'small-layout.tar');
    await store.exportOci('small', out);
    const u = unpack(out);
    const rows = u.layerListing.map((l) => l.split(/\s+/));
    // mode owner size date time name
    // The boot files keep the names meta.json gives them (import calls them kernel and initrd).
    expect(rows.map((r) => r[5])).toEqual(['disk/', 'disk/initrd', 'disk/kernel', 'disk/meta.json', 'disk/small.qcow2']);
    expect(rows.map((r) => r[0])).toEqual(['drwxr-xr-x', '-rw-r--r--', '-rw-r--r--', '-rw-r--r--', '-rw-r--r--']);
    for (const r of rows) expect(r[1]).toBe('107/107');
    for (const r of rows) expect(`${r[3]} ${r[4]}`).toBe('1970-01-01 00:00:00');
    const x = path.join(u.dir, 'x');
    mkdirSync(x);
    execFileSync('tar', ['-xf', path.join(u.dir, 'layer.tar'), '-C', x]);
    const img = await store.get('small');
    const meta = JSON.parse(readFileSync(path.join(x, 'disk/meta.json'), 'utf8')) as ImageMeta;
    expect(meta).toEqual({ ...img.meta, disk: containerDiskFile('small') });
    expect(sha256(readFileSync(path.join(x, 'disk/small.qcow2')))).toBe(img.meta.sha256);
    expect(readFileSync(path.join(x, 'disk/kernel'), 'utf8')).toBe('KERNEL');
    expect(readFileSync(path.join(x, 'disk/initrd'), 'utf8')).toBe('INITRD');
    expect(u.config.config.Labels).toMatchObject({ 'io.falcon.image.name': 'small', 'io.falcon.image.disk': '/disk/small.qcow2', 'io.falcon.image.boot': 'direct' });
  });

  it('is deterministic: the same image gives the same bytes and digest, another image another', async () => {
    const a = await store.exportOci('small', path.join(top, 'a.tar'));
    const b = await store.exportOci('small', path.join(top, 'b.tar'));
    expect(b.digest).toBe(a.digest);
    expect(b.layers).toEqual(a.layers);
    expect(sha256(readFileSync(path.join(top, 'b.tar')))).toBe(sha256(readFileSync(path.join(top, 'a.tar'))));
    const c = await store.exportOci('fw', path.join(top, 'c.tar'));
    expect(c.digest).not.toBe(a.digest);
    // A firmware image has no boot files.
    expect(unpack(path.join(top, 'c.tar')).layerListing.map((l) => l.split(/\s+/)[5])).toEqual(['disk/', 'disk/fw.qcow2', 'disk/meta.json']);
  });

  it('an uncompressed layer: media type tar, digest = diff_id; a reference of your own', async () => {
    const r = await store.exportOci('small', path.join(top, 'plain.tar'), { compression: 'none', ref: 'falcon.local/mine/small:v1' });
    expect(r.layers[0]!.mediaType).toBe(OCI_MEDIA_TYPES.layerTar);
    expect(r.layers[0]!.digest).toBe(r.diffIds[0]);
    const u = unpack(path.join(top, 'plain.tar'));
    expect(u.index.manifests[0]!.annotations['io.containerd.image.name']).toBe('falcon.local/mine/small:v1');
    expect(`sha256:${sha256(u.layerTar)}`).toBe(r.diffIds[0]);
  });

  it('flattens a disk that has a backing file', async () => {
    // The store keeps standalone disks; an image dir made by hand can still have an overlay.
    const base = await store.get('fw');
    const dir = path.join(root, 'child');
    mkdirSync(dir);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base.disk, '-F', 'qcow2', path.join(dir, 'disk.qcow2')]);
    writeFileSync(path.join(dir, 'meta.json'), JSON.stringify({ ...base.meta, name: 'child' }));
    const r = await store.exportOci('child', path.join(top, 'child.tar'));
    expect(r.flattened).toBe(true);
    const u = unpack(path.join(top, 'child.tar'));
    const x = path.join(u.dir, 'x');
    mkdirSync(x);
    execFileSync('tar', ['-xf', path.join(u.dir, 'layer.tar'), '-C', x]);
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', path.join(x, 'disk/child.qcow2')], { encoding: 'utf8' })) as Record<string, unknown>;
    expect(info['backing-filename']).toBeUndefined();
    const meta = JSON.parse(readFileSync(path.join(x, 'disk/meta.json'), 'utf8')) as ImageMeta;
    expect(meta.sha256).toBe(sha256(readFileSync(path.join(x, 'disk/child.qcow2'))));
  });

  it('refuses what it cannot do, before writing anything', async () => {
    await expect(store.exportOci('nope', path.join(top, 'n.tar'))).rejects.toMatchObject({ code: 'IMAGE_NOT_FOUND' });
    await expect(store.exportOci('small', path.join(top, 'missing-dir', 'n.tar'))).rejects.toMatchObject({ code: 'IMAGE_BAD_OPTION', message: expect.stringMatching(/does not exist/) });
    await expect(store.exportOci('small', top)).rejects.toMatchObject({ code: 'IMAGE_BAD_OPTION', message: expect.stringMatching(/is a folder/) });
    await expect(store.exportOci('small', path.join(top, 'n.tar'), { ref: 'Small:latest' })).rejects.toMatchObject({ code: 'IMAGE_BAD_OPTION' });
    expect(existsSync(path.join(top, 'n.tar'))).toBe(false);
  });

  it('stops when aborted and leaves no archive', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(store.exportOci('small', path.join(top, 'aborted.tar'), { signal: ac.signal })).rejects.toThrow();
    expect(existsSync(path.join(top, 'aborted.tar'))).toBe(false);
  });
});

describe('falcon image export', () => {
  async function falcon(...args: string[]): Promise<{ out: string; err: string }> {
    let out = '';
    let err = '';
    const progressStream = { isTTY: false, write: (s: string) => ((err += s), true) } as unknown as NodeJS.WriteStream;
    const program = new Command('falcon');
    program.addCommand(imageCommandOn(() => ({ store, log, out: (s) => void (out += s), progressStream })));
    const quiet = (c: Command): void => {
      c.exitOverride().configureOutput({ writeErr: () => {} });
      c.commands.forEach(quiet);
    };
    quiet(program);
    await program.parseAsync(['image', ...args], { from: 'user' });
    return { out, err };
  }

  it('--json prints the digest, size and path; progress goes to stderr', async () => {
    const file = path.join(top, 'cli.tar');
    const { out, err } = await falcon('export', 'small', '--oci', file, '--json');
    const j = JSON.parse(out) as { path: string; size: number; digest: string; ref: string; diffId: string };
    expect(j.path).toBe(file);
    expect(j.size).toBe(readFileSync(file).length);
    expect(j.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(j.ref).toMatch(/^falcon\.local\/images\/small:[0-9a-f]{12}$/);
    expect(err).toMatch(/packing the layer: 100%/);
    expect(err).toMatch(/compressing the layer: 100%/);
    expect(err).toMatch(/writing the archive: 100%/);
    const plain = await falcon('export', 'small', '--oci', file);
    expect(plain.out).toContain(`exported image 'small' to ${file}`);
    expect(plain.out).toContain(`ctr -n k8s.io images import ${file}`);
  });

  it('needs --oci', async () => {
    await expect(falcon('export', 'small')).rejects.toMatchObject({ code: 'commander.missingMandatoryOptionValue' });
  });
});
