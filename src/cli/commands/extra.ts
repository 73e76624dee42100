/** The topology program's own subcommands (`runWithExtra(d, [{ name: 'demo', ... }])`). */
import { Command } from 'commander';
import type { Runner } from '../../runner/runner.js';
import { takesTrailingWords } from '../argv.js';
import type { CommandContext } from '../context.js';

/** A user-defined subcommand of a topology program's CLI. */
export interface ExtraCommand {
  /** Subcommand name. */
  name: string;
  description: string;
  /**
   * Positional arguments in commander syntax, e.g. `<node> [count]`. A variadic last one
   * (`<node> <words...>`) takes trailing words as exec does: `-l` stays a word, a trailing
   * `--falcon-dir DIR` is Falcon's.
   */
  arguments?: string;
  /** Runs the command; `args` are the positional arguments. */
  action(runner: Runner, args: string[]): Promise<void> | void;
}

export function extraCommand(ctx: CommandContext, x: ExtraCommand): Command {
  const c = new Command(x.name).description(x.description);
  if (x.arguments) c.arguments(x.arguments);
  c.action(async (...a: unknown[]) => {
    // commander passes the positionals (a variadic one as an array), then the options and the command.
    const positional = a.slice(0, -2).flat().filter((v): v is string => typeof v === 'string');
    await x.action(ctx.runner(), positional);
  });
  // Its variadic words may start with "-", as a guest command's do.
  return c.registeredArguments.at(-1)?.variadic ? takesTrailingWords(c) : c;
}
