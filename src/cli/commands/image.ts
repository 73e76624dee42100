/**
 * `falcon image ...`: list, inspect, build, rm, import, pull and export base images, and
 * build-node (the falcon-node image of the Kubernetes backend).
 * Commands throw; the CLI's top level prints err.message and exits non-zero.
 */
import { Command, Option } from 'commander';
import type { SingleBar } from 'cli-progress';
import { createProcessRunner, type ProcessRunner } from '../../host/process.js';
import type { ImageStore, ImportOptions, OciProgress, StoredImage, StoreProgress } from '../../images/store.js';
import type { NodeImageProgress } from '../../k8s/node-image.js';
import { formatBytes } from '../../images/helpers.js';
import type { ExecMethod } from '../../images/types.js';
import type { Logger } from '../../util/log.js';
import type { CommandContext } from '../context.js';

/** What the image subcommands work on: an image store, not a topology. */
export interface ImageStoreTarget {
  store: ImageStore;
  log: Logger;
  signal?: AbortSignal;
  /** Standard output; default process.stdout. */
  out?: (text: string) => void;
  /** Where progress goes; default process.stderr. */
  progressStream?: NodeJS.WriteStream;
  /** Runs host tools for build-node; default a new one logging to `log`. */
  proc?: ProcessRunner;
}

type Target = () => ImageStoreTarget;

/** The `image` command with its subcommands, on the image store of the command's runner. */
export function imageCommand(ctx: CommandContext): Command {
  return imageCommandOn(() => {
    const r = ctx.runner();
    return { store: r.store, log: r.log, proc: r.proc, out: (s) => ctx.stdout(s) };
  });
}

/** The `image` command on an image store alone (tests); `target` is called when a subcommand runs. */
export function imageCommandOn(target: Target): Command {
  const cmd = new Command('image').description('manage base images (the image store)');
  for (const add of [listCommand, inspectCommand, buildCommand, rmCommand, importCommand, pullCommand, exportCommand, buildNodeCommand]) add(cmd, target);
  return cmd;
}

const out = (c: ImageStoreTarget, s: string) => (c.out ?? ((t: string) => void process.stdout.write(t)))(s);

function listCommand(cmd: Command, ctx: Target): void {
  cmd
    .command('list')
    .alias('ls')
    .description('list the images in the store')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const c = ctx();
      const images = await c.store.list();
      if (opts.json) return out(c, JSON.stringify(images.map(jsonImage), null, 2) + '\n');
      if (!images.length) {
        const builtins = c.store.builtinNames();
        return out(
          c,
          `No images in ${c.store.root}. Build one with \`falcon image build ${builtins.includes('tiny') ? 'tiny' : (builtins[0] ?? 'NAME')}\`` +
            (builtins.length ? ` (built-ins: ${builtins.join(', ')})` : '') +
            ', or use `falcon image import` / `falcon image pull`.\n',
        );
      }
      const rows = images.map((i) => [
        i.name,
        formatBytes(i.meta.sizeBytes),
        formatBytes(i.meta.virtualSizeBytes),
        bootLabel(i),
        origin(i),
        i.meta.createdAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
      ]);
      out(c, table(['NAME', 'SIZE', 'VIRTUAL', 'BOOT', 'FROM', 'CREATED'], rows));
    });
}

