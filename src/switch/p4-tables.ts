/**
 * The tables of a compiled P4 program: entries added with x4c's key and parameter bytes
 * (decoded once, at add time, by table-layout.ts), looked up by the generated code.
 *
 * Structures by layout: one exact field of <= 48 bits -> Map by number; all fields exact
 * -> Map by the selector's latin1 string; one LPM field -> a Map per prefix length, longest
 * first (numbers up to 32 bits, strings above); anything else (ternary, range, mixed) -> a
 * list in match order (longest prefix of the first LPM field, then highest priority, then
 * first added), which is p4rs's order. Constant entries are matched but not dumped.
 */
import { FalconError } from '../util/errors.js';
import { decodeKey, decodeParams, type FieldMatch, type TableLayout } from '../p4/table-layout.js';
import type { ConstEntry, P4RuntimeTable } from '../p4/compile.js';
import type { TableEntryJson } from './tables.js';

/** What the generated code gets on a hit: the action's index and its parameter values. */
export interface Hit {
  a: number;
  p: unknown[];
}

interface Entry {
  id: string;
  key: Uint8Array;
  action: string;
  params: Uint8Array;
  matches: FieldMatch[];
  hit: Hit;
  prio: number;
  seq: number;
  isConst: boolean;
}

type Kind = 'num' | 'str' | 'lpmNum' | 'lpmStr' | 'list';

/** Bytes as a latin1 string (a Map key); the generated code's selectors are Buffers, so no view is made per lookup. */
const latin1 = (b: Uint8Array, off = 0, n = b.length): string => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength)).toString('latin1', off, off + n);

function numOf(b: Uint8Array): number {
  let v = 0;
  for (let i = 0; i < b.length; i++) v = v * 256 + b[i]!;
  return v;
}

/** The value bytes with bits past the prefix (counted from the field's MSB) cleared. */
function maskPrefix(v: Uint8Array, off: number, n: number, width: number, len: number, out: Uint8Array): Uint8Array {
  const skip = n * 8 - width;
  for (let i = 0; i < n; i++) {
    const keep = Math.max(0, Math.min(8, skip + len - i * 8));
    out[i] = v[off + i]! & ((0xff00 >> keep) & 0xff);
  }
  return out;
}

function compareBytes(a: Uint8Array, ao: number, b: Uint8Array, n: number): number {
  for (let i = 0; i < n; i++) if (a[ao + i] !== b[i]) return a[ao + i]! - b[i]!;
  return 0;
}

export class P4Table implements P4RuntimeTable {
  /** Entries, constant ones included (the generated code skips the lookup when 0). */
  n = 0;
  private readonly byId = new Map<string, Entry>();
  private readonly kind: Kind;
  private readonly map = new Map<number | string, Hit>();
  private readonly byLen = new Map<number, Map<number | string, Hit>>();
  private lens: number[] = [];
  /** The Maps of `lens`, in the same order (one lookup per prefix length). */
  private lenMaps: Map<number | string, Hit>[] = [];
  private list: Entry[] = [];
  private seq = 0;
  private readonly sel: Uint8Array;
  private readonly scratch: Uint8Array;
  private readonly selBytes: number;

  constructor(readonly layout: TableLayout, constEntries: ConstEntry[] = []) {
    const k = layout.keys;
    this.selBytes = k.reduce((n, f) => n + f.valueBytes, 0);
    this.sel = new Uint8Array(this.selBytes);
    this.scratch = Buffer.alloc(this.selBytes);
    const plain = constEntries.every((e) => e.matches.every((m, i) => m.kind === k[i]!.matchKind));
    if (!plain) this.kind = 'list';
    else if (k.length === 1 && k[0]!.matchKind === 'exact' && k[0]!.width <= 48) this.kind = 'num';
    else if (k.length > 0 && k.every((f) => f.matchKind === 'exact')) this.kind = 'str';
    else if (k.length === 1 && k[0]!.matchKind === 'lpm') this.kind = k[0]!.width <= 32 ? 'lpmNum' : 'lpmStr';
    else this.kind = 'list';
    for (const c of constEntries) this.insert({ id: `const:${this.seq}`, key: new Uint8Array(0), action: layout.actions[c.action]!.name, params: new Uint8Array(0), matches: c.matches, hit: { a: c.action, p: c.params }, prio: 0, seq: this.seq++, isConst: true });
  }

