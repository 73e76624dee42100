/**
 * Packet capture on a topology's NICs: tcpdump on host interfaces (taps, macvtaps), the
 * switch's capture stream on SoftNPU and sidecar ports. One endpoint gives pcap (or a summary
 * line per frame); every endpoint at once gives one pcapng with an interface per endpoint,
 * named by its altname. It ends on `signal`, `count` or `durationMs`, and returns only once
 * every tcpdump it started has exited and the output is complete.
 */
import { createWriteStream } from 'node:fs';
import type { CaptureEndpoint } from '../model/capture.js';
import { PcapReader, pcapGlobalHeader, pcapRecordOf, pcapngInterface, pcapngPacket, pcapngSectionHeader, summarizeFrame, type PcapPacket } from '../host/pcap.js';
import { runTcpdump } from '../host/tcpdump.js';
import { SwitchClient, type CapturedFrame } from '../switch/index.js';
import { combineSignals } from '../util/abort.js';
import { FalconError } from '../util/errors.js';
import type { RunContext } from './context.js';

export interface CaptureOptions {
  /** Ends the capture (ctrl-c); the capture then resolves normally. */
  signal?: AbortSignal;
  /** Stop after this many frames (all endpoints together). */
  count?: number;
  /** Stop after this long. */
  durationMs?: number;
  /** tcpdump filter words (`icmp`, `host 10.0.0.1`); host interfaces only. */
  filter?: readonly string[];
  /**
   * Where the capture goes: a file path (written 0600), or a function given the bytes as they
   * come. pcap for one endpoint, pcapng for `captureAll`. Without it (one endpoint only), each
   * frame is a summary line given to `onLine`.
   */
  output?: string | ((chunk: Buffer) => void);
  onLine?: (line: string) => void;
  /** Called once every source listens (tcpdump said so; the switch was asked). */
  onReady?: () => void;
}

export interface CaptureResult {
  /** Frames captured. */
  frames: number;
  /** The endpoints captured, by altname. */
  endpoints: string[];
}


/** The longest a capture runs without --duration (the process layer wants a bound). */
const MAX_CAPTURE_MS = 7 * 24 * 3600_000;

interface Sink {
  write(b: Buffer): void;
  close(): Promise<void>;
}

function sinkOf(output: string | ((chunk: Buffer) => void)): Sink {
  if (typeof output === 'function') return { write: output, close: async () => {} };
  const f = createWriteStream(output, { mode: 0o600 });
  let failed: Error | undefined;
  f.on('error', (e) => (failed = e));
  return {
    write: (b) => void f.write(b),
    close: () =>
      new Promise<void>((resolve, reject) =>
        f.end(() => (failed ? reject(new FalconError('INVALID_ARGUMENT', `cannot write the capture to ${output}: ${failed.message}`, { cause: failed })) : resolve())),
      ),
  };
}

const frameOf = (f: CapturedFrame): PcapPacket => {
  const data = Buffer.from(f.hex, 'hex');
  return { timeUs: BigInt(Math.round(f.time * 1e6)), origLen: data.length, data };
};

function timeOfDay(us: bigint): string {
  const d = new Date(Number(us / 1000n));
  return `${d.toISOString().slice(11, 19)}.${String(us % 1_000_000n).padStart(6, '0')}`;
}

/** Streams the frames of the switch ports `ports` of `npu` to `onFrame` until `signal` aborts. */
async function switchFrames(c: RunContext, npu: string, ports: number[], signal: AbortSignal, onFrame: (f: CapturedFrame) => void, onAsked: () => void): Promise<void> {
  const client = await SwitchClient.connect(c.paths.npuSockets(npu).control, { signal });
  const it = client.capture(ports, { signal });
  const first = it.next();
  onAsked();
  let r = await first;
  while (!r.done && !signal.aborted) {
    onFrame(r.value);
    r = await it.next();
  }
  await it.return(undefined);
}

function readiness(n: number, onReady?: () => void): () => void {
  let left = n;
  return () => {
    if (--left === 0) onReady?.();
  };
}

