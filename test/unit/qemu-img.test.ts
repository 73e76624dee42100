import { describe, expect, it } from 'vitest';
import { HostCommandError, recordingRunner } from '../../src/host/process.js';
import { parseInfo, QemuImg } from '../../src/host/qemu-img.js';

const INFO = {
  'virtual-size': 1073741824,
  filename: '/s/topo/t/a.qcow2',
  format: 'qcow2',
  'actual-size': 200704,
  'full-backing-filename': '/s/tiny/disk.qcow2',
  'backing-filename': '/s/tiny/disk.qcow2',
  'backing-filename-format': 'qcow2',
  'dirty-flag': false,
};

describe('QemuImg', () => {
  it('info: runs qemu-img info --output=json -U and parses the result', async () => {
    const r = recordingRunner(() => ({ stdout: JSON.stringify(INFO) }));
    const info = await new QemuImg(r).info('/s/topo/t/a.qcow2');
    expect(r.calls).toEqual([{ command: 'qemu-img', args: ['info', '--output=json', '-U', '/s/topo/t/a.qcow2'] }]);
    expect(info).toMatchObject({
      format: 'qcow2',
      virtualSize: 1073741824,
      actualSize: 200704,
      backingFilename: '/s/tiny/disk.qcow2',
      fullBackingFilename: '/s/tiny/disk.qcow2',
      backingFormat: 'qcow2',
      dirty: false,
    });
  });

  it('info: explicit format, no force-share', async () => {
    const r = recordingRunner(() => ({ stdout: JSON.stringify(INFO) }));
    await new QemuImg(r).info('x.img', { format: 'raw', forceShare: false });
    expect(r.calls[0]!.args).toEqual(['info', '--output=json', '-f', 'raw', 'x.img']);
  });

  it('infoChain: --backing-chain, one entry per image', async () => {
    const base = { 'virtual-size': 1, filename: '/s/tiny/disk.qcow2', format: 'qcow2' };
    const r = recordingRunner(() => ({ stdout: JSON.stringify([INFO, base]) }));
    const chain = await new QemuImg(r).infoChain('/s/topo/t/a.qcow2');
    expect(r.calls[0]!.args).toEqual(['info', '--output=json', '--backing-chain', '-U', '/s/topo/t/a.qcow2']);
    expect(chain.map((c) => c.filename)).toEqual(['/s/topo/t/a.qcow2', '/s/tiny/disk.qcow2']);
  });

  it('create', async () => {
    const r = recordingRunner();
    await new QemuImg(r).create('/d/x.qcow2', 1048576);
    expect(r.calls[0]!.args).toEqual(['create', '-q', '-f', 'qcow2', '/d/x.qcow2', '1048576']);
    await new QemuImg(r).create('/d/x.raw', 512, { format: 'raw' });
    expect(r.calls[1]!.args).toEqual(['create', '-q', '-f', 'raw', '/d/x.raw', '512']);
    await expect(new QemuImg(r).create('/d/x', 0)).rejects.toThrow(/positive/);
  });

  it('createOverlay: absolute backing path, backing format, optional size', async () => {
    const r = recordingRunner();
    const q = new QemuImg(r);
    await q.createOverlay('/t/n.qcow2', '/s/tiny/disk.qcow2');
    await q.createOverlay('/t/m.qcow2', 'rel/base.qcow2', { sizeBytes: 4 * 1024 ** 3 });
    expect(r.calls[0]!.args).toEqual(['create', '-q', '-f', 'qcow2', '-b', '/s/tiny/disk.qcow2', '-F', 'qcow2', '/t/n.qcow2']);
    expect(r.calls[1]!.args).toEqual([
      'create', '-q', '-f', 'qcow2', '-b', `${process.cwd()}/rel/base.qcow2`, '-F', 'qcow2', '/t/m.qcow2', String(4 * 1024 ** 3),
    ]);
  });

  it('convert: formats, quiet without progress, -p and parsed percentages with', async () => {
    const r = recordingRunner();
    const q = new QemuImg(r);
    await q.convert('a.raw', 'b.qcow2', { srcFormat: 'raw' });
    expect(r.calls[0]!.args).toEqual(['convert', '-q', '-f', 'raw', '-O', 'qcow2', 'a.raw', 'b.qcow2']);

    const seen: number[] = [];
    const progressRunner = {
      ...recordingRunner(),
      async run(command: string, args: readonly string[], o?: { onStdout?: (b: Buffer) => void }) {
        o?.onStdout?.(Buffer.from('    (0.00/100%)\r    (12.'));
        o?.onStdout?.(Buffer.from('50/100%)\r    (100.00/100%)\r'));
        return { command, args, exitCode: 0, signal: null, stdout: '', stderr: '', stdoutBuffer: Buffer.alloc(0), timedOut: false };
      },
    };
    await new QemuImg(progressRunner).convert('a', 'b', { dstFormat: 'raw', onProgress: (p) => seen.push(p) });
    expect(seen).toEqual([0, 100]); // one report per chunk: the latest
  });

  it('resize and check', async () => {
    const r = recordingRunner((_c, args) =>
      args[0] === 'check' ? { exitCode: 3, stdout: JSON.stringify({ leaks: 2, 'check-errors': 0 }) } : {},
    );
    const q = new QemuImg(r);
    await q.resize('/d/x.qcow2', 2 * 1024 ** 3, { format: 'qcow2' });
    expect(r.calls[0]!.args).toEqual(['resize', '-q', '-f', 'qcow2', '/d/x.qcow2', String(2 * 1024 ** 3)]);
    const c = await q.check('/d/x.qcow2', { format: 'qcow2' });
    expect(r.calls[1]!.args).toEqual(['check', '--output=json', '-f', 'qcow2', '/d/x.qcow2']);
    expect(c).toMatchObject({ ok: true, leaks: 2, corruptions: 0, exitCode: 3 });
  });

  it('check reports corruption without throwing', async () => {
    const r = recordingRunner(() => ({ exitCode: 2, stdout: JSON.stringify({ corruptions: 1 }) }));
    expect(await new QemuImg(r).check('x')).toMatchObject({ ok: false, corruptions: 1 });
  });

  it('failures surface as HostCommandError', async () => {
    const r = recordingRunner(() => ({ exitCode: 1, stderr: "qemu-img: Could not open 'x': No such file" }));
    await expect(new QemuImg(r).info('x')).rejects.toBeInstanceOf(HostCommandError);
  });

  it('parseInfo rejects output without format', () => {
    expect(() => parseInfo({ filename: 'x' })).toThrow(/unexpected output/);
  });
});
