/**
 * Thin layer over `ip` and `tc`: JSON queries of host state and batched commands. Everything the
 * network code does to the host goes through these, as argument arrays.
 */
import type { ProcessRunner } from './process.js';
import { HostCommandError } from './process.js';

/** Per-command deadline: `ip`/`tc` answer in milliseconds unless the kernel is stuck. */
export const NET_CMD_TIMEOUT_MS = 30_000;

export interface NetRunOptions {
  runner: ProcessRunner;
  signal?: AbortSignal;
}

/** One host network interface, as `ip -j -d link show` describes it. */
export interface HostLink {
  ifindex: number;
  ifname: string;
  altnames: string[];
  alias?: string;
  /** The interface's own MAC. */
  address?: string;
  operstate: string;
  flags: string[];
  /** `linkinfo.info_kind`: tun, macvtap, veth, bridge... */
  kind?: string;
  /** For tun devices: tap or tun. */
  tunType?: string;
  /** For macvtap/macvlan: bridge, passthru... */
  macvMode?: string;
  /** The lower device (macvtap, vlan, veth peer in the same namespace). */
  lower?: string;
  linkType?: string;
  /** Interface group: "default" or a number. */
  group?: string;
}

interface RawLink {
  ifindex: number;
  ifname: string;
  altnames?: string[];
  ifalias?: string;
  address?: string;
  operstate?: string;
  flags?: string[];
  link?: string | null;
  link_type?: string;
  group?: string | number;
  linkinfo?: { info_kind?: string; info_data?: { type?: string; mode?: string } };
}

/** Parse `ip -j -d link show` output. */
export function parseLinks(json: string): HostLink[] {
  const raw = (json.trim() ? JSON.parse(json) : []) as RawLink[];
  return raw.map((r) => ({
    ifindex: r.ifindex,
    ifname: r.ifname,
    altnames: r.altnames ?? [],
    alias: r.ifalias || undefined,
    address: r.address,
    operstate: r.operstate ?? 'UNKNOWN',
    flags: r.flags ?? [],
    kind: r.linkinfo?.info_kind,
    tunType: r.linkinfo?.info_kind === 'tun' ? r.linkinfo.info_data?.type : undefined,
    macvMode: r.linkinfo?.info_kind === 'macvtap' || r.linkinfo?.info_kind === 'macvlan' ? r.linkinfo.info_data?.mode : undefined,
    lower: r.link ?? undefined,
    linkType: r.link_type,
    group: r.group === undefined ? undefined : String(r.group),
  }));
}

/** Every interface of the host (one `ip` process). */
export async function queryLinks(o: NetRunOptions): Promise<HostLink[]> {
  const r = await o.runner.run('ip', ['-j', '-d', 'link', 'show'], { timeoutMs: NET_CMD_TIMEOUT_MS, signal: o.signal });
  return parseLinks(r.stdout);
}

/** Index of the host's interfaces by kernel name and by altname. */
export function indexLinks(links: readonly HostLink[]): Map<string, HostLink> {
  const m = new Map<string, HostLink>();
  for (const l of links) {
    m.set(l.ifname, l);
    for (const a of l.altnames) m.set(a, l);
  }
  return m;
}

/** The interface of the default route with the lowest metric, if any. */
export function parseDefaultRoute(json: string): string | undefined {
  const routes = (json.trim() ? JSON.parse(json) : []) as { dev?: string; metric?: number }[];
  const withDev = routes.filter((r) => r.dev);
  withDev.sort((a, b) => (a.metric ?? 0) - (b.metric ?? 0));
  return withDev[0]?.dev;
}

export async function queryDefaultRouteIfx(o: NetRunOptions): Promise<string | undefined> {
  const r = await o.runner.run('ip', ['-j', 'route', 'show', 'default'], { timeoutMs: NET_CMD_TIMEOUT_MS, signal: o.signal });
  return parseDefaultRoute(r.stdout);
}

/** Devices that have an ingress qdisc, from `tc -j qdisc show`. */
export function parseIngressQdiscs(json: string): Set<string> {
  const q = (json.trim() ? JSON.parse(json) : []) as { kind?: string; dev?: string }[];
  return new Set(q.filter((x) => x.kind === 'ingress' && x.dev).map((x) => x.dev!));
}

export async function queryIngressQdiscs(o: NetRunOptions): Promise<Set<string>> {
  const r = await o.runner.run('tc', ['-j', 'qdisc', 'show'], { timeoutMs: NET_CMD_TIMEOUT_MS, signal: o.signal });
  return parseIngressQdiscs(r.stdout);
}

