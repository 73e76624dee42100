/**
 * The `falcon` command: host set-up, images, and the commands that work on an existing
 * topology from its `.falcon` directory alone (`falcon --falcon-dir DIR exec NODE CMD`).
 */
import { Command } from 'commander';
import { runCli } from './program.js';
import { setupHost } from '../runner/setup.js';
import { consoleLogger } from '../util/log.js';

const argv = process.argv.slice(2);
if (argv[0] === 'setup') {
  const cmd = new Command('setup')
    .description('install the Debian packages Falcon needs, when they are missing')
    .option('--dry-run', 'only list what is missing')
    .exitOverride();
  try {
    cmd.parse(argv.slice(1), { from: 'user' });
    await setupHost({ log: consoleLogger(), dryRun: cmd.opts().dryRun });
  } catch (e) {
    if ((e as { code?: string }).code === 'commander.helpDisplayed') process.exit(0);
    process.stderr.write(`error: ${(e as Error).message}\n`);
    process.exit(1);
  }
} else {
  process.exitCode = await runCli(undefined, []);
}
