/**
 * pcap and pcapng, as pure functions: a streaming reader of the classic pcap format that
 * `tcpdump -w - -U` writes (either byte order, micro- or nanosecond timestamps) and a writer
 * of pcapng (Section Header, one Interface Description per interface with its `if_name`,
 * Enhanced Packet Blocks), so captures of several interfaces fit in one file.
 */
import { FalconError } from '../util/errors.js';

/** LINKTYPE_ETHERNET. */
export const LINKTYPE_ETHERNET = 1;

/** One record of a pcap stream. */
export interface PcapPacket {
  /** Microseconds since the epoch. */
  timeUs: bigint;
  /** Length on the wire (may exceed `data.length` when the snap length cut it). */
  origLen: number;
  data: Buffer;
}

/** The global header of a pcap stream. */
export interface PcapHeader {
  littleEndian: boolean;
  nanoseconds: boolean;
  snaplen: number;
  linkType: number;
}

/**
 * Reads a pcap byte stream given in chunks of any size: `push` returns the records that are
 * complete so far. Throws a FalconError on bytes that are not pcap.
 */
export class PcapReader {
  private buf: Buffer = Buffer.alloc(0);
  header: PcapHeader | undefined;

  push(chunk: Buffer): PcapPacket[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: PcapPacket[] = [];
    if (!this.header) {
      if (this.buf.length < 24) return out;
      this.header = readGlobalHeader(this.buf);
      this.buf = this.buf.subarray(24);
    }
    const h = this.header;
    const u32 = (o: number) => (h.littleEndian ? this.buf.readUInt32LE(o) : this.buf.readUInt32BE(o));
    while (this.buf.length >= 16) {
      const incl = u32(8);
      if (incl > Math.max(h.snaplen, 262_144)) throw new FalconError('INVALID_ARGUMENT', `pcap record of ${incl} bytes is over the snap length ${h.snaplen}: the stream is damaged`);
      if (this.buf.length < 16 + incl) break;
      const sec = BigInt(u32(0));
      const frac = BigInt(u32(4));
      out.push({ timeUs: sec * 1_000_000n + (h.nanoseconds ? frac / 1000n : frac), origLen: u32(12), data: Buffer.from(this.buf.subarray(16, 16 + incl)) });
      this.buf = this.buf.subarray(16 + incl);
    }
    return out;
  }

  /** Bytes received but not yet a whole record (non-zero at the end: the stream was cut). */
  get pending(): number {
    return this.buf.length;
  }
}

function readGlobalHeader(b: Buffer): PcapHeader {
  const magics: Record<number, { littleEndian: boolean; nanoseconds: boolean }> = {
    0xa1b2c3d4: { littleEndian: false, nanoseconds: false },
    0xd4c3b2a1: { littleEndian: true, nanoseconds: false },
    0xa1b23c4d: { littleEndian: false, nanoseconds: true },
    0x4d3cb2a1: { littleEndian: true, nanoseconds: true },
  };
  const m = magics[b.readUInt32BE(0)];
  if (!m) throw new FalconError('INVALID_ARGUMENT', `not a pcap stream: magic 0x${b.readUInt32BE(0).toString(16)} (want 0xa1b2c3d4 or 0xa1b23c4d in either byte order)`);
  const snaplen = m.littleEndian ? b.readUInt32LE(16) : b.readUInt32BE(16);
  const linkType = (m.littleEndian ? b.readUInt32LE(20) : b.readUInt32BE(20)) & 0x0fffffff;
  return { ...m, snaplen, linkType };
}

/** A whole pcap file's records (a convenience over PcapReader). */
export function readPcap(file: Buffer): { header: PcapHeader; packets: PcapPacket[] } {
  const r = new PcapReader();
  const packets = r.push(file);
  if (!r.header) throw new FalconError('INVALID_ARGUMENT', `not a pcap file: ${file.length} bytes, shorter than the 24-byte header`);
  return { header: r.header, packets };
}

