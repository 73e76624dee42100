// The k8s backend's pure parts on the runner side: the peer maps each pod is given, the
// falcon-node argument lists, pod views and exit codes from the API's objects, exec frames,
// supervisor requests, the launch flags, and .falcon/backend.json.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { backendOf, parsePlacement } from '../../src/cli/commands/launch.ts';
import { encodeFrame, encodeResultFrame, FrameDecoder, FRAME_STDERR, FRAME_STDOUT, parsePodRequest, peerMaps, tunnelNeighbours } from '../../src/k8s/index.ts';
import { Topology } from '../../src/model/topology.ts';
import { k8sPreflight, resolveK8sOptions } from '../../src/k8s/index.ts';
import { writePodP4Program } from '../../src/pod/switch.ts';
import { exitCodeOf, podFailure, podView } from '../../src/runner/k8s/api.ts';
import { backendByName, readBackendRecord, writeBackendRecord, type BackendRecord } from '../../src/runner/k8s/backend.ts';
import { ctlArgv, guestExecArgv } from '../../src/runner/k8s/pod-exec.ts';
import { FalconPaths } from '../../src/runner/paths.ts';

function softnpu() {
  const d = new Topology('softnpu');
  const s = d.node('scrimlet', 'tiny', 1, 256);
  const g1 = d.node('gc1', 'tiny', 1, 256);
  const g2 = d.node('gc2', 'tiny', 1, 256);
  d.softnpuLink(s, g1, '02:00:00:00:01:02');
  d.softnpuLink(s, g2, '02:00:00:00:02:02');
  d.softnpu(s, { program: 'sidecar-lite', cpuPort: 'raw' });
  return d.toSpec();
}

describe('peer maps', () => {
  it('each pod gets the IP of the pod at its links\' other end', () => {
    const ips = new Map([['scrimlet', '10.244.1.5'], ['gc1', '10.244.1.6'], ['gc2', '10.244.2.2']]);
    expect(Object.fromEntries(peerMaps(softnpu(), ips))).toEqual({
      scrimlet: { 0: '10.244.1.6', 1: '10.244.2.2' },
      gc1: { 0: '10.244.1.5' },
      gc2: { 1: '10.244.1.5' },
    });
  });
  it('a link whose other pod has no IP yet is left out on both sides', () => {
    expect(Object.fromEntries(peerMaps(softnpu(), new Map([['scrimlet', '10.0.0.1'], ['gc1', '10.0.0.2']])))).toEqual({ scrimlet: { 0: '10.0.0.2' }, gc1: { 0: '10.0.0.1' } });
  });
  it('a remade pod re-points its neighbours', () => {
    expect(tunnelNeighbours(softnpu(), 'scrimlet')).toEqual(['gc1', 'gc2']);
    expect(tunnelNeighbours(softnpu(), 'gc2')).toEqual(['scrimlet']);
  });
});

describe('falcon-node arguments', () => {
  it('ctl and exec', () => {
    expect(ctlArgv({ op: 'peers', peers: { 0: '10.0.0.2' } })).toEqual(['falcon-node', 'ctl', 'peers', '--body', '{"peers":{"0":"10.0.0.2"}}']);
    expect(ctlArgv({ op: 'impair', link: 1, config: null })).toEqual(['falcon-node', 'ctl', 'impair', '--body', '{"link":1,"config":null}']);
    expect(ctlArgv({ op: 'stop' })).toEqual(['falcon-node', 'ctl', 'stop']);
    expect(guestExecArgv('violin', 'echo "a b"; exit 3', { timeoutMs: 5000, stdinBytes: 4, env: { A: '1' } })).toEqual([
      'falcon-node', 'exec', '--node', 'violin', '--timeout-ms', '5000', '--stdin-bytes', '4', '--env-json', '{"A":"1"}', '--', 'echo "a b"; exit 3',
    ]);
  });
  it('a supervisor request is checked', () => {
    expect(parsePodRequest('{"op":"status"}')).toEqual({ op: 'status' });
    expect(() => parsePodRequest('{"op":"explode"}')).toThrow(/unknown request .*the ops are/);
    expect(() => parsePodRequest('{"op":"peers","peers":{"0":"; rm -rf /"}}')).toThrow(/peers takes/);
    expect(parsePodRequest('{"op":"impair","link":2,"config":"ab delay_ms=5 limit=1000\\n"}')).toEqual({ op: 'impair', link: 2, config: 'ab delay_ms=5 limit=1000\n' });
    expect(() => parsePodRequest('{"op":"impair","link":-1,"config":null}')).toThrow(/impair takes/);
    expect(() => parsePodRequest('{"op":"impair","link":0,"config":7}')).toThrow(/impair takes/);
  });
});

