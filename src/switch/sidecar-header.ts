/**
 * THE sidecar header: the one definition shared by the SoftNPU programs (punt to and decap
 * from the CPU port), the switch's `tfports` CPU-port mode and the sidemux program.
 *
 * On the wire it follows the Ethernet header, whose ethertype is then 0x0901:
 *
 * | offset | bytes | field                                   |
 * |--------|-------|-----------------------------------------|
 * | 0      | 1     | code (see {@link SidecarCode})          |
 * | 1      | 1     | pad (0)                                 |
 * | 2      | 2     | ingress port, big-endian                |
 * | 4      | 2     | egress port, big-endian                 |
 * | 6      | 2     | the inner (original) ethertype          |
 * | 8      | 16    | payload (sidecar-lite puts 0x1701d)     |
 *
 * This is sidecar-lite's `sidecar_h` (24 bytes). lifning's original sidemux used 23 bytes
 * without `pad`; we use the current layout everywhere.
 */

/** Ethertype that marks a sidecar header after the Ethernet header. */
export const SIDECAR_ETHERTYPE = 0x0901;
/** Bytes in the sidecar header. */
export const SIDECAR_HEADER_LEN = 24;
/** Bytes of Ethernet header before it (dst, src, ethertype). */
export const ETH_HEADER_LEN = 14;
/** A frame shorter than this cannot carry a sidecar header. */
export const SIDECAR_MIN_FRAME = ETH_HEADER_LEN + SIDECAR_HEADER_LEN;

/** Header codes, as dendrite's sidecar.p4 names them. */
export const SidecarCode = {
  /** From the control plane (scrimlet, driver) to the switch: send out of `egress`. */
  ForwardFromUserspace: 0x00,
  /** From the switch to the control plane: this arrived on `ingress`. */
  ForwardToUserspace: 0x01,
  IcmpNeeded: 0x02,
  ArpNeeded: 0x03,
  NeighborNeeded: 0x04,
} as const;

/** sidecar-lite's `sc_payload = 128w0x1701d`, big-endian. */
export const SIDECAR_LITE_PAYLOAD: Readonly<Uint8Array> = (() => {
  const p = new Uint8Array(16);
  p[13] = 0x01;
  p[14] = 0x70;
  p[15] = 0x1d;
  return p;
})();

/** The header's fields, decoded. */
export interface SidecarHeader {
  code: number;
  ingress: number;
  egress: number;
  /** The inner frame's ethertype (restored on decapsulation). */
  etherType: number;
  /** 16 bytes. */
  payload: Uint8Array;
}

const ZERO_PAYLOAD = new Uint8Array(16);

/**
 * Inserts a sidecar header after the Ethernet header of `frame`: a new buffer, 24 bytes
 * longer, ethertype 0x0901, the frame's ethertype moved into the header. Everything after the
 * ethertype (a VLAN tag included) follows the header unchanged. `frame` must be >= 14 bytes.
 */
export function encapsulate(
  frame: Uint8Array,
  h: { code: number; ingress: number; egress: number; payload?: Uint8Array },
): Buffer {
  const out = Buffer.allocUnsafe(frame.length + SIDECAR_HEADER_LEN);
  out.set(frame.subarray(0, 12), 0);
  out[12] = SIDECAR_ETHERTYPE >> 8;
  out[13] = SIDECAR_ETHERTYPE & 0xff;
  out[14] = h.code & 0xff;
  out[15] = 0;
  out.writeUInt16BE(h.ingress & 0xffff, 16);
  out.writeUInt16BE(h.egress & 0xffff, 18);
  out[20] = frame[12]!;
  out[21] = frame[13]!;
  out.set(h.payload ?? ZERO_PAYLOAD, 22);
  out.set(frame.subarray(ETH_HEADER_LEN), SIDECAR_MIN_FRAME);
  return out;
}

/** Reads the header of a 0x0901 frame, or undefined when the frame is too short or not 0x0901. */
export function readSidecarHeader(frame: Uint8Array): SidecarHeader | undefined {
  if (frame.length < SIDECAR_MIN_FRAME || frame[12] !== SIDECAR_ETHERTYPE >> 8 || frame[13] !== (SIDECAR_ETHERTYPE & 0xff)) return undefined;
  return {
    code: frame[14]!,
    ingress: (frame[16]! << 8) | frame[17]!,
    egress: (frame[18]! << 8) | frame[19]!,
    etherType: (frame[20]! << 8) | frame[21]!,
    payload: frame.subarray(22, SIDECAR_MIN_FRAME),
  };
}

/**
 * Removes the sidecar header of a 0x0901 frame (checked by the caller): a new buffer, 24
 * bytes shorter, with the inner ethertype restored.
 */
export function decapsulate(frame: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(frame.length - SIDECAR_HEADER_LEN);
  out.set(frame.subarray(0, 12), 0);
  out[12] = frame[20]!;
  out[13] = frame[21]!;
  out.set(frame.subarray(SIDECAR_MIN_FRAME), ETH_HEADER_LEN);
  return out;
}
