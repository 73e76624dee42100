/**
 * The switch: one process per SoftNPU (or sidemux) node, running a pipeline program over
 * ports that are QEMU-served stream sockets.
 *
 * Data plane: each port's socket is read in chunks; frames are cut out in place
 * (framing.ts), given to `processPacket`, and the outputs are batched per egress port and
 * written once per input chunk. A port whose socket has more than the cap queued drops
 * (counted). In `tfports` mode port 0 has no socket: its output is split by the sidecar
 * header's ingress port onto the scrimlet's per-port NICs (header removed), and frames from
 * those NICs get a header (code 0, egress = that port) before entering the pipeline at 0.
 *
 * Control plane: the management UART (mgmt.ts), the control socket (control-server.ts),
 * tables saved after every change and restored at start (table-store.ts), and a pid-file
 * lock so there is one switch per node.
 *
 * Library use: `const s = new Switch(config, { log }); await s.start(); ...; await s.stop();`
 * main.ts wraps this as a process.
 */
import { FalconError } from '../util/errors.js';
import { acquireLock } from '../util/lock.js';
import type { Logger } from '../util/log.js';
import type { SwitchConfig } from './config.js';
import { ControlServer } from './control-server.js';
import type { CapturedFrame, ControlRequest, LinkStats, SwitchStats } from './control-protocol.js';
import { FrameBatch, FrameReader } from './framing.js';
import { ReconnectingSocket, ServedSocket, type LinkOptions, type PortSocket } from './link.js';
import { MgmtReader, applyMgmtRequest, type LoadProgramRequest, type MgmtRequest } from './mgmt.js';
import type { LoadProgramReply } from './program-load.js';
import { dumpTables, type Pipeline } from './pipeline.js';
import { loadPipeline } from './loader.js';
import { SIDECAR_MIN_FRAME, SidecarCode, decapsulate, encapsulate } from './sidecar-header.js';
import { TableSaver, readSavedTables, restoreTables } from './table-store.js';
import { existsSync } from 'node:fs';
import path from 'node:path';

export interface SwitchOptions {
  log: Logger;
  /** Use this pipeline instead of loading `config.program` (tests, embedding). */
  pipeline?: Pipeline;
}

class Endpoint {
  readonly stats: LinkStats;
  readonly batch = new FrameBatch();
  link: PortSocket | undefined;
  reader: FrameReader;
  constructor(port: number, socket: string | null, onFrame: (f: Buffer) => void) {
    this.stats = { port, socket, connected: false, connects: 0, rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0, dropBackpressure: 0, dropDisconnected: 0, dropOversize: 0 };
    this.reader = new FrameReader(onFrame);
  }
  snapshot(): LinkStats {
    return { ...this.stats, connected: this.link?.connected ?? false, connects: this.link?.connects ?? 0, dropOversize: this.reader.oversized };
  }
}

type CaptureSink = (f: CapturedFrame) => void;

export class Switch {
  private pipeline!: Pipeline;
  private readonly ports: Endpoint[] = [];
  private readonly tfports: Endpoint[] = [];
  /** Endpoints with frames batched during the current chunk. */
  private readonly dirty: Endpoint[] = [];
  private mgmt: ReconnectingSocket | undefined;
  private readonly mgmtStats = { requests: 0, malformed: 0, errors: 0 };
  private readonly pstats = { frames: 0, dropped: 0, errors: 0, badPort: 0, tfportsDropped: 0 };
  private control: ControlServer | undefined;
  private saver: TableSaver | undefined;
  private releaseLock: (() => Promise<void>) | undefined;
  private readonly captures = new Set<{ ports: Set<number> | undefined; sink: CaptureSink }>();
  private captureAny = false;
  private started = 0;
  /** The program running now: the configured one, or the name of the one loaded last. */
  private programName: string;
  private readonly log: Logger;
  private readonly tfportsMode: boolean;

  constructor(readonly config: SwitchConfig, private readonly opts: SwitchOptions) {
    this.log = opts.log;
    this.tfportsMode = config.cpuPort === 'tfports';
    this.programName = config.program;
  }

  /** Where a loaded program is kept across restarts: beside the tables. */
  private get programFile(): string | undefined {
    const t = this.config.tablesFile;
    return t ? t.replace(/(\.npu-tables)?\.json$/, '.npu-program.json') : undefined;
  }

