/**
 * `NpuControl`, the switch of one npu node through its control socket (`Runner.npu`), apart
 * from the switches' lifecycle (switches.ts): a topology program loads only the control
 * client, and the P4 front end only when a program is loaded.
 */
import { SwitchClient } from '../switch/client.js';
import type { CapturedFrame, SwitchStats } from '../switch/control-protocol.js';
import type { TableAddRequest, TableDump, TableRemoveRequest } from '../switch/encoding.js';
import type { LoadProgramReply } from '../switch/program-load.js';

/** The scadm-named entry builders (and sidecar-lite's tables), loaded by the helpers that use them. */
const encoding = () => import('../switch/encoding.js');

/**
 * The switch of one npu node, through its control socket: what `$topo npu NODE ...` uses.
 * Each call opens a connection and closes it.
 *
 * ```ts
 * const npu = d.npu('scrimlet');
 * await npu.addRoute4('10.0.2.0/24', 2, '10.0.2.2');
 * console.log(await npu.dump());
 * ```
 */
export class NpuControl {
  constructor(
    readonly node: string,
    readonly controlSocket: string,
    private readonly timeoutMs = 10_000,
  ) {}

  private async with<T>(f: (c: SwitchClient) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const c = await SwitchClient.connect(this.controlSocket, { timeoutMs: this.timeoutMs, signal });
    try {
      return await f(c);
    } finally {
      c.close();
    }
  }

  /** N, the data ports (as `RadixRequest` on the UART). */
  radix(): Promise<number> {
    return this.with((c) => c.radix());
  }
  /** Every table with its entries, as `DumpRequest` on the UART answers. */
  dump(): Promise<TableDump> {
    return this.with((c) => c.dump());
  }
  /** Add entries (the raw form: table, action, key and parameter bytes). */
  add(r: TableAddRequest | TableAddRequest[]): Promise<void> {
    return this.with((c) => c.tableAdd(r));
  }
  /** Remove entries by key. */
  remove(r: TableRemoveRequest | TableRemoveRequest[]): Promise<void> {
    return this.with((c) => c.tableRemove(r));
  }
  stats(): Promise<SwitchStats> {
    return this.with((c) => c.stats());
  }
  /**
   * Load the P4 program in `file` (with the includes it reads from its own folders) into the
   * running switch, as scadm's load-program does; the old program keeps running when the new one
   * does not compile (the reply's `errors`). Tables whose layout matches are kept.
   */
  async load(file: string): Promise<LoadProgramReply> {
    // The P4 front end is loaded only by the commands that need it.
    const { programFromFile } = await import('../switch/program-load.js');
    const program = programFromFile(file);
    return this.with((c) => c.loadProgram(program, { timeoutMs: Math.max(this.timeoutMs, 60_000) }));
  }
  /** Empty every table. */
  clear(): Promise<void> {
    return this.with((c) => c.clear());
  }
  /** Put a frame into the pipeline as if received on `port` (`out`: send it out of `port` as is). */
  inject(port: number, frame: Uint8Array, out = false): Promise<void> {
    return this.with((c) => c.inject(port, frame, out));
  }
  /** Frames seen on `ports` (all when omitted) until `signal` aborts. */
  async *capture(ports?: number[], o: { signal?: AbortSignal } = {}): AsyncGenerator<CapturedFrame> {
    const c = await SwitchClient.connect(this.controlSocket, { timeoutMs: this.timeoutMs, signal: o.signal });
    yield* c.capture(ports, o);
  }

  /** scadm add-route4: `dest` (CIDR) leaves by `port` towards `nexthop` (the resolver must know it unless 0.0.0.0). */
  addRoute4(dest: string, port: number, nexthop: string, vlan = 0): Promise<void> {
    return this.with(async (c) => c.tableAdd((await encoding()).addRoute4(await c.dump(), dest, port, nexthop, vlan)));
  }
  /** scadm add-route6. */
  addRoute6(dest: string, port: number, nexthop: string, vlan = 0): Promise<void> {
    return this.with(async (c) => c.tableAdd((await encoding()).addRoute6(await c.dump(), dest, port, nexthop, vlan)));
  }
  /** scadm remove-route4 / remove-route6. */
  removeRoute(dest: string): Promise<void> {
    return this.with(async (c) => c.tableRemove((await encoding()).removeRoute(await c.dump(), dest)));
  }
  /** scadm add-address4/6: frames to `addr` are punted to the CPU port. */
  async addAddress(addr: string): Promise<void> {
    return this.add((await encoding()).addAddress(addr));
  }
  async removeAddress(addr: string): Promise<void> {
    return this.remove((await encoding()).removeAddress(addr));
  }
  /** scadm add-arp-entry / add-ndp-entry: the resolver's MAC for a nexthop. */
  async addArpEntry(ip: string, mac: string): Promise<void> {
    return this.add((await encoding()).addNeighbor(ip, mac));
  }
  async removeArpEntry(ip: string): Promise<void> {
    return this.remove((await encoding()).removeNeighbor(ip));
  }
  /** scadm set-mac: the source MAC of frames leaving `port`. */
  async setMac(port: number, mac: string): Promise<void> {
    return this.add((await encoding()).setMac(port, mac));
  }
  async clearMac(port: number): Promise<void> {
    return this.remove((await encoding()).clearMac(port));
  }
  /** scadm add-proxy-arp: ARP requests for `begin`..`end` are answered with `mac`. */
  async addProxyArp(begin: string, end: string, mac: string): Promise<void> {
    return this.add((await encoding()).addProxyArp(begin, end, mac));
  }
  async removeProxyArp(begin: string, end: string): Promise<void> {
    return this.remove((await encoding()).removeProxyArp(begin, end));
  }
}
