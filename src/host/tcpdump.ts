/**
 * tcpdump on a host interface, through the process layer (argument arrays, a timeout, an
 * AbortSignal). `--immediate-mode` and `-U` flush the pcap output per packet, so `-w - | wireshark -k -i -` shows
 * each frame as it passes; `-l` does the same for text lines.
 */
import { HostCommandError, type ProcessRunner } from './process.js';

export interface TcpdumpOptions {
  /** pcap on stdout (`-w - -U`); otherwise one text line per packet (`-l`). */
  pcap: boolean;
  /** Stop after this many packets (`-c`). */
  count?: number;
  /** A pcap-filter expression as words (`icmp`, `and`, `host`, `10.0.0.1`). */
  filter?: readonly string[];
}

/** tcpdump's arguments for `ifname`, numeric addresses. */
export function tcpdumpArgs(ifname: string, o: TcpdumpOptions): string[] {
  return [
    '-i',
    ifname,
    '-n',
    // Frames reach us as they pass, not in ring-buffer blocks: a stop loses none, a viewer waits for none.
    '--immediate-mode',
    ...(o.pcap ? ['-U', '-w', '-'] : ['-l']),
    ...(o.count !== undefined ? ['-c', String(o.count)] : []),
    // The filter words after "--", so none is taken for an option.
    ...(o.filter?.length ? ['--', ...o.filter] : []),
  ];
}

export interface RunTcpdumpOptions extends TcpdumpOptions {
  signal: AbortSignal;
  /** Upper bound of the run (the process layer's timeout). */
  timeoutMs: number;
  onStdout: (chunk: Buffer) => void;
  /** Called once tcpdump says it listens. */
  onReady?: () => void;
}

/**
 * Runs tcpdump on `ifname` until it exits (`count` reached) or `signal` aborts (SIGTERM: it
 * flushes and exits). Resolves in both cases, once the process is gone; rejects when tcpdump
 * fails (an interface that does not exist, a bad filter), with its stderr.
 */
export async function runTcpdump(proc: ProcessRunner, ifname: string, o: RunTcpdumpOptions): Promise<void> {
  let err = '';
  let ready = false;
  try {
    await proc.run('tcpdump', tcpdumpArgs(ifname, o), {
      signal: o.signal,
      timeoutMs: o.timeoutMs,
      onStdout: o.onStdout,
      onStderr: (c) => {
        if (ready) return;
        err += c.toString('utf8');
        if (err.includes('listening on')) {
          ready = true;
          o.onReady?.();
        }
      },
    });
  } catch (e) {
    // Ended on purpose (ctrl-c, --duration, --count of a capture of several interfaces).
    if (o.signal.aborted && e instanceof HostCommandError && !e.timedOut) return;
    throw e;
  }
}
