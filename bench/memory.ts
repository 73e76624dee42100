/**
 * Section `memory`: host memory of idle tiny nodes: QEMU's VmRSS against the memory the node
 * was given, and what the guest itself uses (MemTotal - MemFree).
 */
import { fmtBytes, gb, mb, qemuRssBreakdown, rssBytes, sleepFor, withTimeout, type Ctx, type Row } from './lib.js';

export async function memorySection(ctx: Ctx): Promise<{ rows: Row[]; data: Record<string, unknown> }> {
  const r = ctx.runner('bench_mem');
  const sizes = [
    { name: 'm256', mib: mb(256) },
    { name: 'm1g', mib: gb(1) },
    { name: 'm4g', mib: gb(4) },
  ];
  for (const s of sizes) r.node(s.name, 'tiny', 1, s.mib);
  ctx.defer(`destroy ${r.name}`, () => r.destroy());
  ctx.progress(`launching tiny nodes with ${sizes.map((s) => `${s.mib} MiB`).join(', ')}`);
  await withTimeout(300_000, `launch of ${r.name}`, ctx.signal, (signal) => r.launch({ signal }));
  const idle = ctx.n(15_000, 5_000);
  ctx.progress(`idle for ${idle / 1000} s`);
  await sleepFor(idle, ctx.signal);
  const info = await r.info();
  const rows: Row[] = [];
  const nodes = [];
  for (const s of sizes) {
    const pid = info.nodes.find((n) => n.name === s.name)?.pid;
    if (!pid) throw new Error(`node ${s.name} is not running`);
    const rss = await rssBytes(pid);
    const parts = await qemuRssBreakdown(pid, s.mib * 2 ** 20, ctx.imageDir);
    const meminfo = (await r.exec(s.name, 'cat /proc/meminfo', { timeoutMs: 30_000 })).stdout.toString();
    const kb = (k: string) => Number(meminfo.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm'))?.[1] ?? NaN) * 1024;
    const guestUsed = kb('MemTotal') - kb('MemFree');
    const given = s.mib * 2 ** 20;
    nodes.push({ node: s.name, givenBytes: given, rssBytes: rss, rssParts: parts, guestMemTotal: kb('MemTotal'), guestUsedBytes: guestUsed, pid });
    rows.push({
      section: 'memory',
      measure: `idle tiny node given ${fmtBytes(given)}: QEMU VmRSS`,
      falcon: fmtBytes(rss),
      baseline: fmtBytes(given),
      ratio: `${((rss / given) * 100).toFixed(1)}%`,
      note:
        `RSS = guest RAM ${fmtBytes(parts.guestRam)} + TCG code ${fmtBytes(parts.tcgCode)} + kernel/initrd files ${fmtBytes(parts.imageFiles)} (shared) + QEMU ${fmtBytes(parts.other)}; PSS ${fmtBytes(parts.pss)}; ` +
        `baseline: memory given; the guest uses ${fmtBytes(guestUsed)} of its ${fmtBytes(kb('MemTotal'))} (MemTotal - MemFree)`,
    });
  }
  return { rows, data: { idleMs: idle, nodes } };
}
