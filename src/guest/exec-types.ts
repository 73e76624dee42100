/**
 * What an exec is asked and what it gives back, shared by the exec channel, the serial-login
 * fallback and `Runner.exec` / `Runner.succeed`; and the errors of the channel and the command.
 */
import { FalconError } from '../util/errors.js';

/** How stdout and stderr come back: decoded as UTF-8 (the default) or as raw bytes. */
export type ExecEncoding = 'utf8' | 'buffer';

/** A finished command. `T` is `string` by default, `Buffer` with `{ encoding: 'buffer' }`. */
export interface ExecResult<T extends string | Buffer = string> {
  /** Exit status, or null when the command was killed by a signal. */
  exitCode: number | null;
  /** Signal name ("SIGKILL") when the command was killed by one, else null. */
  signal: string | null;
  stdout: T;
  stderr: T;
  durationMs: number;
}

/** Options of one exec, whichever way it runs. */
export interface ExecOptions {
  /** Kill the command (SIGTERM, then SIGKILL after killGraceMs) after this long. Default 10 min. */
  timeoutMs?: number;
  /** Aborting kills the command the same way and rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Written to the command's stdin, which is then closed. Without it stdin is at EOF. */
  input?: string | Buffer;
  /** Extra environment variables (the agent sets PATH, HOME=/root, ...; these override). */
  env?: Record<string, string>;
  /** `'utf8'` (default): stdout and stderr are strings. `'buffer'`: Buffers, byte for byte. */
  encoding?: ExecEncoding;
  /** Time between SIGTERM and SIGKILL on timeout/abort. Default 2 s. */
  killGraceMs?: number;
  /** Streamed output, as it arrives; images without falcon-agent (serial login) give it once, when the command ends. */
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
}

/** How to reach a node's agent. */
export interface ConnectOptions {
  /**
   * How long to wait for the agent's handshake (it is slower while the guest boots or while
   * another falcon process holds the channel). Default 30 s.
   */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Node name, for error messages. */
  node?: string;
}

/** One exec over the channel, connection included. */
export interface ExecOverChannelOptions extends ExecOptions {
  /** Handshake timeout (see ConnectOptions.timeoutMs). Default 30 s. */
  connectTimeoutMs?: number;
  /** Node name, for error messages. */
  node?: string;
}

/** Options asking for strings (the default). */
export type ExecTextOptions = ExecOptions & { encoding?: 'utf8' };
/** Options asking for Buffers. */
export type ExecBufferOptions = ExecOptions & { encoding: 'buffer' };