describe('pod views and exit codes', () => {
  const pod = {
    metadata: { name: 'gc1', namespace: 'falcon-softnpu', uid: 'u1', annotations: { 'falcon.oxide/node-name': 'gc1', 'falcon.oxide/spec-sha256': 'abc' } },
    spec: { nodeName: 'h2', containers: [] },
    status: {
      phase: 'Pending',
      podIP: '10.244.2.2',
      conditions: [{ type: 'Ready', status: 'False' }],
      initContainerStatuses: [],
      containerStatuses: [{ name: 'falcon-node', ready: false, restartCount: 0, image: 'x', imageID: '', state: { waiting: { reason: 'ErrImageNeverPull' } } }],
    },
  };
  it('podView reads what the backend needs', () => {
    expect(podView(pod as never)).toMatchObject({ name: 'gc1', node: 'gc1', specDigest: 'abc', phase: 'Pending', ready: false, nodeName: 'h2', podIP: '10.244.2.2', containers: [{ name: 'falcon-node', state: 'waiting', reason: 'ErrImageNeverPull' }] });
  });
  it('a pod that cannot start says why; a running one does not', () => {
    expect(podFailure({ ...podView(pod as never), containers: [{ name: 'falcon-node', ready: false, state: 'waiting', reason: 'ErrImagePull', restartCount: 0 }] })).toMatch(/container falcon-node of pod gc1 cannot start: ErrImagePull/);
    expect(podFailure({ ...podView(pod as never), phase: 'Failed', reason: 'Evicted' })).toMatch(/pod gc1 failed \(Evicted/);
    expect(podFailure({ ...podView(pod as never), phase: 'Running', containers: [] })).toBeUndefined();
  });
  it('exit codes from the exec status', () => {
    expect(exitCodeOf({ status: 'Success' })).toBe(0);
    expect(exitCodeOf({ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '3' }] } })).toBe(3);
    expect(exitCodeOf({ status: 'Failure', message: 'container not found' })).toBeNull();
  });
});

describe('exec frames', () => {
  it('stdout and stderr apart, split anywhere, then the result', () => {
    const all = Buffer.concat([encodeFrame(FRAME_STDOUT, Buffer.from('out')), encodeFrame(FRAME_STDERR, Buffer.from('err')), encodeResultFrame({ exitCode: 3, signal: null, durationMs: 7 })]);
    for (const cut of [1, 4, 6, 13, all.length - 1]) {
      const out: string[] = [];
      const err: string[] = [];
      const d = new FrameDecoder({ stdout: (b) => out.push(b.toString()), stderr: (b) => err.push(b.toString()) });
      d.push(all.subarray(0, cut));
      d.push(all.subarray(cut));
      expect([out.join(''), err.join(''), d.result, d.pending]).toEqual(['out', 'err', { exitCode: 3, signal: null, durationMs: 7 }, 0]);
    }
  });
  it('an unknown frame type is refused', () => {
    const d = new FrameDecoder({ stdout: () => {}, stderr: () => {} });
    expect(() => d.push(Buffer.from([9, 0, 0, 0, 0]))).toThrow(/unknown type 9/);
  });
});

