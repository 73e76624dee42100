/** `$topo serial NODE`: the terminal on a node's serial console; ctrl-q leaves. */
import { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { attachSerial } from '../serial-attach.js';

export function serialCommand(ctx: CommandContext): Command {
  return new Command('serial')
    .description("attach the terminal to a node's serial console; ctrl-q leaves")
    .argument('<node>')
    .action(async (node: string) => {
      await attachSerial(await ctx.runner().console(node), { nodeName: node });
    });
}