interface RawFilter {
  kind?: string;
  options?: { fh?: string; actions?: { kind?: string; mirred_action?: string; direction?: string; to_dev?: string }[] };
}

/** Where a device's ingress u32 filters redirect frames to (egress mirred), if anywhere. */
export function redirectTarget(filters: readonly RawFilter[]): string | undefined {
  for (const f of filters) {
    if (f.kind !== 'u32') continue;
    for (const a of f.options?.actions ?? []) {
      if (a.kind === 'mirred' && a.mirred_action === 'redirect' && a.direction === 'egress' && a.to_dev) return a.to_dev;
    }
  }
  return undefined;
}

/** Split the output of `tc -j -batch`, one JSON array per command, into its values. */
export function splitJsonValues(text: string): unknown[] {
  const out: unknown[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '[' || c === '{') {
      if (depth++ === 0) start = i;
    } else if (c === ']' || c === '}') {
      if (--depth === 0) out.push(JSON.parse(text.slice(start, i + 1)));
    }
  }
  return out;
}

/** The redirect target of each device's ingress filters (one `tc` process for all devices). */
export async function queryRedirects(devs: readonly string[], o: NetRunOptions): Promise<Map<string, string | undefined>> {
  const m = new Map<string, string | undefined>();
  if (devs.length === 0) return m;
  const lines = devs.map((d) => ['filter', 'show', 'dev', d, 'parent', 'ffff:']);
  const r = await runBatch('tc', lines, { ...o, json: true });
  const values = splitJsonValues(r);
  devs.forEach((d, i) => m.set(d, redirectTarget((values[i] as RawFilter[] | undefined) ?? [])));
  return m;
}

/**
 * One line of an `ip -batch`/`tc -batch` file, or undefined when an argument cannot be written
 * there: the batch reader cuts lines at "#", and quotes cannot be escaped inside quotes.
 */
export function batchLine(args: readonly string[]): string | undefined {
  const parts: string[] = [];
  for (const a of args) {
    if (/[#\n\r\\]/.test(a) || a === '') return undefined;
    if (!/[\s"']/.test(a)) parts.push(a);
    else if (!a.includes('"')) parts.push(`"${a}"`);
    else if (!a.includes("'")) parts.push(`'${a}'`);
    else return undefined;
  }
  return parts.join(' ');
}

/** The failure of one command of a batch, as if it had run alone: names it, not "ip -batch -". */
function batchFailure(tool: string, args: readonly string[], e: HostCommandError): HostCommandError {
  const stderr = e.stderr
    .split('\n')
    .filter((l) => !/^Command failed /.test(l))
    .join('\n');
  return new HostCommandError({ command: tool, args, exitCode: e.exitCode, stderr, stdout: e.stdout, signal: e.signal });
}

/**
 * Run many `ip` or `tc` commands with as few processes as possible (`-batch -`). Commands that
 * cannot be written in a batch file run on their own, in order. Stops at the first failure and
 * throws a `HostCommandError` naming that command, unless `force` (then failures are ignored and
 * the caller checks the result). Returns the concatenated stdout.
 */
export async function runBatch(
  tool: 'ip' | 'tc',
  commands: readonly (readonly string[])[],
  o: NetRunOptions & { force?: boolean; json?: boolean },
): Promise<string> {
  let stdout = '';
  const flags = [...(o.json ? ['-j'] : []), ...(o.force ? ['-force'] : [])];
  let pending: (readonly string[])[] = [];
  const flush = async () => {
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    const input = batch.map((c) => batchLine(c)!).join('\n') + '\n';
    try {
      const r = await o.runner.run(tool, [...flags, '-batch', '-'], {
        input,
        timeoutMs: NET_CMD_TIMEOUT_MS,
        signal: o.signal,
        reject: !o.force,
      });
      stdout += r.stdout;
    } catch (e) {
      if (!(e instanceof HostCommandError) || e.timedOut || e.exitCode === null) throw e;
      const m = /Command failed -:(\d+)/.exec(e.stderr);
      const failed = m ? batch[Number(m[1]) - 1] : undefined;
      throw failed ? batchFailure(tool, failed, e) : e;
    }
  };
  for (const c of commands) {
    if (batchLine(c) !== undefined) {
      pending.push(c);
      continue;
    }
    await flush();
    const r = await o.runner.run(tool, [...flags, ...c], { timeoutMs: NET_CMD_TIMEOUT_MS, signal: o.signal, reject: !o.force });
    stdout += r.stdout;
  }
  await flush();
  return stdout;
}
