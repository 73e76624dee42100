// The manifests of every example topology: golden files compared byte for byte
// (UPDATE_GOLDEN=1 rewrites them), every object valid against Kubernetes' schemas.
import { programFromFile } from '../../src/switch/program-load.ts';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import type { Runner } from '../../src/index.ts';
import { canonicalJson, k8sManifests, k8sPreflight, manifestList, resolveK8sOptions, type K8sBackendOptions } from '../../src/k8s/index.ts';
import type { TopologySpec } from '../../src/model/spec.ts';
import { k8s120Problems, kubernetesModelsProblems } from './k8s-schema.ts';

// The examples end in `await run(d)`: capture the runner instead of running the CLI.
const captured: { runner?: Runner } = {};
vi.mock('../../src/index.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/index.ts')>();
  const capture = async (r: Runner) => {
    captured.runner = r;
    return 'unspec' as const;
  };
  return { ...real, run: capture, runWithExtra: capture };
});

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const goldenDir = path.join(root, 'test/unit/golden/k8s');
const examples = readdirSync(path.join(root, 'examples'))
  .filter((f) => f.endsWith('.ts'))
  .map((f) => f.slice(0, -3))
  .sort();

/** The options of the golden files: a fixed version, so a release does not rewrite them. */
const GOLDEN_OPTIONS: K8sBackendOptions = { version: '0.0.0-golden', imagePullPolicy: 'Never' };

const specs = new Map<string, TopologySpec>();

/** An example's spec (a fresh copy), its host paths (solo's mount) made independent of the checkout's place. */
async function exampleSpec(name: string): Promise<TopologySpec> {
  if (!specs.has(name)) {
    captured.runner = undefined;
    await import(path.join(root, 'examples', `${name}.ts`)); // a module runs once: keep its spec
    const runner = captured.runner as Runner | undefined; // set by the mocked run()
    if (!runner) throw new Error(`examples/${name}.ts did not call run()`);
    const spec = runner.toSpec();
    for (const n of spec.nodes) {
      for (const m of n.mounts) m.source = m.source.replace(root, '/checkout');
      if (n.softnpu?.program.endsWith('.p4')) n.softnpu.program = n.softnpu.program.replace(root, '/checkout');
    }
    specs.set(name, spec);
  }
  return structuredClone(specs.get(name)!);
}

function golden(file: string, text: string): void {
  const p = path.join(goldenDir, file);
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(p)) {
    if (process.env.UPDATE_GOLDEN !== '1' && process.env.CI) throw new Error(`${p} is missing; run UPDATE_GOLDEN=1 npx vitest run --project unit test/unit/k8s-manifests.test.ts`);
    mkdirSync(goldenDir, { recursive: true });
    writeFileSync(p, text);
  }
  // Byte for byte; on a difference, UPDATE_GOLDEN=1 rewrites the file (then review its diff).
  expect(text, `${file} differs: if the change is meant, run UPDATE_GOLDEN=1 and review the diff`).toBe(readFileSync(p, 'utf8'));
}

function schemaProblems(objects: readonly { kind: string; metadata: { name: string } }[], strict120 = true): string[] {
  return objects.flatMap((o) => [...kubernetesModelsProblems(o), ...(strict120 ? k8s120Problems(o) : [])].map((p) => `${o.kind}/${o.metadata.name}: ${p}`));
}

describe('k8s manifests of the examples', () => {
  it('covers every example, the five named ones among them', () => {
    expect(examples).toEqual(expect.arrayContaining(['duo', 'lossy', 'sidecar', 'softnpu', 'solo']));
  });

  for (const name of examples) {
    it(`${name}: golden file, valid against kubernetes-models and Kubernetes 1.20`, async () => {
      const spec = await exampleSpec(name);
      // A P4 file program travels in the ConfigMap, as the runner reads it at launch.
      const p4 = Object.fromEntries(
        spec.nodes.filter((n) => n.softnpu?.program.endsWith('.p4')).map((n) => [n.name, programFromFile(n.softnpu!.program.replace('/checkout', root))]),
      );
      const options = Object.keys(p4).length ? { ...GOLDEN_OPTIONS, p4Programs: p4 } : GOLDEN_OPTIONS;
      const m = k8sManifests(spec, options);
      golden(`${name}.json`, canonicalJson(manifestList(m.objects)));
      expect(schemaProblems(m.objects)).toEqual([]);
      expect(m.objects.map((o) => o.kind)).toEqual(['Namespace', 'ConfigMap', ...spec.nodes.map(() => 'Pod')]);
      expect(k8sPreflight(spec, resolveK8sOptions(spec, options)).problems).toEqual([]);
    }, 30_000); // the first test loads the schemas: slow on a busy machine
  }

  it('duo with KVM, image volumes, overcommit and a pin: golden; valid for kubernetes-models, and 1.20 lacks image volumes', async () => {
    const spec = await exampleSpec('duo');
    const m = k8sManifests(spec, { ...GOLDEN_OPTIONS, kvm: true, baseImages: { from: 'image-volume' }, cpuAllocationRatio: 10, placement: { violin: 'host-a' } });
    golden('duo-kvm-image-volume.json', canonicalJson(manifestList(m.objects)));
    expect(schemaProblems(m.objects, false)).toEqual([]);
    // Image volumes came in Kubernetes 1.31: the strict 1.20 schema says so, field by field.
    expect(m.pods.flatMap((p) => k8s120Problems(p))).toEqual([
      'Pod.spec.volumes[3].image: Kubernetes 1.20 has no such field',
      'Pod.spec.volumes[3].image: Kubernetes 1.20 has no such field',
    ]);
  });

  it('duo from a PVC image store: valid for both', async () => {
    const spec = await exampleSpec('duo');
    const m = k8sManifests(spec, { ...GOLDEN_OPTIONS, baseImages: { from: 'pvc', claimName: 'falcon-images' } });
    expect(schemaProblems(m.objects)).toEqual([]);
    const mounts = m.pods[0]!.spec.containers[0]!.volumeMounts!;
    expect(mounts.find((v) => v.name === 'base-image')).toEqual({ name: 'base-image', mountPath: '/falcon/images/tiny', readOnly: true, subPath: 'tiny' });
    expect(m.pods[0]!.spec.initContainers).toBeUndefined();
  });
});

describe('the validators catch what they should', () => {
  it('a typo, a wrong type and a missing required field', async () => {
    const spec = await exampleSpec('duo');
    const pod = structuredClone(k8sManifests(spec, GOLDEN_OPTIONS).pods[0]!) as unknown as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    pod.spec.restartPolicyy = 'Never';
    pod.spec.containers[0].resources.requests.cpu = 'lots';
    delete pod.spec.containers[0].name;
    pod.spec.terminationGracePeriodSeconds = '30';
    const strict = k8s120Problems(pod as { kind: string });
    expect(strict).toContain('Pod.spec.restartPolicyy: Kubernetes 1.20 has no such field');
    expect(strict).toContain('Pod.spec.containers[0]: the required field name is missing');
    expect(strict).toContain('Pod.spec.terminationGracePeriodSeconds: must be integer, is "30"');
    expect(kubernetesModelsProblems(pod as { kind: string }).join('\n')).toMatch(/requests\/cpu must match format "quantity"/);
  });
});
