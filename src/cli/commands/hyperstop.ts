/** `$topo hyperstop NODE | --all`: stop VMs, keeping their disks and network. */
import { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { nodeOrAll } from '../options.js';

export function hyperstopCommand(ctx: CommandContext): Command {
  return new Command('hyperstop')
    .description('stop VMs, keeping their disks and network')
    .argument('[node]')
    .option('-a, --all', 'every node')
    .action(async (node: string | undefined, o: { all?: boolean }) => ctx.runner().hyperstop(nodeOrAll(node, o, 'hyperstop')));
}
