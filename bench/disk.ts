/**
 * Section `disk`: node disk creation through ImageStore.createNodeDisk, as an overlay and as a
 * full copy, beside `cp --reflink=never` of the image's disk file, for the tiny image and for a
 * synthetic 4 GiB image full of data. `sync` runs (untimed) between iterations so dirty pages
 * of one copy do not slow the next; the source is read once first so both sides copy from the
 * page cache; the two alternate in ABBA order.
 */
import { promises as fs } from 'node:fs';
import { open } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fmtBytes, fmtMs, ratio, stats, timed, withTimeout, type Ctx, type Row } from './lib.js';

const TOPO = 'bench_disk';
export const BIG_IMAGE = 'bench-big4g';
const BIG_BYTES = 4 * 2 ** 30;
const MiB = 2 ** 20;

/** A raw 4 GiB disk full of incompressible, non-repeating data, imported into the store. */
async function ensureBigImage(ctx: Ctx): Promise<{ created: boolean; ms: number }> {
  if (await ctx.store.has(BIG_IMAGE)) return { created: false, ms: 0 };
  const raw = path.join(ctx.workDir, 'big.raw');
  const t0 = performance.now();
  ctx.progress(`writing a ${fmtBytes(BIG_BYTES)} raw disk of data (once; kept as image "${BIG_IMAGE}" only with --keep-big-image)`);
  const fh = await open(raw, 'w', 0o600);
  try {
    const block = randomBytes(MiB);
    // An MBR signature, so the store accepts the raw file as a disk.
    block[510] = 0x55;
    block[511] = 0xaa;
    for (let i = 0; i < BIG_BYTES / MiB; i++) {
      ctx.signal.throwIfAborted();
      if (i > 0) block.writeUInt32LE(i, 0); // every MiB differs
      await fh.write(block, 0, MiB, i * MiB);
      if (i % 1024 === 1023) ctx.progress(`  ${fmtBytes((i + 1) * MiB)} written`);
    }
  } finally {
    await fh.close();
  }
  ctx.progress(`importing it with ImageStore.import (raw -> qcow2)`);
  try {
    await ctx.store.import(BIG_IMAGE, raw, { description: 'falcon bench: synthetic 4 GiB of data', signal: ctx.signal });
  } finally {
    await fs.rm(raw, { force: true });
  }
  return { created: true, ms: performance.now() - t0 };
}

async function sync(ctx: Ctx): Promise<void> {
  await ctx.proc.run('sync', [], { timeoutMs: 120_000, signal: ctx.signal });
}

async function measureImage(ctx: Ctx, image: string, counts: { overlay: number; copy: number }): Promise<{ rows: Row[]; data: Record<string, unknown> }> {
  const img = await ctx.store.get(image);
  const size = (await fs.stat(img.disk)).size;
  const clean = () => ctx.store.removeTopologyDisks(TOPO);
  ctx.defer(`remove node disks of ${TOPO}`, clean);
  await clean();
  const overlay: number[] = [];
  const rawOverlay: number[] = [];
  const copy: number[] = [];
  const cp: number[] = [];
  let node = 0;
  const create = (mode: 'overlay' | 'copy') =>
    withTimeout(600_000, `createNodeDisk ${mode} of ${image}`, ctx.signal, (signal) =>
      timed(() => ctx.store.createNodeDisk({ topology: TOPO, node: `n${node++}`, image, mode, signal })),
    );

  ctx.progress(`${image}: ${counts.overlay} x overlay (createNodeDisk) and qemu-img create`);
  for (let i = 0; i < counts.overlay; i++) {
    overlay.push((await create('overlay')).ms);
    const dst = path.join(ctx.workDir, 'overlay.qcow2');
    rawOverlay.push(
      (await timed(() => ctx.proc.run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', img.disk, '-F', 'qcow2', dst], { timeoutMs: 60_000, signal: ctx.signal }))).ms,
    );
    await fs.rm(dst, { force: true });
  }
  await clean();
  // Both sides copy from a source in the page cache: read it once, untimed.
  await ctx.proc.run('sh', ['-c', 'cat -- "$1" > /dev/null', 'sh', img.disk], { timeoutMs: 600_000, signal: ctx.signal });
  await sync(ctx);
  const viaStore = async () => {
    copy.push((await create('copy')).ms);
    await clean();
    await sync(ctx);
  };
  const viaCp = async () => {
    const dst = path.join(ctx.workDir, 'copy.qcow2');
    cp.push(
      (
        await withTimeout(600_000, `cp of ${image}`, ctx.signal, (signal) =>
          timed(() => ctx.proc.run('cp', ['--reflink=never', img.disk, dst], { timeoutMs: 600_000, signal })),
        )
      ).ms,
    );
    await fs.rm(dst, { force: true });
    await sync(ctx);
  };
  for (let i = 0; i < counts.copy; i++) {
    // ABBA: the first big write of a series was the slow one here, whichever tool made it.
    ctx.progress(`${image}: full copy ${i + 1}/${counts.copy}: createNodeDisk(copy) and cp --reflink=never (${fmtBytes(size)})`);
    if (i % 2) {
      await viaCp();
      await viaStore();
    } else {
      await viaStore();
      await viaCp();
    }
  }
  const s = { overlay: stats(overlay), qemuImgCreate: stats(rawOverlay), copy: stats(copy), cp: stats(cp) };
  const rows: Row[] = [
    {
      section: 'disk',
      measure: `${image} (${fmtBytes(size)} file): overlay node disk (median of ${s.overlay.n})`,
      falcon: fmtMs(s.overlay.median),
      baseline: fmtMs(s.cp.median),
      ratio: ratio(s.overlay.median, s.cp.median),
      note: `baseline: cp --reflink=never of the image file; bare \`qemu-img create -b\` ${fmtMs(s.qemuImgCreate.median)}`,
    },
    {
      section: 'disk',
      measure: `${image} (${fmtBytes(size)} file): full-copy node disk (median of ${s.copy.n})`,
      falcon: fmtMs(s.copy.median),
      baseline: fmtMs(s.cp.median),
      ratio: ratio(s.copy.median, s.cp.median),
      note: `Falcon copies the file (reflink where possible); ${(size / MiB / (s.copy.median / 1000)).toFixed(0)} MiB/s vs cp ${(size / MiB / (s.cp.median / 1000)).toFixed(0)} MiB/s`,
    },
  ];
  return { rows, data: { image, fileBytes: size, stats: s, samples: { overlay, rawOverlay, copy, cp } } };
}

export async function diskSection(ctx: Ctx): Promise<{ rows: Row[]; data: Record<string, unknown> }> {
  const tiny = await measureImage(ctx, 'tiny', { overlay: ctx.n(10, 3), copy: ctx.n(5, 2) });
  const hadBig = await ctx.store.has(BIG_IMAGE);
  if (!hadBig && !ctx.opts.keepBigImage)
    ctx.defer(`remove image ${BIG_IMAGE}`, () => ctx.store.remove(BIG_IMAGE, { force: true }).catch(() => {}));
  const made = await withTimeout(1_800_000, `making image ${BIG_IMAGE}`, ctx.signal, () => ensureBigImage(ctx));
  const big = await measureImage(ctx, BIG_IMAGE, { overlay: ctx.n(5, 2), copy: ctx.n(5, 1) });
  return { rows: [...tiny.rows, ...big.rows], data: { tiny: tiny.data, big: { ...big.data, madeInMs: made.created ? made.ms : undefined } } };
}
