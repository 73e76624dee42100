/**
 * Match-action tables for pipeline programs: exact, range, LPM and ternary, keyed by the
 * bytes x4c produces (see encoding.ts for the byte orders), and {@link TableSet}, which gives
 * a program the p4rs-shaped table half of the {@link Pipeline} interface for free.
 *
 * Entries are decoded once, when added (an action's `decode` turns parameter bytes into the
 * value the program uses), so lookups do no parsing. IPv4-sized keys (<= 6 bytes) are
 * numbers, so their lookups allocate nothing; 16-byte keys are latin1 strings.
 * Adding a key that exists keeps the old entry, as p4rs does.
 */
import { FalconError } from '../util/errors.js';

/** A table entry as the management protocol and dumps carry it. */
export interface TableEntryJson {
  action_id: string;
  keyset_data: number[];
  parameter_data: number[];
}

/** An action a table accepts: its parameter length in bytes and how to decode them. */
export interface ActionSpec<V> {
  params: number;
  decode: (params: Uint8Array) => V;
}

interface Stored<V> {
  action: string;
  key: Uint8Array;
  params: Uint8Array;
  value: V;
}

/** Common part: validation, insertion-ordered storage for dumps and removal. */
export abstract class Table<V> {
  private readonly byKey = new Map<string, Stored<V>>();
  constructor(
    readonly name: string,
    /** Key length in bytes. */
    readonly keyBytes: number,
    readonly actions: Readonly<Record<string, ActionSpec<V>>>,
  ) {}

  /** Adds an entry; false when the key exists (the old entry stays). Throws NPU_TABLE when invalid. */
  add(action: string, key: Uint8Array, params: Uint8Array): boolean {
    const spec = this.actions[action];
    if (!spec) throw new FalconError('NPU_TABLE', `table ${this.name} has no action "${action}"; it takes ${Object.keys(this.actions).join(', ') || 'no entries'}`);
    if (key.length !== this.keyBytes) throw new FalconError('NPU_TABLE', `table ${this.name} takes ${this.keyBytes}-byte keys, not ${key.length} bytes`);
    if (params.length !== spec.params) throw new FalconError('NPU_TABLE', `action ${action} of table ${this.name} takes ${spec.params} parameter bytes, not ${params.length}`);
    this.checkKey(key);
    const id = Buffer.from(key).toString('hex');
    if (this.byKey.has(id)) return false;
    const e: Stored<V> = { action, key: Uint8Array.from(key), params: Uint8Array.from(params), value: spec.decode(params) };
    this.byKey.set(id, e);
    this.index(e.key, e.value);
    return true;
  }

  /** Removes the entry with exactly this key; false when there is none. */
  remove(key: Uint8Array): boolean {
    const id = Buffer.from(key).toString('hex');
    const e = this.byKey.get(id);
    if (!e) return false;
    this.byKey.delete(id);
    this.unindex(e.key);
    return true;
  }

  clear(): void {
    for (const e of [...this.byKey.values()]) this.remove(e.key);
  }

  get size(): number {
    return this.byKey.size;
  }

  entries(): TableEntryJson[] {
    return [...this.byKey.values()].map((e) => ({ action_id: e.action, keyset_data: [...e.key], parameter_data: [...e.params] }));
  }

  protected checkKey(_key: Uint8Array): void {}
  protected abstract index(key: Uint8Array, value: V): void;
  protected abstract unindex(key: Uint8Array): void;
}

/** A key of up to 6 bytes as the number its little-endian bytes make; longer keys as latin1 of the reversed bytes. */
function exactId(key: Uint8Array): number | string {
  if (key.length <= 6) {
    let n = 0;
    for (let i = key.length - 1; i >= 0; i--) n = n * 256 + key[i]!;
    return n;
  }
  return Buffer.from(key).reverse().toString('latin1');
}

/**
 * One exact-match field. x4c stores header fields byte-reversed, so the key of an address
 * is its bytes reversed: look up a field read big-endian from the frame with {@link get}
 * (<= 6 bytes) or {@link getBytes} (network-order bytes, e.g. an IPv6 address).
 */
