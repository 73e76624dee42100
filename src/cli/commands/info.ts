/** `$topo info [--json]`: nodes, links and switches with their host interfaces. */
import { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { formatInfo } from '../format.js';

export function infoCommand(ctx: CommandContext): Command {
  return new Command('info')
    .description('show nodes and links with their host interfaces')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const info = await ctx.runner().info();
      ctx.print(o.json ? JSON.stringify(info, null, 2) : formatInfo(info));
    });
}
