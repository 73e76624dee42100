/**
 * The topology program's CLI: `npx tsx duo.ts launch | info | exec NODE CMD | ...`.
 * Library code throws; only this layer prints errors and sets the exit code.
 */
import { Command, CommanderError } from 'commander';
import { FalconError } from '../util/errors.js';
import { Runner } from '../runner/runner.js';
import { consoleLogger, levelFromEnv, type Level, type Logger } from '../util/log.js';
import { attachSerial } from './serial-attach.js';
import { formatInfo, formatChecks } from './format.js';
import { imageCommand } from './image-commands.js';
import { npuCommand } from './npu-commands.js';
import { graphCommand } from './graph-command.js';
import { captureCommand } from './capture-command.js';
import { impairCommand } from './impair-command.js';
import { webCommand } from './web-command.js';
import { setupHost } from '../runner/setup.js';
import { initProject } from './init.js';

export interface ExtraCommand {
  /** Subcommand name. */
  name: string;
  description: string;
  /** Positional arguments in commander syntax, e.g. `<node> [count]`. */
  arguments?: string;
  /** Runs the command; `args` are the positional arguments. */
  action(runner: Runner, args: string[]): Promise<void> | void;
}

interface GlobalOpts {
  falconDir?: string;
  verbose: number;
}

export interface CliIo {
  argv?: string[];
  stdout?: (s: string | Buffer) => void;
  stderr?: (s: string) => void;
}

/**
 * Turn a topology program into its CLI: parse `process.argv`, run the subcommand, print errors
 * on stderr and exit non-zero on failure.
 */
export async function run(runner: Runner): Promise<void> {
  return runWithExtra(runner, []);
}

/** `run` with user-defined subcommands. */
export async function runWithExtra(runner: Runner, extra: ExtraCommand[]): Promise<void> {
  process.exitCode = await runCli(runner, extra);
}