export class ExactTable<V> extends Table<V> {
  private readonly map = new Map<number | string, V>();
  protected index(key: Uint8Array, value: V): void {
    this.map.set(exactId(key), value);
  }
  protected unindex(key: Uint8Array): void {
    this.map.delete(exactId(key));
  }
  /** The field's value as a number (its big-endian reading in the frame). */
  get(n: number): V | undefined {
    return this.map.get(n);
  }
  /** The field as network-order bytes (`buf[off..off+keyBytes]`). */
  getBytes(buf: Buffer, off: number): V | undefined {
    if (this.keyBytes <= 6) return this.map.get(buf.readUIntBE(off, this.keyBytes));
    return this.map.get(buf.toString('latin1', off, off + this.keyBytes));
  }
}

/** One range field: key = lo ‖ hi, each little-endian (x4c). Linear scan in insertion order. */
export class RangeTable<V> extends Table<V> {
  private list: { lo: number; hi: number; id: string; value: V }[] = [];
  constructor(name: string, fieldBytes: number, actions: Readonly<Record<string, ActionSpec<V>>>) {
    super(name, fieldBytes * 2, actions);
    if (fieldBytes > 6) throw new FalconError('INTERNAL', `range table ${name}: fields over 6 bytes are not supported`);
  }
  protected index(key: Uint8Array, value: V): void {
    const w = this.keyBytes / 2;
    this.list.push({ lo: exactId(key.subarray(0, w)) as number, hi: exactId(key.subarray(w)) as number, id: Buffer.from(key).toString('hex'), value });
  }
  protected unindex(key: Uint8Array): void {
    const id = Buffer.from(key).toString('hex');
    this.list = this.list.filter((e) => e.id !== id);
  }
  get(n: number): V | undefined {
    for (const e of this.list) if (n >= e.lo && n <= e.hi) return e.value;
    return undefined;
  }
}

/**
 * One LPM field: key = the address in network order, then the prefix length (5 bytes for
 * IPv4, 17 for IPv6), as x4c encodes LPM keys. One Map per prefix length, longest first.
 */
export class LpmTable<V> extends Table<V> {
  private readonly addrBytes: number;
  private readonly byLen = new Map<number, Map<number | string, V>>();
  private lens: number[] = [];
  private readonly scratch: Buffer;
  constructor(name: string, addrBytes: 4 | 16, actions: Readonly<Record<string, ActionSpec<V>>>) {
    super(name, addrBytes + 1, actions);
    this.addrBytes = addrBytes;
    this.scratch = Buffer.alloc(addrBytes);
  }
  protected override checkKey(key: Uint8Array): void {
    if (key[this.addrBytes]! > this.addrBytes * 8) throw new FalconError('NPU_TABLE', `table ${this.name}: prefix length ${key[this.addrBytes]} is over ${this.addrBytes * 8}`);
  }
  private masked(addr: Uint8Array, off: number, len: number): number | string {
    if (this.addrBytes === 4) {
      const a = ((addr[off]! << 24) | (addr[off + 1]! << 16) | (addr[off + 2]! << 8) | addr[off + 3]!) >>> 0;
      return len === 0 ? 0 : (a & (0xffffffff << (32 - len))) >>> 0;
    }
    const s = this.scratch;
    for (let i = 0; i < 16; i++) {
      const bits = Math.max(0, Math.min(8, len - i * 8));
      s[i] = addr[off + i]! & ((0xff00 >> bits) & 0xff);
    }
    return s.toString('latin1');
  }
  protected index(key: Uint8Array, value: V): void {
    const len = key[this.addrBytes]!;
    let m = this.byLen.get(len);
    if (!m) {
      m = new Map();
      this.byLen.set(len, m);
      this.lens = [...this.byLen.keys()].sort((a, b) => b - a);
    }
    m.set(this.masked(key, 0, len), value);
  }
  protected unindex(key: Uint8Array): void {
    const len = key[this.addrBytes]!;
    const m = this.byLen.get(len);
    m?.delete(this.masked(key, 0, len));
    if (m && m.size === 0) {
      this.byLen.delete(len);
      this.lens = [...this.byLen.keys()].sort((a, b) => b - a);
    }
  }
  /** Longest-prefix match of the network-order address at `buf[off..]`. */
  lookup(buf: Uint8Array, off: number): V | undefined {
    const lens = this.lens;
    for (let i = 0; i < lens.length; i++) {
      const len = lens[i]!;
      const v = this.byLen.get(len)!.get(this.masked(buf, off, len));
      if (v !== undefined) return v;
    }
    return undefined;
  }
}

