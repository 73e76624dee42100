/**
 * `falcon serial NODE`: attach the terminal to a node's serial console. ctrl-q leaves.
 */
import { localConsole, type SerialConsole } from '../runner/serial-console.js';

/** The byte a terminal sends for ctrl-q. */
export const DETACH_KEY = 0x11;

type InputStream = NodeJS.ReadableStream & {
  isTTY?: boolean;
  isRaw?: boolean;
  setRawMode?: (mode: boolean) => unknown;
};

export interface AttachOptions {
  /** Default process.stdin. */
  stdin?: InputStream;
  /** Default process.stdout. */
  stdout?: NodeJS.WritableStream;
  /** Where the attach/leave hints go; default process.stderr. */
  stderr?: NodeJS.WritableStream;
  /** For messages; default from the socket's file name. */
  nodeName?: string;
  /** Detach when it aborts. */
  signal?: AbortSignal;
  /** Detach on SIGTERM/SIGHUP/SIGINT (restoring the terminal). Default true. */
  handleSignals?: boolean;
  /** After stdin ends (piped input), keep showing output this long before leaving. Default 1000 ms. */
  lingerMs?: number;
}

export type DetachReason = 'detach-key' | 'console-closed' | 'stdin-closed' | 'signal' | 'aborted';

/**
 * Attach stdin/stdout to a console (a local console socket, or a SerialConsole) until ctrl-q, the console closing (QEMU exited),
 * stdin ending, a signal or `signal` aborting. Puts a TTY stdin in raw mode and always restores
 * it. Each call is a fresh connection, so it can be called again after it resolves.
 * @throws ConsoleNotRunningError / ConsoleBusyError (from console.ts) before attaching.
 */
export async function attachSerial(target: string | SerialConsole, opts: AttachOptions = {}): Promise<{ reason: DetachReason }> {
  const stdin = opts.stdin ?? (process.stdin as InputStream);
  const stdout = opts.stdout ?? process.stdout;
  const stderr = opts.stderr ?? process.stderr;
  const conn = typeof target === 'string' ? await localConsole(target, { nodeName: opts.nodeName, signal: opts.signal }) : target;
  const node = conn.nodeName;

  const raw = !!stdin.isTTY && typeof stdin.setRawMode === 'function';
  const wasRaw = !!stdin.isRaw;
  stderr.write(`attached to ${node}'s console; ctrl-q leaves (press Enter for a prompt)\n`);
  if (raw) stdin.setRawMode!(true);

  return await new Promise<{ reason: DetachReason }>((resolve) => {
    let done = false;
    let lingerTimer: NodeJS.Timeout | undefined;
    const cleanups: (() => void)[] = [];

    const leave = (reason: DetachReason, note?: string) => {
      if (done) return;
      done = true;
      clearTimeout(lingerTimer);
      for (const c of cleanups) c();
      if (raw) stdin.setRawMode!(wasRaw);
      stdin.pause();
      const msg = note ?? `detached from ${node}'s console`;
      // The guest may have left the cursor mid-line: start the message on a fresh line.
      stderr.write(`\r\n${msg}\n`);
      void conn.close().then(() => resolve({ reason }));
    };

    cleanups.push(
      conn.onData((chunk) => {
        stdout.write(chunk);
      }),
    );

    const onInput = (data: Buffer | string) => {
      const buf = typeof data === 'string' ? Buffer.from(data) : data;
      const at = buf.indexOf(DETACH_KEY);
      if (at < 0) {
        conn.write(buf);
        return;
      }
      if (at > 0) conn.write(buf.subarray(0, at));
      leave('detach-key');
    };
    const onEnd = () => {
      lingerTimer = setTimeout(() => leave('stdin-closed'), opts.lingerMs ?? 1000);
    };
    stdin.on('data', onInput);
    stdin.on('end', onEnd);
    stdin.resume();
    cleanups.push(() => {
      stdin.off('data', onInput);
      stdin.off('end', onEnd);
    });

    cleanups.push(conn.onClose(() => leave('console-closed', `${node}'s console closed (did its VM stop?)`)));

    if (opts.signal) {
      const onAbort = () => leave('aborted');
      if (opts.signal.aborted) return onAbort();
      opts.signal.addEventListener('abort', onAbort, { once: true });
      cleanups.push(() => opts.signal!.removeEventListener('abort', onAbort));
    }
    if (opts.handleSignals ?? true) {
      for (const sig of ['SIGTERM', 'SIGHUP', 'SIGINT'] as const) {
        const h = () => leave('signal', `detached from ${node}'s console (${sig})`);
        process.on(sig, h);
        cleanups.push(() => process.off(sig, h));
      }
    }
  });
}
