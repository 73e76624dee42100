/**
 * The topology program's CLI: `npx tsx duo.ts launch | info | exec NODE CMD | ...`, and the
 * generic `falcon` CLI. Each command is in ./commands/; this file assembles them and runs one.
 * Library code throws; only this layer prints errors and sets the exit code.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { FalconError } from '../util/errors.js';
import { Runner } from '../runner/runner.js';
import { consoleLogger, levelFromEnv, type Level, type Logger } from '../util/log.js';
import { applyTrailingRule, subcommandIndex } from './argv.js';
import type { CommandContext } from './context.js';
import { addGlobalOptions, globalsOf, spreadGlobalOptions, type GlobalOpts } from './options.js';
import { preflightCommand } from './commands/preflight.js';
import { launchCommand } from './commands/launch.js';
import { netcreateCommand } from './commands/netcreate.js';
import { destroyCommand } from './commands/destroy.js';
import { netdestroyCommand } from './commands/netdestroy.js';
import { infoCommand } from './commands/info.js';
import { serialCommand } from './commands/serial.js';
import { execCommand } from './commands/exec.js';
import { hyperstopCommand } from './commands/hyperstop.js';
import { hyperstartCommand } from './commands/hyperstart.js';
import { rebootCommand } from './commands/reboot.js';
import { snapshotCommand } from './commands/snapshot.js';
import { imageCommand } from './commands/image.js';
import { npuCommand } from './commands/npu.js';
import { graphCommand } from './commands/graph.js';
import { captureCommand } from './commands/capture.js';
import { impairCommand } from './commands/impair.js';
import { webCommand } from './commands/web.js';
import { extraCommand, type ExtraCommand } from './commands/extra.js';

export type { ExtraCommand } from './commands/extra.js';
export { parseSeconds } from './options.js';

/** What runCli reads and where it writes; default process.argv and the process's own streams. */
export interface CliIo {
  /** The arguments after the program's name. */
  argv?: string[];
  stdout?: (s: string | Buffer) => void;
  stderr?: (s: string) => void;
}

/**
 * What a CLI run did, as upstream's `RunMode`: `'launch'` or `'destroy'` when that command ran
 * and succeeded, `'unspec'` for any other command or a failure (the exit code says which).
 */
export type RunMode = 'launch' | 'destroy' | 'unspec';

/**
 * Turn a topology program into its CLI: parse `process.argv`, run the subcommand, print errors
 * on stderr and set a non-zero exit code on failure. Resolves with what ran, so a program can go
 * on after a launch (upstream's `RunMode`):
 *
 * ```ts
 * if ((await run(d)) === 'launch') await d.succeed(violin, 'ping -c1 10.0.0.2');
 * ```
 */
export async function run(runner: Runner): Promise<RunMode> {
  return runWithExtra(runner, []);
}

/** `run` with user-defined subcommands. */
export async function runWithExtra(runner: Runner, extra: ExtraCommand[]): Promise<RunMode> {
  const r = await runCliMode(runner, extra);
  process.exitCode = r.code;
  return r.mode;
}

/** Parse and run; returns the exit code instead of exiting (testable). */
export async function runCli(runner: Runner | undefined, extra: ExtraCommand[] = [], io: CliIo = {}): Promise<number> {
  return (await runCliMode(runner, extra, io)).code;
}

/** The top-level subcommand of a (possibly nested) command. */
function topLevel(c: Command): string {
  let x = c;
  while (x.parent?.parent) x = x.parent;
  return x.name();
}

/** Parse and run; the exit code and what ran. */
export async function runCliMode(runner: Runner | undefined, extra: ExtraCommand[] = [], io: CliIo = {}): Promise<{ code: number; mode: RunMode }> {
  const r = await runParsed(runner, extra, io);
  const mode: RunMode = r.code === 0 && (r.ran === 'launch' || r.ran === 'destroy') ? r.ran : 'unspec';
  return { code: r.code, mode };
}