const pad4 = (n: number) => (4 - (n % 4)) % 4;

function block(type: number, body: Buffer): Buffer {
  const len = 12 + body.length;
  const b = Buffer.alloc(len);
  b.writeUInt32LE(type, 0);
  b.writeUInt32LE(len, 4);
  body.copy(b, 8);
  b.writeUInt32LE(len, len - 4);
  return b;
}

function option(code: number, value: Buffer): Buffer {
  const b = Buffer.alloc(4 + value.length + pad4(value.length));
  b.writeUInt16LE(code, 0);
  b.writeUInt16LE(value.length, 2);
  value.copy(b, 4);
  return b;
}

const END_OF_OPT = Buffer.alloc(4);

/** A pcapng Section Header Block (little-endian, version 1.0, section length unknown). */
export function pcapngSectionHeader(): Buffer {
  const body = Buffer.alloc(16);
  body.writeUInt32LE(0x1a2b3c4d, 0);
  body.writeUInt16LE(1, 4);
  body.writeUInt16LE(0, 6);
  body.writeBigInt64LE(-1n, 8);
  return block(0x0a0d0d0a, body);
}

/** A pcapng Interface Description Block named `name` (if_name), microsecond timestamps (the default). */
export function pcapngInterface(name: string, linkType = LINKTYPE_ETHERNET, snaplen = 262_144): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt16LE(linkType, 0);
  head.writeUInt32LE(snaplen, 4);
  return block(0x00000001, Buffer.concat([head, option(2, Buffer.from(name, 'utf8')), END_OF_OPT]));
}

/** A pcapng Enhanced Packet Block of interface `ifId`. */
export function pcapngPacket(ifId: number, p: PcapPacket): Buffer {
  const head = Buffer.alloc(20);
  head.writeUInt32LE(ifId, 0);
  head.writeUInt32LE(Number(p.timeUs >> 32n), 4);
  head.writeUInt32LE(Number(p.timeUs & 0xffffffffn), 8);
  head.writeUInt32LE(p.data.length, 12);
  head.writeUInt32LE(p.origLen, 16);
  return block(0x00000006, Buffer.concat([head, p.data, Buffer.alloc(pad4(p.data.length))]));
}

/** A classic pcap global header (microseconds, little-endian). */
export function pcapGlobalHeader(linkType = LINKTYPE_ETHERNET, snaplen = 262_144): Buffer {
  const b = Buffer.alloc(24);
  b.writeUInt32LE(0xa1b2c3d4, 0);
  b.writeUInt16LE(2, 4);
  b.writeUInt16LE(4, 6);
  b.writeUInt32LE(snaplen, 16);
  b.writeUInt32LE(linkType, 20);
  return b;
}

/** One classic pcap record (little-endian, microseconds). */
export function pcapRecordOf(p: PcapPacket): Buffer {
  const b = Buffer.alloc(16 + p.data.length);
  b.writeUInt32LE(Number(p.timeUs / 1_000_000n), 0);
  b.writeUInt32LE(Number(p.timeUs % 1_000_000n), 4);
  b.writeUInt32LE(p.data.length, 8);
  b.writeUInt32LE(p.origLen, 12);
  p.data.copy(b, 16);
  return b;
}

/** A pcapng file read back: interface names and packets with their interface. */
export interface Pcapng {
  interfaces: { name?: string; linkType: number }[];
  packets: (PcapPacket & { ifId: number })[];
}

