/**
 * The browser consoles: QEMU serves a node's serial console to one client at a time, so the
 * server holds ONE connection per node while anyone watches it, sends what the guest prints to
 * every viewer and passes every viewer's keystrokes to the guest. A new viewer first gets the
 * recent output (so a second browser sees the same screen). The connection is closed when the
 * last viewer leaves, giving the console back to `serial NODE` and serial-login exec.
 */
import { ConsoleBusyError, ConsoleNotRunningError } from '../guest/console.js';
import type { SerialConsole } from '../runner/serial-console.js';
import type { Logger } from '../util/log.js';

/** One browser console (a websocket). */
export interface ConsoleViewer {
  /** Output of the guest. */
  output(data: Buffer): void;
  /** The console's state changed: `attached`, `closed` (the VM stopped), `busy`, `unavailable`. */
  state(state: ConsoleState, message: string): void;
}

export type ConsoleState = 'attached' | 'closed' | 'busy' | 'unavailable';

/** The part of a console connection the hub uses. */
export interface ConsoleLink {
  write(data: Uint8Array): Promise<void>;
  onData(fn: (chunk: Buffer) => void): () => void;
  onClose(fn: () => void): void;
  close(): Promise<void>;
}

/** Opens a node's console (the real one: `consoleConnector`). */
export type ConsoleConnector = (node: string) => Promise<ConsoleLink>;

/**
 * Opens the consoles `open(node)` gives (a Runner's `console`: the socket here, the pod's on a
 * cluster); a local one fails at once when another client holds it.
 */
export function consoleConnector(open: (node: string) => Promise<SerialConsole>): ConsoleConnector {
  return async (node) => {
    const c = await open(node);
    return {
      write: async (d) => c.write(Buffer.from(d)),
      onData: (fn) => c.onData(fn),
      onClose: (fn) => void c.onClose(fn),
      close: () => c.close(),
    };
  };
}

/** How much recent output a new viewer gets. */
const SCROLLBACK_BYTES = 64 * 1024;

class NodeConsole {
  readonly viewers = new Set<ConsoleViewer>();
  private link: ConsoleLink | undefined;
  private connecting: Promise<void> | undefined;
  private scrollback: Buffer[] = [];
  private scrollbackBytes = 0;
  private last: { state: ConsoleState; message: string } | undefined;
  private closed = false;

  constructor(
    readonly node: string,
    private readonly connect: ConsoleConnector,
    private readonly log: Logger,
  ) {}

  add(v: ConsoleViewer): void {
    this.viewers.add(v);
    if (this.scrollbackBytes) v.output(Buffer.concat(this.scrollback));
    if (this.last) v.state(this.last.state, this.last.message);
    this.ensure();
  }

  /** Removes a viewer; true when it was the last one (and the console is let go). */
  async remove(v: ConsoleViewer): Promise<boolean> {
    this.viewers.delete(v);
    if (this.viewers.size) return false;
    await this.release();
    return true;
  }

  input(data: Uint8Array): void {
    this.link?.write(data).catch(() => {});
  }

  /** Connect when there are viewers and no connection (after a hyperstart, say). */
  ensure(): void {
    if (this.link || this.connecting || !this.viewers.size || this.closed) return;
    this.connecting = this.open().finally(() => (this.connecting = undefined));
  }

  private async open(): Promise<void> {
    let link: ConsoleLink;
    try {
      link = await this.connect(this.node);
    } catch (e) {
      if (e instanceof ConsoleBusyError) this.setState('busy', `another client holds ${this.node}'s console (QEMU serves one at a time); it is shown here once that client leaves`);
      else if (e instanceof ConsoleNotRunningError) this.setState('closed', `${this.node} is not running; its console comes back when it is started`);
      else this.setState('unavailable', `cannot open ${this.node}'s console: ${(e as Error).message}`);
      return;
    }
    if (this.closed || !this.viewers.size) {
      await link.close();
      return;
    }
    this.link = link;
    link.onData((chunk) => {
      this.remember(chunk);
      for (const v of this.viewers) v.output(chunk);
    });
    link.onClose(() => {
      if (this.link !== link) return;
      this.link = undefined;
      this.setState('closed', `${this.node}'s console closed (its VM stopped); it comes back when the node is started`);
    });
    this.log.log({ kind: 'step', level: 'debug', msg: `web: holding ${this.node}'s console for ${this.viewers.size} viewer(s)` });
    this.setState('attached', `attached to ${this.node}'s console`);
  }

  private remember(chunk: Buffer): void {
    this.scrollback.push(chunk);
    this.scrollbackBytes += chunk.length;
    while (this.scrollbackBytes > SCROLLBACK_BYTES && this.scrollback.length > 1) this.scrollbackBytes -= this.scrollback.shift()!.length;
  }

  private setState(state: ConsoleState, message: string): void {
    if (this.last?.state === state && this.last.message === message) return;
    this.last = { state, message };
    for (const v of this.viewers) v.state(state, message);
  }

  async release(): Promise<void> {
    await this.connecting;
    const link = this.link;
    this.link = undefined;
    this.last = undefined;
    await link?.close();
    if (link) this.log.log({ kind: 'step', level: 'debug', msg: `web: let go of ${this.node}'s console` });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.viewers.clear();
    await this.release();
  }
}

/** Every node's browser console; see the file comment. */
export class ConsoleHub {
  private readonly nodes = new Map<string, NodeConsole>();

  constructor(
    private readonly connect: ConsoleConnector,
    private readonly log: Logger,
  ) {}

  private of(node: string): NodeConsole {
    let c = this.nodes.get(node);
    if (!c) this.nodes.set(node, (c = new NodeConsole(node, this.connect, this.log)));
    return c;
  }

  /** A viewer of `node`'s console; returns what its keystrokes go to and how it leaves. */
  attach(node: string, v: ConsoleViewer): { input(data: Uint8Array): void; detach(): Promise<void> } {
    const c = this.of(node);
    c.add(v);
    return {
      input: (d) => c.input(d),
      detach: async () => {
        await c.remove(v);
      },
    };
  }

  /** How many viewers watch `node`. */
  viewers(node: string): number {
    return this.nodes.get(node)?.viewers.size ?? 0;
  }

  /** Reconnects the watched consoles of the `running` nodes that have none (after a hyperstart). */
  refresh(running: readonly string[]): void {
    for (const n of running) this.nodes.get(n)?.ensure();
  }

  /** Lets go of every console. */
  async close(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((c) => c.close()));
    this.nodes.clear();
  }
}