async function runParsed(runner: Runner | undefined, extra: ExtraCommand[], io: CliIo): Promise<{ code: number; ran?: string }> {
  const stdout = io.stdout ?? ((s: string | Buffer) => void process.stdout.write(s));
  const stderr = io.stderr ?? ((s: string) => void process.stderr.write(s));
  let exitCode = 0;
  let g: GlobalOpts = { verbose: 0 };
  let current: Runner | undefined;
  const ctx: CommandContext = {
    runner: () => (current ??= materialize(runner, g, stderr)),
    generic: runner === undefined,
    stdout,
    stderr,
    print: (s) => stdout(s.endsWith('\n') ? s : `${s}\n`),
    setExit: (c) => (exitCode = c),
  };
  const program = await buildProgram(runner, extra, ctx);
  let ran: string | undefined;
  program.hook('preAction', (_root, action) => {
    g = globalsOf(action);
    ran = topLevel(action);
  });
  configureTree(program, { writeOut: (s) => stdout(s), writeErr: (s) => stderr(s) });
  const argv = io.argv ?? process.argv.slice(2);
  try {
    await program.parseAsync(applyTrailingRule(program, expandAbbreviations(program, argv)), { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return { code: e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? 0 : 2 };
    stderr(`error: ${(e as Error)?.message ?? String(e)}\n`);
    return { code: 1, ran };
  }
  return { code: exitCode, ran };
}

/**
 * Every command of the tree throws instead of exiting and writes where the CLI's io says:
 * commander passes neither setting to commands made apart and added with addCommand.
 */
function configureTree(c: Command, output: { writeOut(s: string): void; writeErr(s: string): void }): void {
  c.exitOverride().configureOutput(output).showHelpAfterError();
  for (const sub of c.commands) configureTree(sub, output);
}

function logLevel(g: GlobalOpts): Level {
  if (g.verbose >= 2) return 'trace';
  if (g.verbose === 1) return 'debug';
  return levelFromEnv();
}

/** The runner the command acts on: the program's, with the CLI's falcon dir and log level. */
function materialize(runner: Runner | undefined, g: GlobalOpts, stderr: (s: string) => void): Runner {
  const logger: Logger = consoleLogger(logLevel(g), stderr);
  if (!runner) {
    // The generic `falcon` CLI: the topology comes from the .falcon directory alone.
    return new Runner('unnamed', { falconDir: g.falconDir ?? '.falcon', logger, persistent: true, fromSaved: true });
  }
  return runner.derive({ falconDir: g.falconDir ?? runner.paths.dir, logger, persistent: true });
}

/**
 * The original infers subcommands from unique prefixes (`lau` for launch). Rewrite the first
 * non-option word to the full name when the prefix is unique; report an ambiguous one.
 */
export function expandAbbreviations(program: Command, argv: string[]): string[] {
  const out = [...argv];
  const i = subcommandIndex(program, out);
  const word = out[i];
  if (i < 0 || word === undefined) return out;
  const names = program.commands.flatMap((c) => [c.name(), ...c.aliases()]);
  if (names.includes(word)) return out;
  const matches = program.commands.filter((c) => c.name().startsWith(word)).map((c) => c.name());
  if (matches.length === 1) out[i] = matches[0]!;
  else if (matches.length > 1) throw new FalconError('INVALID_ARGUMENT', `"${word}" is ambiguous: it could be ${matches.join(', ')}`);
  return out;
}

/** This package's version: package.json is two folders up from src/cli and from dist/cli alike. */
function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** setup, init and p4: the generic CLI's alone, so a topology program does not load them. */
async function genericOnlyCommands(): Promise<((ctx: CommandContext) => Command)[]> {
  const [{ setupCommand }, { initCommand }, { p4Command }] = await Promise.all([import('./commands/setup.js'), import('./commands/init.js'), import('./commands/p4.js')]);
  return [setupCommand, initCommand, p4Command];
}

/** The commands of the topology program's CLI (`runner` given) or of the generic `falcon` CLI. */
async function buildProgram(runner: Runner | undefined, extra: ExtraCommand[], ctx: CommandContext): Promise<Command> {
  const program = addGlobalOptions(new Command(runner ? runner.name : 'falcon'), ctx.generic)
    .description(runner ? `manage the Falcon topology "${runner.name}"` : 'Falcon: network topologies of virtual machines as code')
    .version(packageVersion(), '-V, --version', "print Falcon's version")
    .enablePositionalOptions();
  // launch and netcreate need the program's topology; setup and init are the host's and a project's.
  const commands = [
    preflightCommand,
    ...(runner ? [launchCommand, netcreateCommand] : []),
    destroyCommand,
    netdestroyCommand,
    infoCommand,
    serialCommand,
    execCommand,
    hyperstopCommand,
    hyperstartCommand,
    rebootCommand,
    snapshotCommand,
    imageCommand,
    npuCommand,
    graphCommand,
    captureCommand,
    impairCommand,
    webCommand,
    ...(runner ? [] : await genericOnlyCommands()),
  ];
  for (const make of commands) program.addCommand(make(ctx));
  for (const x of extra) program.addCommand(extraCommand(ctx, x));
  spreadGlobalOptions(program, ctx.generic);
  return program;
}