/** The result in the encoding asked for. */
export function encodeResult(r: ExecResult<Buffer>, encoding: 'buffer'): ExecResult<Buffer>;
export function encodeResult(r: ExecResult<Buffer>, encoding?: ExecEncoding): ExecResult<string>;
export function encodeResult(r: ExecResult<Buffer>, encoding?: ExecEncoding): ExecResult<string> | ExecResult<Buffer>;
export function encodeResult(r: ExecResult<Buffer>, encoding: ExecEncoding = 'utf8'): ExecResult<string> | ExecResult<Buffer> {
  if (encoding === 'buffer') return r;
  return { ...r, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8') };
}

/** At most this much of stderr goes into an ExecError's message. */
export const STDERR_TAIL_LINES = 20;
export const STDERR_TAIL_BYTES = 2048;

/** The last lines of `text`: at most `lines` lines and about `bytes` bytes, whole lines where it can. */
export function tailLines(text: string | Buffer, lines = STDERR_TAIL_LINES, bytes = STDERR_TAIL_BYTES): string {
  const buf = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
  let s = buf.subarray(Math.max(0, buf.length - bytes)).toString('utf8');
  // A cut first line reads as garbage: drop it when there is a whole line after it.
  if (buf.length > bytes && s.includes('\n')) s = s.slice(s.indexOf('\n') + 1);
  const all = s.replace(/\r/g, '').trimEnd().split('\n');
  return all.slice(-lines).join('\n');
}

/** A command as one short line, for messages. */
export function oneLine(s: string, max = 120): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max)}...` : one;
}

/**
 * `Runner.succeed` ran a command that exited non-zero or was killed by a signal. Carries what
 * `exec` would have returned; the message is one line, then the end of stderr.
 */
export class ExecError<T extends string | Buffer = string | Buffer> extends FalconError {
  override name = 'ExecError';
  readonly node: string;
  readonly command: string;
  /** Exit status, or null when killed by a signal. */
  readonly exitCode: number | null;
  /** Signal name when killed by one, else null. */
  readonly signal: string | null;
  readonly stdout: T;
  readonly stderr: T;
  readonly durationMs: number;

  constructor(node: string, command: string, result: ExecResult<T>) {
    const head = result.signal
      ? `command ${JSON.stringify(oneLine(command))} on node "${node}" was killed by ${result.signal}`
      : `command ${JSON.stringify(oneLine(command))} failed on node "${node}" with exit status ${result.exitCode}`;
    const tail = tailLines(result.stderr);
    super('EXEC_FAILED', tail ? `${head}\n${tail}` : head);
    this.node = node;
    this.command = command;
    this.exitCode = result.exitCode;
    this.signal = result.signal;
    this.stdout = result.stdout;
    this.stderr = result.stderr;
    this.durationMs = result.durationMs;
  }
}

export type ExecChannelErrorCode =
  | 'EXEC_NOT_RUNNING' // no socket / nobody listening
  | 'EXEC_NO_ANSWER' // connected, but the agent did not complete the handshake in time
  | 'EXEC_BUSY' // the socket's backlog is full of other clients (retried until the connect timeout)
  | 'EXEC_VERSION' // the agent speaks another protocol version
  | 'EXEC_PROTOCOL' // garbage on the stream
  | 'EXEC_CONNECTION_LOST'
  | 'EXEC_AGENT_ERROR' // the agent could not run the command (fork failed, bad request, ...)
  | 'EXEC_CLOSED'; // this connection was closed by its owner

/** Any failure of the exec channel itself (not of the command, whose status is in ExecResult). */
export class ExecChannelError extends FalconError {
  override name = 'ExecChannelError';
  constructor(
    override readonly code: ExecChannelErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

const TAIL_BYTES = 2048;

/** The ends of stdout and stderr, for messages about a command that did not finish normally. */
export function describeTail(stdout: Buffer, stderr: Buffer): string {
  const tail = (b: Buffer) => b.subarray(Math.max(0, b.length - TAIL_BYTES)).toString('utf8').trimEnd();
  let s = '';
  if (stdout.length) s += `\n--- stdout (last ${Math.min(TAIL_BYTES, stdout.length)} of ${stdout.length} bytes) ---\n${tail(stdout)}`;
  if (stderr.length) s += `\n--- stderr (last ${Math.min(TAIL_BYTES, stderr.length)} of ${stderr.length} bytes) ---\n${tail(stderr)}`;
  return s;
}

/** The command outlived its timeout and was killed; carries what it printed. */
export class ExecTimeoutError extends FalconError {
  override name = 'ExecTimeoutError';
  readonly command: string;
  readonly timeoutMs: number;
  readonly stdout: Buffer;
  readonly stderr: Buffer;
  /** How it ended after the kill, when the agent reported it. */
  readonly exitCode: number | null;
  readonly signal: string | null;
  constructor(o: { command: string; timeoutMs: number; stdout: Buffer; stderr: Buffer; exitCode: number | null; signal: string | null; node?: string }) {
    super(
      'EXEC_TIMEOUT',
      `Command timed out after ${o.timeoutMs} ms${o.node ? ` on node ${o.node}` : ''} and was killed` +
        `${o.signal ? ` (it ended by ${o.signal})` : o.exitCode !== null ? ` (it exited ${o.exitCode})` : ''}: ${oneLine(o.command)}\n` +
        `Raise the timeout if it needs longer.${describeTail(o.stdout, o.stderr)}`,
    );
    this.command = o.command;
    this.timeoutMs = o.timeoutMs;
    this.stdout = o.stdout;
    this.stderr = o.stderr;
    this.exitCode = o.exitCode;
    this.signal = o.signal;
  }
}

/** "node violin (exec socket /x)" or "exec socket /x", for messages. */
export function whereIs(socketPath: string, node?: string): string {
  return node ? `node ${node} (exec socket ${socketPath})` : `exec socket ${socketPath}`;
}