/** Parse and run; returns the exit code instead of exiting (testable). */
export async function runCli(runner: Runner | undefined, extra: ExtraCommand[] = [], io: CliIo = {}): Promise<number> {
  const stdout = io.stdout ?? ((s: string | Buffer) => void process.stdout.write(s));
  const stderr = io.stderr ?? ((s: string) => void process.stderr.write(s));
  let exitCode = 0;
  let current: Runner | undefined;
  const program = buildProgram(runner, extra, {
    stdout,
    getRunner: (g) => (current ??= materialize(runner, g, stderr)),
    setExit: (c) => (exitCode = c),
  });
  program.exitOverride();
  program.configureOutput({ writeOut: (s) => stdout(s), writeErr: (s) => stderr(s) });
  const argv = io.argv ?? process.argv.slice(2);
  try {
    await program.parseAsync(expandAbbreviations(program, argv), { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? 0 : 2;
    stderr(`error: ${(e as Error)?.message ?? String(e)}\n`);
    return 1;
  }
  return exitCode;
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
  let i = 0;
  const valueOpts = new Set(['--falcon-dir']);
  while (i < out.length && out[i]!.startsWith('-')) i += valueOpts.has(out[i]!) ? 2 : 1;
  const word = out[i];
  if (word === undefined) return out;
  const names = program.commands.flatMap((c) => [c.name(), ...c.aliases()]);
  if (names.includes(word)) return out;
  const matches = program.commands.filter((c) => c.name().startsWith(word)).map((c) => c.name());
  if (matches.length === 1) out[i] = matches[0]!;
  else if (matches.length > 1) throw new FalconError('INVALID_ARGUMENT', `"${word}" is ambiguous: it could be ${matches.join(', ')}`);
  return out;
}

interface Ctx {
  stdout: (s: string | Buffer) => void;
  getRunner: (g: GlobalOpts) => Runner;
  setExit: (code: number) => void;
}

/**
 * The options every command takes, before or after its name (`$topo --falcon-dir D launch` and
 * `$topo launch --falcon-dir D`, as the original takes them on each subcommand).
 */
function addGlobalOptions(c: Command, runner: Runner | undefined): Command {
  return c
    .option('--falcon-dir <dir>', `where the topology keeps its state (default: ${runner ? '.falcon beside the program' : './.falcon'})`)
    .option('-v, --verbose', 'more logging (-vv for trace); FALCON_LOG and RUST_LOG set the level too', (_v, prev: number) => prev + 1, 0);
}

/** Give every command in the tree the global options; each level parses only its own. */
function spreadGlobalOptions(c: Command, runner: Runner | undefined): void {
  for (const sub of c.commands) {
    addGlobalOptions(sub, runner);
    if (sub.commands.length) sub.enablePositionalOptions();
    spreadGlobalOptions(sub, runner);
  }
}

/** The global options of a command and all its parents: -v counts add up, the innermost --falcon-dir wins. */
function globalsOf(c: Command): GlobalOpts {
  const chain: Command[] = [];
  for (let x: Command | null = c; x; x = x.parent) chain.unshift(x);
  const g: GlobalOpts = { verbose: 0 };
  for (const x of chain) {
    const o = x.opts<Partial<GlobalOpts>>();
    g.verbose += o.verbose ?? 0;
    if (o.falconDir !== undefined) g.falconDir = o.falconDir;
  }
  return g;
}

/** A commander parser for a number of seconds: refuses anything but a finite number >= 0. */
export function parseSeconds(flag: string): (v: string) => number {
  return (v) => {
    const n = v.trim() === '' ? NaN : Number(v);
    if (!Number.isFinite(n) || n < 0) {
      throw new FalconError('INVALID_ARGUMENT', `${flag} takes a number of seconds (0 or more, e.g. 30 or 2.5), not "${v}"`);
    }
    return n;
  };
}

function buildProgram(runner: Runner | undefined, extra: ExtraCommand[], ctx: Ctx): Command {
  const program = addGlobalOptions(new Command(runner ? runner.name : 'falcon'), runner)
    .description(runner ? `manage the Falcon topology "${runner.name}"` : 'Falcon: network topologies of virtual machines as code')
    .showHelpAfterError()
    .enablePositionalOptions();
  let g: GlobalOpts = { verbose: 0 };
  program.hook('preAction', (_root, action) => {
    g = globalsOf(action);
  });
  const r = () => ctx.getRunner(g);
  const print = (s: string) => ctx.stdout(s.endsWith('\n') ? s : `${s}\n`);
  const nodesArg = (node: string | undefined, o: { all?: boolean }, verb: string): string[] | undefined => {
    if (o.all && node) throw new FalconError('INVALID_ARGUMENT', `${verb}: give a node name or --all, not both`);
    if (!o.all && !node) throw new FalconError('INVALID_ARGUMENT', `${verb}: name a node, or pass --all for every node`);
    return o.all ? undefined : [node!];
  };

  program
    .command('preflight')
    .description('check the host and the topology without creating anything; saves .falcon/topology.json')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const { checks, accel } = await r().hostChecks();
      print(o.json ? JSON.stringify({ checks, accel }, null, 2) : formatChecks(checks));
      // The program's topology is checked too; the generic `falcon preflight` checks the host only.
      if (runner) {
        await r().preflight();
        if (!o.json) print(`topology "${runner.name}": ready to launch`);
      } else if (checks.some((c) => !c.ok && !c.optional)) ctx.setExit(1);
    });

  if (runner) {
    program
      .command('launch')
      .description('preflight, then create the network and boot every node; returns when all are ready')
      .action(async () => {
        await r().launch();
      });
    program
      .command('netcreate')
      .description("create the topology's host network only")
      .action(async () => r().netcreate());
  }

  program
    .command('destroy')
    .description('stop every node and remove its network, disks, sockets and .falcon state')
    .action(async () => r().destroy());

  program
    .command('netdestroy')
    .description("remove the topology's host network only")
    .action(async () => r().netdestroy());

  program
    .command('info')
    .description('show nodes and links with their host interfaces')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const info = await r().info();
      print(o.json ? JSON.stringify(info, null, 2) : formatInfo(info));
    });

  program
    .command('serial')
    .description("attach the terminal to a node's serial console; ctrl-q leaves")
    .argument('<node>')
    .action(async (node: string) => {
      await attachSerial(await r().consoleSocket(node), { nodeName: node });
    });

  program
    .command('exec')
    .description('run a shell command in a node; exits with its status')
    .argument('<node>')
    .argument('<command...>', 'the command (words are joined with spaces and run by /bin/sh -c)')
    .option('-t, --timeout <seconds>', 'give up after this many seconds', parseSeconds('exec --timeout'))
    .option('-i, --stdin', "pass this command's standard input to the guest command")
    .passThroughOptions()
    .action(async (node: string, words: string[], o: { timeout?: number; stdin?: boolean }) => {
      // Standard input is read only when asked for, so a loop feeding a script never loses it.
      const input = o.stdin ? await readAll(process.stdin) : undefined;
      // Buffers: the guest's output reaches our stdout byte for byte.
      const res = await r().exec(node, words.join(' '), { timeoutMs: o.timeout !== undefined ? o.timeout * 1000 : undefined, input, encoding: 'buffer' });
      if (res.stdout.length) ctx.stdout(res.stdout);
      if (res.stderr.length) process.stderr.write(res.stderr);
      ctx.setExit(res.exitCode ?? 128 + signalNumber(res.signal));
    });

  program
    .command('hyperstop')
    .description('stop VMs, keeping their disks and network')
    .argument('[node]')
    .option('-a, --all', 'every node')
    .action(async (node: string | undefined, o: { all?: boolean }) => r().hyperstop(nodesArg(node, o, 'hyperstop')));

  program
    .command('hyperstart')
    .description('start stopped VMs again with the same devices and disk')
    .argument('[node]')
    .option('-a, --all', 'every node')
    .action(async (node: string | undefined, o: { all?: boolean }) => r().hyperstart(nodesArg(node, o, 'hyperstart')));

  program
    .command('reboot')
    .description('reset a node through QMP and wait until it is ready again')
    .argument('<node>')
    .action(async (node: string) => r().reboot(node));

  program
    .command('snapshot')
    .description("save a node's disk as a new standalone base image")
    .argument('<node>')
    .argument('<image>', 'name of the new image')
    .action(async (node: string, image: string) => {
      const img = await r().snapshot(node, image);
      print(`image "${img.name}" created from node "${node}" (${img.dir})`);
    });

  program.addCommand(imageCommand(() => ({ store: r().store, log: r().log })));
  program.addCommand(npuCommand(() => ({ runner: r(), stdout: ctx.stdout })));
  program.addCommand(graphCommand(() => ({ runner: r(), stdout: ctx.stdout })));
  program.addCommand(captureCommand(() => ({ runner: r(), stdout: ctx.stdout })));
  program.addCommand(impairCommand(() => ({ runner: r(), stdout: ctx.stdout })));
  program.addCommand(webCommand(() => ({ runner: r(), stdout: ctx.stdout })));

  if (!runner) {
    program
      .command('setup')
      .description('install the Debian packages Falcon needs, when they are missing')
      .option('--dry-run', 'only list what is missing')
      .action(async (o: { dryRun?: boolean }) => {
        await setupHost({ log: r().log, dryRun: o.dryRun });
      });
    program
      .command('init')
      .description('scaffold a topology project (package.json, tsconfig.json, a duo in topo.ts) and npm install it')
      .argument('[dir]', 'the project folder, new or empty', '.')
      .option('--name <topology>', 'topology name in topo.ts (default: from the folder name)')
      .option('--falcon-spec <spec>', 'npm spec of the falcon dependency (default: file: this falcon package)')
      .option('--no-install', 'write the files only; skip npm install')
      .action(async (dir: string, o: { name?: string; falconSpec?: string; install: boolean }) => {
        const name = await initProject({ dir, name: o.name, falconSpec: o.falconSpec, install: o.install, log: r().log });
        const cd = dir === '.' ? '' : `cd ${dir} && `;
        print(`project ready (topology "${name}"); next: ${cd}${o.install ? '' : 'npm install && '}npx tsx topo.ts launch`);
      });
  }

  for (const x of extra) {
    const c = program.command(x.name).description(x.description);
    if (x.arguments) c.arguments(x.arguments);
    c.action(async (...a: unknown[]) => {
      const positional = a.slice(0, -2).flat().filter((v): v is string => typeof v === 'string');
      await x.action(r(), positional);
    });
  }
  spreadGlobalOptions(program, runner);
  return program;
}


async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15 };
function signalNumber(name: string | null): number {
  return (name && SIGNALS[name]) || 0;
}
