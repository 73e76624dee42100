/**
 * The switch's ends of its sockets.
 *
 * {@link ReconnectingSocket}: a unix-socket client that stays connected, the switch's end of
 * a QEMU-served socket (a `-netdev stream,server=on` NIC, or the management UART's
 * `-chardev socket,server=on`). QEMU 7.2 cannot reconnect as a client, so QEMU serves and the
 * switch reconnects, with backoff 50 ms -> 1 s, whenever the socket is missing or QEMU
 * restarts.
 *
 * {@link ServedSocket}: the switch serves the socket and takes one client at a time (a newer
 * client replaces the older): for a port joined to another switch's port
 * (`softnpuLinks(a, b)`): one switch serves, the other connects.
 *
 * Writes never wait: {@link write} drops (returns false) when unconnected or when more than
 * `capBytes` are already queued (a guest that does not read: booting, link down).
 */
import { chmod, rm } from 'node:fs/promises';
import net from 'node:net';
import type { Logger } from '../util/log.js';
import { retry } from '../util/retry.js';
import { FalconError } from '../util/errors.js';
import { TimeoutError } from '../util/abort.js';

export interface LinkOptions {
  /** For logs, e.g. "scrimlet port 1". */
  what: string;
  onData: (chunk: Buffer) => void;
  onConnect?: () => void;
  onDisconnect?: () => void;
  log: Logger;
  /** Drop writes while more than this many bytes wait to be sent (default 256 KiB). */
  capBytes?: number;
}

export const DEFAULT_BACKPRESSURE_BYTES = 256 * 1024;
const CONNECT_TIMEOUT_MS = 2_000;

/** What the switch needs of a port's socket, whichever side serves it. */
export interface PortSocket {
  readonly path: string;
  readonly connected: boolean;
  readonly connects: number;
  start(): void;
  stop(): Promise<void>;
  write(buf: Buffer): boolean;
}

/** The connected socket, its counter and the capped write, whichever side serves. */
abstract class SocketEnd implements PortSocket {
  protected sock: net.Socket | undefined;
  /** How many times a connection was made. */
  connects = 0;

  constructor(readonly path: string, protected readonly o: LinkOptions) {}

  get connected(): boolean {
    return this.sock !== undefined;
  }

  /** Queues bytes; false when they were dropped (unconnected, or over the cap). */
  write(buf: Buffer): boolean {
    const s = this.sock;
    if (!s || s.writableLength > (this.o.capBytes ?? DEFAULT_BACKPRESSURE_BYTES)) return false;
    s.write(buf);
    return true;
  }

  abstract start(): void;
  abstract stop(): Promise<void>;
}

export class ReconnectingSocket extends SocketEnd {
  private readonly ac = new AbortController();
  private loop: Promise<void> | undefined;

  /** Starts connecting in the background. */
  start(): void {
    this.loop ??= this.run().catch(() => {});
  }

  /** Stops reconnecting and closes the connection. */
  async stop(): Promise<void> {
    this.ac.abort();
    this.sock?.destroy();
    await this.loop;
  }

  private async run(): Promise<void> {
    const signal = this.ac.signal;
    while (!signal.aborted) {
      const sock = await retry(
        { what: `connecting ${this.o.what} to ${this.path}`, delayMs: 50, factor: 2, maxDelayMs: 1_000, signal, log: this.o.log },
        () => connect(this.path, signal),
      );
      if (signal.aborted) {
        sock.destroy();
        return;
      }
      this.connects++;
      const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
      sock.on('error', () => {}); // 'close' follows
      sock.on('data', (chunk: Buffer) => this.o.onData(chunk));
      this.sock = sock;
      this.o.log.log({ kind: 'step', level: 'debug', msg: `${this.o.what}: connected to ${this.path}` });
      this.o.onConnect?.();
      await closed;
      this.sock = undefined;
      if (!signal.aborted) {
        this.o.log.log({ kind: 'step', level: 'debug', msg: `${this.o.what}: disconnected; reconnecting` });
        this.o.onDisconnect?.();
      }
    }
  }
}

function connect(path: string, signal: AbortSignal): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    signal.throwIfAborted();
    const s = net.createConnection({ path });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new TimeoutError(`no connection within ${CONNECT_TIMEOUT_MS} ms`));
    }, CONNECT_TIMEOUT_MS);
    const onAbort = () => s.destroy(new FalconError('INTERNAL', 'the switch port was stopped'));
    signal.addEventListener('abort', onAbort, { once: true });
    s.once('connect', () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      reject(e);
    });
  });
}

/**
 * Serves a unix socket at `path`, owner-only (0600). A file already there is removed first:
 * callers hold the switch's pid lock, so it is a dead switch's.
 */
export async function serveUnix(path: string, onConnection: (c: net.Socket) => void): Promise<net.Server> {
  await rm(path, { force: true });
  const server = net.createServer(onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await chmod(path, 0o600);
  return server;
}

/** A unix socket the switch serves (mode 0600), one client at a time. */
export class ServedSocket extends SocketEnd {
  private server: net.Server | undefined;
  private starting: Promise<void> | undefined;

  start(): void {
    if (this.server) return;
    this.starting ??= this.listen().catch((e: unknown) => this.o.log.log({ kind: 'warn', msg: `${this.o.what}: cannot serve ${this.path}: ${(e as Error).message}` }));
  }

  /** Listens now (start() does it in the background); throws when the socket cannot be made. */
  async listen(): Promise<void> {
    this.server = await serveUnix(this.path, (c) => this.accept(c));
  }

  private accept(c: net.Socket): void {
    const old = this.sock;
    this.sock = c;
    this.connects++;
    if (old) old.destroy();
    c.on('error', () => {});
    c.on('data', (chunk: Buffer) => this.o.onData(chunk));
    c.once('close', () => {
      if (this.sock !== c) return;
      this.sock = undefined;
      this.o.onDisconnect?.();
    });
    this.o.log.log({ kind: 'step', level: 'debug', msg: `${this.o.what}: a peer connected to ${this.path}` });
    this.o.onConnect?.();
  }

  async stop(): Promise<void> {
    await this.starting;
    this.sock?.destroy();
    const srv = this.server;
    this.server = undefined;
    if (srv) await new Promise<void>((r) => srv.close(() => r()));
    await rm(this.path, { force: true });
  }
}