  /** The pipeline at start: the program loaded last (saved), else the configured one. */
  private async initialPipeline(): Promise<Pipeline> {
    const c = this.config;
    if (this.opts.pipeline) return this.opts.pipeline;
    // The P4 compiler is loaded only when a program was loaded before (most switches never are).
    const pl = this.programFile && existsSync(this.programFile) ? await import('./program-load.js') : undefined;
    const saved = pl && this.programFile ? await pl.readSavedProgram(this.programFile) : undefined;
    if (pl && saved) {
      try {
        const p = pl.compileLoaded(saved, this.portCount);
        this.programName = saved.name;
        this.log.log({ kind: 'step', msg: `${c.name}: running ${saved.name}, the program loaded last (${this.programFile})` });
        return p;
      } catch (e) {
        this.log.log({ kind: 'warn', msg: `${c.name}: the program loaded last (${saved.name}) does not compile any more, running ${c.program}: ${(e as Error).message}` });
      }
    }
    return loadPipeline(c.program, this.portCount, c.programBaseDir ?? path.dirname(c.pidFile));
  }

  /**
   * LoadProgram: compile, move the tables over, swap between two frames (this process is
   * single-threaded), save it for restarts. A program that does not compile changes nothing.
   */
  async loadProgram(r: LoadProgramRequest): Promise<LoadProgramReply> {
    const pl = await import('./program-load.js');
    const prog = pl.programOfRequest(r);
    let next: Pipeline;
    try {
      next = pl.compileLoaded(prog, this.portCount);
    } catch (e) {
      const errors = pl.compileErrors(e);
      this.log.log({ kind: 'warn', msg: `${this.config.name}: program ${prog.name} refused, ${this.programName} keeps running: ${errors.join(' | ')}` });
      return { ok: false, program: prog.name, errors };
    }
    const tables = pl.moveTables(this.pipeline, next);
    this.pipeline = next;
    this.programName = prog.name;
    if (this.programFile) await pl.saveProgram(this.programFile, prog);
    if (this.config.tablesFile) this.saver = new TableSaver(this.config.tablesFile, prog.name, next);
    await this.persist().catch(() => {});
    this.log.log({ kind: 'step', msg: `${this.config.name}: now running ${prog.name} (tables: ${tables.kept} entries kept, ${tables.dropped} dropped)` });
    return { ok: true, program: prog.name, tables };
  }

  /** Number of pipeline ports (radix + 1). */
  get portCount(): number {
    return this.config.radix + 1;
  }

