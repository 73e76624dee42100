/**
 * Running a command over the serial console, the original Falcon's way: log in, run, detect the
 * end, log out. The fallback for images without falcon-agent (ExecMethod 'serial-login').
 *
 * Limits, by nature of a terminal: stderr is merged into stdout; kernel messages printed on the
 * console while the command runs end up in its output; one command at a time per node; a login
 * per call (slower). The guest needs a POSIX `sh` as login shell and `base64` (coreutils or busybox).
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../util/log.js';
import { silentLogger } from '../util/log.js';
import { ConsoleConnection, ConsoleWaitError } from './console.js';

export interface SerialExecOptions {
  /** Default 'root'. */
  user?: string;
  password?: string;
  /** For messages; default from the socket's file name. */
  nodeName?: string;
  /** For the whole call: login, command, logout. Default 60 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
  log?: Logger;
}

export interface SerialExecResult {
  exitCode: number;
  /** stdout and stderr merged (a serial console has one stream), CR LF turned into LF. */
  stdout: string;
}

/** Base64 characters per line sent; keeps each line well under any shell's line-editing limit. */
const CHUNK = 160;
/** If no prompt shows up for this long, press Enter again (the guest may still be booting). */
const NUDGE_MS = 3000;
/** A prompt is followed by silence. */
const SETTLE_MS = 250;

// Prompts as the last thing received. Trailing escape sequences are allowed: bash turns on
// bracketed paste (ESC[?2004h) and busybox asks for the cursor position (ESC[6n) after the prompt.
const ESCAPES = String.raw`(?:\x1b\[[0-9;?]*[A-Za-z])*`;
const PROMPT = new RegExp(
  String.raw`(?:(?<login>(?<![Ll]ast )login:)|(?<password>[Pp]assword:)|(?<shell>[#$]))[ \t]*${ESCAPES}$`,
);

/**
 * Run `command` (a shell command line, run by the guest's `sh -c`) on the serial console at
 * `consoleSocket`, logging in as `user` when a login prompt shows. Logs out afterwards if it
 * logged in; a console that was already at a shell prompt is left at one.
 *
 * The command travels base64-encoded in short lines, so quotes, newlines and length don't
 * matter to the terminal; its stdin is /dev/null. Start and end are found by markers that the
 * guest assembles at run time, so the terminal's echo of the command line cannot match them.
 * @throws ConsoleWaitError (with the tail of the console output) on timeout or abort.
 */
