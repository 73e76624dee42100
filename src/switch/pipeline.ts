/**
 * The pipeline interface (shaped like p4rs's `Pipeline`).
 *
 * A program is a module exporting `createPipeline(radix)`, where radix = N + 1 ports
 * numbered 0..N (port 0 is the CPU port of a SoftNPU; for sidemux, the sidecar node's NIC).
 * (loader.ts creates one from a built-in name or a module path.) The switch calls `processPacket(port, frame)` for every frame that arrives on a port and
 * sends each returned `[frame, port]`. Table operations come from the management UART and
 * the control socket.
 *
 * Writing your own program (chosen on the host, never by the guest):
 *
 * ```ts
 * // my-program.ts (or .js), given as `program: '/abs/path/my-program.ts'`
 * import type { Pipeline } from 'falcon/switch';
 * export function createPipeline(radix: number): Pipeline {
 *   return {
 *     processPacket: (port, frame) => (port === 1 ? [[frame, 2]] : []),
 *     tableAdd() {}, tableRemove() {}, tableIds: () => [], tableEntries: () => undefined,
 *   };
 * }
 * ```
 *
 * `processPacket` may change `frame` in place and return it (or a subarray): the switch
 * owns the buffer and copies it out before the next chunk arrives. It must not keep it.
 * A program that throws from `processPacket` loses that frame only (counted in stats).
 */
import type { TableEntryJson } from './tables.js';

export type { TableEntryJson } from './tables.js';

/** One output of `processPacket`: the frame and the port to send it out of. */
export type PacketOut = [frame: Buffer, port: number];

/** What a pipeline program implements (p4rs's `Pipeline`, in TypeScript). */
export interface Pipeline {
  /** Processes one frame that arrived on `port`; returns the frames to send and their ports. */
  processPacket(port: number, frame: Buffer): PacketOut[];
  /** Adds an entry; throws (any error) when the table, action or lengths are invalid. Adding an existing key keeps the old entry. */
  tableAdd(table: string, action: string, key: Uint8Array, params: Uint8Array, prio?: number): void;
  /** Removes the entry with this key, if any. */
  tableRemove(table: string, key: Uint8Array): void;
  /** Every table's name, including empty ones (a dump lists them all). */
  tableIds(): string[];
  /** A table's entries, or undefined when there is no such table. */
  tableEntries(table: string): TableEntryJson[] | undefined;
  /** Optional: the program's own counters (drops by reason...), shown by `stats`. */
  counters?(): Record<string, number>;
}

/** A module that provides a program. */
export interface PipelineModule {
  createPipeline(radix: number): Pipeline;
}

/**
 * All tables of a pipeline as the DumpRequest reply carries them: `{ table: entries[] }`,
 * tables sorted by name (propolis serializes a BTreeMap), entries in insertion order.
 */
export function dumpTables(p: Pipeline): Record<string, TableEntryJson[]> {
  const out: Record<string, TableEntryJson[]> = {};
  for (const id of [...p.tableIds()].sort()) out[id] = p.tableEntries(id) ?? [];
  return out;
}

/** A counter bag for programs: `c.inc('no_route')`; `c.snapshot()` for `counters()`. */
export class Counters {
  private readonly m = new Map<string, number>();
  inc(name: string, n = 1): void {
    this.m.set(name, (this.m.get(name) ?? 0) + n);
  }
  snapshot(): Record<string, number> {
    return Object.fromEntries(this.m);
  }
  clear(): void {
    this.m.clear();
  }
}
