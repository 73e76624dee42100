/**
 * The management protocol of SoftNPU (as propolis serves it on the scrimlet's fourth UART,
 * ttyS3 in a Linux guest): requests are the byte 0xE5, a JSON value, then `\n`:
 *
 * - `"RadixRequest"`: reply the number of data ports N in decimal, then `\n`;
 * - `"DumpRequest"`: reply the bare JSON map `{table: [{action_id, keyset_data,
 *   parameter_data}]}` (every table, empty ones too), then `\n`;
 * - `{"TableAdd":{"table","action","keyset_data":[u8],"parameter_data":[u8]}}`: no reply;
 * - `{"TableRemove":{"table","keyset_data":[u8]}}`: no reply;
 * - `{"LoadProgram":{"name":"x.p4","source"|"source_b64","files"?}}` (Falcon's, as scadm's
 *   load-program): the switch compiles the P4 program and swaps it in; reply one JSON line,
 *   `{"ok":true,"program","tables":{"kept","dropped"}}` or `{"ok":false,"program","errors":[...]}`
 *   (program-load.ts).
 *
 * {@link MgmtReader} turns the UART's byte stream into requests: it splits on `\n`, drops
 * `\r` and `\0`, ignores lines without the preamble (the guest tty's echo of our replies,
 * boot noise) and reports malformed requests so they can be logged and skipped.
 * The same request shapes are used by the control socket (see control.ts).
 */
import { z } from 'zod';
import { dumpTables, type Pipeline } from './pipeline.js';
import { FalconError } from '../util/errors.js';

/** The byte that starts a request. */
export const MGMT_PREAMBLE = 0xe5;
/** Longer lines are dropped (a dump request of a big table set fits easily). */
export const MGMT_MAX_LINE = 1 << 20;

const bytes = z.array(z.number().int().min(0).max(255));
const tableAdd = z.object({ table: z.string(), action: z.string(), keyset_data: bytes, parameter_data: bytes, priority: z.number().int().optional() });
const tableRemove = z.object({ table: z.string(), keyset_data: bytes });
/** LoadProgram's body: the program's file name, its source (text or base64), and its own includes. */
export const loadProgramSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.-]+\.p4$/, 'must be a file name ending in .p4'),
    source: z.string().optional(),
    /** The source as base64: easy to send from a shell (`base64 -w0 prog.p4`). */
    source_b64: z.string().regex(/^[A-Za-z0-9+/=\s]*$/, 'must be base64').optional(),
    /** Included files by their path relative to the program (`"headers.p4"`, `"../common/h.p4"`). */
    files: z.record(z.string()).optional(),
  })
  .strict()
  .refine((v) => (v.source === undefined) !== (v.source_b64 === undefined), 'give the source in exactly one of source and source_b64');
export type LoadProgramRequest = z.infer<typeof loadProgramSchema>;

export const mgmtRequestSchema = z.union([
  z.literal('RadixRequest'),
  z.literal('DumpRequest'),
  z.object({ TableAdd: tableAdd }).strict(),
  z.object({ TableRemove: tableRemove }).strict(),
  z.object({ LoadProgram: loadProgramSchema }).strict(),
]);
export type MgmtRequest = z.infer<typeof mgmtRequestSchema>;

/** Parses one request's JSON text; throws a readable NPU_CONTROL error when it is not one. */
export function parseMgmtRequest(text: string): MgmtRequest {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new FalconError('NPU_CONTROL', `not JSON (${(e as Error).message})`);
  }
  const r = mgmtRequestSchema.safeParse(v);
  if (!r.success) throw new FalconError('NPU_CONTROL', `not a management request (${r.error.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`).join('; ')})`);
  return r.data;
}

/** Splits the UART byte stream into requests. */
export class MgmtReader {
  private buf = Buffer.alloc(4096);
  private len = 0;
  private overlong = false;

  constructor(
    private readonly onRequest: (r: MgmtRequest) => void,
    private readonly onMalformed: (line: string, reason: string) => void,
  ) {}

  push(chunk: Uint8Array): void {
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (b === 0x0a) {
        this.line();
        continue;
      }
      if (b === 0x0d || b === 0x00 || this.overlong) continue;
      if (this.len === MGMT_MAX_LINE) {
        this.overlong = true;
        continue;
      }
      if (this.len === this.buf.length) {
        const bigger = Buffer.alloc(Math.min(MGMT_MAX_LINE, this.buf.length * 2));
        this.buf.copy(bigger);
        this.buf = bigger;
      }
      this.buf[this.len++] = b;
    }
  }

  /** Forgets a partial line (the UART reconnected: the guest side restarted). */
  reset(): void {
    this.len = 0;
    this.overlong = false;
  }

  private line(): void {
    const line = this.buf.subarray(0, this.len);
    const overlong = this.overlong;
    this.len = 0;
    this.overlong = false;
    const at = line.indexOf(MGMT_PREAMBLE);
    if (at < 0) return; // echo or noise
    if (overlong) {
      this.onMalformed(line.subarray(at + 1, at + 81).toString('utf8'), `longer than ${MGMT_MAX_LINE} bytes`);
      return;
    }
    const text = line.subarray(at + 1).toString('utf8');
    let req: MgmtRequest;
    try {
      req = parseMgmtRequest(text);
    } catch (e) {
      this.onMalformed(text.length > 200 ? `${text.slice(0, 200)}...` : text, (e as Error).message);
      return;
    }
    this.onRequest(req);
  }
}

/** What a request did: the reply to send (if any) and whether the tables changed. */
export interface MgmtOutcome {
  reply?: string;
  changed: boolean;
}

/**
 * Applies a request to the pipeline. `dataPorts` is N (radix - 1). Table errors are thrown
 * (callers log them for the UART and return them on the control socket).
 */
export function applyMgmtRequest(p: Pipeline, dataPorts: number, req: MgmtRequest): MgmtOutcome {
  if (req === 'RadixRequest') return { reply: `${dataPorts}\n`, changed: false };
  if (req === 'DumpRequest') return { reply: `${JSON.stringify(dumpTables(p))}\n`, changed: false };
  if ('TableAdd' in req) {
    const a = req.TableAdd;
    p.tableAdd(a.table, a.action, Uint8Array.from(a.keyset_data), Uint8Array.from(a.parameter_data), a.priority);
    return { changed: true };
  }
  if ('LoadProgram' in req) throw new FalconError('INTERNAL', 'LoadProgram is the switch\'s to handle, not the pipeline\'s');
  const r = req.TableRemove;
  p.tableRemove(r.table, Uint8Array.from(r.keyset_data));
  return { changed: true };
}
