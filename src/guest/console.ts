/**
 * A node's serial console: QEMU serves it on a Unix socket chardev
 * (`-chardev socket,...,server=on,wait=off,logfile=...`), one client at a time, and writes
 * everything the guest prints to the console log itself.
 *
 * Measured with QEMU 7.2: a second client's connect() succeeds at once (the kernel queues it in
 * the listen backlog), but QEMU neither reads from nor writes to it until the first client
 * disconnects; then it accepts the queued one and delivers what it had written meanwhile.
 * So a second client would hang silently: `connect` looks in /proc/net/unix first and either
 * fails with `ConsoleBusyError` or, with `ifBusy: 'wait'`, queues on purpose.
 */
import { tail } from '../util/fs.js';
import { closeSync, openSync } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import net from 'node:net';
import { basename, dirname } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { FalconError } from '../util/errors.js';
import { TimeoutError } from '../util/abort.js';

/** Longest path connect(2) accepts for a Unix socket (sun_path is 108 bytes with the NUL). */
const MAX_SOCKET_PATH = 107;
const TAIL_CHARS = 2000;
/** A match may not be longer than this (see waitForOutput). */
const LOOKBACK = 4096;

/** The node's QEMU is not running: no socket, or nobody listening on it. */
export class ConsoleNotRunningError extends FalconError {
  override name = 'ConsoleNotRunningError';
  constructor(
    readonly nodeName: string,
    readonly socketPath: string,
    options?: { cause?: unknown },
  ) {
    super('CONSOLE_NOT_RUNNING', `node ${nodeName} is not running (no console at ${socketPath}); start it with \`hyperstart ${nodeName}\``, options);
  }
}

/** Another client holds the console, and QEMU serves one at a time. */
export class ConsoleBusyError extends FalconError {
  override name = 'ConsoleBusyError';
  constructor(
    readonly nodeName: string,
    readonly socketPath: string,
  ) {
    super(
      'CONSOLE_BUSY',
      `node ${nodeName}'s console (${socketPath}) is in use by another client, and QEMU serves one at a time; ` +
        `leave the other session first (ctrl-q in its \`falcon serial ${nodeName}\`), ` +
        `or find who holds it: \`ss -xp | grep ${basename(socketPath)}\` shows QEMU's end and the other end's inode, ` +
        `and \`ss -xp | grep INODE\` names the process`,
    );
  }
}

/** A wait on the console ended without a match; the message ends with what was received. */
export class ConsoleWaitError extends FalconError {
  override name = 'ConsoleWaitError';
  constructor(
    /** One line: what went wrong. */
    readonly summary: string,
    /** The last characters received, control characters made visible. */
    readonly tail: string,
    options?: { cause?: unknown; reason?: 'timeout' | 'aborted' | 'closed' | 'failed' },
  ) {
    super(
      'CONSOLE_WAIT',
      tail
        ? `${summary}\n--- last output received ---\n${tail}\n--- end ---`
        : `${summary} (nothing was received)`,
      options,
    );
    this.reason = options?.reason ?? 'failed';
  }
  readonly reason: 'timeout' | 'aborted' | 'closed' | 'failed';
}

export interface ConnectOptions {
  /** For messages; default: the socket's file name without extension. */
  nodeName?: string;
  /** Default 10 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /**
   * What to do when another client is attached: 'fail' (default) throws `ConsoleBusyError`;
   * 'wait' connects anyway and is served once the other client leaves.
   */
  ifBusy?: 'fail' | 'wait';
  /**
   * Keep received text for `waitForOutput` (default true). An interactive attach turns it off and
   * reads with `onData` only.
   */
  buffer?: boolean;
}

export interface WaitOptions {
  /** Default 30 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /**
   * Resolve only once the match has stood this long with no more output arriving (a prompt is
   * followed by silence; the same text in the middle of output is not). An anchored pattern
   * (`/# $/`) is re-checked against the grown text. Default 0.
   */
  settleMs?: number;
  /** What is awaited, for the error message; default the pattern. */
  what?: string;
}

export interface OutputMatch {
  /** The matched text. */
  text: string;
  /** Capture groups (index 1 up), undefined when a group did not take part. */
  groups: (string | undefined)[];
  /** What arrived between the previous match (or the start) and this one. */
  before: string;
}

/**
 * Calls `fire` once when `signal` aborts or `timeoutMs` passes; returns a function that cancels.
 * A plain timer, not AbortSignal.timeout() inside AbortSignal.any(): on Node 20 a garbage
 * collection can drop that timeout signal so it never fires (nodejs/node#57736).
 */
function onDeadline(timeoutMs: number, signal: AbortSignal | undefined, fire: (why: 'timeout' | 'aborted') => void): () => void {
  let done = false;
  const once = (why: 'timeout' | 'aborted') => {
    if (done) return;
    cancel();
    fire(why);
  };
  const onAbort = () => once('aborted');
  const timer = setTimeout(() => once('timeout'), timeoutMs);
  const cancel = () => {
    done = true;
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  };
  if (signal?.aborted) queueMicrotask(onAbort);
  else signal?.addEventListener('abort', onAbort, { once: true });
  return cancel;
}

