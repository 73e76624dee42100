import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';

/** Unix socket paths are limited to 107 bytes; leave room for the longest suffix. */
const SOCKET_PATH_MAX = 100;
/** The longest suffix after a node name (32 characters at most): a sidemux's control socket. */
const LONGEST_SOCKET_SUFFIX = '.sidemux.npuctl';

/** The falcon dir's name, as upstream's `DEFAULT_FALCON_DIR`; Falcon puts it beside the topology program unless told otherwise. */
export const DEFAULT_FALCON_DIR = '.falcon';

/** Where a topology keeps its state: `.falcon/` beside the program, or wherever the user says. */
export class FalconPaths {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = path.resolve(dir);
  }
  get topologyFile(): string {
    return path.join(this.dir, 'topology.json');
  }
  get stateFile(): string {
    return path.join(this.dir, 'state.json');
  }
  get lockFile(): string {
    return path.join(this.dir, 'lock');
  }
  /** QEMU's serial console log, written by QEMU itself. */
  consoleLog(node: string): string {
    return path.join(this.dir, `${node}.console.log`);
  }
  /** QEMU's stdout and stderr, as the original's `<node>.out` and `<node>.err`. */
  out(node: string): string {
    return path.join(this.dir, `${node}.out`);
  }
  err(node: string): string {
    return path.join(this.dir, `${node}.err`);
  }
  pidFile(node: string): string {
    return path.join(this.dir, `${node}.pid`);
  }
  uefiVars(node: string): string {
    return path.join(this.dir, `${node}.uefi-vars.fd`);
  }
  /**
   * Sockets live in `.falcon/sock` unless that path is too long for a Unix socket; then in a
   * short folder under the temp dir named after a hash of the falcon dir, so every command
   * derives the same place.
   */
  get socketDir(): string {
    const inside = path.join(this.dir, 'sock');
    if (Buffer.byteLength(inside) + 1 + 32 + LONGEST_SOCKET_SUFFIX.length <= SOCKET_PATH_MAX) return inside;
    const h = createHash('sha256').update(this.dir).digest('hex').slice(0, 16);
    return path.join(os.tmpdir(), `falcon-${h}`);
  }
  /** A node's NIC on a switch port, served by its QEMU (`-netdev stream`). */
  nicSocket(node: string, index: number): string {
    return path.join(this.socketDir, `${node}.nic${index}`);
  }
  /** The sockets of an npu's switch: its management UART (QEMU serves), its control socket, and a port it serves for another switch. */
  npuSockets(npu: string): { mgmt: string; control: string; port: (p: number) => string } {
    const d = this.socketDir;
    return { mgmt: path.join(d, `${npu}.npumgmt`), control: path.join(d, `${npu}.npuctl`), port: (p) => path.join(d, `${npu}.port${p}`) };
  }
  /** The files of an npu's switch process in the falcon dir. */
  npuFiles(npu: string): { config: string; log: string; pidFile: string; tables: string; program: string } {
    const f = (s: string) => path.join(this.dir, `${npu}.${s}`);
    // program: the P4 program loaded last (LoadProgram), which the switch runs again on restart.
    return { config: f('npu.json'), log: f('switch.log'), pidFile: f('npu.pid'), tables: f('npu-tables.json'), program: f('npu-program.json') };
  }
  sockets(node: string): { qmp: string; console: string; exec: string } {
    const d = this.socketDir;
    return { qmp: path.join(d, `${node}.qmp`), console: path.join(d, `${node}.console`), exec: path.join(d, `${node}.exec`) };
  }
}
