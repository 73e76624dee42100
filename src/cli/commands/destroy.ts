/** `$topo destroy`: everything of the topology, idempotent. */
import { Command } from 'commander';
import type { CommandContext } from '../context.js';

export function destroyCommand(ctx: CommandContext): Command {
  return new Command('destroy')
    .description('stop every node and remove its network, disks, sockets and .falcon state')
    .action(async () => ctx.runner().destroy());
}
