/** The options every command takes, and the parsers commands share. */
import type { Command } from 'commander';
import { FalconError } from '../util/errors.js';

/** What the global options gave, over the command and all its parents. */
export interface GlobalOpts {
  falconDir?: string;
  verbose: number;
}

/**
 * The options every command takes, before or after its name (`$topo --falcon-dir D launch` and
 * `$topo launch --falcon-dir D`, as the original takes them on each subcommand). `-f` is the
 * original's short form of `--falcon-dir`, except where the command has a `-f` of its own
 * (graph's `-f, --format`).
 */
export function addGlobalOptions(c: Command, generic: boolean): Command {
  const ownF = c.options.some((o) => o.short === '-f');
  return c
    .option(`${ownF ? '' : '-f, '}--falcon-dir <dir>`, `where the topology keeps its state (default: ${generic ? './.falcon' : '.falcon beside the program'})`)
    .option('-v, --verbose', 'more logging (-vv for trace); FALCON_LOG and RUST_LOG set the level too', (_v, prev: number) => prev + 1, 0);
}

/** Give every command in the tree the global options; each level parses only its own. */
export function spreadGlobalOptions(c: Command, generic: boolean): void {
  for (const sub of c.commands) {
    addGlobalOptions(sub, generic);
    if (sub.commands.length) sub.enablePositionalOptions();
    spreadGlobalOptions(sub, generic);
  }
}

/** The global options of a command and all its parents: -v counts add up, the innermost --falcon-dir wins. */
export function globalsOf(c: Command): GlobalOpts {
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

/** Whether `v` is a number of seconds: a finite number >= 0. */
export function isSeconds(v: string): boolean {
  const n = v.trim() === '' ? NaN : Number(v);
  return Number.isFinite(n) && n >= 0;
}

/** A commander parser for a number of seconds: refuses anything but a finite number >= 0. */
export function parseSeconds(flag: string): (v: string) => number {
  return (v) => {
    if (!isSeconds(v)) throw new FalconError('INVALID_ARGUMENT', `${flag} takes a number of seconds (0 or more, e.g. 30 or 2.5), not "${v}"`);
    return Number(v);
  };
}

/** The nodes a `NODE | --all` command acts on: undefined for every node. */
export function nodeOrAll(node: string | undefined, o: { all?: boolean }, verb: string): string[] | undefined {
  if (o.all && node) throw new FalconError('INVALID_ARGUMENT', `${verb}: give a node name or --all, not both`);
  if (!o.all && !node) throw new FalconError('INVALID_ARGUMENT', `${verb}: name a node, or pass --all for every node`);
  return o.all ? undefined : [node!];
}
