/**
 * `$topo capture ENDPOINT [-w FILE | -w -] [--count N] [--duration S] [FILTER...]` and
 * `$topo capture --all -w FILE.pcapng`: see docs/networking.md#capture. Ctrl-c ends it; the
 * file is complete and every tcpdump has exited when the command returns.
 */
import { Command } from 'commander';
import { FalconError } from '../../util/errors.js';
import type { CommandContext } from '../context.js';

interface CaptureOpts {
  write?: string;
  all?: boolean;
  count?: number;
  duration?: number;
}

const bad = (msg: string) => new FalconError('INVALID_ARGUMENT', msg);

function count(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || n < 1) throw bad(`--count takes a whole number of frames (1 or more), not "${v}"`);
  return n;
}

function seconds(v: string): number {
  const n = v.trim() === '' ? NaN : Number(v);
  if (!Number.isFinite(n) || n <= 0) throw bad(`--duration takes a number of seconds above 0 (e.g. 10 or 2.5), not "${v}"`);
  return n;
}

/**
 * The `capture` command. Its options go anywhere, also after the filter words: tcpdump filter
 * words never begin with "-", so none of them is taken for an option.
 */
export function captureCommand(ctx: CommandContext): Command {
  return new Command('capture')
    .description('capture the frames of a NIC (node:index or its altname) with tcpdump or its switch; ctrl-c ends it')
    .argument('[endpoint]', 'node:index (the node\'s index-th NIC) or an altname from info')
    .argument('[filter...]', 'tcpdump filter words (host interfaces only), e.g. icmp or host 10.0.0.1')
    .option('-w, --write <file>', 'write pcap (pcapng with --all) to FILE; "-" writes pcap to standard output')
    .option('--all', 'every NIC of the topology into one pcapng (-w FILE), one interface per NIC named by its altname')
    .option('--count <n>', 'stop after this many frames', count)
    .option('--duration <seconds>', 'stop after this many seconds', seconds)
    .action(async (endpoint: string | undefined, filter: string[], o: CaptureOpts) => {
      const runner = ctx.runner();
      if (o.all) {
        if (!o.write || o.write === '-') throw bad('capture --all writes a pcapng file: give -w FILE.pcapng');
        // With --all the first word is a filter word, not an endpoint.
        if (endpoint !== undefined) filter = [endpoint, ...filter];
      } else if (endpoint === undefined) throw bad('capture: name an endpoint (node:index or an altname; info lists them), or pass --all -w FILE.pcapng');
      const ac = new AbortController();
      const onSig = () => ac.abort();
      process.once('SIGINT', onSig);
      process.once('SIGTERM', onSig);
      // A reader that goes away (wireshark closed) ends the capture instead of killing us.
      const toStdout = o.write === '-';
      const onPipe = () => ac.abort();
      if (toStdout) process.stdout.on('error', onPipe);
      const common = {
        signal: ac.signal,
        count: o.count,
        durationMs: o.duration !== undefined ? o.duration * 1000 : undefined,
        filter,
        onReady: () => process.stderr.write(`capturing; ctrl-c ends it\n`),
      };
      try {
        const output = toStdout ? (b: Buffer) => ctx.stdout(b) : o.write;
        const r = o.all ? await runner.captureAll({ ...common, output: output! }) : await runner.capture(endpoint!, { ...common, output, onLine: (l) => ctx.stdout(`${l}\n`) });
        process.stderr.write(`${r.frames} frame${r.frames === 1 ? '' : 's'} captured${o.write && !toStdout ? ` to ${o.write}` : ''}\n`);
      } finally {
        process.off('SIGINT', onSig);
        process.off('SIGTERM', onSig);
        if (toStdout) process.stdout.off('error', onPipe);
      }
    });
}
