/**
 * The switch layer's public surface (SoftNPU and sidemux), for the runner and the CLI:
 * - {@link switchCommand}: the argv that starts a switch process for a config file;
 * - config.ts: the config file the runner writes;
 * - client.ts: the control socket client (`npu` commands);
 * - encoding.ts: scadm-named entry builders;
 * - pipeline.ts: the program interface, for users writing their own program.
 */
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

export { Switch } from './switch.js';
export type { SwitchOptions } from './switch.js';
export { parseSwitchConfig, readSwitchConfig, switchConfigSchema } from './config.js';
export type { SwitchConfig, SwitchConfigInput } from './config.js';
export { SwitchClient, switchRequest, pcapHeader, pcapRecord } from './client.js';
export type { CapturedFrame, ControlRequest, SwitchStats, LinkStats } from './control-protocol.js';
export * from './encoding.js';
export { dumpTables, Counters } from './pipeline.js';
export { loadPipeline, BUILTIN_PROGRAMS } from './loader.js';
export type { Pipeline, PipelineModule, PacketOut, TableEntryJson } from './pipeline.js';
export type { BuiltinProgram } from './loader.js';
export type { LoadProgramReply, ProgramSource } from './program-load.js';
export type { LoadProgramRequest } from './mgmt.js';
export { ExactTable, LpmTable, RangeTable, TernaryTable, InertTable, TableSet, noParams } from './tables.js';
export { SIDECAR_ETHERTYPE, SIDECAR_HEADER_LEN, SidecarCode, encapsulate, decapsulate, readSidecarHeader } from './sidecar-header.js';
export { SIDECAR_LITE_TABLES } from './programs/sidecar-lite.js';

/**
 * The command that runs a switch for `configFile`: `[node, [args]]`. From sources (.ts) it
 * runs through tsx's loader (resolved from Falcon's own dependencies, so the working
 * directory does not matter); compiled, it runs main.js directly. Spawn it detached with
 * stdio to a log file; it writes its pid into the config's pidFile (JSON `{pid,...}`).
 */
export function switchCommand(configFile: string): { cmd: string; args: string[] } {
  const self = fileURLToPath(import.meta.url);
  const ts = self.endsWith('.ts');
  const main = self.replace(/index\.(ts|js)$/, ts ? 'main.ts' : 'main.js');
  const args = ts ? ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href, main, configFile] : [main, configFile];
  return { cmd: process.execPath, args };
}
