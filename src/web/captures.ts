/**
 * Captures started from the page: each writes a pcap into the server's own temporary folder
 * (0700) until its duration passes or the user stops it; then the page downloads the file. The
 * folder and every running capture go when the server closes.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { CaptureOptions, CaptureResult } from '../runner/capture.js';
import type { Logger } from '../util/log.js';
import { WebRequestError } from './errors.js';

export interface CaptureSession {
  id: string;
  endpoint: string;
  state: 'running' | 'done' | 'failed';
  startedAt: string;
  endedAt?: string;
  /** Frames captured (known once it ended). */
  frames?: number;
  /** The pcap's size once it ended. */
  bytes?: number;
  error?: string;
}

export type CaptureFn = (endpoint: string, opts: CaptureOptions) => Promise<CaptureResult>;

interface Running {
  session: CaptureSession;
  file: string;
  stop: AbortController;
  done: Promise<void>;
}

/** How long a capture may take to start listening before the request gives up waiting. */
const READY_TIMEOUT_MS = 20_000;

export class CaptureSessions {
  private readonly all = new Map<string, Running>();
  private dir: string | undefined;
  private next = 1;

  constructor(
    private readonly capture: CaptureFn,
    private readonly log: Logger,
  ) {}

  private async folder(): Promise<string> {
    // mkdtemp makes it 0700: the captures are the topology's traffic.
    this.dir ??= await mkdtemp(path.join(os.tmpdir(), 'falcon-web-'));
    return this.dir;
  }

  /**
   * Start capturing `endpoint` (`node:index` or an altname) into a pcap; resolves once the
   * capture listens (or has already ended or failed).
   */
  async start(endpoint: string, o: { durationMs?: number; filter?: string[] } = {}): Promise<CaptureSession> {
    const id = String(this.next++);
    const file = path.join(await this.folder(), `${id}.pcap`);
    const session: CaptureSession = { id, endpoint, state: 'running', startedAt: new Date().toISOString() };
    const stop = new AbortController();
    let onReady!: () => void;
    const ready = new Promise<void>((r) => (onReady = r));
    const done = this.capture(endpoint, { output: file, durationMs: o.durationMs, filter: o.filter, signal: stop.signal, onReady }).then(
      async (r) => {
        session.state = 'done';
        session.frames = r.frames;
        session.bytes = (await stat(file).catch(() => undefined))?.size ?? 0;
      },
      (e: unknown) => {
        session.state = 'failed';
        session.error = (e as Error)?.message ?? String(e);
      },
    ).finally(() => {
      session.endedAt = new Date().toISOString();
      this.log.log({ kind: 'step', level: 'debug', msg: `web: capture ${id} of ${endpoint} ${session.state}${session.frames !== undefined ? ` (${session.frames} frames)` : ''}` });
    });
    this.all.set(id, { session, file, stop, done });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([ready, done, new Promise<void>((r) => (timer = setTimeout(r, READY_TIMEOUT_MS)))]);
    clearTimeout(timer);
    // A capture that failed at once (an unknown endpoint) is the request's error.
    if (session.state === 'failed') {
      this.all.delete(id);
      throw new WebRequestError(400, `capture of ${endpoint} failed: ${session.error}`);
    }
    return { ...session };
  }

  private get(id: string): Running {
    const r = this.all.get(id);
    if (!r) throw new WebRequestError(404, `there is no capture ${id}; the captures are: ${[...this.all.keys()].join(', ') || '(none)'}`);
    return r;
  }

  /** Stop a running capture; resolves once its file is complete. */
  async stop(id: string): Promise<CaptureSession> {
    const r = this.get(id);
    r.stop.abort();
    await r.done;
    return { ...r.session };
  }

  list(): CaptureSession[] {
    return [...this.all.values()].map((r) => ({ ...r.session }));
  }

  /** The pcap of an ended capture. */
  file(id: string): { path: string; session: CaptureSession } {
    const r = this.get(id);
    if (r.session.state === 'running') throw new WebRequestError(409, `capture ${id} of ${r.session.endpoint} is still running; stop it first`);
    if (r.session.state === 'failed') throw new WebRequestError(409, `capture ${id} of ${r.session.endpoint} failed (${r.session.error}); it has no file`);
    return { path: r.file, session: { ...r.session } };
  }

  /** Stop every capture and remove the files. */
  async close(): Promise<void> {
    for (const r of this.all.values()) r.stop.abort();
    await Promise.all([...this.all.values()].map((r) => r.done));
    this.all.clear();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
    this.dir = undefined;
  }
}
