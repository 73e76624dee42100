/**
 * The TCG translation cache node option (`setTcgCacheSize`) end to end: nodes with a capped
 * cache boot, one core or two, and their QEMU reserves no more code buffer than asked.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { mb } from '../../src/index.js';
import { newRunner, tempDir } from './helpers.js';

/** Total size in MiB of QEMU's anonymous read-write-execute mappings: TCG's code buffer. */
function tcgCodeBufferMiB(pid: number): number {
  let kb = 0;
  let inCode = false;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = line.match(/^[0-9a-f]+-[0-9a-f]+ (\S+) \S+ \S+ \S+\s*(.*)$/);
    if (head) inCode = head[1]!.startsWith('rwx') && head[2]!.trim() === '';
    else if (inCode && line.startsWith('Size:')) kb += Number(line.match(/(\d+) kB/)![1]);
  }
  return kb / 1024;
}

describe('TCG translation cache size', () => {
  it('nodes with a 16 and a 32 MiB cache (1 and 2 cores) boot and run commands; their QEMU code buffer is that size', async (t) => {
    await using d = newRunner('tbcache', tempDir('tbcache'));
    const one = d.node('tbone', 'tiny', 1, mb(256));
    const two = d.node('tbtwo', 'tiny', 2, mb(256));
    d.setTcgCacheSize(one, 16);
    d.setTcgCacheSize(two, 32);
    await d.launch();
    const info = await d.info();
    if (info.accel === 'kvm') t.skip(); // KVM has no translation cache: the option does not apply
    expect((await d.exec('tbone', 'echo up')).stdout.toString()).toBe('up\n');
    expect((await d.exec('tbtwo', 'nproc')).stdout.toString()).toBe('2\n');
    const pid = (name: string) => info.nodes.find((n) => n.name === name)!.pid!;
    expect(readFileSync(`/proc/${pid('tbtwo')}/cmdline`, 'utf8').split('\0')).toContain('tcg,thread=multi,tb-size=32');
    expect(tcgCodeBufferMiB(pid('tbone'))).toBeGreaterThan(0);
    expect(tcgCodeBufferMiB(pid('tbone'))).toBeLessThanOrEqual(16);
    expect(tcgCodeBufferMiB(pid('tbtwo'))).toBeLessThanOrEqual(32);
  });
});
