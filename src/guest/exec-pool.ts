/**
 * One exec connection per node shared by the execs of this process, so concurrent execs run at
 * once (QEMU serves one client per socket) and back-to-back execs skip the reconnect (after a
 * disconnect the agent looks for the next client only every 100 ms). A connection is closed
 * `lingerMs` after its last exec finishes, so other processes' execs on the node wait at most
 * that long.
 */
import type { ConnectOptions, ExecOptions, ExecOverChannelOptions, ExecResult } from './exec-types.js';

/** What the pool needs of a connection (ExecConnection; a fake in tests). */
export interface PooledConnection {
  readonly closed: boolean;
  exec(command: string, opts?: ExecOptions): Promise<ExecResult<Buffer>>;
  /** An idle connection must not keep the process alive. */
  keepProcessAlive(busy: boolean): void;
  close(): void;
}

export type Connect<C extends PooledConnection> = (socketPath: string, opts: ConnectOptions) => Promise<C>;

interface Entry<C> {
  conn: Promise<C>;
  users: number;
  timer?: NodeJS.Timeout;
}

export class ExecConnectionPool<C extends PooledConnection = PooledConnection> {
  private readonly open = new Map<string, Entry<C>>();

  constructor(
    private readonly connect: Connect<C>,
    private readonly lingerMs = 200,
  ) {}

  /** Runs `command` on the node behind `socketPath`, on its shared connection (opened when needed). */
  async exec(socketPath: string, command: string, opts: ExecOverChannelOptions = {}): Promise<ExecResult<Buffer>> {
    const entry = await this.acquire(socketPath, { timeoutMs: opts.connectTimeoutMs, signal: opts.signal, node: opts.node });
    let conn: C | undefined;
    try {
      conn = await entry.conn;
      conn.keepProcessAlive(true);
      return await conn.exec(command, opts);
    } finally {
      this.release(socketPath, entry, conn);
    }
  }

  /** How many connections are open or opening (for tests and diagnostics). */
  get size(): number {
    return this.open.size;
  }

  /** Close every connection now (before stopping a node, or when done). */
  closeAll(): void {
    for (const [p, e] of [...this.open]) this.drop(p, e);
  }

  private async acquire(socketPath: string, opts: ConnectOptions): Promise<Entry<C>> {
    let entry = this.open.get(socketPath);
    if (entry && (await entry.conn.then((c) => c.closed, () => true))) {
      this.drop(socketPath, entry);
      entry = undefined;
    }
    // Another exec may have opened one while we looked at the old one.
    entry ??= this.open.get(socketPath);
    if (!entry) {
      const e: Entry<C> = { conn: this.connect(socketPath, opts), users: 0 };
      this.open.set(socketPath, e);
      e.conn.catch(() => this.drop(socketPath, e));
      entry = e;
    }
    clearTimeout(entry.timer);
    entry.users++;
    return entry;
  }

  private release(socketPath: string, entry: Entry<C>, conn: C | undefined): void {
    if (--entry.users > 0 || this.open.get(socketPath) !== entry) return;
    conn?.keepProcessAlive(false);
    entry.timer = setTimeout(() => this.drop(socketPath, entry), this.lingerMs);
    entry.timer.unref();
  }

  private drop(socketPath: string, entry: Entry<C>): void {
    clearTimeout(entry.timer);
    if (this.open.get(socketPath) === entry) this.open.delete(socketPath);
    entry.conn.then((c) => c.close(), () => {});
  }
}
