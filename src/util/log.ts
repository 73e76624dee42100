/**
 * Structured log events. Each event has a `kind`; each kind has one formatter, so the same
 * event reads the same wherever it is logged.
 */
import { FalconError } from './errors.js';

export type Level = 'error' | 'warn' | 'info' | 'debug' | 'trace';
const ORDER: Record<Level, number> = { error: 0, warn: 1, info: 2, debug: 3, trace: 4 };

export type LogEvent =
  | { kind: 'step'; level?: Level; msg: string }
  | { kind: 'warn'; msg: string }
  | { kind: 'cmd'; cmd: string; args: readonly string[] }
  | { kind: 'cmd-done'; cmd: string; exitCode: number | null; ms: number }
  | { kind: 'retry'; what: string; attempt: number; attempts: number; error: string; delayMs: number }
  | { kind: 'node'; node: string; state: string; detail?: string }
  | { kind: 'progress'; what: string; done: number; total?: number; unit?: string };

const LEVEL_OF: { [K in LogEvent['kind']]: Level } = {
  step: 'info',
  warn: 'warn',
  cmd: 'debug',
  'cmd-done': 'trace',
  retry: 'debug',
  node: 'info',
  progress: 'debug',
};

const FORMAT: { [K in LogEvent['kind']]: (e: Extract<LogEvent, { kind: K }>) => string } = {
  step: (e) => e.msg,
  warn: (e) => `warning: ${e.msg}`,
  cmd: (e) => `$ ${[e.cmd, ...e.args].map(quoteForDisplay).join(' ')}`,
  'cmd-done': (e) => `${e.cmd} exited ${e.exitCode} after ${e.ms} ms`,
  retry: (e) => `${e.what}: attempt ${e.attempt}/${e.attempts} failed (${e.error}); retrying in ${e.delayMs} ms`,
  node: (e) => `[${e.node}] ${e.state}${e.detail ? `: ${e.detail}` : ''}`,
  progress: (e) =>
    `${e.what}: ${e.done}${e.total !== undefined ? `/${e.total}` : ''}${e.unit ? ` ${e.unit}` : ''}`,
};

/** Display-only quoting: commands are always run from argument arrays, never through a shell. */
function quoteForDisplay(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function formatEvent(e: LogEvent): string {
  return (FORMAT[e.kind] as (e: LogEvent) => string)(e);
}

export function levelOf(e: LogEvent): Level {
  return e.kind === 'step' && e.level ? e.level : LEVEL_OF[e.kind];
}

export interface Logger {
  readonly level: Level;
  log(e: LogEvent): void;
  enabled(level: Level): boolean;
}

/**
 * Reads FALCON_LOG, then RUST_LOG (the original's variable); default info. A FALCON_LOG that is
 * not a level is an error; a RUST_LOG that is not a plain level is left alone, since it may be
 * meant for other Rust programs (`RUST_LOG=mycrate=debug`).
 */
export function levelFromEnv(env: NodeJS.ProcessEnv = process.env): Level {
  const falcon = env.FALCON_LOG?.trim().toLowerCase();
  if (falcon) {
    if (isLevel(falcon)) return falcon;
    throw new FalconError('INVALID_ARGUMENT', `FALCON_LOG=${env.FALCON_LOG} is not a log level; set it to one of ${Object.keys(ORDER).join(', ')}, or unset it`);
  }
  const rust = env.RUST_LOG?.trim().toLowerCase();
  return rust && isLevel(rust) ? rust : 'info';
}

export function isLevel(s: string): s is Level {
  return s in ORDER;
}

/** Human-readable lines on stderr. */
export function consoleLogger(level: Level = levelFromEnv(), write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  return {
    level,
    enabled: (l) => ORDER[l] <= ORDER[level],
    log(e) {
      const l = levelOf(e);
      if (ORDER[l] > ORDER[level]) return;
      const prefix = l === 'info' ? '' : `${l}: `;
      write(`${prefix}${formatEvent(e)}\n`);
    },
  };
}

/** Collects events; for tests and for callers that want them as data. */
export function memoryLogger(level: Level = 'trace'): Logger & { events: LogEvent[] } {
  const events: LogEvent[] = [];
  return { level, events, enabled: (l) => ORDER[l] <= ORDER[level], log: (e) => void events.push(e) };
}

export const silentLogger: Logger = { level: 'error', enabled: () => false, log: () => {} };
