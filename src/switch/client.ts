/**
 * The client of a switch's control socket, for the CLI (`falcon npu ...`) and tests.
 *
 * ```ts
 * const c = await SwitchClient.connect(socketPath);
 * await c.tableAdd(setMac(1, 'a8:40:25:00:00:01'));   // builders from encoding.ts
 * console.log(await c.dump());
 * c.close();
 * ```
 * Every wait has a timeout and takes an AbortSignal. A refused request throws a FalconError
 * with the switch's code (NPU_TABLE, INVALID_ARGUMENT...); no answer throws NPU_CONTROL.
 * `pcapHeader`/`pcapRecord` turn captured frames into a pcap file (LINKTYPE_ETHERNET).
 */
import type { LoadProgramReply, ProgramSource } from './program-load.js';
import net from 'node:net';
import { ERROR_CODES, FalconError, type FalconErrorCode } from '../util/errors.js';
import type { CapturedFrame, ControlReply, ControlRequest, SwitchStats } from './control-protocol.js';
import type { TableAddRequest, TableDump, TableRemoveRequest } from './encoding.js';
import { LINKTYPE_ETHERNET, pcapGlobalHeader, pcapRecordOf } from '../host/pcap.js';

export interface ClientOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

const DEFAULT_TIMEOUT_MS = 10_000;

export class SwitchClient {
  private buf = '';
  private readonly lines: string[] = [];
  private waiter: (() => void) | undefined;
  private closed = false;

  private constructor(private readonly sock: net.Socket, readonly path: string) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      let nl;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        this.lines.push(this.buf.slice(0, nl));
        this.buf = this.buf.slice(nl + 1);
      }
      this.wake();
    });
    sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
    sock.on('error', () => {});
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /** Connects to a switch's control socket. */
  static async connect(path: string, o: ClientOptions = {}): Promise<SwitchClient> {
    const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const sock = await new Promise<net.Socket>((resolve, reject) => {
      o.signal?.throwIfAborted();
      const s = net.createConnection({ path });
      const fail = (msg: string, cause?: unknown) => {
        clearTimeout(timer);
        s.destroy();
        reject(new FalconError('NPU_CONTROL', `the switch's control socket ${path} ${msg}; is the switch running (hyperstart starts it)?`, { cause }));
      };
      const timer = setTimeout(() => fail(`did not accept a connection within ${timeoutMs} ms`), timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once('error', (e) => fail(`cannot be reached (${(e as NodeJS.ErrnoException).code ?? e.message})`, e));
    });
    return new SwitchClient(sock, path);
  }

  /** The next line from the switch, or undefined once it closed. */
  async nextLine(o: ClientOptions = {}): Promise<string | undefined> {
    const deadline = o.timeoutMs === undefined ? undefined : Date.now() + o.timeoutMs;
    for (;;) {
      if (this.lines.length) return this.lines.shift();
      if (this.closed) return undefined;
      o.signal?.throwIfAborted();
      await new Promise<void>((resolve, reject) => {
        const t = deadline === undefined ? undefined : setTimeout(() => reject(new FalconError('NPU_CONTROL', `the switch at ${this.path} did not answer within ${o.timeoutMs} ms`)), Math.max(0, deadline - Date.now()));
        const onAbort = () => reject(o.signal!.reason);
        o.signal?.addEventListener('abort', onAbort, { once: true });
        this.waiter = () => {
          if (t) clearTimeout(t);
          o.signal?.removeEventListener('abort', onAbort);
          resolve();
        };
      });
    }
  }

  /** Sends one request and returns its result (throws the switch's error). */
  async request(req: ControlRequest, o: ClientOptions = {}): Promise<unknown> {
    if (this.closed) throw new FalconError('NPU_CONTROL', `the connection to the switch at ${this.path} is closed`);
    this.sock.write(JSON.stringify(req) + '\n');
    for (;;) {
      const line = await this.nextLine({ timeoutMs: o.timeoutMs ?? DEFAULT_TIMEOUT_MS, signal: o.signal });
      if (line === undefined) throw new FalconError('NPU_CONTROL', `the switch at ${this.path} closed the connection without answering`);
      const reply = JSON.parse(line) as ControlReply | { capture: CapturedFrame };
      if ('capture' in reply) continue;
      if (reply.ok) return reply.result;
      const code = (reply.error.code in ERROR_CODES ? reply.error.code : 'NPU_CONTROL') as FalconErrorCode;
      throw new FalconError(code, reply.error.message);
    }
  }

  radix(o?: ClientOptions): Promise<number> {
    return this.request('RadixRequest', o) as Promise<number>;
  }
  dump(o?: ClientOptions): Promise<TableDump> {
    return this.request('DumpRequest', o) as Promise<TableDump>;
  }
  async tableAdd(r: TableAddRequest | TableAddRequest[], o?: ClientOptions): Promise<void> {
    for (const x of Array.isArray(r) ? r : [r]) await this.request({ TableAdd: x }, o);
  }
  async tableRemove(r: TableRemoveRequest | TableRemoveRequest[], o?: ClientOptions): Promise<void> {
    for (const x of Array.isArray(r) ? r : [r]) await this.request({ TableRemove: x }, o);
  }
  /** LoadProgram: the switch compiles `program` and runs it, or replies with the errors. */
  loadProgram(program: ProgramSource, o?: ClientOptions): Promise<LoadProgramReply> {
    return this.request({ LoadProgram: { name: program.name, source: program.source, files: program.files } }, o) as Promise<LoadProgramReply>;
  }
  stats(o?: ClientOptions): Promise<SwitchStats> {
    return this.request('Stats', o) as Promise<SwitchStats>;
  }
  async clear(o?: ClientOptions): Promise<void> {
    await this.request('Clear', o);
  }
  /** Puts a frame into the pipeline as if received on `port` (`out`: sends it out of `port`). */
  async inject(port: number, frame: Uint8Array, out = false, o?: ClientOptions): Promise<void> {
    await this.request({ Inject: { port, hex: Buffer.from(frame).toString('hex'), out } }, o);
  }

  /**
   * Streams the frames seen on `ports` (all when omitted) until `signal` aborts or the
   * switch goes away. This connection is used up by it.
   */
  async *capture(ports?: number[], o: { signal?: AbortSignal } = {}): AsyncGenerator<CapturedFrame> {
    await this.request({ Capture: ports ? { ports } : {} }, { signal: o.signal });
    const onAbort = () => this.close();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for (;;) {
        const line = await this.nextLine();
        if (line === undefined) return;
        const v = JSON.parse(line) as { capture?: CapturedFrame };
        if (v.capture) yield v.capture;
      }
    } finally {
      o.signal?.removeEventListener('abort', onAbort);
      this.close();
    }
  }

  close(): void {
    this.sock.destroy();
  }
}

/** One request on a fresh connection. */
export async function switchRequest(path: string, req: ControlRequest, o: ClientOptions = {}): Promise<unknown> {
  const c = await SwitchClient.connect(path, o);
  try {
    return await c.request(req, o);
  } finally {
    c.close();
  }
}

/** A pcap file header for Ethernet frames. */
export function pcapHeader(snaplen = 65535): Buffer {
  return pcapGlobalHeader(LINKTYPE_ETHERNET, snaplen);
}

/** One captured frame as a pcap record. */
export function pcapRecord(f: CapturedFrame): Buffer {
  const data = Buffer.from(f.hex, 'hex');
  return pcapRecordOf({ timeUs: BigInt(Math.round(f.time * 1e6)), data, origLen: data.length });
}
