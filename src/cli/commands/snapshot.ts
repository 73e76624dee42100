/** `$topo snapshot NODE IMAGE`: a node's disk as a new base image. */
import { Command } from 'commander';
import type { CommandContext } from '../context.js';

export function snapshotCommand(ctx: CommandContext): Command {
  return new Command('snapshot')
    .description("save a node's disk as a new standalone base image")
    .argument('<node>')
    .argument('<image>', 'name of the new image')
    .action(async (node: string, image: string) => {
      const img = await ctx.runner().snapshot(node, image);
      ctx.print(`image "${img.name}" created from node "${node}" (${img.dir})`);
    });
}