  get name(): string {
    return this.layout.name;
  }

  /** Adds an entry (x4c's bytes); false when the key exists (the old entry stays). Throws NPU_TABLE when invalid. */
  add(action: string, key: Uint8Array, params: Uint8Array, prio = 0): boolean {
    const ai = this.layout.actions.findIndex((a) => a.name === action);
    if (ai < 0) throw new FalconError('NPU_TABLE', `table ${this.name} has no action "${action}"; it takes ${this.layout.actions.map((a) => a.name).join(', ') || 'no entries'}`);
    const matches = decodeKey(this.layout, key);
    const p = decodeParams(this.name, this.layout.actions[ai]!, params);
    const id = Buffer.from(key).toString('hex');
    if (this.byId.has(id)) return false;
    this.insert({ id, key: Uint8Array.from(key), action, params: Uint8Array.from(params), matches, hit: { a: ai, p }, prio, seq: this.seq++, isConst: false });
    return true;
  }

  remove(key: Uint8Array): boolean {
    const e = this.byId.get(Buffer.from(key).toString('hex'));
    if (!e) return false;
    this.byId.delete(e.id);
    this.n = this.byId.size;
    this.unindex(e);
    return true;
  }

  clear(): void {
    for (const e of [...this.byId.values()]) if (!e.isConst) this.remove(e.key);
  }

  entries(): TableEntryJson[] {
    return [...this.byId.values()].filter((e) => !e.isConst).map((e) => ({ action_id: e.action, keyset_data: [...e.key], parameter_data: [...e.params] }));
  }

  private mapKey(e: Entry): number | string {
    const m = e.matches;
    if (this.kind === 'num') return numOf((m[0] as { value: Uint8Array }).value);
    if (this.kind === 'str') return m.map((x) => latin1((x as { value: Uint8Array }).value)).join('');
    const f = this.layout.keys[0]!;
    const l = m[0] as { value: Uint8Array; len: number };
    const masked = maskPrefix(l.value, 0, f.valueBytes, f.width, l.len, new Uint8Array(f.valueBytes));
    return this.kind === 'lpmNum' ? numOf(masked) : latin1(masked);
  }

  private insert(e: Entry): void {
    this.byId.set(e.id, e);
    this.n = this.byId.size;
    if (this.kind === 'num' || this.kind === 'str') {
      const k = this.mapKey(e);
      if (!this.map.has(k)) this.map.set(k, e.hit);
    } else if (this.kind === 'lpmNum' || this.kind === 'lpmStr') {
      const len = (e.matches[0] as { len: number }).len;
      let m = this.byLen.get(len);
      if (!m) {
        m = new Map();
        this.byLen.set(len, m);
        this.sortLens();
      }
      const k = this.mapKey(e);
      if (!m.has(k)) m.set(k, e.hit);
    } else {
      this.list.push(e);
      const lpm = this.layout.keys.findIndex((f) => f.matchKind === 'lpm');
      const len = (x: Entry) => (lpm >= 0 ? (x.matches[lpm] as { len: number }).len : 0);
      this.list.sort((a, b) => len(b) - len(a) || b.prio - a.prio || a.seq - b.seq);
    }
  }

  private unindex(e: Entry): void {
    if (this.kind === 'num' || this.kind === 'str') {
      this.map.delete(this.mapKey(e));
      this.reindexFrom(e);
    } else if (this.kind === 'lpmNum' || this.kind === 'lpmStr') {
      const len = (e.matches[0] as { len: number }).len;
      const m = this.byLen.get(len)!;
      m.delete(this.mapKey(e));
      this.reindexFrom(e);
      if (m.size === 0) {
        this.byLen.delete(len);
        this.sortLens();
      }
    } else {
      this.list = this.list.filter((x) => x !== e);
    }
  }

