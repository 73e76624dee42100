/**
 * `falcon-node switch --switch NAME`: a SoftNPU switch (or a sidemux) in its pod, from the
 * same config as on one host, except that each port whose peer is in another pod is served by
 * the switch itself: the helper of that port's tunnel tap connects to it (wiring.ts).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { p4ProgramKey, podWiring, type P4ProgramFiles } from '../k8s/index.js';
import { switchPlans } from '../model/softnpu.js';
import type { TopologySpec } from '../model/spec.js';
import type { FalconPaths } from '../runner/paths.js';
import { switchConfig } from '../runner/switches.js';
import type { SwitchConfigInput } from '../switch/index.js';
import { runSwitchProcess } from '../switch/main.js';
import { FalconError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';

/** The switch's config in its pod (`program`: where a P4 file program was written in the pod). Pure. */
export function podSwitchConfig(spec: TopologySpec, name: string, paths: FalconPaths, program?: string): SwitchConfigInput {
  const plan = switchPlans(spec).find((p) => p.npu === name);
  if (!plan) throw new FalconError('NPU_NOT_A_SWITCH', `topology "${spec.name}" has no switch "${name}"; its switches are ${switchPlans(spec).map((p) => p.npu).join(', ') || '(none)'}`);
  const config = switchConfig(plan, paths);
  const ports = [...config.ports];
  for (const t of podWiring(spec, plan.nodes[0]!).tunnels)
    if (t.attach.kind === 'switch-port' && t.attach.npu === name) ports[t.attach.port] = { serve: paths.npuSockets(name).port(t.attach.port) };
  return { ...config, ports, ...(program ? { program } : {}) };
}

/**
 * A P4 program that came in the ConfigMap (`p4-<npu>.json` beside topology.json), written into
 * the pod's state folder with its includes where the program's `#include "..."` finds them;
 * returns the program's path there. Includes may climb (`../common/h.p4`): the program sits as
 * many folders deep as the deepest climb, so every file stays inside.
 */
export async function writePodP4Program(specFile: string, npu: string, paths: FalconPaths): Promise<string> {
  const key = path.join(path.dirname(specFile), p4ProgramKey(npu));
  const p = JSON.parse(await fs.readFile(key, 'utf8').catch(() => {
    throw new FalconError('NPU_PROGRAM', `the P4 program of switch "${npu}" is not in ${key}: the ConfigMap lacks ${p4ProgramKey(npu)}; launch the topology again`);
  })) as P4ProgramFiles;
  const root = path.join(paths.dir, 'p4', npu);
  const climb = Math.max(0, ...Object.keys(p.files).map((f) => f.split(/[\\/]/).filter((x) => x === '..').length));
  const dir = path.join(root, ...Array.from({ length: climb }, () => 'd'));
  const write = async (rel: string, text: string) => {
    const f = path.resolve(dir, rel);
    if (!f.startsWith(root + path.sep)) throw new FalconError('NPU_PROGRAM', `include ${rel} of P4 program ${p.name} falls outside its folder`);
    await fs.mkdir(path.dirname(f), { recursive: true, mode: 0o700 });
    await writeFileAtomic(f, text);
    return f;
  };
  for (const [rel, text] of Object.entries(p.files)) await write(rel, text);
  return write(p.name, p.source);
}

/** Write the config (and a P4 program from the ConfigMap) and run the switch until SIGTERM; resolves with its exit status. */
export async function runPodSwitch(spec: TopologySpec, specFile: string, name: string, paths: FalconPaths): Promise<number> {
  await fs.mkdir(paths.socketDir, { recursive: true, mode: 0o700 });
  const file = paths.npuFiles(name).config;
  const prog = switchPlans(spec).find((p) => p.npu === name)?.options.program ?? '';
  const program = prog.endsWith('.p4') && path.isAbsolute(prog) ? await writePodP4Program(specFile, name, paths) : undefined;
  await writeFileAtomic(file, JSON.stringify(podSwitchConfig(spec, name, paths, program), null, 2) + '\n');
  return runSwitchProcess(file);
}
