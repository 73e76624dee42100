/**
 * A node's serial console as `serial NODE` attaches to it, whatever the backend: the local
 * console socket, or the console in a pod on a cluster.
 */
import { ConsoleConnection } from '../guest/console.js';

export interface SerialConsole {
  readonly nodeName: string;
  write(b: Buffer): void;
  /** Output as it comes; returns the unsubscribe. */
  onData(cb: (b: Buffer) => void): () => void;
  /** The console went away (QEMU exited, the pod ended); returns the unsubscribe. */
  onClose(cb: () => void): () => void;
  close(): Promise<void>;
}

/** The local console socket as a SerialConsole. */
export async function localConsole(socket: string, o: { nodeName?: string; signal?: AbortSignal } = {}): Promise<SerialConsole> {
  const conn = await ConsoleConnection.connect(socket, { nodeName: o.nodeName, signal: o.signal, buffer: false });
  return {
    nodeName: conn.nodeName,
    write: (b) => void conn.socket.write(b),
    onData: (cb) => conn.onData(cb),
    onClose: (cb) => {
      conn.socket.on('close', cb);
      return () => void conn.socket.off('close', cb);
    },
    close: () => conn.close(),
  };
}
