/**
 * The control socket's server side: a unix socket (mode 0600) speaking JSON lines (the
 * protocol is in control-protocol.ts). Requests on one connection are answered in order;
 * a Capture turns its connection into a stream of captured frames until it closes.
 */
import { rm } from 'node:fs/promises';
import net from 'node:net';
import { isFalconError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { serveUnix } from './link.js';
import { controlRequestSchema, type CapturedFrame, type ControlReply, type ControlRequest } from './control-protocol.js';

export type ControlHandler = (req: ControlRequest, sink: (f: CapturedFrame) => void) => Promise<unknown>;

/** A capture connection with more than this queued loses frames (a slow reader). */
const CAPTURE_CAP_BYTES = 4 * 1024 * 1024;
const MAX_LINE = 16 * 1024 * 1024;

export class ControlServer {
  private server: net.Server | undefined;
  private readonly conns = new Set<net.Socket>();

  constructor(readonly path: string, private readonly log: Logger, private readonly handler: ControlHandler) {}

  async listen(): Promise<void> {
    this.server = await serveUnix(this.path, (c) => this.serve(c));
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    for (const c of this.conns) c.destroy();
    if (s) await new Promise<void>((r) => s.close(() => r()));
    await rm(this.path, { force: true });
  }

  private serve(c: net.Socket): void {
    this.conns.add(c);
    let buf = '';
    let chain = Promise.resolve();
    let stopCapture: (() => void) | undefined;
    c.setEncoding('utf8');
    c.on('error', () => {});
    c.on('close', () => {
      this.conns.delete(c);
      stopCapture?.();
    });
    c.on('data', (d: string) => {
      buf += d;
      if (buf.length > MAX_LINE) {
        c.destroy();
        return;
      }
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        chain = chain.then(async () => {
          if (c.destroyed) return;
          const reply = await this.answer(line, (f) => {
            if (c.writableLength < CAPTURE_CAP_BYTES) c.write(JSON.stringify({ capture: f }) + '\n');
          });
          if (reply.ok && reply.result && typeof reply.result === 'object' && 'stop' in reply.result) {
            const { stop, ...rest } = reply.result as { stop: () => void };
            stopCapture = stop;
            if (c.destroyed) stop();
            reply.result = rest;
          }
          if (!c.destroyed) c.write(JSON.stringify(reply) + '\n');
        });
      }
    });
  }

  private async answer(line: string, sink: (f: CapturedFrame) => void): Promise<ControlReply> {
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      return { ok: false, error: { code: 'INVALID_ARGUMENT', message: `request is not JSON: ${(e as Error).message}` } };
    }
    const r = controlRequestSchema.safeParse(v);
    if (!r.success) return { ok: false, error: { code: 'INVALID_ARGUMENT', message: `not a control request: ${JSON.stringify(v).slice(0, 200)}` } };
    try {
      return { ok: true, result: (await this.handler(r.data, sink)) ?? null };
    } catch (e) {
      const code = isFalconError(e) ? e.code : 'INTERNAL';
      if (!isFalconError(e)) this.log.log({ kind: 'warn', msg: `control request failed: ${(e as Error).message}` });
      return { ok: false, error: { code, message: (e as Error).message } };
    }
  }
}
