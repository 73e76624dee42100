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
import { kubernetes, mb, type ImpairStatus, type Runner, type TopologyGraph, type TopologyInfo } from '../../src/index.js';
import { startCluster, type Cluster } from '../k8s/cluster.js';
import { loadFalconImages } from '../k8s/falcon-images.js';
import { newRunner, tempDir } from './helpers.js';
import { startWebServer } from '../../src/web/index.js';
import { readPcapng } from '../../src/host/pcap.js';
import WebSocket from 'ws';

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

/** The smallest RTT busybox ping printed (`time=301.2 ms`). */
function minRttMs(out: string): number {
  const rtts = [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  if (!rtts.length) throw new Error(`no RTT in ping's output:\n${out}`);
  return Math.min(...rtts);
}

/** Types a command on a node's console through the web view's websocket; resolves with what came back. */
function webConsoleEcho(port: number, token: string, node: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/console/${node}?token=${token}`);
    let out = '';
    const timer = setTimeout(() => (ws.close(), reject(new Error(`no echo on ${node}'s web console; it printed: ${out.slice(-500)}`))), 60_000);
    ws.on('message', (data, binary) => {
      if (!binary) {
        const st = JSON.parse(data.toString()) as { state: string };
        if (st.state === 'attached') ws.send(Buffer.from('\necho web-$((6*7))\n'), { binary: true });
        return;
      }
      out += data.toString();
      if (out.includes('web-42\r\n') || /web-42\s/.test(out.replace(/echo web-\$\(\(6\*7\)\)/g, ''))) {
        clearTimeout(timer);
        ws.close();
        resolve(out);
      }
    });
    ws.on('error', reject);
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

  it('duo through the CLI: launch --backend k8s, exec status and stderr, ping, impair, capture, graph, serial, hyperstop/hyperstart, a deleted pod recovered by hyperstart, destroy', async () => {
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

    // impair: the helper in violin's pod delays both directions; --show reports it and counts.
    await ok(topo('duo', ['impair', ...F, 'violin--piano', '--delay', '150ms']));
    const slow = await ok(topo('duo', ['exec', ...F, 'violin', 'ping -c 3 -W 3 10.9.0.2']));
    expect(minRttMs(slow)).toBeGreaterThanOrEqual(300);
    const [shown] = JSON.parse(await ok(topo('duo', ['impair', ...F, '--show', '--json']))) as ImpairStatus[];
    expect(shown).toMatchObject({ link: 'violin:0--piano:0', source: 'runtime', path: 'userspace', helperTaps: { ab: 'falcon-duo/violin:iab0', ba: 'falcon-duo/violin:iba0' } });
    expect(shown!.helperPid).toBeGreaterThan(0);
    expect(shown!.directions.map((d) => [d.text, (d.stats?.tx ?? 0) >= 3])).toEqual([['delay 150ms', true], ['delay 150ms', true]]);
    const impairedInfo = JSON.parse(await ok(topo('duo', ['info', ...F, '--json']))) as TopologyInfo;
    expect(impairedInfo.links[0]!.impairment).toEqual({ ab: { delayMs: 150 }, ba: { delayMs: 150 } });
    await ok(topo('duo', ['impair', ...F, 'violin--piano', '--clear']));
    expect(minRttMs(await ok(topo('duo', ['exec', ...F, 'violin', 'ping -c 3 -W 3 10.9.0.2'])))).toBeLessThan(150);
    expect((JSON.parse(await ok(topo('duo', ['impair', ...F, '--show', '--json']))) as ImpairStatus[])[0]!.helperPid).toBeUndefined();

    // capture: tcpdump on violin's tap in its pod, a summary line per frame.
    const cap = topo('duo', ['capture', ...F, 'violin:0', '--count', '4', 'icmp']);
    await ok(topo('duo', ['exec', ...F, 'violin', 'ping -c 12 -i 0.5 -W 3 10.9.0.2']));
    const lines = (await ok(cap)).trim().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines.filter((l) => /10\.9\.0\.1 > 10\.9\.0\.2 .*ICMP echo request/.test(l)).length).toBeGreaterThanOrEqual(1);
    expect(lines.filter((l) => /10\.9\.0\.2 > 10\.9\.0\.1 .*ICMP echo reply/.test(l)).length).toBeGreaterThanOrEqual(1);

    // graph: the pods' interfaces on the links, the nodes' status.
    const graph = JSON.parse(await ok(topo('duo', ['graph', ...F, '--format', 'json']))) as TopologyGraph;
    expect(graph.nodes.filter((n) => n.kind === 'node').map((n) => [n.name, n.status])).toEqual([['violin', 'running'], ['piano', 'running']]);
    expect(JSON.stringify(graph.edges)).toContain('falcon-duo/violin:nic0');

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

  it('a 6-node ring through the API: pods on both hosts, a ping over every link, 8 concurrent execs, capture --all, the web view and a web console, destroy', async () => {
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
        // Six TCG guests on two cores: an ARP and the first reply may take seconds.
        const r = await d.exec(info.links[i]!.a.node, `ping -c 3 -W 5 10.8.${i}.2`);
        expect(r.stdout, `link ${i}`).toMatch(/3 packets transmitted, [1-3] packets received/);
      }
      const many = await Promise.all(Array.from({ length: 8 }, (_, k) => d.exec(names[k % 6]!, `echo exec-${k}; exit ${k}`)));
      expect(many.map((r) => [r.stdout.trim(), r.exitCode])).toEqual(Array.from({ length: 8 }, (_, k) => [`exec-${k}`, k]));

      // capture --all: a tcpdump in every pod, one pcapng with an interface per NIC.
      const file = path.join(dir, 'all.pcapng');
      const ac = new AbortController();
      let listening!: () => void;
      const ready = new Promise<void>((r) => (listening = r));
      const capturing = d.captureAll({ output: file, signal: ac.signal, onReady: listening, filter: ['icmp'] });
      await ready;
      await d.succeed(info.links[0]!.a.node, 'ping -c 2 -W 3 10.8.0.2');
      ac.abort();
      const all = await capturing;
      expect(all.endpoints).toHaveLength(12);
      const ng = readPcapng(readFileSync(file));
      const ifOf = (altname: string) => ng.interfaces.findIndex((x) => x.name === altname);
      for (const end of [info.links[0]!.a, info.links[0]!.b!]) {
        const types = ng.packets.filter((p) => p.ifId === ifOf(end.altname)).map((p) => p.data[34]);
        expect(types, end.altname).toEqual(expect.arrayContaining([8, 0]));
      }

      // The web view of a cluster topology: its live view, and a node's console through its pod.
      const web = await startWebServer(d, { port: 0 });
      try {
        const view = (await (await fetch(`http://127.0.0.1:${web.port}/api/view?token=${web.token}`)).json()) as { info: TopologyInfo };
        expect(view.info.nodes.map((n) => n.status)).toEqual(names.map(() => 'running'));
        expect(await webConsoleEcho(web.port, web.token, 'r3')).toContain('web-42');
      } finally {
        await web.close();
      }
    } finally {
      await d.destroy();
    }
    expect(await namespaces()).not.toContain('falcon-ring');
    expect(existsSync(d.paths.dir)).toBe(false);
  });

  it("the p4-router example: its P4 program travels in the ConfigMap and runs in the scrimlet's pod; demo pings through it; destroy", async () => {
    const dir = tempDir('k8s-p4');
    const F = ['--falcon-dir', path.join(dir, '.falcon')];
    await ok(topo('p4-router', ['launch', ...F, '--backend', 'k8s', '--kubeconfig', c.kubeconfig]));
    const info = JSON.parse(await ok(topo('p4-router', ['info', ...F, '--json']))) as TopologyInfo;
    expect(info.switches.map((s) => [s.program.endsWith('examples/p4/router.p4'), s.status])).toEqual([[true, 'running']]);
    expect(await ok(topo('p4-router', ['demo', ...F]))).toMatch(/3 packets transmitted, 3 packets received/);
    await ok(topo('p4-router', ['destroy', ...F]));
    expect(await namespaces()).not.toContain('falcon-p4router');
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
