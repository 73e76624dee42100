/**
 * The `falcon` command: host set-up, images, and the commands that work on an existing
 * topology from its `.falcon` directory alone (`falcon --falcon-dir DIR exec NODE CMD`).
 */
import { runCli } from './program.js';

process.exitCode = await runCli(undefined, []);