function inspectCommand(cmd: Command, ctx: Target): void {
  cmd
    .command('inspect')
    .description('show everything about an image, including the topologies using it')
    .argument('<name>', 'image name')
    .option('--json', 'print JSON')
    .action(async (name: string, opts: { json?: boolean }) => {
      const c = ctx();
      const i = await c.store.inspect(name, c.signal);
      if (opts.json) {
        return out(
          c,
          JSON.stringify({ ...jsonImage(i), builtin: i.builtin, staleRecipe: i.staleRecipe, usedBy: i.usedBy, info: i.info.raw }, null, 2) + '\n',
        );
      }
      const m = i.meta;
      const lines: [string, string][] = [
        ['name', m.name],
        ['directory', i.dir],
        ['disk', i.disk],
        ['size', `${formatBytes(m.sizeBytes)} (${m.sizeBytes} bytes)`],
        ['virtual size', `${formatBytes(m.virtualSizeBytes)} (${m.virtualSizeBytes} bytes)`],
        ['sha256', m.sha256],
        ['boot', bootLabel(i) + (m.boot.method === 'direct' ? `: kernel ${m.boot.kernel}${m.boot.initrd ? `, initrd ${m.boot.initrd}` : ''}, cmdline "${m.boot.cmdline}"` : '')],
        ['exec', m.exec + (m.login ? ` (login ${m.login.user})` : '')],
        ['created', m.createdAt],
      ];
      if (m.parent) lines.push(['parent', m.parent]);
      if (m.recipe) {
        lines.push([
          'recipe',
          `${m.recipe.name} v${m.recipe.version}` + (i.staleRecipe ? ` (outdated: current is v${i.staleRecipe.current}; rebuild with --force)` : ''),
        ]);
      }
      if (m.packages?.length) lines.push(['packages', m.packages.join(', ')]);
      if (m.description) lines.push(['description', m.description]);
      lines.push(['used by', i.usedBy.length ? i.usedBy.map((u) => `${u.topology}/${u.node}`).join(', ') : 'no topology']);
      const w = Math.max(...lines.map(([k]) => k.length));
      out(c, lines.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n') + '\n');
    });
}

function buildCommand(cmd: Command, ctx: Target): void {
  cmd
    .command('build')
    .description('build a built-in image from its recipe')
    .argument('<name>', 'built-in image (recipe) name')
    .option('--as <image>', 'store the result under another name')
    .option('--packages <list>', 'extra Debian packages to install, with their dependencies (comma-separated; debian-12 only)')
    .option('--force', 'replace an existing image of that name')
    .action(async (name: string, opts: { as?: string; packages?: string; force?: boolean }) => {
      const c = ctx();
      const packages = opts.packages?.split(/[\s,]+/).filter((p) => p !== '');
      // The store logs the build's progress and time; stdout gets where the image is.
      const img = await c.store.build(name, { name: opts.as, packages, force: opts.force, signal: c.signal });
      out(c, `${img.name}: ${img.disk}\n`);
    });
}

function rmCommand(cmd: Command, ctx: Target): void {
  cmd
    .command('rm')
    .alias('remove')
    .description('remove an image (refused while a topology uses it)')
    .argument('<name>', 'image name')
    .option('--force', 'remove even if topologies use it (their node disks stop working)')
    .action(async (name: string, opts: { force?: boolean }) => {
      const c = ctx();
      await c.store.remove(name, { force: opts.force, signal: c.signal });
      out(c, `removed image '${name}'\n`);
    });
}

function importCommand(cmd: Command, ctx: Target): void {
  addBootOptions(
    cmd
      .command('import')
      .description('add a disk image file (qcow2, raw or raw.xz) to the store')
      .argument('<name>', 'name for the new image')
      .argument('<file>', 'image file'),
  ).action(async (name: string, file: string, opts: BootFlags) => {
    const c = ctx();
    const progress = await progressReporter(c);
    try {
      const img = await c.store.import(name, file, { ...importOptions(opts), signal: c.signal, onProgress: progress.update });
      progress.stop();
      out(c, `imported image '${img.name}' (${formatBytes(img.meta.virtualSizeBytes)} virtual, ${bootLabel(img)} boot)\n`);
    } finally {
      progress.stop();
    }
  });
}

function pullCommand(cmd: Command, ctx: Target): void {
  addBootOptions(
    cmd
      .command('pull')
      .description('download an image over HTTP(S) and add it to the store')
      .argument('<name>', 'name for the new image')
      .argument('<url>', 'http:// or https:// URL of a qcow2, raw or raw.xz image')
      .option('--sha256 <hex>', 'expected SHA-256 of the downloaded file (checked before the image is added)'),
  ).action(async (name: string, url: string, opts: BootFlags & { sha256?: string }) => {
    const c = ctx();
    const progress = await progressReporter(c);
    try {
      const img = await c.store.pull(name, url, { ...importOptions(opts), sha256: opts.sha256, signal: c.signal, onProgress: progress.update });
      progress.stop();
      out(c, `pulled image '${img.name}' (sha256 of the disk ${img.meta.sha256})\n`);
    } finally {
      progress.stop();
    }
  });
}

function exportCommand(cmd: Command, ctx: Target): void {
  cmd
    .command('export')
    .description('write an image as an OCI image archive (KubeVirt containerDisk layout) for ctr images import')
    .argument('<name>', 'image name')
    .requiredOption('--oci <file>', 'the OCI archive (tar) to write')
    .option('--ref <ref>', 'the reference it is imported as (default falcon.local/images/NAME:<first 12 of the disk sha256>)')
    .option('--no-compress', 'store the layer as a plain tar instead of gzip')
    .option('--json', 'print the digest, size, path and reference as JSON')
    .action(async (name: string, opts: { oci: string; ref?: string; compress: boolean; json?: boolean }) => {
      const c = ctx();
      const progress = progressLines(c);
      const r = await c.store.exportOci(name, opts.oci, { ref: opts.ref, compression: opts.compress ? 'gzip' : 'none', signal: c.signal, onProgress: progress });
      const summary = { image: r.image, path: r.path, size: r.size, digest: r.digest, ref: r.ref, layer: r.layers[0], diffId: r.diffIds[0], flattened: r.flattened, seconds: r.seconds };
      if (opts.json) return out(c, JSON.stringify(summary, null, 2) + '\n');
      out(c, `exported image '${r.image}' to ${r.path} (${formatBytes(r.size)}): ${r.ref} ${r.digest}\nimport it with: ctr -n k8s.io images import ${r.path}\n`);
    });
}

function buildNodeCommand(cmd: Command, ctx: Target): void {
  cmd
    .command('build-node')
    .description('build the falcon-node image (for topologies on Kubernetes) from Debian packages and this Falcon, offline; cached until its inputs change')
    .option('--out <file>', 'also write the OCI archive here')
    .option('--force', 'rebuild even when the cached image is current')
    .option('--json', 'print the digest, size, paths and references as JSON')
    .action(async (opts: { out?: string; force?: boolean; json?: boolean }) => {
      const c = ctx();
      const runner = c.proc ?? createProcessRunner(c.log);
      const { buildNodeImage } = await import('../../k8s/node-image.js');
      const r = await buildNodeImage({ store: c.store, runner, log: c.log, out: opts.out, force: opts.force, signal: c.signal, onProgress: progressLines(c) });
      if (opts.json) return out(c, JSON.stringify(r, null, 2) + '\n');
      const file = r.out ?? r.path;
      out(c, `falcon-node image ${r.refs.join(', ')} (${formatBytes(r.size)}, ${r.cached ? 'cached' : `built in ${r.seconds.toFixed(0)} s`}): ${file}\nimport it with: ctr -n k8s.io images import ${file}\n`);
    });
}

/** Progress of an export or node image build as lines: when a phase starts and ends, and every 5 s. */
function progressLines(c: ImageStoreTarget): (p: OciProgress | NodeImageProgress) => void {
  const stream = c.progressStream ?? process.stderr;
  const what = { layer: 'packing the layer', compress: 'compressing the layer', archive: 'writing the archive' } as const;
  const ended = new Set<string>();
  let phase = '';
  let last = 0;
  return (p) => {
    // The builder logs mmdebstrap's own lines.
    if (p.phase === 'debian' || ended.has(p.phase)) return;
    const now = Date.now();
    const end = p.total !== undefined && p.done >= p.total;
    if (p.phase === phase && !end && now - last < 5_000) return;
    if (end) ended.add(p.phase);
    phase = p.phase;
    last = now;
    const pct = p.total ? ` ${Math.floor((p.done / p.total) * 100)}%` : '';
    stream.write(`${what[p.phase]}:${pct} (${formatBytes(p.done)}${p.total ? ` of ${formatBytes(p.total)}` : ''})\n`);
  };
}

interface BootFlags {
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  uefi?: boolean;
  bios?: boolean;
  exec?: ExecMethod;
  loginUser?: string;
}

function addBootOptions(c: Command): Command {
  return c
    .option('--kernel <file>', 'boot this kernel directly (copied into the image)')
    .option('--initrd <file>', 'initrd for --kernel')
    .option('--cmdline <string>', 'kernel command line for --kernel (default "console=ttyS0 root=/dev/vda rw")')
    .addOption(new Option('--uefi', 'boot with UEFI firmware (OVMF)').conflicts(['bios', 'kernel']))
    .addOption(new Option('--bios', 'boot with BIOS firmware (the default)').conflicts(['uefi', 'kernel']))
    .addOption(new Option('--exec <method>', 'how Falcon runs commands in the guest').choices(['agent', 'serial-login']).default('serial-login'))
    .option('--login-user <user>', 'user to log in as on the serial console (default root)');
}

function importOptions(f: BootFlags): ImportOptions {
  const o: ImportOptions = { exec: f.exec };
  if (f.kernel) {
    o.kernel = f.kernel;
    o.initrd = f.initrd;
    o.cmdline = f.cmdline;
  } else {
    // Passed through so the store can say that --initrd/--cmdline need --kernel.
    if (f.initrd) o.initrd = f.initrd;
    if (f.cmdline !== undefined) o.cmdline = f.cmdline;
    o.firmware = f.uefi ? 'uefi' : 'bios';
  }
  if (f.loginUser) o.login = { user: f.loginUser };
  return o;
}

/** A bar on a terminal (cli-progress, loaded only then), a line every few seconds otherwise. */
async function progressReporter(c: ImageStoreTarget): Promise<{ update: (p: StoreProgress) => void; stop: () => void }> {
  const stream = c.progressStream ?? process.stderr;
  const bars = stream.isTTY ? await import('cli-progress') : undefined;
  let bar: SingleBar | undefined;
  let barPhase: StoreProgress['phase'] | undefined;
  let lastLine = 0;
  let lastPhase: string | undefined;
  const finished = new Set<StoreProgress['phase']>();
  const stop = () => {
    bar?.stop();
    bar = undefined;
    barPhase = undefined;
  };
  const update = (p: StoreProgress) => {
    if (stream.isTTY) {
      if (finished.has(p.phase)) return;
      if (barPhase !== p.phase) {
        stop();
        barPhase = p.phase;
        const { Presets, SingleBar } = bars!;
        if (p.phase === 'download') {
          bar = new SingleBar(
            {
              stream,
              format: p.total
                ? 'downloading [{bar}] {percentage}% | {done} of {size} | ETA {eta_formatted}'
                : 'downloading {done}',
              hideCursor: true,
            },
            Presets.shades_classic,
          );
          bar.start(p.total ?? 0, p.done, { done: formatBytes(p.done), size: p.total ? formatBytes(p.total) : '?' });
        } else {
          bar = new SingleBar({ stream, format: 'converting  [{bar}] {percentage}%', hideCursor: true }, Presets.shades_classic);
          bar.start(100, p.percent);
        }
      }
      if (p.phase === 'download') bar?.update(p.done, { done: formatBytes(p.done), size: p.total ? formatBytes(p.total) : '?' });
      else bar?.update(p.percent);
      // Finish the bar at once, before the next log line would be drawn over it.
      if (p.phase === 'download' ? p.total !== undefined && p.done >= p.total : p.percent >= 100) {
        finished.add(p.phase);
        stop();
      }
      return;
    }
    const now = Date.now();
    const final = p.phase === 'download' ? p.total !== undefined && p.done >= p.total : p.percent >= 100;
    const key = `${p.phase}${final ? ':final' : ''}`;
    // A line when a phase starts or ends, and every 5 s in between.
    if (key === lastPhase && (final || now - lastLine < 5_000)) return;
    lastLine = now;
    lastPhase = key;
    const text =
      p.phase === 'download'
        ? `downloading: ${formatBytes(p.done)}${p.total ? ` of ${formatBytes(p.total)} (${Math.floor((p.done / p.total) * 100)}%)` : ''}`
        : `converting: ${Math.floor(p.percent)}%`;
    stream.write(text + '\n');
  };
  return { update, stop };
}

/** Where an image came from: its parent image, or its recipe and extra packages. */
function origin(i: StoredImage): string {
  const m = i.meta;
  if (m.parent) return m.parent;
  if (!m.recipe) return '-';
  return `${m.recipe.name}` + (m.packages?.length ? ` +${m.packages.join(',')}` : '');
}

function bootLabel(i: StoredImage): string {
  return i.meta.boot.method === 'direct' ? 'direct' : i.meta.boot.firmware;
}

function jsonImage(i: StoredImage): Record<string, unknown> {
  return { ...i.meta, dir: i.dir, diskPath: i.disk, kernelPath: i.kernel, initrdPath: i.initrd };
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, col) => Math.max(h.length, ...rows.map((r) => r[col]!.length)));
  const line = (r: string[]) => r.map((cell, col) => (col === r.length - 1 ? cell : cell.padEnd(widths[col]!))).join('  ');
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}
