/** `falcon setup [--dry-run]`: install the Debian packages Falcon needs. */
import { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { setupHost } from '../../runner/setup.js';

export function setupCommand(ctx: CommandContext): Command {
  return new Command('setup')
    .description('install the Debian packages Falcon needs, when they are missing')
    .option('--dry-run', 'only list what is missing')
    .action(async (o: { dryRun?: boolean }) => {
      await setupHost({ log: ctx.runner().log, dryRun: o.dryRun });
    });
}
