/**
 * `$topo npu NODE ...`: the SoftNPU switch of an npu node, through its control socket.
 *
 *   radix | dump [--json] | stats [--json] | clear | load FILE.p4 [--json]
 *   add TABLE ACTION KEY PARAMS | remove TABLE KEY          (bytes: "1,0,2" or "[1,0,2]")
 *   capture [--port N]... [-w FILE|-w -] [--count N] [--timeout S]
 *   inject --port N [--out] HEX
 *   scadm-named helpers: add-route4 / add-route6 DEST PORT NEXTHOP [VLAN], remove-route4 /
 *   remove-route6 DEST, add-arp-entry / add-ndp-entry IP MAC, remove-arp-entry /
 *   remove-ndp-entry IP, add-address4 / add-address6 ADDR, remove-address4 / remove-address6
 *   ADDR, set-mac PORT MAC, clear-mac PORT, add-proxy-arp BEGIN END MAC, remove-proxy-arp
 *   BEGIN END.
 *
 * Commands throw; the CLI's top level prints err.message and exits non-zero.
 */
import { createWriteStream } from 'node:fs';
import { Command, Option } from 'commander';
import type { NpuControl } from '../../runner/npu-control.js';
import { FalconError } from '../../util/errors.js';
// From their own modules, not switch/index.js: that is the whole switch, which the CLI does not run.
import { pcapHeader, pcapRecord } from '../../switch/client.js';
import type { CapturedFrame, SwitchStats } from '../../switch/control-protocol.js';
import { describeEntry, type TableDump } from '../../switch/encoding.js';
import { readSidecarHeader } from '../../switch/sidecar-header.js';
import type { CommandContext } from '../context.js';
import { table } from '../format.js';

interface NpuOpts {
  json?: boolean;
  port?: number[];
  write?: string;
  out?: boolean;
  count?: number;
  timeout?: number;
}

type Action = (npu: NpuControl, args: string[], o: NpuOpts, c: CommandContext) => Promise<void>;

const bad = (msg: string) => new FalconError('INVALID_ARGUMENT', msg);

function int(v: string | undefined, what: string): number {
  const n = Number(v);
  if (v === undefined || !Number.isInteger(n) || n < 0 || n > 65535) throw bad(`${what} must be a whole number from 0 to 65535, not ${JSON.stringify(v)}`);
  return n;
}

/** Bytes written as "1,0,2", "[1,0,2]" or "" (none). */
export function parseBytes(v: string | undefined, what: string): number[] {
  if (v === undefined) throw bad(`give the ${what} as bytes, like 1,0,2 (or [] for none)`);
  const body = v.trim().replace(/^\[/, '').replace(/\]$/, '').trim();
  if (!body) return [];
  return body.split(/[\s,]+/).map((x) => {
    const n = Number(x);
    if (!Number.isInteger(n) || n < 0 || n > 255) throw bad(`${what} "${v}": "${x}" is not a byte (0-255)`);
    return n;
  });
}

function need(args: string[], n: number, usage: string): string[] {
  if (args.length < n) throw bad(`usage: npu NODE ${usage}`);
  return args;
}


export function formatDump(dump: TableDump): string {
  const out: string[] = [];
  for (const [t, entries] of Object.entries(dump)) {
    out.push(`${t} (${entries.length})`);
    for (const e of entries) out.push(`  ${describeEntry(t, e)}`);
  }
  return out.join('\n');
}

export function formatStats(s: SwitchStats): string {
  const rows = [...s.ports, ...(s.tfports ?? []).map((p) => ({ ...p, port: p.port }))].map((p, i) => [
    i < s.ports.length ? String(p.port) : `tf${p.port}`,
    p.connected ? 'yes' : 'no',
    String(p.rxFrames),
    String(p.txFrames),
    String(p.dropBackpressure),
    String(p.dropDisconnected),
    String(p.dropOversize),
    p.socket ?? '-',
  ]);
  const prog = Object.entries(s.pipeline.program).map(([k, v]) => `${k}=${v}`).join(' ');
  return [
    `switch ${s.name}: ${s.program}, radix ${s.radix}, pid ${s.pid}, up ${(s.uptimeMs / 1000).toFixed(0)} s`,
    table(['PORT', 'CONNECTED', 'RX', 'TX', 'DROP-BP', 'DROP-DISC', 'DROP-SIZE', 'SOCKET'], rows),
    `pipeline: ${s.pipeline.frames} frames, ${s.pipeline.dropped} dropped, ${s.pipeline.errors} errors, ${s.pipeline.badPort} bad ports${prog ? `; ${prog}` : ''}`,
    ...(s.mgmt ? [`uart: ${s.mgmt.connected ? 'connected' : 'not connected'}, ${s.mgmt.requests} requests, ${s.mgmt.malformed} malformed, ${s.mgmt.errors} errors`] : []),
  ].join('\n');
}

