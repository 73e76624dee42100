/** `$topo preflight [--json] [--reprobe]`: check the host and the topology without creating anything. */
import { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { formatChecks } from '../format.js';

export function preflightCommand(ctx: CommandContext): Command {
  return new Command('preflight')
    .description('check the host and the topology without creating anything; saves .falcon/topology.json')
    .option('--json', 'print JSON')
    .option('--reprobe', 'probe KVM again instead of using the cached decision')
    .action(async (o: { json?: boolean; reprobe?: boolean }) => {
      const { checks, accel } = await ctx.runner().hostChecks({ reprobe: o.reprobe });
      ctx.print(o.json ? JSON.stringify({ checks, accel }, null, 2) : formatChecks(checks));
      // The program's topology is checked too; the generic `falcon preflight` checks the host only.
      if (!ctx.generic) {
        await ctx.runner().preflight();
        if (!o.json) ctx.print(`topology "${ctx.runner().name}": ready to launch`);
      } else if (checks.some((c) => !c.ok && !c.optional)) ctx.setExit(1);
    });
}