export async function execOverSerial(consoleSocket: string, command: string, opts: SerialExecOptions = {}): Promise<SerialExecResult> {
  const log = opts.log ?? silentLogger;
  const user = opts.user ?? 'root';
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  const left = () => Math.max(1, deadline - Date.now());

  const conn = await ConsoleConnection.connect(consoleSocket, {
    nodeName: opts.nodeName,
    signal: opts.signal,
    timeoutMs: Math.min(10_000, timeoutMs),
    ifBusy: 'wait',
  });
  const node = conn.nodeName;
  if (conn.queued) log.log({ kind: 'warn', msg: `node ${node}'s console is in use by another client; waiting for it to leave` });
  let loggedIn = false;
  try {
    loggedIn = await reachShell(conn, user, opts.password, left, opts.signal, log);

    const token = randomBytes(6).toString('hex');
    const start = `FALCON-S-${token}`;
    const end = `FALCON-E-${token}`;
    const b64 = Buffer.from(command, 'utf8').toString('base64');
    const lines: string[] = [];
    for (let i = 0; i < b64.length; i += CHUNK) lines.push(`${i === 0 ? 'FALCON_X=' : 'FALCON_X=${FALCON_X}'}${b64.slice(i, i + CHUNK)}`);
    if (lines.length === 0) lines.push('FALCON_X=');
    // Markers are printed as two printf arguments: the echoed line holds "FALCON-S- token", never "FALCON-S-token".
    lines.push(
      `printf '%s%s\\n' FALCON-S- ${token}; sh -c "$(printf '%s' "$FALCON_X" | base64 -d)" </dev/null 2>&1; ` +
        `printf '\\n%s%s %s\\n' FALCON-E- ${token} "$?"; unset FALCON_X`,
    );
    log.log({ kind: 'step', level: 'debug', msg: `[${node}] serial exec: ${short(command)}` });
    conn.discard();
    await conn.write(lines.map((l) => `${l}\r`).join(''));

    await conn.waitForOutput(new RegExp(`${start}\\r?\\n`), { timeoutMs: left(), signal: opts.signal, what: 'the command to start' });
    const m = await conn.waitForOutput(new RegExp(`${end} (\\d+)\\r?\\n`), {
      timeoutMs: left(),
      signal: opts.signal,
      what: 'the command to finish',
    });
    // The guest printed "\n" before the end marker, so output without a final newline still
    // leaves the marker at a line start: remove exactly that one.
    const stdout = m.before.replace(/\r+\n/g, '\n').replace(/\n$/, '');
    const exitCode = Number(m.groups[0]);
    if (loggedIn) await conn.write('exit\r');
    return { exitCode, stdout };
  } catch (err) {
    // Leave the console usable: interrupt whatever runs, and log out if we logged in.
    if (!conn.closed) await conn.write(loggedIn ? '\x03\rexit\r' : '\x03\r').catch(() => {});
    if (err instanceof ConsoleWaitError && err.reason === 'timeout') {
      const waiting = err.summary.match(/waiting for (.*?) on node/)?.[1] ?? 'the command';
      const held = conn.queued && conn.tail() === '' ? `; another client held the console all along (QEMU serves one at a time)` : '';
      throw new ConsoleWaitError(
        `running \`${short(command)}\` on node ${node}'s serial console timed out after ${timeoutMs} ms, waiting for ${waiting}${held}`,
        err.tail,
        { cause: err, reason: 'timeout' },
      );
    }
    throw err;
  } finally {
    await conn.close();
  }
}

/** Press Enter and answer login/password prompts until a shell prompt shows. Returns whether it logged in. */
async function reachShell(
  conn: ConsoleConnection,
  user: string,
  password: string | undefined,
  left: () => number,
  signal: AbortSignal | undefined,
  log: Logger,
): Promise<boolean> {
  const node = conn.nodeName;
  let sentUser = false;
  let sentPassword = false;
  // ctrl-u first: drop anything half typed at a prompt.
  await conn.write('\x15\r');
  for (;;) {
    let m;
    try {
      m = await conn.waitForOutput(PROMPT, {
        timeoutMs: Math.min(NUDGE_MS, left()),
        signal,
        settleMs: SETTLE_MS,
        what: 'a login or shell prompt',
      });
    } catch (err) {
      if (!(err instanceof ConsoleWaitError) || signal?.aborted || left() <= 1 || conn.closed) throw err;
      await conn.write('\r');
      continue;
    }
    const text = m.text;
    if (/login:/.test(text)) {
      if (sentUser) {
        throw new ConsoleWaitError(`logging in as ${user} on node ${node}'s console failed (back at the login prompt); check the user and password`, conn.tail());
      }
      log.log({ kind: 'step', level: 'debug', msg: `[${node}] serial console: logging in as ${user}` });
      await conn.write(`${user}\r`);
      sentUser = true;
    } else if (/assword:/.test(text)) {
      if (password === undefined) {
        await conn.write('\x15\r');
        throw new ConsoleWaitError(`node ${node} asks for ${user}'s password on its serial console; pass the password for its image`, conn.tail());
      }
      if (sentPassword) throw new ConsoleWaitError(`the password for ${user} on node ${node} was refused`, conn.tail());
      await conn.write(`${password}\r`);
      sentPassword = true;
    } else {
      return sentUser;
    }
  }
}

function short(command: string): string {
  const one = command.replace(/\s*\n\s*/g, '; ');
  return one.length > 80 ? `${one.slice(0, 77)}...` : one;
}
