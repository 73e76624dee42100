/**
 * The switch's control socket protocol (`<socketDir>/<npu>.npuctl`, owner-only): JSON
 * lines. The client writes one request per line; the switch answers each with one line,
 * in order: `{"ok":true,"result":...}` or `{"ok":false,"error":{"code","message"}}`.
 *
 * Requests: the four management requests (`"RadixRequest"` -> N, `"DumpRequest"` -> the dump
 * map, `{"TableAdd":{...}}` and `{"TableRemove":{...}}` -> null once applied and saved), plus
 * - `"Stats"` -> {@link SwitchStats};
 * - `"Clear"` -> null, every table emptied;
 * - `{"Inject":{"port":1,"hex":"ffff...","out":false}}` -> null: the frame enters the
 *   pipeline as if received on `port` (`out: true`: sent out of `port` as is);
 * - `{"Capture":{"ports":[0,1]}}` -> `{"ports":[...]}`, then one line per frame seen on those
 *   ports (all ports when omitted) until the client disconnects:
 *   `{"capture":{"port":0,"dir":"rx"|"tx","time":1700000000.123,"hex":"..."}}`. `rx` is a
 *   frame that arrived on the port, `tx` one sent out of it (pipeline port numbers: in
 *   tfports mode port 0 shows the frames with their sidecar header).
 */
import { z } from 'zod';
import { mgmtRequestSchema } from './mgmt.js';

const port = z.number().int().min(0).max(65535);
export const controlRequestSchema = z.union([
  mgmtRequestSchema,
  z.literal('Stats'),
  z.literal('Clear'),
  z.object({ Inject: z.object({ port, hex: z.string().regex(/^([0-9a-fA-F]{2})*$/, 'must be hex bytes'), out: z.boolean().optional() }) }).strict(),
  z.object({ Capture: z.object({ ports: z.array(port).optional() }) }).strict(),
]);
export type ControlRequest = z.infer<typeof controlRequestSchema>;

export type ControlReply = { ok: true; result: unknown } | { ok: false; error: { code: string; message: string } };

/** One captured frame. */
export interface CapturedFrame {
  port: number;
  dir: 'rx' | 'tx';
  /** Seconds since the epoch. */
  time: number;
  hex: string;
}

/** Per-socket counters. */
export interface LinkStats {
  port: number;
  socket: string | null;
  connected: boolean;
  connects: number;
  rxFrames: number;
  rxBytes: number;
  txFrames: number;
  txBytes: number;
  /** Dropped because the socket had more than the cap queued (the guest does not read). */
  dropBackpressure: number;
  /** Dropped because nothing was connected (or nothing is attached to the port). */
  dropDisconnected: number;
  /** Received frames over the size cap. */
  dropOversize: number;
}

/** The `Stats` reply. */
export interface SwitchStats {
  name: string;
  program: string;
  radix: number;
  pid: number;
  uptimeMs: number;
  ports: LinkStats[];
  /** tfports mode: the scrimlet NIC standing for port i is tfports[i-1]. */
  tfports?: LinkStats[];
  pipeline: {
    /** Frames given to processPacket. */
    frames: number;
    /** Frames for which it returned nothing. */
    dropped: number;
    /** processPacket threw. */
    errors: number;
    /** Outputs with a port outside 0..radix, or not a [Buffer, port] pair. */
    badPort: number;
    /** tfports mode: port-0 frames without a usable header (code 1, ingress 1..N). */
    tfportsDropped?: number;
    /** The program's own counters. */
    program: Record<string, number>;
  };
  mgmt?: { connected: boolean; requests: number; malformed: number; errors: number };
}
