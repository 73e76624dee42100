/**
 * `falcon-node switch --switch NAME`: a SoftNPU switch (or a sidemux) in its pod, from the
 * same config as on one host, except that each port whose peer is in another pod is served by
 * the switch itself: the helper of that port's tunnel tap connects to it (wiring.ts).
 */
import { promises as fs } from 'node:fs';
import { podWiring } from '../k8s/index.js';
import { switchPlans } from '../model/softnpu.js';
import type { TopologySpec } from '../model/spec.js';
import type { FalconPaths } from '../runner/paths.js';
import { switchConfig } from '../runner/switches.js';
import type { SwitchConfigInput } from '../switch/index.js';
import { runSwitchProcess } from '../switch/main.js';
import { FalconError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';

/** The switch's config in its pod. Pure. */
export function podSwitchConfig(spec: TopologySpec, name: string, paths: FalconPaths): SwitchConfigInput {
  const plan = switchPlans(spec).find((p) => p.npu === name);
  if (!plan) throw new FalconError('NPU_NOT_A_SWITCH', `topology "${spec.name}" has no switch "${name}"; its switches are ${switchPlans(spec).map((p) => p.npu).join(', ') || '(none)'}`);
  const config = switchConfig(plan, paths);
  const ports = [...config.ports];
  for (const t of podWiring(spec, plan.nodes[0]!).tunnels)
    if (t.attach.kind === 'switch-port' && t.attach.npu === name) ports[t.attach.port] = { serve: paths.npuSockets(name).port(t.attach.port) };
  return { ...config, ports };
}

/** Write the config and run the switch until SIGTERM; resolves with its exit status. */
export async function runPodSwitch(spec: TopologySpec, name: string, paths: FalconPaths): Promise<number> {
  await fs.mkdir(paths.socketDir, { recursive: true, mode: 0o700 });
  const file = paths.npuFiles(name).config;
  await writeFileAtomic(file, JSON.stringify(podSwitchConfig(spec, name, paths), null, 2) + '\n');
  return runSwitchProcess(file);
}
