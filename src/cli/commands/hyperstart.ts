/** `$topo hyperstart NODE | --all`: start stopped VMs again. */
import { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { nodeOrAll } from '../options.js';

export function hyperstartCommand(ctx: CommandContext): Command {
  return new Command('hyperstart')
    .description('start stopped VMs again with the same devices and disk')
    .argument('[node]')
    .option('-a, --all', 'every node')
    .action(async (node: string | undefined, o: { all?: boolean }) => ctx.runner().hyperstart(nodeOrAll(node, o, 'hyperstart')));
}
