/**
 * Checks made before anything is created: the host's prerequisites and the topology's
 * references to the host (mount sources, ISOs, images, interfaces). All problems are reported
 * together, each with its fix.
 */
import { constants, promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import type { TopologyProblem } from '../model/errors.js';
import type { TopologySpec } from '../model/spec.js';
import type { ProcessRunner } from '../host/process.js';
import type { ImageStore } from '../images/store.js';
import { checkNetworkPreflight, detectKernelFeatures, featureProblems, netemReason } from '../host/net.js';
import { validateSpec } from '../model/topology.js';
import { exists } from '../util/fs.js';
import { netContext, type RunContext } from './context.js';
import { switchProgramProblems } from './switches.js';

export interface HostCheck {
  name: string;
  ok: boolean;
  detail: string;
  /** What to do when it is not ok. */
  fix?: string;
  /** A warning only: launch can go on. */
  optional?: boolean;
}

// In errors.ts, which a topology program loads without the checks themselves.
export { PreflightError } from './errors.js';

async function version(proc: ProcessRunner, cmd: string): Promise<string | undefined> {
  try {
    const r = await proc.run(cmd, ['--version'], { timeoutMs: 10_000 });
    return r.stdout.split('\n')[0]!.trim();
  } catch {
    return undefined;
  }
}

function hasNetAdmin(): boolean {
  if (process.getuid?.() === 0) return true;
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const eff = /CapEff:\s*([0-9a-f]+)/.exec(status)?.[1];
    return eff !== undefined && (BigInt(`0x${eff}`) & (1n << 12n)) !== 0n;
  } catch {
    return false;
  }
}

/** The host's prerequisites, each with its fix. */
export async function hostChecks(proc: ProcessRunner, imageRoot: string): Promise<HostCheck[]> {
  const checks: HostCheck[] = [];
  const qemu = await version(proc, 'qemu-system-x86_64');
  checks.push({
    name: 'QEMU',
    ok: !!qemu,
    detail: qemu ?? 'qemu-system-x86_64 not found',
    fix: 'run `falcon setup` (installs qemu-system-x86 and the other packages Falcon needs)',
  });
  const qimg = await version(proc, 'qemu-img');
  checks.push({ name: 'qemu-img', ok: !!qimg, detail: qimg ?? 'qemu-img not found', fix: 'run `falcon setup` (installs qemu-utils)' });
  const ip = await proc.run('ip', ['-V'], { timeoutMs: 10_000, reject: false }).catch(() => undefined);
  checks.push({ name: 'iproute2', ok: ip?.exitCode === 0, detail: ip?.stdout.trim() || 'ip not found', fix: 'run `falcon setup` (installs iproute2)' });
  checks.push({
    name: 'privileges',
    ok: hasNetAdmin(),
    detail: hasNetAdmin() ? 'root or CAP_NET_ADMIN' : 'neither root nor CAP_NET_ADMIN',
    fix: 'run as root (sudo), or grant CAP_NET_ADMIN: creating tap devices and tc filters needs it',
  });
  const tun = await fs.access('/dev/net/tun', constants.R_OK | constants.W_OK).then(() => true, () => false);
  checks.push({ name: '/dev/net/tun', ok: tun, detail: tun ? 'present' : 'missing or not accessible', fix: 'load the tun module: `modprobe tun`' });
  try {
    await fs.mkdir(imageRoot, { recursive: true, mode: 0o700 });
    const st = await fs.statfs(imageRoot);
    const free = st.bavail * st.bsize;
    const gib = free / 2 ** 30;
    checks.push({
      name: 'free disk',
      ok: gib >= 2,
      detail: `${gib.toFixed(1)} GiB free in ${imageRoot}`,
      fix: `free some space in ${imageRoot}, or point FALCON_IMAGE_DIR at a roomier file system (images and node disks need a few GiB)`,
    });
  } catch (e) {
    checks.push({ name: 'free disk', ok: false, detail: `cannot use ${imageRoot}: ${(e as Error).message}`, fix: 'set FALCON_IMAGE_DIR to a writable folder' });
  }
  if (hasNetAdmin()) {
    const features = await detectKernelFeatures(proc);
    const problems = featureProblems(features, true);
    checks.push({
      name: 'kernel network features',
      ok: problems.length === 0,
      detail: problems.length ? problems.map((p) => p.message).join('; ') : 'tap, altname, tc ingress + u32 + mirred, macvtap',
      fix: problems.map((p) => p.fix).join('; '),
      // Without macvtap only external links are impossible.
      optional: problems.every((p) => p.path.includes('macvtap')),
    });
    if (features.tools && features.permission) {
      checks.push({
        name: 'link impairment',
        ok: true,
        detail: features.netem ? 'netem qdisc' : `userspace helper falcon-impair: ${netemReason(features)}`,
        optional: true,
      });
    }
  }
  return checks;
}

/** Problems of the topology's references to the host; pure topology problems come from the model. */
export async function hostReferenceProblems(spec: TopologySpec, store: ImageStore): Promise<TopologyProblem[]> {
  const problems: TopologyProblem[] = [];
  const images = new Set((await store.list()).map((i) => i.name));
  for (const n of spec.nodes) {
    const p = `nodes.${n.name}`;
    if (n.image && !images.has(n.image) && !store.isBuiltin(n.image)) {
      problems.push({
        path: `${p}.image`,
        message: `image "${n.image}" is not in ${store.root} (images there: ${[...images].join(', ') || 'none'}); build a built-in one (${store.builtinNames().join(', ')}) with \`falcon image build NAME\`, or add yours with \`falcon image import\``,
      });
    }
    for (const [i, m] of n.mounts.entries()) {
      const st = await fs.stat(m.source).catch(() => undefined);
      if (!st) problems.push({ path: `${p}.mounts[${i}]`, message: `mount source ${m.source} does not exist; create it or fix the path` });
      else if (!st.isDirectory()) problems.push({ path: `${p}.mounts[${i}]`, message: `mount source ${m.source} is not a folder; mount its parent folder` });
    }
    if (n.bootIso && !(await fs.stat(n.bootIso).catch(() => undefined))?.isFile())
      problems.push({ path: `${p}.bootIso`, message: `boot ISO ${n.bootIso} does not exist; fix the path` });
  }
  problems.push(...(await switchProgramProblems(spec)));
  return problems;
}

/**
 * Every problem of `spec` that would stop a launch: the topology itself, the host's
 * prerequisites, its references to the host, a name already used by another falcon dir, and
 * the network's; empty when it can launch.
 */
export async function topologyProblems(c: RunContext, spec: TopologySpec): Promise<TopologyProblem[]> {
  const problems: TopologyProblem[] = validateSpec(spec);
  if (problems.length) return problems;
  const checks = await hostChecks(c.proc, c.store.root);
  for (const x of checks.filter((x) => !x.ok && !x.optional)) problems.push({ path: `host.${x.name}`, message: x.detail, fix: x.fix });
  problems.push(...(await hostReferenceProblems(spec, c.store)));
  const owner = await c.store.topologyDiskOwner(spec.name);
  if (owner && owner !== c.paths.dir && (await exists(path.join(owner, 'topology.json'))))
    problems.push({
      path: 'name',
      message: `topology "${spec.name}" of falcon dir ${owner} already has node disks in ${path.join(c.store.topoDir, spec.name)}; give this topology another name, or destroy that one first`,
    });
  if (!problems.some((p) => p.path === 'host.privileges')) problems.push(...(await checkNetworkPreflight(spec, netContext(c))));
  return problems;
}