describe('launch flags', () => {
  it('--backend k8s with its options', () => {
    expect(backendOf({ backend: 'k8s', kubeconfig: 'k.yaml', namespace: 'lab', placement: ['gc1=h1', 'gc2=h2'], cpuAllocationRatio: '4', kvm: true })).toEqual({
      kind: 'k8s', kubeconfig: 'k.yaml', namespace: 'lab', placement: { gc1: 'h1', gc2: 'h2' }, cpuAllocationRatio: 4, kvm: true,
    });
    expect(backendOf({ backend: 'local', placement: [] })).toEqual({ kind: 'local' });
    // Neither: the program's own backend; a cluster flag alone means k8s.
    expect(backendOf({ placement: [] })).toBeUndefined();
    expect(backendOf({ kubeconfig: 'k.yaml', placement: [] })).toEqual({ kind: 'k8s', kubeconfig: 'k.yaml' });
  });
  it('bad flags are refused with the fix', () => {
    expect(() => backendOf({ backend: 'local', kubeconfig: 'k', placement: [] })).toThrow(/--kubeconfig applies to --backend k8s only/);
    expect(() => backendByName('docker')).toThrow(/use local .* or k8s/);
    expect(() => parsePlacement(['gc1'])).toThrow(/give NODE=CLUSTER_NODE/);
    expect(() => backendOf({ backend: 'k8s', placement: [], vxlanPort: 'x' })).toThrow(/--vxlan-port x is not a number/);
  });
});

describe('.falcon/backend.json', () => {
  it('written owner-only and read back; a damaged one names the fix', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'falcon-backend-'));
    try {
      const paths = new FalconPaths(path.join(dir, '.falcon'));
      expect(await readBackendRecord(paths)).toBeUndefined();
      const r: BackendRecord = { kind: 'k8s', kubeconfig: '/k', context: 'c', server: 'https://x', namespace: 'falcon-duo', ownsNamespace: true, options: { kvm: false }, createdAt: 'now' };
      await writeBackendRecord(paths, r);
      const file = path.join(paths.dir, 'backend.json');
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(await readBackendRecord(paths)).toEqual(r);
      expect(JSON.parse(readFileSync(file, 'utf8')).namespace).toBe('falcon-duo');
      writeFileSync(file, '{"kind":"k8s"');
      await expect(readBackendRecord(paths)).rejects.toThrow(/backend.json is damaged .*delete the topology's namespace/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a P4 program in the pod', () => {
  it('is written from the ConfigMap with its includes where they are found, climbing ones included', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'falcon-podp4-'));
    const spec = path.join(dir, 'spec', 'topology.json');
    mkdirSync(path.dirname(spec));
    writeFileSync(path.join(dir, 'spec', 'p4-s.json'), JSON.stringify({ name: 'r.p4', source: '#include "../common/h.p4"\n', files: { '../common/h.p4': '// h\n', 'local.p4': '// l\n' } }));
    const paths = new FalconPaths(path.join(dir, 'state'));
    const file = await writePodP4Program(spec, 's', paths);
    expect(file).toBe(path.join(dir, 'state', 'p4', 's', 'd', 'r.p4'));
    expect(readFileSync(path.join(dir, 'state', 'p4', 's', 'common', 'h.p4'), 'utf8')).toBe('// h\n');
    expect(readFileSync(path.join(dir, 'state', 'p4', 's', 'd', 'local.p4'), 'utf8')).toBe('// l\n');
    await expect(writePodP4Program(spec, 'other', paths)).rejects.toThrow(/ConfigMap lacks p4-other\.json/);
  });

  it('a .p4 program without its source is refused at the k8s preflight; with it, it passes', () => {
    const d = new Topology('p4k');
    const s = d.node('s', 'tiny', 1, 1024);
    d.softnpuLink(s, d.node('g', 'tiny', 1, 1024));
    d.softnpu(s, { program: '/x/router.p4' });
    const spec = d.toSpec();
    expect(k8sPreflight(spec, resolveK8sOptions(spec, { version: '0.0.0' })).problems).toEqual([expect.objectContaining({ path: 'nodes.s.softnpu.program', message: expect.stringMatching(/source of P4 program \/x\/router\.p4 was not given/) })]);
    expect(k8sPreflight(spec, resolveK8sOptions(spec, { version: '0.0.0', p4Programs: { s: { name: 'router.p4', source: '', files: {} } } })).problems).toEqual([]);
  });
});
