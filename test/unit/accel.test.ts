import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cachedKvmProbe, chooseAccel, type CachedProbeInput } from '../../src/host/accel.js';
import { recordingRunner } from '../../src/host/process.js';
import { memoryLogger } from '../../src/util/log.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'falcon-accel-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const host = async () => (await readFile('/proc/sys/kernel/osrelease', 'utf8')).trim();
const TIMED_OUT = 'the probe guest did not boot within 20 s';
/** 2026-12-03 14:05 local time, as the cache file stores it. */
const PROBED_AT = new Date(2026, 11, 3, 14, 5, 42).toISOString();
const kvmWorks = async () => undefined;

let n = 0;
/** A probe input whose probe is counted and answers `answer`. */
function input(answer: { ok: boolean; detail: string }, o: Partial<CachedProbeInput> = {}) {
  const calls: string[] = [];
  const log = memoryLogger();
  const p: CachedProbeInput = {
    cacheFile: path.join(dir, `c${n++}`, 'accel-probe.json'),
    runner: recordingRunner(),
    log,
    noKernelDetail: 'no tiny image',
    kernel: async () => ({ kernel: '/img/vmlinuz' }),
    probe: async (x) => (calls.push(x.kernel), answer),
    ...o,
  };
  return { p, calls, log };
}

describe('the cached KVM probe', () => {
  it('says a decision read from the cache comes from there, when it was probed, and how to probe again', async () => {
    const { p, calls } = input({ ok: true, detail: 'never asked' });
    await writeFileCache(p.cacheFile, { host: await host(), probedAt: PROBED_AT, result: { ok: false, detail: TIMED_OUT } });
    const d = await chooseAccel({}, () => cachedKvmProbe(p), kvmWorks);
    expect(calls).toEqual([]);
    expect(d).toEqual({
      accel: 'tcg',
      cached: true,
      probedAt: PROBED_AT,
      reason:
        'tcg: /dev/kvm exists but the probe guest did not boot within 20 s (probed 2026-12-03 14:05, cached for this host kernel; ' +
        '`falcon preflight --reprobe` probes again); falling back to software emulation (slower). Set FALCON_ACCEL=kvm to force KVM.',
    });
  });

  it('takes the probe time of a cache file written before it was recorded from the file', async () => {
    const { p } = input({ ok: false, detail: 'never asked' });
    await writeFileCache(p.cacheFile, { host: await host(), result: { ok: true, detail: 'probe guest booted under KVM in 812 ms' } });
    const at = new Date(2026, 0, 2, 3, 4);
    await utimes(p.cacheFile, at, at);
    const d = await chooseAccel({}, () => cachedKvmProbe(p), kvmWorks);
    expect(d).toMatchObject({ accel: 'kvm', cached: true, probedAt: at.toISOString() });
    expect(d.reason).toBe('kvm: probe guest booted under KVM in 812 ms (probed 2026-01-02 03:04, cached for this host kernel; `falcon preflight --reprobe` probes again)');
  });

  it('probes when nothing is cached, caches the result with its time (0600), and answers from the cache next time', async () => {
    const { p, calls } = input({ ok: false, detail: TIMED_OUT });
    const before = Date.now();
    const first = await chooseAccel({}, () => cachedKvmProbe(p), kvmWorks);
    expect(calls).toEqual(['/img/vmlinuz']);
    expect(first.cached).toBe(false);
    expect(Date.parse(first.probedAt!)).toBeGreaterThanOrEqual(before - 1000);
    expect(first.reason).toBe(`tcg: /dev/kvm exists but ${TIMED_OUT} (probed just now, cached for this host kernel); falling back to software emulation (slower). Set FALCON_ACCEL=kvm to force KVM.`);
    const file = JSON.parse(await readFile(p.cacheFile, 'utf8'));
    expect(file).toEqual({ host: await host(), probedAt: first.probedAt, result: { ok: false, detail: TIMED_OUT } });
    expect((await stat(p.cacheFile)).mode & 0o777).toBe(0o600);

    const again = await chooseAccel({}, () => cachedKvmProbe(p), kvmWorks);
    expect(calls).toHaveLength(1);
    expect(again).toMatchObject({ cached: true, probedAt: first.probedAt });
  });

  it('with reprobe ignores the cache, probes, and rewrites the cache', async () => {
    const { p, calls, log } = input({ ok: true, detail: 'probe guest booted under KVM in 640 ms' }, { reprobe: true });
    await writeFileCache(p.cacheFile, { host: await host(), probedAt: PROBED_AT, result: { ok: false, detail: TIMED_OUT } });
    const d = await chooseAccel({}, () => cachedKvmProbe(p), kvmWorks);
    expect(calls).toHaveLength(1);
    expect(d.accel).toBe('kvm');
    expect(d.cached).toBe(false);
    expect(d.probedAt).not.toBe(PROBED_AT);
    expect(d.reason).toBe('kvm: probe guest booted under KVM in 640 ms (probed just now, cached for this host kernel)');
    const file = JSON.parse(await readFile(p.cacheFile, 'utf8'));
    expect(file).toEqual({ host: await host(), probedAt: d.probedAt, result: { ok: true, detail: 'probe guest booted under KVM in 640 ms' } });
    expect(log.events.map((e) => ('msg' in e ? e.msg : ''))).toContain('probing again whether guests boot under KVM (--reprobe)');
  });

  it('probes again when the cache is of another host kernel', async () => {
    const { p, calls } = input({ ok: false, detail: TIMED_OUT });
    await writeFileCache(p.cacheFile, { host: 'another-kernel', probedAt: PROBED_AT, result: { ok: true, detail: 'old' } });
    expect((await chooseAccel({}, () => cachedKvmProbe(p), kvmWorks)).cached).toBe(false);
    expect(calls).toHaveLength(1);
  });

  it('gives a fresh probe result with its provenance: not cached, probed now', async () => {
    const { p } = input({ ok: false, detail: TIMED_OUT });
    const before = Date.now();
    const r = await cachedKvmProbe(p);
    expect(r).toMatchObject({ ok: false, detail: TIMED_OUT, provenance: { cached: false } });
    expect(Date.parse(r.provenance!.probedAt)).toBeGreaterThanOrEqual(before - 1000);
  });

  it('is no cached decision when nothing was probed: no kernel, FALCON_ACCEL, no /dev/kvm', async () => {
    const { p } = input({ ok: true, detail: 'never asked' }, { kernel: async () => undefined, reprobe: true });
    expect(await chooseAccel({}, () => cachedKvmProbe(p), kvmWorks)).toEqual({
      accel: 'tcg',
      cached: false,
      reason: 'tcg: /dev/kvm exists but no tiny image; falling back to software emulation (slower). Set FALCON_ACCEL=kvm to force KVM.',
    });
    const never = async () => {
      throw new Error('not probed');
    };
    expect(await chooseAccel({ FALCON_ACCEL: 'kvm' }, never)).toEqual({ accel: 'kvm', cached: false, reason: 'kvm: chosen by FALCON_ACCEL=kvm' });
    expect(await chooseAccel({}, never, async () => '/dev/kvm does not exist')).toMatchObject({ accel: 'tcg', cached: false });
  });
});

async function writeFileCache(file: string, content: object): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, JSON.stringify(content));
}