/** One captured frame in a line: time, port, direction, length, the sidecar header when there is one, and the bytes. */
export function formatFrame(f: CapturedFrame): string {
  const b = Buffer.from(f.hex, 'hex');
  const type = b.length >= 14 ? b.readUInt16BE(12) : undefined;
  const h = readSidecarHeader(b);
  const what = h
    ? `sidecar code ${h.code} ingress ${h.ingress} egress ${h.egress} inner 0x${h.etherType.toString(16).padStart(4, '0')}`
    : `type 0x${(type ?? 0).toString(16).padStart(4, '0')}`;
  return `${new Date(f.time * 1000).toISOString()} port ${f.port} ${f.dir} ${b.length} B ${what} ${f.hex}`;
}

async function capture(npu: NpuControl, o: NpuOpts, c: CommandContext): Promise<void> {
  const ac = new AbortController();
  const onSig = () => ac.abort();
  process.once('SIGINT', onSig);
  const timer = o.timeout !== undefined ? setTimeout(() => ac.abort(), o.timeout * 1000) : undefined;
  const file = o.write && o.write !== '-' ? createWriteStream(o.write, { mode: 0o600 }) : undefined;
  const pcap = (b: Buffer) => (file ? file.write(b) : c.stdout(b));
  if (o.write) pcap(pcapHeader());
  let n = 0;
  try {
    for await (const f of npu.capture(o.port?.length ? o.port : undefined, { signal: ac.signal })) {
      if (o.write) pcap(pcapRecord(f));
      else c.print(o.json ? JSON.stringify(f) : formatFrame(f));
      if (o.count !== undefined && ++n >= o.count) break;
    }
  } finally {
    process.off('SIGINT', onSig);
    if (timer) clearTimeout(timer);
    if (file) await new Promise<void>((r) => file.end(r));
  }
}

/** `npu NODE load FILE`: the switch compiles and runs the program, or says why not (exit 1). */
async function load(n: NpuControl, file: string, o: NpuOpts, c: CommandContext): Promise<void> {
  const r = await n.load(file);
  if (o.json) c.print(JSON.stringify(r, null, 2));
  else if (r.ok) c.print(`switch of ${n.node}: now running ${r.program}; tables: ${r.tables.kept} entries kept, ${r.tables.dropped} dropped`);
  if (!r.ok) throw new FalconError('P4_CHECK', `switch of ${n.node}: ${r.program} was refused, the old program keeps running:\n${r.errors.join('\n')}`);
}

