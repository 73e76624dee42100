import { expect } from 'vitest';
import { isFalconError } from '../../src/util/errors.js';
/** Frame builders shared by the switch unit tests (not a test file). */

export const mac = (s: string) => Buffer.from(s.split(':').map((x) => parseInt(x, 16)));
export const ip4 = (s: string) => Buffer.from(s.split('.').map(Number));

export function eth(dst: string, src: string, type: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(14);
  mac(dst).copy(h, 0);
  mac(src).copy(h, 6);
  h.writeUInt16BE(type, 12);
  return Buffer.concat([h, payload]);
}

/** An IPv4 ICMP echo request (20-byte header, TTL `ttl`, checksum left as given). */
export function ipv4Icmp(src: string, dst: string, ttl = 64): Buffer {
  const b = Buffer.alloc(20 + 8 + 8);
  b[0] = 0x45;
  b.writeUInt16BE(b.length, 2);
  b[8] = ttl;
  b[9] = 1;
  b.writeUInt16BE(0xbeef, 10);
  ip4(src).copy(b, 12);
  ip4(dst).copy(b, 16);
  b[20] = 8; // echo request
  b.fill(0xab, 28);
  return b;
}

/** An IPv6 ICMPv6 echo request, hop limit `hops`. */
export function ipv6Icmp(src: Buffer, dst: Buffer, hops = 64): Buffer {
  const b = Buffer.alloc(40 + 8);
  b[0] = 0x60;
  b.writeUInt16BE(8, 4);
  b[6] = 58;
  b[7] = hops;
  src.copy(b, 8);
  dst.copy(b, 24);
  b[40] = 128;
  return b;
}

/** An ARP body (Ethernet/IPv4). */
export function arpBody(op: number, smac: string, sip: string, tmac: string, tip: string): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt16BE(1, 0);
  b.writeUInt16BE(0x0800, 2);
  b[4] = 6;
  b[5] = 4;
  b.writeUInt16BE(op, 6);
  mac(smac).copy(b, 8);
  ip4(sip).copy(b, 14);
  mac(tmac).copy(b, 18);
  ip4(tip).copy(b, 24);
  return b;
}

/** An ARP request who-has `target` from (smac, sip), broadcast. */
export function arpRequest(smac: string, sip: string, target: string): Buffer {
  return eth(BCAST, smac, 0x0806, arpBody(1, smac, sip, '00:00:00:00:00:00', target));
}

/** Asserts that each function throws a FalconError with `code`. */
export function expectFalconCode(code: string, ...fns: (() => unknown)[]): void {
  for (const f of fns) {
    let thrown: unknown;
    try {
      f();
    } catch (e) {
      thrown = e;
    }
    expect(isFalconError(thrown) && thrown.code).toBe(code);
  }
}

export const BCAST = 'ff:ff:ff:ff:ff:ff';
