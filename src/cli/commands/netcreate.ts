/** `$topo netcreate`: the topology's host network alone. */
import { Command } from 'commander';
import type { CommandContext } from '../context.js';

export function netcreateCommand(ctx: CommandContext): Command {
  return new Command('netcreate')
    .description("create the topology's host network only")
    .action(async () => ctx.runner().netcreate());
}