/**
 * Ternary match: key = value ‖ mask (each `fieldBytes`, network order), with a priority:
 * entries are tried highest priority first, then in insertion order. (Our own layout; the
 * built-in programs do not use ternary tables.)
 */
export class TernaryTable<V> extends Table<V> {
  private list: { value: Uint8Array; mask: Uint8Array; prio: number; id: string; v: V }[] = [];
  private nextPrio = 0;
  constructor(name: string, readonly fieldBytes: number, actions: Readonly<Record<string, ActionSpec<V>>>) {
    super(name, fieldBytes * 2, actions);
  }
  /** Adds with a priority (higher wins). */
  addWithPriority(action: string, key: Uint8Array, params: Uint8Array, prio: number): boolean {
    this.nextPrio = prio;
    return this.add(action, key, params);
  }
  protected index(key: Uint8Array, v: V): void {
    const w = this.fieldBytes;
    this.list.push({ value: key.subarray(0, w), mask: key.subarray(w), prio: this.nextPrio, id: Buffer.from(key).toString('hex'), v });
    this.nextPrio = 0;
    this.list.sort((a, b) => b.prio - a.prio);
  }
  protected unindex(key: Uint8Array): void {
    const id = Buffer.from(key).toString('hex');
    this.list = this.list.filter((e) => e.id !== id);
  }
  lookup(buf: Uint8Array, off: number): V | undefined {
    outer: for (const e of this.list) {
      for (let i = 0; i < this.fieldBytes; i++) if (((buf[off + i]! ^ e.value[i]!) & e.mask[i]!) !== 0) continue outer;
      return e.v;
    }
    return undefined;
  }
}

/** Keeps entries only, for tables a program accepts but does not act on (sidecar-lite's NAT). */
export class InertTable extends Table<null> {
  constructor(name: string, keyBytes: number, actions: Readonly<Record<string, number>>) {
    super(name, keyBytes, Object.fromEntries(Object.entries(actions).map(([a, n]) => [a, { params: n, decode: () => null }])));
  }
  protected index(): void {}
  protected unindex(): void {}
}

/** Action that takes no parameters and decodes to `value`. */
export function noParams<V>(value: V): ActionSpec<V> {
  return { params: 0, decode: () => value };
}

/**
 * A program's named tables with the p4rs-shaped table operations. Unknown tables and
 * invalid entries throw NPU_TABLE (the management UART logs and skips them).
 */
export class TableSet {
  private readonly tables = new Map<string, Table<unknown>>();
  constructor(tables: Table<unknown>[]) {
    for (const t of tables) this.tables.set(t.name, t);
  }
  private table(name: string): Table<unknown> {
    const t = this.tables.get(name);
    if (!t) throw new FalconError('NPU_TABLE', `there is no table "${name}"; the program has ${[...this.tables.keys()].join(', ') || 'no tables'}`);
    return t;
  }
  tableAdd(table: string, action: string, key: Uint8Array, params: Uint8Array, prio?: number): void {
    const t = this.table(table);
    if (t instanceof TernaryTable && prio !== undefined) t.addWithPriority(action, key, params, prio);
    else t.add(action, key, params);
  }
  tableRemove(table: string, key: Uint8Array): void {
    this.table(table).remove(key);
  }
  tableIds(): string[] {
    return [...this.tables.keys()];
  }
  tableEntries(table: string): TableEntryJson[] | undefined {
    return this.tables.get(table)?.entries();
  }
  clearTables(): void {
    for (const t of this.tables.values()) t.clear();
  }
}
