/**
 * Host side of the exec channel: runs shell commands in a guest through falcon-agent, over the
 * Unix socket QEMU serves for the node's virtio-serial port (see docs/exec-channel.md).
 *
 * QEMU accepts one client at a time; a second connection waits in the socket backlog until the
 * first one closes, so concurrent CLI invocations queue. Within one connection any number of
 * execs run concurrently, multiplexed by random 64-bit request ids.
 */
import { createConnection, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { constants as osConstants } from 'node:os';
import { retry } from '../util/retry.js';
import type { Logger } from '../util/log.js';
import {
  FrameDecoder,
  FrameType,
  ProtocolError,
  decodeExit,
  decodeStarted,
  encodeExec,
  encodeFrame,
  encodeKill,
  encodeStdin,
  type ExitStatus,
  type Frame,
  type HelloAck,
} from './exec-protocol.js';
import { handshake } from './exec-handshake.js';
import { ExecConnectionPool } from './exec-pool.js';
import {
  ExecChannelError,
  ExecTimeoutError,
  describeTail,
  oneLine as shorten,
  whereIs,
  type ConnectOptions,
  type ExecOptions,
  type ExecOverChannelOptions,
  type ExecResult,
} from './exec-types.js';

export { ExecChannelError, ExecTimeoutError, ExecError, encodeResult } from './exec-types.js';
export type { ConnectOptions, ExecChannelErrorCode, ExecEncoding, ExecOptions, ExecOverChannelOptions, ExecResult } from './exec-types.js';

export const DEFAULT_EXEC_TIMEOUT_MS = 10 * 60_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
const DEFAULT_KILL_GRACE_MS = 2000;

const SIGNAL_NAMES = new Map<number, string>(
  Object.entries(osConstants.signals).map(([name, num]) => [num as number, name]),
);

/** "SIGKILL" for 9; Linux numbering, which guest and host share. */
export function signalName(num: number): string {
  return SIGNAL_NAMES.get(num) ?? `SIG${num}`;
}

function randomId(): bigint {
  return randomBytes(8).readBigUInt64BE(0);
}

interface PendingExec {
  command: string;
  stdout: Buffer[];
  stderr: Buffer[];
  outBytes: number;
  errBytes: number;
  pid?: number;
  started: number;
  timedOut: boolean;
  timeoutMs: number;
  opts: ExecOptions;
  timers: NodeJS.Timeout[];
  onAbort?: () => void;
  resolve(r: ExecResult<Buffer>): void;
  reject(e: unknown): void;
}

/**
 * One connection to a node's agent, carrying any number of concurrent execs. Hold it only as
 * long as needed: while it is open, other falcon processes' connections to the node wait.
 */
export class ExecConnection {
  private readonly decoder = new FrameDecoder();
  private readonly pending = new Map<bigint, PendingExec>();
  private readonly pings = new Map<bigint, { resolve(ms: number): void; reject(e: unknown): void; sent: number }>();
  private failure: Error | undefined;

  private constructor(
    private readonly socket: Socket,
    readonly socketPath: string,
    private readonly nonce: bigint,
    /** What the agent said in its handshake. */
    readonly agent: HelloAck,
    private readonly node: string | undefined,
    leftover: Buffer,
  ) {
    socket.on('data', (c: Buffer) => this.onData(c));
    socket.on('error', (e) => this.fail(this.lost(e)));
    socket.on('close', () => this.fail(this.lost()));
    if (leftover.length) this.onData(leftover);
  }

  /**
   * Connects and performs the handshake. Rejects with ExecChannelError EXEC_NOT_RUNNING when no
   * QEMU serves the socket, EXEC_NO_ANSWER when the agent does not answer in time.
   */
  static async connect(socketPath: string, opts: ConnectOptions = {}): Promise<ExecConnection> {
    opts.signal?.throwIfAborted();
    const timeoutMs = opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const start = Date.now();
    // QEMU's listen backlog is 1: with more falcon processes queued, connect fails with EAGAIN.
    return retry(
      {
        what: `connecting to ${whereIs(socketPath, opts.node)}`,
        deadlineMs: timeoutMs,
        delayMs: 20,
        factor: 1.5,
        maxDelayMs: 500,
        signal: opts.signal,
        retryIf: (e) => e instanceof ExecChannelError && e.code === 'EXEC_BUSY',
      },
      () => ExecConnection.connectOnce(socketPath, opts, Math.max(1, timeoutMs - (Date.now() - start))),
    );
  }

  private static async connectOnce(socketPath: string, opts: ConnectOptions, timeoutMs: number): Promise<ExecConnection> {
    const nonce = randomId();
    const socket = createConnection({ path: socketPath });
    const { ack, leftover } = await handshake(socket, { nonce, timeoutMs, signal: opts.signal, where: whereIs(socketPath, opts.node) });
    return new ExecConnection(socket, socketPath, nonce, ack, opts.node, leftover);
  }

  /** An idle connection does not keep the process alive (`false`), a busy one does (`true`). */
  keepProcessAlive(busy: boolean): void {
    if (busy) this.socket.ref();
    else this.socket.unref();
  }

  /** True once closed or broken; further execs reject. */
  get closed(): boolean {
    return this.failure !== undefined;
  }

  /** Runs `/bin/sh -c command` in the guest. Resolves with its status and output, whatever the status. */
  exec(command: string, opts: ExecOptions = {}): Promise<ExecResult<Buffer>> {
    if (this.failure) return Promise.reject(this.failure);
    if (opts.signal?.aborted) return Promise.reject(opts.signal.reason);
    let id = randomId();
    while (id === 0n || id === this.nonce || this.pending.has(id) || this.pings.has(id)) id = randomId();
    const frames: Buffer[] = [];
    try {
      const input = opts.input === undefined ? undefined : Buffer.from(opts.input);
      frames.push(encodeExec(id, { command, env: opts.env, stdin: input !== undefined }));
      if (input !== undefined) frames.push(...encodeStdin(id, input));
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<ExecResult<Buffer>>((resolve, reject) => {
      const timeoutMs = opts.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;
      const p: PendingExec = {
        command,
        stdout: [],
        stderr: [],
        outBytes: 0,
        errBytes: 0,
        started: Date.now(),
        timedOut: false,
        timeoutMs,
        opts,
        timers: [],
        resolve,
        reject,
      };
      const grace = opts.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
      p.timers.push(
        setTimeout(() => {
          p.timedOut = true;
          this.send(encodeKill(id, grace));
          // If the agent never reports the end, give up anyway.
          p.timers.push(setTimeout(() => this.settle(id, null), grace + 5000));
        }, timeoutMs),
      );
      if (opts.signal) {
        const signal = opts.signal;
        p.onAbort = () => {
          this.send(encodeKill(id, grace));
          this.settle(id, signal.reason);
        };
        signal.addEventListener('abort', p.onAbort, { once: true });
      }
      this.pending.set(id, p);
      for (const f of frames) this.send(f);
    });
  }

  /** Round trip through the agent; resolves with the time it took in ms. */
  ping(opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<number> {
    if (this.failure) return Promise.reject(this.failure);
    const id = randomId();
    return new Promise<number>((resolve, reject) => {
      const timeoutMs = opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
      const cleanup = () => {
        clearTimeout(t);
        opts.signal?.removeEventListener('abort', onAbort);
        this.pings.delete(id);
      };
      const t = setTimeout(() => {
        cleanup();
        reject(new ExecChannelError('EXEC_NO_ANSWER', `The guest agent on ${this.where()} did not answer a ping within ${timeoutMs} ms.`));
      }, timeoutMs);
      const onAbort = () => {
        cleanup();
        reject(opts.signal!.reason);
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.pings.set(id, {
        sent: Date.now(),
        resolve: (ms) => {
          cleanup();
          resolve(ms);
        },
        reject: (e) => {
          cleanup();
          reject(e);
        },
      });
      this.send(encodeFrame(FrameType.Ping, id));
    });
  }

  /**
   * Closes the connection; the agent then kills any command still running for it. Pending
   * execs reject with ExecChannelError EXEC_CLOSED.
   */
  close(): void {
    if (!this.failure) this.fail(new ExecChannelError('EXEC_CLOSED', `The exec connection to ${this.where()} was closed.`));
    this.socket.end();
    // QEMU and the agent close on our FIN; don't let a silent peer keep the socket around.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  private where(): string {
    return whereIs(this.socketPath, this.node);
  }

  private send(frame: Buffer): void {
    if (!this.failure) this.socket.write(frame);
  }

  private lost(cause?: Error): ExecChannelError {
    return new ExecChannelError(
      'EXEC_CONNECTION_LOST',
      `The exec channel of ${this.where()} closed unexpectedly${cause ? ` (${cause.message})` : ''}; the node may have stopped or rebooted.`,
      { cause },
    );
  }

  /** Ends everything pending with `err`; the connection is unusable afterwards. */
  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    for (const id of [...this.pending.keys()]) this.settle(id, err);
    for (const p of [...this.pings.values()]) p.reject(err);
    if (!(err instanceof ExecChannelError && err.code === 'EXEC_CLOSED')) this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (e) {
      this.fail(new ExecChannelError('EXEC_PROTOCOL', `${this.where()}: ${(e as Error).message}`, { cause: e }));
      return;
    }
    for (const f of frames) {
      try {
        this.onFrame(f);
      } catch (e) {
        const err = e instanceof ProtocolError ? new ExecChannelError('EXEC_PROTOCOL', `${this.where()}: ${e.message}`, { cause: e }) : e;
        this.fail(err as Error);
        return;
      }
    }
  }

  private onFrame(f: Frame): void {
    const p = this.pending.get(f.id);
    switch (f.type) {
      case FrameType.Stdout:
        if (p) {
          p.stdout.push(f.payload);
          p.outBytes += f.payload.length;
          p.opts.onStdout?.(f.payload);
        }
        return;
      case FrameType.Stderr:
        if (p) {
          p.stderr.push(f.payload);
          p.errBytes += f.payload.length;
          p.opts.onStderr?.(f.payload);
        }
        return;
      case FrameType.Started:
        if (p) p.pid = decodeStarted(f.payload).pid;
        return;
      case FrameType.Exit:
        if (p) this.settle(f.id, null, decodeExit(f.payload));
        return;
      case FrameType.Error:
        if (p) {
          this.settle(
            f.id,
            new ExecChannelError('EXEC_AGENT_ERROR', `The guest agent on ${this.where()} could not run ${JSON.stringify(shorten(p.command))}: ${f.payload.toString('utf8')}`),
          );
        }
        return;
      case FrameType.Pong: {
        const ping = this.pings.get(f.id);
        ping?.resolve(Date.now() - ping.sent);
        return;
      }
      default:
        // HELLO_ACK resent for our repeated HELLO, or frames for requests we gave up on.
        return;
    }
  }

  /**
   * Finishes exec `id`: with `err` if given, else as a timeout if it timed out, else with the
   * exit status.
   */
  private settle(id: bigint, err: unknown, status?: ExitStatus): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    for (const t of p.timers) clearTimeout(t);
    if (p.onAbort) p.opts.signal?.removeEventListener('abort', p.onAbort);
    const stdout = Buffer.concat(p.stdout, p.outBytes);
    const stderr = Buffer.concat(p.stderr, p.errBytes);
    const exitCode = status?.exited ? status.code : null;
    const signal = status && !status.exited ? signalName(status.signal) : null;
    if (err !== null && err !== undefined) {
      if (err instanceof ExecChannelError && (err.code === 'EXEC_CONNECTION_LOST' || err.code === 'EXEC_CLOSED')) {
        err = new ExecChannelError(err.code, `${err.message}\nCommand: ${shorten(p.command)}${describeTail(stdout, stderr)}`, {
          cause: err.cause,
        });
      }
      p.reject(err);
    } else if (p.timedOut) {
      p.reject(new ExecTimeoutError({ command: p.command, timeoutMs: p.timeoutMs, stdout, stderr, exitCode, signal, node: this.node }));
    } else {
      p.resolve({ exitCode, signal, stdout, stderr, durationMs: Date.now() - p.started });
    }
  }
}

/**
 * Runs one shell command in the guest: connect, handshake, exec, disconnect. Resolves with the
 * status and output whatever the exit status; rejects with ExecTimeoutError on timeout (with
 * the partial output), ExecChannelError when the channel fails (e.g. EXEC_NOT_RUNNING), or the
 * signal's reason on abort.
 */
export async function execOverChannel(socketPath: string, command: string, opts: ExecOverChannelOptions = {}): Promise<ExecResult<Buffer>> {
  const conn = await ExecConnection.connect(socketPath, { timeoutMs: opts.connectTimeoutMs, signal: opts.signal, node: opts.node });
  try {
    return await conn.exec(command, opts);
  } finally {
    conn.close();
  }
}

export interface PingResult extends HelloAck {
  /** Connect + handshake time. */
  rttMs: number;
}

/** Resolves once the agent answers a handshake (one attempt; see waitForAgent for retrying). */
export async function pingAgent(
  socketPath: string,
  opts: { timeoutMs?: number; signal?: AbortSignal; node?: string } = {},
): Promise<PingResult> {
  const start = Date.now();
  const conn = await ExecConnection.connect(socketPath, opts);
  conn.close();
  return { ...conn.agent, rttMs: Date.now() - start };
}

/**
 * Waits until the node's agent answers (the guest has booted far enough to run commands),
 * retrying while the socket is missing or the agent silent. Rejects with the last error at the
 * deadline; protocol-version and protocol errors fail at once.
 */
export async function waitForAgent(
  socketPath: string,
  opts: { deadlineMs: number; signal?: AbortSignal; log?: Logger; node?: string },
): Promise<PingResult> {
  const start = Date.now();
  return retry(
    {
      what: `waiting for the guest agent on ${whereIs(socketPath, opts.node)}`,
      deadlineMs: opts.deadlineMs,
      delayMs: 100,
      factor: 1.5,
      maxDelayMs: 1000,
      signal: opts.signal,
      log: opts.log,
      retryIf: (e) => e instanceof ExecChannelError && ['EXEC_NOT_RUNNING', 'EXEC_NO_ANSWER', 'EXEC_BUSY', 'EXEC_CONNECTION_LOST'].includes(e.code),
    },
    () => {
      const left = opts.deadlineMs - (Date.now() - start);
      return pingAgent(socketPath, { timeoutMs: Math.max(100, Math.min(10_000, left)), signal: opts.signal, node: opts.node });
    },
  );
}

/** The pool of exec connections a Runner shares among its execs (see ExecConnectionPool). */
export class SharedExecConnections extends ExecConnectionPool<ExecConnection> {
  constructor(lingerMs = 200) {
    super((socketPath, opts) => ExecConnection.connect(socketPath, opts), lingerMs);
  }
}
