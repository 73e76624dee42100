/**
 * The trailing-run rule: where Falcon's options end and a command's trailing words (the guest
 * command of `exec NODE COMMAND...`, an extra command's variadic argument) begin. Falcon reads
 * its options, in every form, before and between the positional arguments; among the trailing
 * words it reads only a trailing run at the end of the line: long forms (`--falcon-dir DIR`,
 * `--timeout=S`, `--dump`) and the short forms that take a checked value (`-t 5`). Everything
 * else stays the command's, because `ls -i`, `grep -v`, `cut -f 1` are everyday guest commands.
 * A `--` before the trailing words ends Falcon's options; one among them is the command's own.
 * See docs/reference.md#commands.
 */
import type { Command } from 'commander';

/** One of Falcon's options, as the rule reads it. */
export interface WordOption {
  /** Long form, e.g. `--falcon-dir`. */
  long?: string;
  /** Short form, e.g. `-f`. */
  short?: string;
  /** It takes a value (`--falcon-dir DIR`, `--falcon-dir=DIR`, `-fDIR`). */
  takesValue: boolean;
  /** Read before the trailing words only, never in the trailing run (`--help`). */
  leadingOnly?: boolean;
  /** The short form counts in the trailing run when this accepts its value (`-t 5`, not `-t ,`). */
  trailingShort?: (value: string) => boolean;
}

/** What a command takes. */
export interface WordsSpec {
  /** The positional arguments before the trailing words (exec: 1, the node). */
  positionals: number;
  options: readonly WordOption[];
}

/** A command line split by the rule. */
export interface SplitWords {
  /** Falcon's options as given, the trailing run last (the last of a repeated option wins). */
  options: string[];
  /** The positional arguments before the trailing words. */
  positionals: string[];
  /** The trailing words: the guest's command, an extra command's variadic argument. */
  words: string[];
}

const isLong = (w: string) => w.startsWith('--') && w.length > 2;
const isShort = (w: string) => w.length > 1 && w.startsWith('-') && !w.startsWith('--');

/**
 * How many words of `argv` from `i` are one of `options` in any form (`--opt=V`, `--opt V`,
 * `-abc`, `-tV`, `-t V`); 0 when `argv[i]` is not one of them.
 */
export function optionLength(argv: readonly string[], i: number, options: readonly WordOption[]): number {
  const w = argv[i]!;
  const withValue = (hasValue: boolean) => (hasValue || i + 1 >= argv.length ? 1 : 2);
  if (isLong(w)) {
    const eq = w.indexOf('=');
    const o = options.find((x) => x.long === (eq < 0 ? w : w.slice(0, eq)));
    if (!o) return 0;
    return o.takesValue ? withValue(eq >= 0) : 1;
  }
  if (!isShort(w)) return 0;
  // Combined short flags, as commander reads them: `-vv`, `-it 5`, `-t5`.
  for (let j = 1; j < w.length; j++) {
    const o = options.find((x) => x.short === `-${w[j]}`);
    if (!o) return 0;
    if (o.takesValue) return withValue(j < w.length - 1);
  }
  return 1;
}

/** Whether `words` is, completely, a run of options the trailing run takes. */
function isTrailingRun(words: readonly string[], options: readonly WordOption[]): boolean {
  let i = 0;
  while (i < words.length) {
    const w = words[i]!;
    const next = words[i + 1];
    if (isLong(w)) {
      const eq = w.indexOf('=');
      const o = options.find((x) => x.long === (eq < 0 ? w : w.slice(0, eq)) && !x.leadingOnly);
      if (!o || (!o.takesValue && eq >= 0)) return false;
      if (!o.takesValue || eq >= 0) i += 1;
      // A separate value that looks like an option is more likely the guest's.
      else if (next === undefined || next.startsWith('-')) return false;
      else i += 2;
    } else {
      const o = options.find((x) => x.short === w && x.trailingShort);
      if (!o || next === undefined || !o.trailingShort!(next)) return false;
      i += 2;
    }
  }
  return true;
}

