/** `$topo graph [--format mermaid|dot|svg|json] [-o FILE]`: a picture of the topology. */
import { Command, Option } from 'commander';
import { writeFileAtomic } from '../../util/fs.js';
import { GRAPH_FORMATS, parseGraphFormat, renderGraph, type GraphFormat } from '../../graph/index.js';
import type { CommandContext } from '../context.js';

export function graphCommand(ctx: CommandContext): Command {
  return new Command('graph')
    .description('draw the topology: nodes with status, links with their host interfaces, switches with ports (see docs/networking.md#graph)')
    .addOption(new Option('-f, --format <format>', `${GRAPH_FORMATS.join(' | ')} (svg runs Graphviz's dot)`).argParser(parseGraphFormat).default('mermaid'))
    .option('-o, --output <file>', 'write to this file instead of standard output')
    .action(async (o: { format: GraphFormat; output?: string }) => {
      const runner = ctx.runner();
      const text = await renderGraph(await runner.info(), o.format, { proc: runner.proc });
      // A picture to share, not state: readable by others like any file the user writes.
      if (o.output) await writeFileAtomic(o.output, text, 0o644);
      else ctx.stdout(text);
    });
}
