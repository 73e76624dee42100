/**
 * A node's QEMU files as this topology lays them out, and the end of its logs for messages.
 * Starting, stopping and QMP jobs are the host layer's (src/host/qemu-vm.ts).
 */
import type { VmFiles } from '../host/qemu-vm.js';
import { tail } from '../util/fs.js';
import type { FalconPaths } from './paths.js';

/** Where the node's QEMU keeps its pid file, logs and sockets. */
export function vmFiles(paths: FalconPaths, node: string): VmFiles {
  return {
    pidFile: paths.pidFile(node),
    out: paths.out(node),
    err: paths.err(node),
    consoleLog: paths.consoleLog(node),
    qmp: paths.sockets(node).qmp,
    socketDir: paths.socketDir,
  };
}

/** The end of a node's logs, for an error message a user can act on. */
export async function logTails(paths: FalconPaths, node: string, bytes = 1500): Promise<string> {
  const parts: string[] = [];
  const raw = (await tail(paths.consoleLog(node), bytes)).replace(/\r/g, '');
  // Start at a line boundary: a cut line reads as garbage.
  const con = (raw.length >= bytes && raw.includes('\n') ? raw.slice(raw.indexOf('\n') + 1) : raw).trimEnd();
  const err = (await tail(paths.err(node), bytes)).trimEnd();
  if (con) parts.push(`--- last console output (${paths.consoleLog(node)}) ---\n${con}`);
  else parts.push(`--- the console (${paths.consoleLog(node)}) printed nothing ---`);
  if (err) parts.push(`--- QEMU stderr (${paths.err(node)}) ---\n${err}`);
  return parts.join('\n');
}
