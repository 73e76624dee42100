/**
 * Choosing the accelerator. /dev/kvm existing proves nothing (on some hosts guests hang under
 * it), so KVM is chosen only after a probe guest boots under it within a deadline.
 */
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { FalconError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import type { Logger } from '../util/log.js';
import { HostCommandError, type ProcessRunner } from './process.js';
import type { Accel } from './qemu.js';

export interface AccelDecision {
  accel: Accel;
  /** One line a user can act on: why this accelerator. */
  reason: string;
  /** The KVM probe result behind it was read from the cache (per host kernel), not probed now. */
  cached: boolean;
  /** When that probe ran (ISO 8601); absent when no probe decided (FALCON_ACCEL, no /dev/kvm, nothing to boot). */
  probedAt?: string;
}

/** What a KVM probe found. */
export interface KvmProbeResult {
  ok: boolean;
  detail: string;
  /** Where the result comes from, when it comes from a probe (cachedKvmProbe sets it). */
  provenance?: ProbeProvenance;
}

export interface ProbeProvenance {
  /** Read from the cache rather than probed by this call. */
  cached: boolean;
  /** When the probe ran, ISO 8601. */
  probedAt: string;
}

/** How to make Falcon probe again, for the reason text. */
export const REPROBE_HINT = '`falcon preflight --reprobe` probes again';

export interface ProbeInput {
  runner: ProcessRunner;
  log: Logger;
  kernel: string;
  initrd?: string;
  deadlineMs?: number;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

/** The kernel prints this once it has booted far enough to start init. */
const BOOTED = /Run \S+ as init process|Freeing unused kernel image/;

/** Boot the kernel under KVM and report whether it got as far as starting init. */
export async function probeKvm(p: ProbeInput): Promise<{ ok: boolean; detail: string }> {
  const deadlineMs = p.deadlineMs ?? 20_000;
  const args = [
    '-machine', 'pc,accel=kvm', '-cpu', 'host', '-m', '256M', '-smp', '1',
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot', '-serial', 'stdio',
    '-kernel', p.kernel, '-append', 'console=ttyS0 loglevel=7 panic=-1',
  ];
  if (p.initrd) args.push('-initrd', p.initrd);
  const ac = new AbortController();
  const onParent = () => ac.abort();
  p.signal?.addEventListener('abort', onParent, { once: true });
  let seen = '';
  let booted = false;
  const started = Date.now();
  try {
    await p.runner.run('qemu-system-x86_64', args, {
      timeoutMs: deadlineMs,
      killGraceMs: 1000,
      signal: ac.signal,
      onStdout: (c) => {
        seen = (seen + c.toString('utf8')).slice(-4000);
        if (!booted && BOOTED.test(seen)) {
          booted = true;
          ac.abort();
        }
      },
    });
  } catch (e) {
    if (!booted) {
      const he = e instanceof HostCommandError ? e : undefined;
      const why = he?.timedOut
        ? `the probe guest did not boot within ${deadlineMs / 1000} s`
        : (he?.stderr.trim().split('\n').pop() ?? (e as Error).message);
      return { ok: false, detail: why };
    }
  } finally {
    p.signal?.removeEventListener('abort', onParent);
  }
  return booted
    ? { ok: true, detail: `probe guest booted under KVM in ${Date.now() - started} ms` }
    : { ok: false, detail: 'the probe guest exited before booting' };
}

export async function kvmDeviceProblem(): Promise<string | undefined> {
  try {
    await fs.access('/dev/kvm', constants.R_OK | constants.W_OK);
    return undefined;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT'
      ? '/dev/kvm does not exist (no hardware virtualization, or the kvm module is not loaded)'
      : '/dev/kvm is not accessible to this user (add yourself to the kvm group, or run as root)';
  }
}

/** FALCON_ACCEL=kvm|tcg overrides; otherwise the device check, then the (cached) probe. */
export async function chooseAccel(
  env: NodeJS.ProcessEnv,
  probe: () => Promise<KvmProbeResult>,
  /** For tests: what is wrong with /dev/kvm, if anything. */
  deviceProblem: () => Promise<string | undefined> = kvmDeviceProblem,
): Promise<AccelDecision> {
  const forced = env.FALCON_ACCEL?.trim().toLowerCase();
  if (forced === 'kvm' || forced === 'tcg') return { accel: forced, reason: `${forced}: chosen by FALCON_ACCEL=${forced}`, cached: false };
  if (forced) throw new FalconError('INVALID_ARGUMENT', `FALCON_ACCEL=${env.FALCON_ACCEL} is not understood; set it to kvm or tcg, or unset it to let Falcon probe`);
  const dev = await deviceProblem();
  if (dev) return { accel: 'tcg', reason: `tcg: ${dev}; guests run under software emulation (slower)`, cached: false };
  const r = await probe();
  const from = r.provenance;
  // A cached answer must not read as if it had just been probed: say when, and how to redo it.
  const when = !from
    ? ''
    : from.cached
      ? ` (probed ${localMinute(from.probedAt)}, cached for this host kernel; ${REPROBE_HINT})`
      : ' (probed just now, cached for this host kernel)';
  const source = { cached: from?.cached ?? false, ...(from ? { probedAt: from.probedAt } : {}) };
  return r.ok
    ? { accel: 'kvm', reason: `kvm: ${r.detail}${when}`, ...source }
    : { accel: 'tcg', reason: `tcg: /dev/kvm exists but ${r.detail}${when}; falling back to software emulation (slower). Set FALCON_ACCEL=kvm to force KVM.`, ...source };
}

/** `2026-12-03 14:05` in local time; the ISO text itself if it is no date. */
function localMinute(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const two = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}`;
}

export interface CachedProbeInput extends Omit<ProbeInput, 'kernel' | 'initrd'> {
  /** Where the result is kept, per host kernel release. */
  cacheFile: string;
  /** The probe guest's kernel (the tiny image's), or undefined when there is none to boot yet. */
  kernel: () => Promise<{ kernel: string; initrd?: string } | undefined>;
  /** Said when there is no kernel to probe with. */
  noKernelDetail: string;
  /** Probe again whatever the cache holds, and cache the new result. */
  reprobe?: boolean;
  /** The probe; probeKvm unless a test gives another. */
  probe?: (p: ProbeInput) => Promise<{ ok: boolean; detail: string }>;
}

/** The cache file: one result for one host kernel release. */
interface ProbeCache {
  host?: string;
  /** ISO 8601; files written before it was recorded lack it, and their mtime says when. */
  probedAt?: string;
  result?: { ok: boolean; detail: string };
}

/**
 * probeKvm once per host kernel release: the result is cached in `cacheFile`, and says (in
 * `provenance`) whether it was read from there and when it was probed.
 */
export async function cachedKvmProbe(p: CachedProbeInput): Promise<KvmProbeResult> {
  const host = (await fs.readFile('/proc/sys/kernel/osrelease', 'utf8').catch(() => '')).trim();
  if (!p.reprobe) {
    const cached = await fs.readFile(p.cacheFile, 'utf8').then(
      (t) => JSON.parse(t) as ProbeCache,
      () => undefined,
    );
    if (cached?.host === host && cached.result && typeof cached.result.ok === 'boolean') {
      const probedAt = cached.probedAt ?? (await fs.stat(p.cacheFile).then((st) => st.mtime.toISOString(), () => undefined));
      if (probedAt) return withProvenance(cached.result, { cached: true, probedAt });
    }
  }
  const k = await p.kernel();
  if (!k) return { ok: false, detail: p.noKernelDetail };
  p.log.log({ kind: 'step', msg: p.reprobe ? 'probing again whether guests boot under KVM (--reprobe)' : 'probing whether guests boot under KVM (once per host)' });
  const probedAt = new Date().toISOString();
  const result = await (p.probe ?? probeKvm)({ ...p, kernel: k.kernel, initrd: k.initrd });
  await fs.mkdir(path.dirname(p.cacheFile), { recursive: true });
  await writeFileAtomic(p.cacheFile, JSON.stringify({ host, probedAt, result: { ok: result.ok, detail: result.detail } } satisfies ProbeCache));
  return withProvenance(result, { cached: false, probedAt });
}

function withProvenance(r: { ok: boolean; detail: string }, provenance: ProbeProvenance): KvmProbeResult {
  return { ok: r.ok, detail: r.detail, provenance };
}
