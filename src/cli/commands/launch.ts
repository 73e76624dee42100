/** `$topo launch`: the whole topology, up and ready. */
import { Command } from 'commander';
import type { CommandContext } from '../context.js';

export function launchCommand(ctx: CommandContext): Command {
  return new Command('launch')
    .description('preflight, then create the network and boot every node; returns when all are ready')
    .action(async () => {
      await ctx.runner().launch();
    });
}