  /**
   * Takes the pid lock, loads the program, restores the tables, connects, serves control.
   * Another process holding the lock fails this with LOCK_BUSY; within one process a second
   * Switch for the same pid file waits for the first to stop (util/lock queues in-process).
   */
  async start(): Promise<void> {
    const c = this.config;
    this.releaseLock = await acquireLock(c.pidFile, { what: `the switch of ${c.name}`, waitMs: 0, purpose: 'switch' });
    try {
      this.pipeline = await this.initialPipeline();
      if (c.tablesFile) {
        const saved = await readSavedTables(c.tablesFile);
        if (saved) {
          const refused = restoreTables(this.pipeline, saved, this.log);
          this.log.log({ kind: 'step', msg: `${c.name}: restored tables from ${c.tablesFile}${refused ? ` (${refused} entries refused)` : ''}` });
        }
        this.saver = new TableSaver(c.tablesFile, this.programName, this.pipeline);
      }
      const cap = c.backpressureBytes;
      for (let i = 0; i < this.portCount; i++) {
        const spec = c.ports[i] ?? null;
        const sock = typeof spec === 'string' ? spec : (spec?.serve ?? null);
        const ep = new Endpoint(i, sock, (f) => this.ingress(i, f));
        if (spec) {
          const o: LinkOptions = { what: `${c.name} port ${i}`, log: this.log, capBytes: cap, onData: (d) => this.onChunk(ep, d), onDisconnect: () => ep.reader.reset() };
          if (typeof spec === 'string') ep.link = new ReconnectingSocket(spec, o);
          else {
            const served = new ServedSocket(spec.serve, o);
            await served.listen();
            ep.link = served;
          }
        }
        this.ports.push(ep);
      }
      if (this.tfportsMode) {
        for (let i = 1; i < this.portCount; i++) {
          const sock = c.tfports?.[i - 1] ?? null;
          const ep = new Endpoint(i, sock, (f) => this.fromTfport(i, f));
          if (sock) ep.link = new ReconnectingSocket(sock, { what: `${c.name} tfport ${i}`, log: this.log, capBytes: cap, onData: (d) => this.onChunk(ep, d), onDisconnect: () => ep.reader.reset() });
          this.tfports.push(ep);
        }
      }
      if (c.mgmtSocket) {
        const reader = new MgmtReader(
          (r) => this.onMgmtRequest(r),
          (line, reason) => {
            this.mgmtStats.malformed++;
            this.log.log({ kind: 'warn', msg: `${c.name} management UART: skipped a malformed request (${reason}): ${line}` });
          },
        );
        this.mgmt = new ReconnectingSocket(c.mgmtSocket, { what: `${c.name} management UART`, log: this.log, onData: (d) => reader.push(d), onDisconnect: () => reader.reset() });
      }
      this.control = new ControlServer(c.controlSocket, this.log, (req, sink) => this.handle(req, sink));
      await this.control.listen();
      this.started = Date.now();
      for (const ep of [...this.ports, ...this.tfports]) ep.link?.start();
      this.mgmt?.start();
      this.log.log({ kind: 'step', msg: `${c.name}: switch running program ${c.program} with ${c.radix} data ports (pid ${process.pid})` });
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  /** Closes every socket, waits for the last table save, releases the lock. */
  async stop(): Promise<void> {
    await this.control?.close();
    await Promise.all([...this.ports, ...this.tfports].map((ep) => ep.link?.stop()));
    await this.mgmt?.stop();
    await this.saver?.save().catch((e: unknown) => this.log.log({ kind: 'warn', msg: `saving the tables failed: ${(e as Error).message}` }));
    await this.releaseLock?.();
    this.releaseLock = undefined;
  }

  // ---- data plane ----

  private onChunk(ep: Endpoint, chunk: Buffer): void {
    ep.reader.push(chunk);
    this.flush();
  }

  private ingress(port: number, frame: Buffer): void {
    const ep = this.ports[port]!;
    ep.stats.rxFrames++;
    ep.stats.rxBytes += frame.length;
    if (this.captureAny) this.capture(port, 'rx', frame);
    this.process(port, frame);
  }

  private process(port: number, frame: Buffer): void {
    this.pstats.frames++;
    let outs;
    try {
      outs = this.pipeline.processPacket(port, frame);
      if (!Array.isArray(outs)) throw new FalconError('NPU_PROGRAM', `processPacket returned ${typeof outs}, not an array of [frame, port]`);
    } catch (e) {
      this.pstats.errors++;
      if (this.pstats.errors <= 10) this.log.log({ kind: 'warn', msg: `${this.config.name}: the program threw on a frame from port ${port}: ${(e as Error).message}` });
      return;
    }
    if (outs.length === 0) {
      this.pstats.dropped++;
      return;
    }
    for (let i = 0; i < outs.length; i++) {
      const o = outs[i];
      if (Array.isArray(o) && Buffer.isBuffer(o[0])) this.egress(o[1], o[0]);
      else this.pstats.badPort++;
    }
  }

  private egress(port: number, frame: Buffer): void {
    const ep = this.ports[port];
    if (!ep || !Number.isInteger(port)) {
      this.pstats.badPort++;
      return;
    }
    if (this.captureAny) this.capture(port, 'tx', frame);
    if (port === 0 && this.tfportsMode) {
      this.toTfport(frame);
      return;
    }
    this.queue(ep, frame);
  }

  private queue(ep: Endpoint, frame: Buffer): void {
    if (!ep.link) {
      ep.stats.dropDisconnected++;
      return;
    }
    if (ep.batch.count === 0) this.dirty.push(ep);
    ep.batch.add(frame);
  }

  private flush(): void {
    const dirty = this.dirty;
    for (let i = 0; i < dirty.length; i++) {
      const ep = dirty[i]!;
      const n = ep.batch.count;
      const buf = ep.batch.take();
      if (ep.link!.write(buf)) {
        ep.stats.txFrames += n;
        ep.stats.txBytes += buf.length - 4 * n;
      } else if (ep.link!.connected) ep.stats.dropBackpressure += n;
      else ep.stats.dropDisconnected += n;
    }
    dirty.length = 0;
  }

  /** tfports: a port-0 frame from the pipeline to the scrimlet NIC of its ingress port. */
  private toTfport(frame: Buffer): void {
    const ingress = frame.length >= SIDECAR_MIN_FRAME && frame[12] === 0x09 && frame[13] === 0x01 && frame[14] === SidecarCode.ForwardToUserspace ? (frame[16]! << 8) | frame[17]! : 0;
    const ep = ingress >= 1 ? this.tfports[ingress - 1] : undefined;
    if (!ep) {
      this.pstats.tfportsDropped++;
      return;
    }
    this.queue(ep, decapsulate(frame));
  }

  /** tfports: a frame the scrimlet sent on the NIC of port p enters the pipeline at 0, for p. */
  private fromTfport(p: number, frame: Buffer): void {
    const ep = this.tfports[p - 1]!;
    ep.stats.rxFrames++;
    ep.stats.rxBytes += frame.length;
    if (frame.length < 14) {
      this.pstats.tfportsDropped++;
      return;
    }
    const enc = encapsulate(frame, { code: SidecarCode.ForwardFromUserspace, ingress: 0, egress: p });
    if (this.captureAny) this.capture(0, 'rx', enc);
    this.process(0, enc);
  }

  private capture(port: number, dir: 'rx' | 'tx', frame: Buffer): void {
    let rec: CapturedFrame | undefined;
    for (const c of this.captures) {
      if (c.ports && !c.ports.has(port)) continue;
      rec ??= { port, dir, time: Date.now() / 1000, hex: frame.toString('hex') };
      c.sink(rec);
    }
  }

  // ---- control plane ----

  private onMgmtRequest(r: MgmtRequest): void {
    this.mgmtStats.requests++;
    if (typeof r === 'object' && 'LoadProgram' in r) {
      void this.loadProgram(r.LoadProgram).then(
        (reply) => this.mgmt?.write(Buffer.from(JSON.stringify(reply) + '\n')),
        (e: unknown) => {
          this.mgmtStats.errors++;
          this.log.log({ kind: 'warn', msg: `${this.config.name} management UART: LoadProgram failed: ${(e as Error).message}` });
        },
      );
      return;
    }
    try {
      const out = applyMgmtRequest(this.pipeline, this.config.radix, r);
      if (out.reply !== undefined) this.mgmt?.write(Buffer.from(out.reply));
      if (out.changed) this.persist();
    } catch (e) {
      this.mgmtStats.errors++;
      this.log.log({ kind: 'warn', msg: `${this.config.name} management UART: request refused: ${(e as Error).message}` });
    }
  }

  private persist(): Promise<void> {
    return (
      this.saver?.save().catch((e: unknown) => {
        this.log.log({ kind: 'warn', msg: `${this.config.name}: saving the tables to ${this.config.tablesFile} failed: ${(e as Error).message}` });
        throw e;
      }) ?? Promise.resolve()
    );
  }

  /** Answers a control request (the control socket calls this). */
  async handle(req: ControlRequest, sink?: CaptureSink): Promise<unknown> {
    if (req === 'Stats') return this.stats();
    if (req === 'Clear') {
      for (const t of this.pipeline.tableIds()) for (const e of this.pipeline.tableEntries(t) ?? []) this.pipeline.tableRemove(t, Uint8Array.from(e.keyset_data));
      await this.persist();
      return null;
    }
    if (typeof req === 'object' && 'Inject' in req) {
      const { port, hex, out } = req.Inject;
      if (port >= this.portCount) throw new FalconError('INVALID_ARGUMENT', `port ${port} does not exist on ${this.config.name}; its ports are 0..${this.config.radix}`);
      const frame = Buffer.from(hex, 'hex');
      if (out) this.egress(port, frame);
      else {
        if (this.captureAny) this.capture(port, 'rx', frame);
        this.process(port, frame);
      }
      this.flush();
      return null;
    }
    if (typeof req === 'object' && 'Capture' in req) {
      if (!sink) throw new FalconError('INVALID_ARGUMENT', 'Capture needs a connection to stream frames to');
      const ports = req.Capture.ports;
      const entry = { ports: ports ? new Set(ports) : undefined, sink };
      this.captures.add(entry);
      this.captureAny = true;
      return { ports: ports ?? [...this.ports.keys()], stop: () => this.stopCapture(entry) };
    }
    if (typeof req === 'object' && 'LoadProgram' in req) return this.loadProgram(req.LoadProgram);
    const out = applyMgmtRequest(this.pipeline, this.config.radix, req);
    if (out.changed) await this.persist();
    if (req === 'RadixRequest') return this.config.radix;
    if (req === 'DumpRequest') return dumpTables(this.pipeline);
    return null;
  }

  private stopCapture(entry: { ports: Set<number> | undefined; sink: CaptureSink }): void {
    this.captures.delete(entry);
    this.captureAny = this.captures.size > 0;
  }

  stats(): SwitchStats {
    return {
      name: this.config.name,
      program: this.programName,
      radix: this.config.radix,
      pid: process.pid,
      uptimeMs: this.started ? Date.now() - this.started : 0,
      ports: this.ports.map((p) => p.snapshot()),
      ...(this.tfportsMode ? { tfports: this.tfports.map((p) => p.snapshot()) } : {}),
      pipeline: {
        frames: this.pstats.frames,
        dropped: this.pstats.dropped,
        errors: this.pstats.errors,
        badPort: this.pstats.badPort,
        ...(this.tfportsMode ? { tfportsDropped: this.pstats.tfportsDropped } : {}),
        program: this.pipeline.counters?.() ?? {},
      },
      ...(this.mgmt ? { mgmt: { connected: this.mgmt.connected, ...this.mgmtStats } } : {}),
    };
  }
}