/** Reads a little-endian pcapng file of one section (what pcapngSectionHeader starts). */
export function readPcapng(file: Buffer): Pcapng {
  const out: Pcapng = { interfaces: [], packets: [] };
  const bad = (why: string) => new FalconError('INVALID_ARGUMENT', `not a valid pcapng file: ${why}`);
  let o = 0;
  while (o < file.length) {
    if (o + 12 > file.length) throw bad(`a block at byte ${o} is cut short`);
    const type = file.readUInt32LE(o);
    const len = file.readUInt32LE(o + 4);
    if (len < 12 || len % 4 || o + len > file.length) throw bad(`block at byte ${o} has length ${len}`);
    if (file.readUInt32LE(o + len - 4) !== len) throw bad(`block at byte ${o}: its trailing length differs`);
    const body = file.subarray(o + 8, o + len - 4);
    if (o === 0 && (type !== 0x0a0d0d0a || body.readUInt32LE(0) !== 0x1a2b3c4d)) throw bad('it does not start with a little-endian Section Header Block');
    if (type === 1) {
      let name: string | undefined;
      for (let p = 8; p + 4 <= body.length; ) {
        const code = body.readUInt16LE(p);
        const vlen = body.readUInt16LE(p + 2);
        if (code === 0) break;
        if (code === 2) name = body.subarray(p + 4, p + 4 + vlen).toString('utf8');
        p += 4 + vlen + pad4(vlen);
      }
      out.interfaces.push({ name, linkType: body.readUInt16LE(0) });
    } else if (type === 6) {
      const ifId = body.readUInt32LE(0);
      if (ifId >= out.interfaces.length) throw bad(`a packet at byte ${o} names interface ${ifId}, which is not described before it`);
      const timeUs = (BigInt(body.readUInt32LE(4)) << 32n) | BigInt(body.readUInt32LE(8));
      const cap = body.readUInt32LE(12);
      out.packets.push({ ifId, timeUs, origLen: body.readUInt32LE(16), data: Buffer.from(body.subarray(20, 20 + cap)) });
    }
    o += len;
  }
  return out;
}

/** One line about an Ethernet frame: MACs, and for IPv4 the addresses, protocol and ICMP type; ARP. */
export function summarizeFrame(f: Buffer): string {
  if (f.length < 14) return `${f.length} bytes (runt)`;
  const mac = (o: number) => [...f.subarray(o, o + 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
  let type = f.readUInt16BE(12);
  let o = 14;
  let vlan = '';
  if (type === 0x8100 && f.length >= 18) {
    vlan = ` vlan ${f.readUInt16BE(14) & 0xfff}`;
    type = f.readUInt16BE(16);
    o = 18;
  }
  const head = `${mac(6)} > ${mac(0)}${vlan}`;
  const ip4 = (x: number) => [...f.subarray(x, x + 4)].join('.');
  if (type === 0x0800 && f.length >= o + 20) {
    const ihl = (f[o]! & 0x0f) * 4;
    const proto = f[o + 9]!;
    const len = f.readUInt16BE(o + 2);
    const l4 = o + ihl;
    let what = `proto ${proto}`;
    if (proto === 1 && f.length >= l4 + 2) {
      const t = f[l4]!;
      what = `ICMP ${t === 8 ? 'echo request' : t === 0 ? 'echo reply' : `type ${t} code ${f[l4 + 1]}`}`;
    } else if ((proto === 6 || proto === 17) && f.length >= l4 + 4) {
      return `${head} IPv4 ${ip4(o + 12)}.${f.readUInt16BE(l4)} > ${ip4(o + 16)}.${f.readUInt16BE(l4 + 2)} ${proto === 6 ? 'TCP' : 'UDP'}, length ${len}`;
    }
    return `${head} IPv4 ${ip4(o + 12)} > ${ip4(o + 16)} ${what}, length ${len}`;
  }
  if (type === 0x0806 && f.length >= o + 28) {
    const op = f.readUInt16BE(o + 6);
    return `${head} ARP ${op === 1 ? `who-has ${ip4(o + 24)} tell ${ip4(o + 14)}` : op === 2 ? `${ip4(o + 14)} is-at ${mac(o + 8)}` : `op ${op}`}`;
  }
  if (type === 0x86dd && f.length >= o + 40) return `${head} IPv6 next header ${f[o + 6]}, length ${f.readUInt16BE(o + 4)}`;
  return `${head} ethertype 0x${type.toString(16).padStart(4, '0')}, length ${f.length}`;
}
