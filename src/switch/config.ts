/**
 * The switch process's config file (JSON), written by the runner at launch and read by
 * main.ts. All paths absolute. Example for a scrimlet with two gimlets:
 *
 * ```json
 * { "version": 1, "name": "scrimlet", "program": "sidecar-lite", "radix": 2,
 *   "ports": ["/run/x/scrimlet.cpu", "/run/x/gc1.nic0", "/run/x/gc2.nic0"],
 *   "cpuPort": "raw",
 *   "mgmtSocket": "/run/x/scrimlet.npumgmt", "controlSocket": "/run/x/scrimlet.npuctl",
 *   "tablesFile": "/topo/.falcon/scrimlet.npu-tables.json", "pidFile": "/topo/.falcon/scrimlet.npu.pid" }
 * ```
 *
 * - `radix` is N, the data ports; the pipeline has N + 1 ports, 0..N.
 * - `ports[i]` is the QEMU-served socket of port i, which the switch connects to (`null`:
 *   nothing attached, its frames are dropped), or `{"serve": path}`: the switch serves that
 *   socket itself, for a port joined to another switch's port (`softnpuLinks(a, b)`: a's
 *   port serves, b's port connects to it). In `cpuPort: "tfports"` mode `ports[0]` is null and `tfports[i-1]` is the
 *   socket of the scrimlet NIC that stands for port i (the switch removes the sidecar header
 *   on the way in, and adds it on the way out).
 * - `mgmtSocket`: the management UART's chardev socket (SoftNPU only).
 * - `tablesFile`: table contents, saved after every change and restored at start.
 * - `pidFile`: the lock that makes this the one switch of that node (JSON with `pid`).
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { FalconError } from '../util/errors.js';

const absPath = z.string().min(1).refine((p) => p.startsWith('/'), 'must be an absolute path');

export const switchConfigSchema = z
  .object({
    version: z.literal(1),
    name: z.string().min(1),
    program: z.string().min(1),
    /** Where a relative program path is resolved (default: the config file's folder). */
    programBaseDir: absPath.optional(),
    radix: z.number().int().min(1).max(65534),
    ports: z.array(z.union([absPath, z.object({ serve: absPath }).strict()]).nullable()),
    cpuPort: z.enum(['raw', 'tfports']).default('raw'),
    tfports: z.array(absPath.nullable()).optional(),
    mgmtSocket: absPath.optional(),
    controlSocket: absPath,
    tablesFile: absPath.optional(),
    pidFile: absPath,
    backpressureBytes: z.number().int().positive().optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.ports.length !== c.radix + 1) ctx.addIssue({ code: 'custom', path: ['ports'], message: `must list radix + 1 = ${c.radix + 1} sockets (port 0..${c.radix}), not ${c.ports.length}` });
    if (c.cpuPort === 'tfports') {
      if (c.ports[0]) ctx.addIssue({ code: 'custom', path: ['ports', 0], message: 'must be null in tfports mode (the tfports stand for the CPU port)' });
      if (c.tfports?.length !== c.radix) ctx.addIssue({ code: 'custom', path: ['tfports'], message: `must list radix = ${c.radix} sockets in tfports mode` });
    }
  });

export type SwitchConfig = z.output<typeof switchConfigSchema>;
export type SwitchConfigInput = z.input<typeof switchConfigSchema>;

/** Validates a config object; NPU_CONFIG names the field. */
export function parseSwitchConfig(v: unknown, source = 'switch config'): SwitchConfig {
  const r = switchConfigSchema.safeParse(v);
  if (!r.success) throw new FalconError('NPU_CONFIG', `${source} is invalid: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  return r.data;
}

/** Reads and validates a config file. */
export async function readSwitchConfig(file: string): Promise<SwitchConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new FalconError('NPU_CONFIG', `switch config ${file} cannot be read (${(e as Error).message}); the runner writes it at launch`, { cause: e });
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new FalconError('NPU_CONFIG', `switch config ${file} is not JSON (${(e as Error).message})`, { cause: e });
  }
  return parseSwitchConfig(v, `switch config ${file}`);
}
