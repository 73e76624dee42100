/**
 * `$topo impair LINK|ENDPOINT [--delay 20ms --jitter 5ms --loss 1% --rate 10mbit ...] | --clear`
 * and `$topo impair [TARGET] --show [--json]`: see docs/networking.md#impairment.
 */
import { Command } from 'commander';
import { FalconError } from '../../util/errors.js';
import { parseDuration, parsePercent, parseRate, type Impairment } from '../../model/impair.js';
import type { CommandContext } from '../context.js';
import { formatImpairments } from '../format.js';

interface ImpairOpts {
  delay?: number;
  jitter?: number;
  loss?: number;
  duplicate?: number;
  corrupt?: number;
  reorder?: number;
  rate?: number;
  clear?: boolean;
  show?: boolean;
  json?: boolean;
}

const bad = (msg: string) => new FalconError('INVALID_ARGUMENT', msg);

/** The impairment the options give; undefined when they give none. */
export function impairmentFromOptions(o: ImpairOpts): Impairment | undefined {
  const imp: Impairment = {};
  if (o.delay !== undefined) imp.delayMs = o.delay;
  if (o.jitter !== undefined) imp.jitterMs = o.jitter;
  if (o.loss !== undefined) imp.lossPct = o.loss;
  if (o.duplicate !== undefined) imp.duplicatePct = o.duplicate;
  if (o.corrupt !== undefined) imp.corruptPct = o.corrupt;
  if (o.reorder !== undefined) imp.reorderPct = o.reorder;
  if (o.rate !== undefined) imp.rateMbit = o.rate;
  return Object.keys(imp).length ? imp : undefined;
}

/** The `impair` command. */
export function impairCommand(ctx: CommandContext): Command {
  return new Command('impair')
    .description('make a link or an endpoint bad on purpose while the topology runs (netem, or a userspace helper where the kernel has none)')
    .argument('[target]', 'a link (nodeA--nodeB, node:i--node:j, links[N]: both directions) or an endpoint (node:index or its altname: the frames it sends)')
    .option('--delay <time>', 'added delay, e.g. 20ms, 1.5s, 500us', (v) => parseDuration(v, '--delay'))
    .option('--jitter <time>', 'delay variation, +/- this much (needs --delay)', (v) => parseDuration(v, '--jitter'))
    .option('--loss <percent>', 'share of frames dropped, e.g. 1% or 0.5', (v) => parsePercent(v, '--loss'))
    .option('--duplicate <percent>', 'share of frames sent twice', (v) => parsePercent(v, '--duplicate'))
    .option('--corrupt <percent>', 'share of frames with one bit flipped', (v) => parsePercent(v, '--corrupt'))
    .option('--reorder <percent>', 'share of frames sent at once, ahead of delayed ones (needs --delay)', (v) => parsePercent(v, '--reorder'))
    .option('--rate <rate>', 'bandwidth, e.g. 10mbit, 500kbit, 1gbit', (v) => parseRate(v, '--rate'))
    .option('--clear', 'remove the impairment (also a declared one, until destroy)')
    .option('--show', 'show the impairment of every link (or of TARGET), how it is applied, and the counters')
    .option('--json', 'with --show: print JSON')
    .action(async (target: string | undefined, o: ImpairOpts) => {
      const runner = ctx.runner();
      const imp = impairmentFromOptions(o);
      if (o.clear && imp) throw bad('impair: give either values (--delay, --loss, ...) or --clear, not both');
      if (o.show && (imp || o.clear)) throw bad('impair: --show only shows; drop the values and --clear, or drop --show');
      if (o.json && !o.show && (imp || o.clear)) throw bad('impair: --json goes with --show');
      if (!target && (imp || o.clear)) throw bad('impair: name a link (nodeA--nodeB) or an endpoint (node:index) to change; impair --show lists them');
      if (imp || o.clear) {
        const s = imp ? await runner.impair(target!, imp) : await runner.clearImpairment(target!);
        ctx.print(formatImpairments([s]));
        return;
      }
      const list = await runner.impairments(target);
      ctx.print(o.json ? JSON.stringify(list, null, 2) : formatImpairments(list));
    });
}
