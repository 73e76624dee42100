/**
 * A minimal QMP client: one connection, commands answered in order, events collected.
 * QMP is newline-delimited JSON on QEMU's monitor socket.
 */
import net from 'node:net';
import { TimeoutError } from '../util/abort.js';
import { FalconError } from '../util/errors.js';

export interface QmpEvent {
  event: string;
  data?: unknown;
  timestamp?: { seconds: number; microseconds: number };
}

export class QmpError extends FalconError {
  override name = 'QmpError';
  constructor(
    readonly command: string,
    readonly errorClass: string,
    desc: string,
  ) {
    super('QMP', `QMP ${command} failed: ${errorClass}: ${desc}`);
  }
}

type Pending = { command: string; resolve: (v: unknown) => void; reject: (e: Error) => void };

export class QmpClient {
  private buf = '';
  private pending: Pending[] = [];
  private closed = false;
  readonly events: QmpEvent[] = [];
  private eventWaiters: { name: string; resolve: (e: QmpEvent) => void }[] = [];

  private constructor(private readonly sock: net.Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => this.onData(d));
    const fail = (err: Error) => {
      this.closed = true;
      for (const p of this.pending.splice(0)) p.reject(err);
    };
    sock.on('error', fail);
    sock.on('close', () => fail(new FalconError('QMP', 'the QMP connection closed (QEMU exited?); check that the node is running')));
  }

  /** Connect, read the greeting and enter command mode. */
  static async connect(path: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<QmpClient> {
    const timeoutMs = opts.timeoutMs ?? 5000;
    const sock = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.createConnection({ path });
      const t = setTimeout(() => {
        s.destroy();
        reject(new TimeoutError(`QMP: no answer from ${path} within ${timeoutMs} ms; QEMU may be hung (see the node's .err log)`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(t);
        resolve(s);
      });
      s.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(t);
        const gone = e.code === 'ENOENT' || e.code === 'ECONNREFUSED';
        reject(new FalconError('QMP', `cannot connect to the QMP socket ${path} (${e.code ?? e.message})${gone ? ': the node is not running; start it with hyperstart' : ''}`, { cause: e }));
      });
    });
    const c = new QmpClient(sock);
    // The greeting arrives first; it is answered like a command with no request.
    await c.enqueue('(greeting)', timeoutMs, opts.signal);
    await c.execute('qmp_capabilities', undefined, { timeoutMs, signal: opts.signal });
    return c;
  }

  /** Run a QMP command and return its `return` value. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<T> {
    if (this.closed) return Promise.reject(new FalconError('QMP', `the QMP connection is closed; cannot run ${command}`));
    this.sock.write(JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + '\n');
    return this.enqueue(command, opts.timeoutMs ?? 30_000, opts.signal) as Promise<T>;
  }

  /** Resolve on the next event called `name` (or one already received since `since`). */
  waitForEvent(name: string, opts: { timeoutMs?: number; signal?: AbortSignal; since?: number } = {}): Promise<QmpEvent> {
    const seen = this.events.slice(opts.since ?? this.events.length).find((e) => e.event === name);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = { name, resolve: (e: QmpEvent) => done(() => resolve(e)) };
      const t = setTimeout(() => done(() => reject(new TimeoutError(`QMP: no ${name} event within ${opts.timeoutMs ?? 30_000} ms`))), opts.timeoutMs ?? 30_000);
      const onAbort = () => done(() => reject(opts.signal!.reason));
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      const done = (f: () => void) => {
        clearTimeout(t);
        opts.signal?.removeEventListener('abort', onAbort);
        this.eventWaiters = this.eventWaiters.filter((x) => x !== w);
        f();
      };
      this.eventWaiters.push(w);
    });
  }

  close(): void {
    this.closed = true;
    this.sock.destroy();
  }

  private enqueue(command: string, timeoutMs: number, signal?: AbortSignal): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => finish(new TimeoutError(`QMP: ${command} not answered within ${timeoutMs} ms; QEMU may be hung (see the node's .err log)`)), timeoutMs);
      const onAbort = () => finish(signal!.reason as Error);
      signal?.addEventListener('abort', onAbort, { once: true });
      const finish = (err: Error | null, v?: unknown) => {
        clearTimeout(t);
        signal?.removeEventListener('abort', onAbort);
        if (err) {
          this.pending = this.pending.filter((p) => p !== entry);
          reject(err);
        } else resolve(v);
      };
      const entry: Pending = { command, resolve: (v) => finish(null, v), reject: (e) => finish(e) };
      this.pending.push(entry);
    });
  }

  private onData(d: string): void {
    this.buf += d;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (line) this.onMessage(line);
    }
  }

  private onMessage(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line);
    } catch {
      return; // QMP only sends JSON; ignore noise rather than fail every pending command
    }
    if ('event' in msg) {
      const e = msg as unknown as QmpEvent;
      this.events.push(e);
      for (const w of this.eventWaiters.filter((x) => x.name === e.event)) w.resolve(e);
      return;
    }
    const p = this.pending.shift();
    if (!p) return;
    if ('error' in msg) {
      const err = msg.error as { class: string; desc: string };
      p.reject(new QmpError(p.command, err.class, err.desc));
    } else p.resolve('QMP' in msg ? msg.QMP : msg.return);
  }
}

/** Connect, run one command, disconnect. */
export async function qmpOnce<T = unknown>(path: string, command: string, args?: Record<string, unknown>, timeoutMs = 10_000): Promise<T> {
  const c = await QmpClient.connect(path, { timeoutMs });
  try {
    return await c.execute<T>(command, args, { timeoutMs });
  } finally {
    c.close();
  }
}
