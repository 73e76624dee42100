/** `$topo reboot NODE`: reset through QMP and wait until it is ready again. */
import { Command } from 'commander';
import type { CommandContext } from '../context.js';

export function rebootCommand(ctx: CommandContext): Command {
  return new Command('reboot')
    .description('reset a node through QMP and wait until it is ready again')
    .argument('<node>')
    .action(async (node: string) => ctx.runner().reboot(node));
}