/** Make control characters visible (`\r`, `\x1b`, ...) while keeping line breaks. */
export function visibleControlChars(s: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return s.replace(/[\x00-\x09\x0b-\x1f\x7f]/g, (c) => {
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
}

/** The last `chars` characters of `s`, control characters made visible. */
export function visibleTail(s: string, chars = TAIL_CHARS): string {
  return visibleControlChars(s.length > chars ? s.slice(-chars) : s);
}

/**
 * The last `bytes` bytes of a file (e.g. a node's console log), decoded as UTF-8 with control
 * characters made visible; '' if the file does not exist. For error messages.
 */
export async function tailFile(path: string, bytes = TAIL_CHARS): Promise<string> {
  return visibleControlChars(await tail(path, bytes));
}

/** How many clients QEMU has accepted on a listening socket, or undefined if unknown. */
export async function consoleClients(socketPath: string): Promise<{ accepted: number; queued: number } | undefined> {
  let table: string;
  try {
    table = await readFile('/proc/net/unix', 'utf8');
  } catch {
    return undefined;
  }
  const names = new Set([socketPath]);
  try {
    names.add(await realpath(socketPath));
  } catch {
    /* shown as not running by connect */
  }
  // Columns: Num RefCount Protocol Flags Type St Inode [Path]. Server-side sockets of accepted
  // connections carry the listener's path with state 03 and an inode; ones still in the backlog
  // have no inode yet.
  let listening = false;
  let accepted = 0;
  let queued = 0;
  for (const line of table.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8 || !names.has(f.slice(7).join(' '))) continue;
    const flags = parseInt(f[3]!, 16);
    if (flags & 0x10000) listening = true;
    else if (f[5] === '03' && f[6] !== '0') accepted++;
    else queued++;
  }
  return listening ? { accepted, queued } : undefined;
}

/**
 * One client connection to a node's serial console. Received text is kept (unless `buffer:
 * false`) so `waitForOutput` can match across chunks, expect-style: each match consumes the text
 * up to its end.
 */
export class ConsoleConnection {
  private pending = '';
  private history = '';
  private readonly decoder = new StringDecoder('utf8');
  private readonly listeners = new Set<(chunk: Buffer) => void>();
  private closedWith: Error | 'closed' | undefined;
  private waiter: (() => void) | undefined;

  private constructor(
    readonly socket: net.Socket,
    readonly socketPath: string,
    readonly nodeName: string,
    private readonly keepText: boolean,
    /** True when another client held the console at connect time (`ifBusy: 'wait'`). */
    readonly queued: boolean,
  ) {
    socket.on('data', (chunk: Buffer) => {
      for (const l of this.listeners) l(chunk);
      if (this.keepText) {
        const s = this.decoder.write(chunk);
        this.pending += s;
        this.history = (this.history + s).slice(-TAIL_CHARS * 2);
      }
      this.waiter?.();
    });
    socket.on('error', (err) => {
      this.closedWith ??= err;
      this.waiter?.();
    });
    socket.on('close', () => {
      this.closedWith ??= 'closed';
      this.waiter?.();
    });
  }

  /**
   * Connect to the console socket at `socketPath`.
   * @throws ConsoleNotRunningError if nothing listens there; ConsoleBusyError if another client
   * is attached (unless `ifBusy: 'wait'`).
   */
  static async connect(socketPath: string, opts: ConnectOptions = {}): Promise<ConsoleConnection> {
    const nodeName = opts.nodeName ?? basename(socketPath).replace(/\.[^.]*$/, '');
    opts.signal?.throwIfAborted();
    try {
      await stat(socketPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ConsoleNotRunningError(nodeName, socketPath, { cause: err });
      throw err;
    }
    const clients = await consoleClients(socketPath);
    const busy = !!clients && clients.accepted > 0;
    if (busy && opts.ifBusy !== 'wait') throw new ConsoleBusyError(nodeName, socketPath);

    // A longer path would be cut short by libuv (and fail as ENOENT): go through the directory's fd.
    let dirFd: number | undefined;
    let target = socketPath;
    if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) {
      dirFd = openSync(dirname(socketPath), 'r');
      target = `/proc/self/fd/${dirFd}/${basename(socketPath)}`;
    }
    try {
      const socket = await new Promise<net.Socket>((resolve, reject) => {
        const s = net.createConnection(target);
        const cancel = onDeadline(opts.timeoutMs ?? 10_000, opts.signal, (why) => {
          s.destroy();
          reject(
            why === 'aborted'
              ? opts.signal!.reason
              : new TimeoutError(`connecting to node ${nodeName}'s console at ${socketPath} timed out; is its QEMU hung?`),
          );
        });
        s.once('connect', () => {
          cancel();
          resolve(s);
        });
        s.once('error', (err: NodeJS.ErrnoException) => {
          cancel();
          if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') reject(new ConsoleNotRunningError(nodeName, socketPath, { cause: err }));
          else reject(new FalconError('CONSOLE_CONNECT_FAILED', `cannot connect to node ${nodeName}'s console at ${socketPath}: ${err.message}`, { cause: err }));
        });
      });
      return new ConsoleConnection(socket, socketPath, nodeName, opts.buffer ?? true, busy);
    } finally {
      if (dirFd !== undefined) closeSync(dirFd);
    }
  }

  /** Send text or bytes to the guest; resolves once handed to the kernel. */
  write(data: string | Uint8Array): Promise<void> {
    if (this.closedWith) return Promise.reject(this.closedError('cannot write'));
    return new Promise((resolve, reject) => this.socket.write(data, (err) => (err ? reject(err) : resolve())));
  }

  /** Called with every chunk received; returns an unsubscribe function. */
  onData(fn: (chunk: Buffer) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** The last ~2000 characters received, control characters made visible. */
  tail(chars = TAIL_CHARS): string {
    return visibleTail(this.history, chars);
  }

  /** Text received and not yet consumed by a match. */
  get unconsumed(): string {
    return this.pending;
  }

  /** Drop text received so far, so the next wait only sees what comes after. */
  discard(): void {
    this.pending = '';
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  /**
   * Wait until the received text matches `pattern` (a string matches literally). Resolves with
   * the match and consumes the text up to its end; rejects on timeout, abort or the console
   * closing with a `ConsoleWaitError` whose message includes the tail of what was received.
   * Matches are found reliably up to 4096 characters long (older text is not searched again).
   */
  waitForOutput(pattern: string | RegExp, opts: WaitOptions = {}): Promise<OutputMatch> {
    if (!this.keepText) throw new FalconError('INTERNAL', 'waitForOutput needs a connection made with buffer: true');
    if (this.waiter) throw new FalconError('INTERNAL', 'only one waitForOutput at a time on a console connection');
    const re =
      typeof pattern === 'string'
        ? new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
        : new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
    const what = opts.what ?? String(pattern);
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const settleMs = opts.settleMs ?? 0;

    return new Promise<OutputMatch>((resolve, reject) => {
      let settleTimer: NodeJS.Timeout | undefined;
      const finish = (fn: () => void) => {
        clearTimeout(settleTimer);
        this.waiter = undefined;
        cancel();
        fn();
      };
      const take = (m: RegExpExecArray) => {
        const end = m.index + m[0].length;
        const before = this.pending.slice(0, m.index);
        this.pending = this.pending.slice(end);
        finish(() => resolve({ text: m[0], groups: m.slice(1), before }));
      };
      // Text already searched is searched again only near its end, so a long output arriving in
      // many small chunks costs linear time, not quadratic.
      let searched = 0;
      const find = () => {
        const from = Math.max(0, searched - LOOKBACK);
        searched = this.pending.length;
        const m = re.exec(from ? this.pending.slice(from) : this.pending);
        if (m) m.index += from;
        return m;
      };
      const check = () => {
        const m = find();
        clearTimeout(settleTimer);
        settleTimer = undefined;
        if (m) {
          if (settleMs <= 0) return take(m);
          settleTimer = setTimeout(() => {
            // Nothing arrived since: the match stands.
            searched = 0;
            const again = find();
            if (again) take(again);
          }, settleMs);
          return;
        }
        if (this.closedWith) {
          finish(() =>
            reject(new ConsoleWaitError(`${this.closedError('').message}, while waiting for ${what}`, this.tail(), { reason: 'closed' })),
          );
        }
      };
      const cancel = onDeadline(timeoutMs, opts.signal, (reason) => {
        const why =
          reason === 'aborted'
            ? `aborted while waiting for ${what} on node ${this.nodeName}'s console`
            : `timed out after ${timeoutMs} ms waiting for ${what} on node ${this.nodeName}'s console`;
        finish(() => reject(new ConsoleWaitError(why, this.tail(), { cause: reason === 'aborted' ? opts.signal!.reason : undefined, reason })));
      });
      this.waiter = check;
      check();
    });
  }

  /** Disconnect, letting written data drain first. Idempotent. */
  async close(): Promise<void> {
    if (this.socket.destroyed) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.socket.destroy();
        resolve();
      }, 2000);
      this.socket.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      this.socket.end();
    });
  }

  private closedError(doing: string): FalconError {
    const base = `node ${this.nodeName}'s console closed (did its QEMU exit?)`;
    const why = this.closedWith instanceof Error ? `: ${this.closedWith.message}` : '';
    return new FalconError('CONSOLE_CLOSED', doing ? `${doing}: ${base}${why}` : `${base}${why}`);
  }
}