/** Capture one endpoint: pcap to `output`, or summary lines to `onLine`. */
export async function captureOne(c: RunContext, ep: CaptureEndpoint, o: CaptureOptions = {}): Promise<CaptureResult> {
  if (ep.kind === 'switch' && o.filter?.length)
    throw new FalconError('INVALID_ARGUMENT', `a filter (${o.filter.join(' ')}) applies to host interfaces only; ${ep.altname} is port ${ep.port} of the switch of "${ep.npu}": capture it without one`);
  if (!o.output && !o.onLine) throw new FalconError('INVALID_ARGUMENT', 'capture: give an output (file or function) or onLine');
  using stop = combineSignals(o.durationMs, o.signal);
  const sink = o.output ? sinkOf(o.output) : undefined;
  const ready = readiness(1, o.onReady);
  let frames = 0;
  c.log.log({ kind: 'step', level: 'debug', msg: `capturing ${ep.altname} (${ep.kind === 'host' ? ep.ifname : `${ep.npu} port ${ep.port}`})` });
  try {
    if (ep.kind === 'host') {
      const reader = new PcapReader();
      let partial = '';
      await runTcpdump(c.proc, ep.ifname, {
        pcap: !!sink,
        count: o.count,
        filter: o.filter,
        signal: stop.signal,
        timeoutMs: (o.durationMs ?? MAX_CAPTURE_MS) + 30_000,
        onReady: ready,
        onStdout: (chunk) => {
          if (sink) {
            frames += reader.push(chunk).length;
            sink.write(chunk);
            return;
          }
          const lines = (partial + chunk.toString('utf8')).split('\n');
          partial = lines.pop()!;
          for (const l of lines) {
            frames++;
            o.onLine!(l);
          }
        },
      });
    } else {
      sink?.write(pcapGlobalHeader());
      const ac = new AbortController();
      const both = combineSignals(undefined, stop.signal, ac.signal);
      try {
        await switchFrames(c, ep.npu, [ep.port], both.signal, (f) => {
          if (o.count !== undefined && frames >= o.count) return;
          const p = frameOf(f);
          frames++;
          if (sink) sink.write(pcapRecordOf(p));
          else o.onLine!(`${timeOfDay(p.timeUs)} ${f.dir === 'rx' ? 'Out' : 'In '} ${summarizeFrame(p.data)}`);
          if (o.count !== undefined && frames >= o.count) ac.abort();
        }, ready);
      } finally {
        both[Symbol.dispose]();
      }
    }
  } finally {
    await sink?.close();
  }
  return { frames, endpoints: [ep.altname] };
}

/** Feeds one pcapng: each source calls `put(endpoint index, packet)`, and `ready()` once it listens. */
export type PcapngSources = (put: (ifId: number, p: PcapPacket) => void, signal: AbortSignal, ready: () => void) => { sources: number; jobs: Promise<void>[] };

/**
 * Capture `eps` into one pcapng at `output` (one Interface Description Block per endpoint,
 * if_name = its altname, in the order of `eps`), the frames as `start`'s sources give them.
 * One source failing ends the others; all have settled before the output is closed.
 */
export async function captureIntoPcapng(eps: CaptureEndpoint[], o: CaptureOptions & { output: string | ((chunk: Buffer) => void) }, start: PcapngSources): Promise<CaptureResult> {
  if (!eps.length) throw new FalconError('CAPTURE_ENDPOINT', 'the topology has no endpoints to capture (no links)');
  using stop = combineSignals(o.durationMs, o.signal);
  const ac = new AbortController();
  using end = combineSignals(undefined, stop.signal, ac.signal);
  const sink = sinkOf(o.output);
  sink.write(Buffer.concat([pcapngSectionHeader(), ...eps.map((e) => pcapngInterface(e.altname))]));
  let frames = 0;
  const put = (ifId: number, p: PcapPacket) => {
    if (o.count !== undefined && frames >= o.count) return;
    frames++;
    sink.write(pcapngPacket(ifId, p));
    if (o.count !== undefined && frames >= o.count) ac.abort();
  };
  let ready = () => {};
  const { sources, jobs } = start(put, end.signal, () => ready());
  ready = readiness(sources, o.onReady);
  try {
    const results = await Promise.allSettled(jobs.map((j) => j.catch((e: unknown) => (ac.abort(), Promise.reject(e)))));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  } finally {
    ac.abort();
    await sink.close();
  }
  return { frames, endpoints: eps.map((e) => e.altname) };
}

/** Capture every endpoint of this host (tcpdump on taps, the switches' streams) into one pcapng. */
export async function captureAll(c: RunContext, eps: CaptureEndpoint[], o: CaptureOptions & { output: string | ((chunk: Buffer) => void) }): Promise<CaptureResult> {
  c.log.log({ kind: 'step', level: 'debug', msg: `capturing ${eps.length} endpoints` });
  return captureIntoPcapng(eps, o, (put, signal, ready) => {
    const switches = new Map<string, Map<number, number>>();
    eps.forEach((e, i) => {
      if (e.kind === 'switch') (switches.get(e.npu) ?? switches.set(e.npu, new Map()).get(e.npu)!).set(e.port, i);
    });
    const jobs: Promise<void>[] = [];
    eps.forEach((e, i) => {
      if (e.kind !== 'host') return;
      const reader = new PcapReader();
      jobs.push(
        runTcpdump(c.proc, e.ifname, {
          pcap: true,
          filter: o.filter,
          signal,
          timeoutMs: (o.durationMs ?? MAX_CAPTURE_MS) + 30_000,
          onReady: ready,
          onStdout: (chunk) => {
            for (const p of reader.push(chunk)) put(i, p);
          },
        }),
      );
    });
    for (const [npu, ports] of switches) jobs.push(switchFrames(c, npu, [...ports.keys()], signal, (f) => put(ports.get(f.port)!, frameOf(f)), ready));
    return { sources: eps.filter((e) => e.kind === 'host').length + switches.size, jobs };
  });
}