/**
 * Where the trailing run of `words` starts: the longest suffix that is completely Falcon's
 * options, leaving the command at least one word. `words.length` when there is none.
 */
export function trailingRunStart(words: readonly string[], options: readonly WordOption[]): number {
  for (let s = 1; s < words.length; s++) if (isTrailingRun(words.slice(s), options)) return s;
  return words.length;
}

/** Split the words after a command's name by the trailing-run rule. */
export function splitWords(argv: readonly string[], spec: WordsSpec): SplitWords {
  const options: string[] = [];
  const positionals: string[] = [];
  let i = 0;
  let ended = false;
  while (i < argv.length) {
    const w = argv[i]!;
    if (w === '--') {
      ended = true;
      i++;
      break;
    }
    const n = optionLength(argv, i, spec.options);
    if (n) {
      options.push(...argv.slice(i, i + n));
      i += n;
    } else if (positionals.length < spec.positionals) {
      // An option Falcon does not have, before the positionals: commander reports it.
      (isLong(w) || isShort(w) ? options : positionals).push(w);
      i++;
    } else break;
  }
  if (ended) {
    while (positionals.length < spec.positionals && i < argv.length) positionals.push(argv[i++]!);
    return { options, positionals, words: argv.slice(i) };
  }
  const rest = argv.slice(i);
  const cut = trailingRunStart(rest, spec.options);
  return { options: [...options, ...rest.slice(cut)], positionals, words: rest.slice(0, cut) };
}

/** The command line commander parses: options, then `--`, so that no word after it is read as one. */
export function joinSplit(s: SplitWords): string[] {
  return [...s.options, '--', ...s.positionals, ...s.words];
}

/** The short forms that count in a command's trailing run, for the commands that take trailing words. */
const trailingCommands = new WeakMap<Command, Record<string, (value: string) => boolean>>();

/**
 * Mark a command whose last argument is variadic as taking trailing words under the rule;
 * `trailingShort` names the short options that count in the trailing run with a value it accepts.
 */
export function takesTrailingWords(cmd: Command, trailingShort: Record<string, (value: string) => boolean> = {}): Command {
  trailingCommands.set(cmd, trailingShort);
  return cmd;
}

/** The options of a commander command as the rule reads them, its help option included. */
export function optionsOf(cmd: Command, trailingShort: Record<string, (value: string) => boolean> = {}): WordOption[] {
  const opts: WordOption[] = cmd.options.map((o) => ({
    long: o.long,
    short: o.short,
    takesValue: o.required || o.optional,
    trailingShort: o.short ? trailingShort[o.short] : undefined,
  }));
  return [...opts, { long: '--help', short: '-h', takesValue: false, leadingOnly: true }];
}

/** The rule's spec for a command marked with takesTrailingWords; undefined for the others. */
export function specOf(cmd: Command): WordsSpec | undefined {
  const shorts = trailingCommands.get(cmd);
  const args = cmd.registeredArguments;
  if (!shorts || !args.at(-1)?.variadic) return undefined;
  return { positionals: args.length - 1, options: optionsOf(cmd, shorts) };
}

/** Index of the subcommand's name in `argv`: the first word that is not a root option or its value; -1 if none. */
export function subcommandIndex(program: Command, argv: readonly string[]): number {
  const options = optionsOf(program);
  let i = 0;
  while (i < argv.length && argv[i]!.startsWith('-') && argv[i] !== '--') i += optionLength(argv, i, options) || 1;
  return i < argv.length && argv[i] !== '--' ? i : -1;
}

/** Apply the rule to the words of the subcommand on `argv`, when that subcommand takes trailing words. */
export function applyTrailingRule(program: Command, argv: readonly string[]): string[] {
  const at = subcommandIndex(program, argv);
  const sub = at < 0 ? undefined : program.commands.find((c) => c.name() === argv[at] || c.aliases().includes(argv[at]!));
  const spec = sub && specOf(sub);
  if (!spec) return [...argv];
  return [...argv.slice(0, at + 1), ...joinSplit(splitWords(argv.slice(at + 1), spec))];
}
