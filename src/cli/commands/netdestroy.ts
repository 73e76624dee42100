/** `$topo netdestroy`: the topology's host network alone. */
import { Command } from 'commander';
import type { CommandContext } from '../context.js';

export function netdestroyCommand(ctx: CommandContext): Command {
  return new Command('netdestroy')
    .description("remove the topology's host network only")
    .action(async () => ctx.runner().netdestroy());
}