  private sortLens(): void {
    this.lens = [...this.byLen.keys()].sort((a, b) => b - a);
    this.lenMaps = this.lens.map((l) => this.byLen.get(l)!);
  }

  /** Another entry (a constant one) may map to the same key: put it back. */
  private reindexFrom(removed: Entry): void {
    for (const x of this.byId.values()) {
      if (x === removed) continue;
      const k = this.mapKey(x);
      if (this.kind === 'num' || this.kind === 'str') {
        if (k === this.mapKey(removed) && !this.map.has(k)) this.map.set(k, x.hit);
      }
    }
  }

  /** Lookup by a number (one exact field of <= 48 bits). An own property, so each call site in the generated code sees one function. */
  readonly getN: (key: number) => Hit | undefined = (key) => (this.kind === 'num' ? this.map.get(key) : this.get(this.numSelector(key)));

  /** Lookup by a number (one LPM field of <= 32 bits). */
  readonly lpmN: (key: number) => Hit | undefined = (key) => {
    if (this.kind !== 'lpmNum') return this.get(this.numSelector(key));
    const w = this.layout.keys[0]!.width;
    const lens = this.lens;
    const maps = this.lenMaps;
    for (let i = 0; i < lens.length; i++) {
      const len = lens[i]!;
      const masked = len === 0 ? 0 : w === 32 ? (key & (0xffffffff << (32 - len))) >>> 0 : key - (key % 2 ** (w - len));
      const h = maps[i]!.get(masked);
      if (h !== undefined) return h;
    }
    return undefined;
  };

  private numSelector(key: number): Uint8Array {
    let v = key;
    for (let i = this.selBytes - 1; i >= 0; i--) {
      this.sel[i] = v % 256;
      v = Math.floor(v / 256);
    }
    return this.sel;
  }

  /** Looks up a selector: every key field's value in network order, concatenated. */
  get(sel: Uint8Array): Hit | undefined {
    switch (this.kind) {
      case 'num': return this.map.get(numOf(sel));
      case 'str': return this.map.get(latin1(sel, 0, this.selBytes));
      case 'lpmNum': case 'lpmStr': {
        const f = this.layout.keys[0]!;
        for (let i = 0; i < this.lens.length; i++) {
          const masked = maskPrefix(sel, 0, f.valueBytes, f.width, this.lens[i]!, this.scratch);
          const h = this.lenMaps[i]!.get(this.kind === 'lpmNum' ? numOf(masked) : latin1(masked));
          if (h !== undefined) return h;
        }
        return undefined;
      }
      case 'list':
        for (const e of this.list) if (this.matches(e, sel)) return e.hit;
        return undefined;
    }
  }

  private matches(e: Entry, sel: Uint8Array): boolean {
    let off = 0;
    for (let i = 0; i < e.matches.length; i++) {
      const f = this.layout.keys[i]!;
      const n = f.valueBytes;
      const m = e.matches[i]!;
      if (!matchField(m, sel, off, n, f.width, this.scratch)) return false;
      off += n;
    }
    return true;
  }
}

function matchField(m: FieldMatch, sel: Uint8Array, off: number, n: number, width: number, scratch: Uint8Array): boolean {
  switch (m.kind) {
    case 'exact': return compareBytes(sel, off, m.value, n) === 0;
    case 'range': return compareBytes(sel, off, m.lo, n) >= 0 && compareBytes(sel, off, m.hi, n) <= 0;
    case 'ternary':
      for (let i = 0; i < n; i++) if (((sel[off + i]! ^ m.value[i]!) & m.mask[i]!) !== 0) return false;
      return true;
    case 'lpm': {
      const a = maskPrefix(sel, off, n, width, m.len, scratch);
      const b = maskPrefix(m.value, 0, n, width, m.len, new Uint8Array(n));
      return compareBytes(a, 0, b, n) === 0;
    }
  }
}
