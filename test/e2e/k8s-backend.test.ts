/**
 * The Kubernetes backend on the real two-host test cluster (test/k8s), with the falcon-node
 * image and the tiny base image built and imported as a user would: the duo through the
 * topology program's CLI (`launch --backend k8s --kubeconfig K`, later commands without a flag),
 * a 6-node ring through the API with its pods on both hosts, and the softnpu example with gc1
 * and gc2 on different hosts pinging through the switch in the scrimlet's pod. Each ends with a
 * destroy that leaves no namespace, pod or falcon dir behind. Prints what it cost.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubernetes, mb, type Runner, type TopologyInfo } from '../../src/index.js';
import { startCluster, type Cluster } from '../k8s/cluster.js';
import { loadFalconImages } from '../k8s/falcon-images.js';
import { newRunner, tempDir } from './helpers.js';

const NAME = 'falcon-k8s-be';
const repo = path.resolve(__dirname, '../..');

/**
 * `npx tsx examples/<example>.ts ARGS` as a user runs it. Asynchronous: a synchronous spawn
 * blocks the test worker for minutes, and vitest's own RPC then times out.
 */
function topo(example: string, args: string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npx', ['tsx', `examples/${example}.ts`, ...args], { cwd: repo, env: { ...process.env, FALCON_LOG: 'warn' } });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}

async function ok(p: ReturnType<typeof topo>): Promise<string> {
  const r = await p;
  if (r.code !== 0) throw new Error(`exit ${r.code}\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

describe.skipIf(process.env.FALCON_TEST_K8S === '0')('the Kubernetes backend on the two-host test cluster', () => {
  let c: Cluster;
  const cost: Record<string, string> = {};

  async function namespaces(): Promise<string[]> {
    const r = await c.kubectlRun(['get', 'namespaces', '-o', 'jsonpath={.items[*].metadata.name}']);
    return r.stdout.split(/\s+/).filter(Boolean);
  }

  beforeAll(async () => {
    c = await startCluster({ name: NAME, replace: true, log: (l) => console.log(`k8s: ${l}`) });
    cost['cluster start'] = `${(c.timings.totalMs / 1000).toFixed(1)} s`;
    const img = await loadFalconImages(c, ['tiny'], (l) => console.log(`k8s: ${l}`));
    cost['falcon-node + tiny images built/exported and imported'] = `${(img.ms / 1000).toFixed(1)} s`;
  }, 60 * 60_000);

  afterAll(async () => {
    if (!c) return;
    const r = await c.stop();
    console.log(`k8s backend e2e cost: ${Object.entries(cost).map(([k, v]) => `${k}: ${v}`).join('; ')}; teardown ${(r.ms / 1000).toFixed(1)} s, left: ${r.leftovers.join(', ') || 'nothing'}`);
    expect(r.leftovers).toEqual([]);
  }, 10 * 60_000);

  it('duo through the CLI: launch --backend k8s, exec status and stderr, ping, serial, hyperstop/hyperstart, a deleted pod recovered by hyperstart, destroy', async () => {
    const dir = tempDir('k8s-duo');
    const F = ['--falcon-dir', path.join(dir, '.falcon')];
    const t0 = Date.now();
    await ok(topo('duo', ['launch', ...F, '--backend', 'k8s', '--kubeconfig', c.kubeconfig]));
    cost['duo launch'] = `${((Date.now() - t0) / 1000).toFixed(1)} s`;
    const rec = JSON.parse(readFileSync(path.join(dir, '.falcon', 'backend.json'), 'utf8')) as { kind: string; namespace: string; server: string };
    expect(rec).toMatchObject({ kind: 'k8s', namespace: 'falcon-duo', server: c.server });

    // Later commands find the cluster in .falcon/backend.json.
    const info = JSON.parse(await ok(topo('duo', ['info', ...F, '--json']))) as TopologyInfo;
    expect(info.backend?.pods.map((p) => [p.node, p.phase, p.supervisor])).toEqual([['violin', 'Running', 'ready'], ['piano', 'Running', 'ready']]);
    expect(info.links[0]!.a.ifname).toBe('falcon-duo/violin:nic0');

    const failing = await topo('duo', ['exec', ...F, 'violin', 'echo out; echo oops >&2; exit 3']);
    expect([failing.code, failing.stdout.trim(), failing.stderr.trim()]).toEqual([3, 'out', 'oops']);

    await ok(topo('duo', ['exec', ...F, 'violin', 'ip link set eth0 up && ip addr add 10.9.0.1/24 dev eth0']));
    await ok(topo('duo', ['exec', ...F, 'piano', 'ip link set eth0 up && ip addr add 10.9.0.2/24 dev eth0']));
    expect(await ok(topo('duo', ['exec', ...F, 'violin', 'ping -c 2 -W 3 10.9.0.2']))).toMatch(/2 packets received/);

    const serial = await topo('duo', ['serial', ...F, 'violin'], '\necho serial-$((6*7))\n');
    expect(serial.stdout).toContain('serial-42');

    await ok(topo('duo', ['hyperstop', ...F, 'piano']));
    const stopped = JSON.parse(await ok(topo('duo', ['info', ...F, '--json']))) as TopologyInfo;
    expect(stopped.nodes.map((n) => n.status)).toEqual(['running', 'stopped']);
    await ok(topo('duo', ['hyperstart', ...F, 'piano']));
    await ok(topo('duo', ['exec', ...F, 'piano', 'ip link set eth0 up && ip addr add 10.9.0.2/24 dev eth0']));
    expect(await ok(topo('duo', ['exec', ...F, 'piano', 'ping -c 2 -W 3 10.9.0.1']))).toMatch(/2 packets received/);

    // The pod goes away under the running topology: info sees it, hyperstart makes it again.
    const tDel = Date.now();
    const del = await c.kubectlRun(['-n', 'falcon-duo', 'delete', 'pod', 'piano', '--wait=true'], { timeoutMs: 180_000 });
    cost['pod deletion (kubectl delete --wait)'] = `${((Date.now() - tDel) / 1000).toFixed(1)} s`;
    expect(del.code).toBe(0);
    const gone = JSON.parse(await ok(topo('duo', ['info', ...F, '--json']))) as TopologyInfo;
    expect(gone.nodes.find((n) => n.name === 'piano')!.status).toBe('pod gone');
    const down = await topo('duo', ['exec', ...F, 'piano', 'true']);
    expect(down.code).not.toBe(0);
    expect(down.stderr).toMatch(/no pod .*hyperstart piano/);
    await ok(topo('duo', ['hyperstart', ...F, 'piano']));
    await ok(topo('duo', ['exec', ...F, 'piano', 'ip link set eth0 up && ip addr add 10.9.0.2/24 dev eth0']));
    expect(await ok(topo('duo', ['exec', ...F, 'piano', 'ping -c 2 -W 3 10.9.0.1']))).toMatch(/2 packets received/);

    await ok(topo('duo', ['destroy', ...F]));
    expect(await namespaces()).not.toContain('falcon-duo');
    expect(existsSync(path.join(dir, '.falcon'))).toBe(false);
  });

  it('a 6-node ring through the API: pods on both hosts, a ping over every link, 8 concurrent execs, destroy', async () => {
    const dir = tempDir('k8s-ring');
    const [h1, h2] = c.hosts.map((h) => h.name) as [string, string];
    const names = ['r0', 'r1', 'r2', 'r3', 'r4', 'r5'];
    // Every other node on the other host: every link crosses the underlay.
    const placement = Object.fromEntries(names.map((n, i) => [n, i % 2 ? h2 : h1]));
    const d: Runner = newRunner('ring', dir, { backend: kubernetes({ kubeconfig: c.kubeconfig, placement }) });
    const nodes = names.map((n) => d.node(n, 'tiny', 1, mb(256)));
    for (let i = 0; i < 6; i++) d.link(nodes[i]!, nodes[(i + 1) % 6]!);
    try {
      const t0 = Date.now();
      await d.launch();
      cost['6-node ring launch'] = `${((Date.now() - t0) / 1000).toFixed(1)} s`;
      const info = await d.info();
      expect(new Set(info.backend!.pods.map((p) => p.host))).toEqual(new Set([h1, h2]));
      // Link i joins r<i> (NIC 1, its second link... declared order) and r<i+1>: address each end on 10.8.i.0/24.
      for (let i = 0; i < 6; i++) {
        const l = info.links[i]!;
        await d.succeed(l.a.node, `ip link set eth${l.a.index} up && ip addr add 10.8.${i}.1/24 dev eth${l.a.index}`);
        await d.succeed(l.b!.node, `ip link set eth${l.b!.index} up && ip addr add 10.8.${i}.2/24 dev eth${l.b!.index}`);
      }
      for (let i = 0; i < 6; i++) {
        const r = await d.exec(info.links[i]!.a.node, `ping -c 2 -W 3 10.8.${i}.2`);
        expect(r.stdout, `link ${i}`).toMatch(/2 packets received/);
      }
      const many = await Promise.all(Array.from({ length: 8 }, (_, k) => d.exec(names[k % 6]!, `echo exec-${k}; exit ${k}`)));
      expect(many.map((r) => [r.stdout.trim(), r.exitCode])).toEqual(Array.from({ length: 8 }, (_, k) => [`exec-${k}`, k]));
    } finally {
      await d.destroy();
    }
    expect(await namespaces()).not.toContain('falcon-ring');
    expect(existsSync(d.paths.dir)).toBe(false);
  });

  it('the softnpu example with gc1 and gc2 on different hosts: gc1 pings gc2 through the switch programmed over ttyS3, destroy', async () => {
    const dir = tempDir('k8s-softnpu');
    const F = ['--falcon-dir', path.join(dir, '.falcon')];
    const [h1, h2] = c.hosts.map((h) => h.name) as [string, string];
    await ok(topo('softnpu', ['launch', ...F, '--backend', 'k8s', '--kubeconfig', c.kubeconfig, '--placement', `gc1=${h1}`, '--placement', `gc2=${h2}`]));
    const info = JSON.parse(await ok(topo('softnpu', ['info', ...F, '--json']))) as TopologyInfo;
    const hostOf = Object.fromEntries(info.backend!.pods.map((p) => [p.node, p.host]));
    expect([hostOf.gc1, hostOf.gc2]).toEqual([h1, h2]);
    expect(info.switches.map((s) => [s.node, s.status])).toEqual([['scrimlet', 'running']]);
    const demo = await ok(topo('softnpu', ['demo', ...F]));
    expect(demo).toMatch(/3 packets transmitted, 3 packets received/);
    await ok(topo('softnpu', ['destroy', ...F]));
    expect(await namespaces()).not.toContain('falcon-softnpu');
  });
});
