/** The host layer's QEMU façade, the parts that need no VM: fds, file modes, UEFI vars, the probe cache. */
import { closeSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cachedKvmProbe } from '../../src/host/accel.js';
import { ensureUefiVars, nicsFor, openOwnerOnly } from '../../src/host/qemu-vm.js';
import { recordingRunner } from '../../src/host/process.js';
import { silentLogger } from '../../src/util/log.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'falcon-qemu-vm-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const mode = (f: string) => (statSync(f).mode & 0o777).toString(8);

describe('nicsFor', () => {
  it('passes macvtap devices as fds from 3 in order, taps by name, each with its NIC index (a reserved one skipped)', () => {
    const r = nicsFor([
      { kind: 'macvtap', index: 0, ifname: 'mv0', altname: 'a0', mac: 'm0', tapDevice: '/dev/tap10' },
      { kind: 'tap', index: 1, ifname: 'tp1', altname: 'a1', mac: 'm1' },
      { kind: 'macvtap', index: 3, ifname: 'mv3', altname: 'a3', mac: 'm3', tapDevice: '/dev/tap13' },
    ]);
    expect(r.fdDevices).toEqual(['/dev/tap10', '/dev/tap13']);
    expect(r.nics).toEqual([
      { kind: 'fd', fd: 3, mac: 'm0', index: 0 },
      { kind: 'tap', ifname: 'tp1', mac: 'm1', index: 1 },
      { kind: 'fd', fd: 4, mac: 'm3', index: 3 },
    ]);
  });
});

describe('node files', () => {
  it('openOwnerOnly creates a file 0600 and makes an existing 0644 one 0600, keeping its content', async () => {
    const fresh = join(dir, 'n.console.log');
    closeSync(openOwnerOnly(fresh));
    expect(mode(fresh)).toBe('600');
    const old = join(dir, 'n.out');
    await writeFile(old, 'earlier\n', { mode: 0o644 });
    expect(mode(old)).toBe('644');
    closeSync(openOwnerOnly(old));
    expect(mode(old)).toBe('600');
    expect(await readFile(old, 'utf8')).toBe('earlier\n');
  });

  it('ensureUefiVars copies the template owner-only once, and keeps a node\'s own variables', async () => {
    const template = join(dir, 'VARS.fd');
    await writeFile(template, 'template', { mode: 0o644 });
    const vars = join(dir, 'n.uefi-vars.fd');
    await ensureUefiVars(vars, template);
    expect(mode(vars)).toBe('600');
    await writeFile(vars, 'changed by the guest');
    await ensureUefiVars(vars, template);
    expect(await readFile(vars, 'utf8')).toBe('changed by the guest');
    await expect(ensureUefiVars(join(dir, 'x.fd'), join(dir, 'missing.fd'))).rejects.toMatchObject({ code: 'QEMU_FAILED', message: expect.stringMatching(/ovmf/) });
  });
});

describe('cachedKvmProbe', () => {
  it("answers from the cache for this host's kernel without booting anything", async () => {
    const cacheFile = join(dir, 'cache', 'probe.json');
    const host = (await readFile('/proc/sys/kernel/osrelease', 'utf8')).trim();
    await mkdir(join(dir, 'cache'), { recursive: true });
    await writeFile(cacheFile, JSON.stringify({ host, result: { ok: false, detail: 'cached answer' } }));
    const runner = recordingRunner();
    let asked = 0;
    const r = await cachedKvmProbe({ cacheFile, runner, log: silentLogger, noKernelDetail: 'none', kernel: async () => (asked++, undefined) });
    expect(r).toMatchObject({ ok: false, detail: 'cached answer', provenance: { cached: true } });
    expect(asked).toBe(0);
    expect(runner.calls).toEqual([]);
  });

  it('says why when there is no cache and no kernel to probe with', async () => {
    const r = await cachedKvmProbe({ cacheFile: join(dir, 'nocache', 'p.json'), runner: recordingRunner(), log: silentLogger, noKernelDetail: 'no tiny image', kernel: async () => undefined });
    expect(r).toEqual({ ok: false, detail: 'no tiny image' });
  });
});