const ACTIONS: Record<string, { usage: string; run: Action }> = {
  radix: { usage: 'radix', run: async (n, _a, _o, c) => c.print(String(await n.radix())) },
  dump: {
    usage: 'dump [--json]',
    run: async (n, _a, o, c) => {
      const d = await n.dump();
      c.print(o.json ? JSON.stringify(d, null, 2) : formatDump(d));
    },
  },
  stats: {
    usage: 'stats [--json]',
    run: async (n, _a, o, c) => {
      const s = await n.stats();
      c.print(o.json ? JSON.stringify(s, null, 2) : formatStats(s));
    },
  },
  clear: { usage: 'clear', run: (n) => n.clear() },
  load: { usage: 'load FILE.p4 [--json]', run: (n, a, o, c) => load(n, need(a, 1, 'load FILE.p4')[0]!, o, c) },
  add: {
    usage: 'add TABLE ACTION KEY PARAMS',
    run: (n, a) => {
      const [t, action, k, p] = need(a, 4, 'add TABLE ACTION KEY PARAMS');
      return n.add({ table: t!, action: action!, keyset_data: parseBytes(k, 'key'), parameter_data: parseBytes(p, 'parameters') });
    },
  },
  remove: {
    usage: 'remove TABLE KEY',
    run: (n, a) => {
      const [t, k] = need(a, 2, 'remove TABLE KEY');
      return n.remove({ table: t!, keyset_data: parseBytes(k, 'key') });
    },
  },
  capture: { usage: 'capture [--port N]... [-w FILE|-w -] [--count N] [--timeout S] [--json]', run: (n, _a, o, c) => capture(n, o, c) },
  inject: {
    usage: 'inject --port N [--out] HEX',
    run: (n, a, o) => {
      const [hex] = need(a, 1, 'inject --port N [--out] HEX');
      if (o.port?.length !== 1) throw bad('inject: give exactly one --port');
      const clean = hex!.replace(/[\s:]/g, '');
      if (!/^([0-9a-fA-F]{2})+$/.test(clean)) throw bad(`inject: "${hex}" is not a frame in hex`);
      return n.inject(o.port[0]!, Buffer.from(clean, 'hex'), o.out);
    },
  },
  'add-route4': { usage: 'add-route4 DEST PORT NEXTHOP [VLAN]', run: (n, a) => route(n, a, 'add-route4') },
  'add-route6': { usage: 'add-route6 DEST PORT NEXTHOP [VLAN]', run: (n, a) => route(n, a, 'add-route6') },
  'remove-route4': { usage: 'remove-route4 DEST', run: (n, a) => n.removeRoute(need(a, 1, 'remove-route4 DEST')[0]!) },
  'remove-route6': { usage: 'remove-route6 DEST', run: (n, a) => n.removeRoute(need(a, 1, 'remove-route6 DEST')[0]!) },
  'add-arp-entry': { usage: 'add-arp-entry IP MAC', run: (n, a) => n.addArpEntry(...(need(a, 2, 'add-arp-entry IP MAC') as [string, string])) },
  'add-ndp-entry': { usage: 'add-ndp-entry IP MAC', run: (n, a) => n.addArpEntry(...(need(a, 2, 'add-ndp-entry IP MAC') as [string, string])) },
  'remove-arp-entry': { usage: 'remove-arp-entry IP', run: (n, a) => n.removeArpEntry(need(a, 1, 'remove-arp-entry IP')[0]!) },
  'remove-ndp-entry': { usage: 'remove-ndp-entry IP', run: (n, a) => n.removeArpEntry(need(a, 1, 'remove-ndp-entry IP')[0]!) },
  'add-address4': { usage: 'add-address4 ADDR', run: (n, a) => n.addAddress(need(a, 1, 'add-address4 ADDR')[0]!) },
  'add-address6': { usage: 'add-address6 ADDR', run: (n, a) => n.addAddress(need(a, 1, 'add-address6 ADDR')[0]!) },
  'remove-address4': { usage: 'remove-address4 ADDR', run: (n, a) => n.removeAddress(need(a, 1, 'remove-address4 ADDR')[0]!) },
  'remove-address6': { usage: 'remove-address6 ADDR', run: (n, a) => n.removeAddress(need(a, 1, 'remove-address6 ADDR')[0]!) },
  'set-mac': { usage: 'set-mac PORT MAC', run: (n, a) => n.setMac(int(need(a, 2, 'set-mac PORT MAC')[0], 'PORT'), a[1]!) },
  'clear-mac': { usage: 'clear-mac PORT', run: (n, a) => n.clearMac(int(need(a, 1, 'clear-mac PORT')[0], 'PORT')) },
  'add-proxy-arp': { usage: 'add-proxy-arp BEGIN END MAC', run: (n, a) => n.addProxyArp(...(need(a, 3, 'add-proxy-arp BEGIN END MAC') as [string, string, string])) },
  'remove-proxy-arp': { usage: 'remove-proxy-arp BEGIN END', run: (n, a) => n.removeProxyArp(...(need(a, 2, 'remove-proxy-arp BEGIN END') as [string, string])) },
};

function route(n: NpuControl, a: string[], name: string): Promise<void> {
  const [dest, port, nexthop, vlan] = need(a, 3, `${name} DEST PORT NEXTHOP [VLAN]`);
  const v6 = name.endsWith('6');
  return v6 ? n.addRoute6(dest!, int(port, 'PORT'), nexthop!, vlan ? int(vlan, 'VLAN') : 0) : n.addRoute4(dest!, int(port, 'PORT'), nexthop!, vlan ? int(vlan, 'VLAN') : 0);
}

/** The `npu` command. */
export function npuCommand(ctx: CommandContext): Command {
  return new Command('npu')
    .description("the SoftNPU switch of an npu node: tables, stats, capture and inject (see docs/softnpu.md)")
    .argument('<node>', 'the npu node')
    .argument('<action>', Object.keys(ACTIONS).join(' | '))
    .argument('[args...]', 'the action\'s arguments')
    .option('--json', 'print JSON (dump, stats, capture)')
    .addOption(new Option('-p, --port <n>', 'port (capture: repeatable; inject: one)').argParser((v, prev: number[] = []) => [...prev, int(v, '--port')]))
    .option('-w, --write <file>', 'capture: write a pcap file ("-": to standard output)')
    .option('--out', 'inject: send the frame out of the port as is, instead of into the pipeline')
    .option('--count <n>', 'capture: stop after this many frames', (v) => int(v, '--count'))
    .option('--timeout <seconds>', 'capture: stop after this many seconds', (v) => Number(v))
    .addHelpText('after', `\nActions:\n${Object.values(ACTIONS).map((x) => `  ${x.usage}`).join('\n')}\n`)
    .action(async (node: string, action: string, args: string[], o: NpuOpts) => {
      const a = ACTIONS[action];
      if (!a) throw bad(`npu: unknown action "${action}"; use one of: ${Object.keys(ACTIONS).join(', ')}`);
      await a.run(await ctx.runner().npuOf(node), args, o, ctx);
    });
}
