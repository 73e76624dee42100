import { impairmentLabels } from '../graph/model.js';
import type { ImpairStatus } from '../runner/impairments.js';
import type { HostCheck } from '../runner/preflight.js';
import type { LinkEndInfo, TopologyInfo } from '../runner/runner.js';

/** A plain text table: a header row, then rows, columns padded to their widest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function formatInfo(info: TopologyInfo): string {
  const out: string[] = [`topology ${info.name}  (state in ${info.falconDir}${info.accel ? `, ${info.accel}` : ''})`, ''];
  out.push(
    table(
      ['NODE', 'ID', 'IMAGE', 'CORES', 'MEMORY', 'RADIX', 'STATUS', 'MOUNTS'],
      info.nodes.map((n) => [
        n.name,
        String(n.id),
        n.image,
        String(n.cores),
        `${n.memoryMiB} MiB`,
        String(n.radix),
        n.status + (n.pid ? ` (pid ${n.pid})` : ''),
        n.mounts.map((m) => `${m.source} -> ${m.destination}`).join(', ') || '-',
      ]),
    ),
  );
  const disks = info.nodes.flatMap((n) => n.disks.map((d) => [n.name, d.name, d.bus, `${d.sizeGiB} GiB`, d.serial, d.path]));
  if (disks.length) out.push('', table(['NODE', 'DISK', 'BUS', 'SIZE', 'SERIAL', 'FILE'], disks));
  const devices = info.nodes.flatMap((n) => n.devices.map((d) => [n.name, [d.driver, ...Object.entries(d.props).map(([k, v]) => `${k}=${String(v)}`)].join(',')]));
  if (devices.length) out.push('', table(['NODE', 'QEMU DEVICE (passed as is)'], devices));
  if (info.links.length) {
    out.push('');
    const exists = new Map(info.interfaces.map((i) => [i.ifname, i]));
    const end = (e: LinkEndInfo) =>
      e.port !== undefined
        ? `${e.node} switch port ${e.port}`
        : e.socket
          ? `${e.node}[${e.index}] stream ${e.socket} ${e.mac}`
          : `${e.node}[${e.index}] ${e.ifname} (${e.altname}) ${e.mac}${info.backend || exists.get(e.ifname)?.exists ? '' : ' [absent]'}`;
    const impaired = info.links.some((l) => impairmentLabels(l).length);
    out.push(
      table(
        ['LINK', 'KIND', 'ENDPOINT A', 'ENDPOINT B', ...(impaired ? ['IMPAIRMENT'] : [])],
        info.links.map((l, i) => [
          String(i),
          l.kind + (l.kind === 'ext' && l.exclusive ? ' (exclusive)' : ''),
          end(l.a),
          l.b ? end(l.b) : `host ${l.hostIfx ?? '(default route)'}`,
          ...(impaired ? [impairmentLabels(l).join('; ') || '-'] : []),
        ]),
      ),
    );
  }
  for (const sw of info.switches ?? []) {
    out.push('', `switch ${sw.node}: ${sw.program}${sw.kind === 'softnpu' ? `, cpu port ${sw.cpuPort}` : ''}, ${sw.status}${sw.pid ? ` (pid ${sw.pid})` : ''}, log ${sw.log}`);
    out.push(table(['PORT', 'CONNECTS'], sw.ports.map((p) => [String(p.port), p.to])));
  }
  if (info.backend) out.push('', ...formatCluster(info.backend));
  return out.join('\n');
}

function formatCluster(b: NonNullable<TopologyInfo['backend']>): string[] {
  const out = [`cluster ${b.server} (context ${b.context}), namespace ${b.namespace}${b.podMtu ? `, pod MTU ${b.podMtu}` : ''}`];
  out.push(
    table(
      ['NODE', 'POD', 'HOST', 'POD IP', 'PHASE', 'READY', 'NODE STATE'],
      b.pods.map((p) => [p.node, p.pod, p.host ?? '-', p.podIP ?? '-', p.phase + (p.restarts ? ` (${p.restarts} restarts)` : ''), p.ready ? 'yes' : 'no', (p.supervisor ?? '-') + (p.error ? `: ${p.error}` : '')]),
    ),
  );
  for (const m of b.mtu.filter((x) => !x.ok)) out.push(`link ${m.link}: ${m.problem}`);
  return out;
}

export function formatChecks(checks: HostCheck[]): string {
  return checks
    .map((c) => `${c.ok ? 'ok  ' : c.optional ? 'warn' : 'FAIL'}  ${c.name}: ${c.detail}${c.ok ? '' : `\n      fix: ${c.fix}`}`)
    .join('\n');
}

/** `impair --show`: one row per direction of each link, then how the impaired ones are applied. */
export function formatImpairments(list: readonly ImpairStatus[]): string {
  if (!list.length) return 'no links between two nodes: nothing to impair';
  const rows = list.flatMap((s) =>
    s.directions.map((d, i) => [
      i === 0 ? s.link : '',
      i === 0 ? s.source : '',
      d.direction,
      d.text,
      d.stats ? `${d.stats.tx}/${d.stats.rx}` : '-',
      d.stats ? String(d.stats.lost + d.stats.queueDrops) : '-',
    ]),
  );
  const out = [table(['LINK', 'SOURCE', 'DIRECTION', 'IMPAIRMENT', 'SENT/RECEIVED', 'DROPPED'], rows)];
  const paths = new Map(list.filter((s) => s.path).map((s) => [`${s.path}: ${s.reason}`, s]));
  for (const [text, s] of paths) out.push(`path ${text}${s.helperPid ? ` (helper pid ${s.helperPid})` : ''}`);
  const idle = list.filter((s) => s.path === 'userspace' && !s.helperPid).map((s) => s.link);
  if (idle.length)
    out.push(`no helper runs for ${idle.join(', ')}: it starts at launch and hyperstart; if the topology is running, its frames are not getting through until you run hyperstart or impair again`);
  return out.join('\n');
}
