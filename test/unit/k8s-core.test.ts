// The k8s backend's pure core: names, options, resources, affinity, MTU, preflight refusals,
// the pod's devices and probes, canonical serialization.
import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  checkMtu,
  defaultNamespace,
  isDnsLabel,
  isImageRef,
  k8sManifests,
  k8sName,
  k8sPreflight,
  linkMtuChecks,
  linkPeers,
  manifestList,
  maxGuestMtu,
  nodePod,
  podAffinity,
  podResources,
  resolveK8sOptions,
  VXLAN_OVERHEAD,
  type K8sBackendOptions,
} from '../../src/k8s/index.ts';
import { Topology } from '../../src/model/topology.ts';
import { isFalconError } from '../../src/util/errors.ts';

const V: K8sBackendOptions = { version: '0.1.0' };

function duo(memoryMiB = 1024, cores = 1) {
  const d = new Topology('duo');
  d.link(d.node('violin', 'tiny', cores, memoryMiB), d.node('piano', 'tiny', 1, 1024));
  return d;
}

function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isFalconError(e) ? `${e.code}: ${e.message}` : `not a FalconError: ${String(e)}`;
  }
  return undefined;
}

describe('names', () => {
  it('plain names are themselves; others become DNS labels with a hash, one-to-one', () => {
    expect(k8sName('violin')).toBe('violin');
    expect(k8sName('gc1')).toBe('gc1');
    const tricky = ['a', 'A', 'a_', 'a__', 'a_b', 'A_b', 'a_B', 'Gimlet_2', 'x'.repeat(32), 'X'.repeat(32)];
    const mapped = tricky.map(k8sName);
    expect(new Set(mapped).size).toBe(tricky.length);
    for (const m of mapped) expect(isDnsLabel(m), m).toBe(true);
    expect(k8sName('Gimlet_2')).toMatch(/^gimlet-2-[0-9a-f]{8}$/);
    expect(defaultNamespace('duo')).toBe('falcon-duo');
    expect(isDnsLabel(defaultNamespace('X'.repeat(32)))).toBe(true);
  });

  it('image references', () => {
    for (const ok of ['falcon.local/falcon-node:0.1.0', 'falcon.local/images/tiny:40c7b5b6665e', 'localhost:5000/a/b', 'busybox', `x@sha256:${'0'.repeat(64)}`]) expect(isImageRef(ok), ok).toBe(true);
    for (const bad of ['Falcon/Node', 'a b', 'a:', '-a', 'a//b']) expect(isImageRef(bad), bad).toBe(false);
  });
});

describe('options', () => {
  it('defaults', () => {
    const spec = duo().toSpec();
    expect(resolveK8sOptions(spec, V)).toEqual({
      namespace: 'falcon-duo',
      image: 'falcon.local/falcon-node:0.1.0',
      imagePullPolicy: 'IfNotPresent',
      kvm: false,
      vxlanPort: 4789,
      cpuAllocationRatio: 10,
      baseImages: { from: 'init-container' },
      baseImageRefs: { tiny: 'falcon.local/images/tiny:latest' },
      placement: {},
      p4Programs: {},
    });
    expect(resolveK8sOptions(spec, { image: 'falcon.local/falcon-node:0.1.0-1a2b3c4d5e6f', baseImageRefs: { tiny: 'falcon.local/images/tiny:40c7b5b6665e' } })).toMatchObject({
      image: 'falcon.local/falcon-node:0.1.0-1a2b3c4d5e6f',
      baseImageRefs: { tiny: 'falcon.local/images/tiny:40c7b5b6665e' },
    });
  });

  it('bad values are INVALID_ARGUMENT errors naming the option and what it takes', () => {
    const spec = duo().toSpec();
    const cases: [K8sBackendOptions, RegExp][] = [
      [{}, /option image is undefined; give the falcon-node image, or Falcon's version/],
      [{ ...V, namespace: 'Falcon_Duo' }, /option namespace is "Falcon_Duo"; give a DNS label/],
      [{ ...V, vxlanPort: 70000 }, /option vxlanPort is 70000; give a UDP port from 1 to 65535/],
      [{ ...V, cpuAllocationRatio: 0.5 }, /option cpuAllocationRatio is 0.5/],
      [{ ...V, placement: { cello: 'host-a' } }, /option placement.cello is "host-a"; name a node of topology "duo" \(violin, piano\)/],
      [{ ...V, image: 'Not An Image' }, /option image is "Not An Image"/],
      [{ ...V, baseImages: { from: 'pvc', claimName: 'Bad Claim' } }, /option baseImages.claimName/],
      [{ ...V, imagePullPolicy: 'Always' as never }, /option imagePullPolicy is "Always"; use Never or IfNotPresent/],
    ];
    for (const [o, re] of cases) expect(code(() => resolveK8sOptions(spec, o))).toMatch(new RegExp(`^INVALID_ARGUMENT: k8s backend ${re.source}`));
  });
});

describe('resources: cores and memory plus QEMU\'s overhead', () => {
  it('1 core, 1 GiB under TCG: 1100m and 1354Mi, part by part', () => {
    const r = podResources(duo().toSpec(), 'violin', { kvm: false, cpuAllocationRatio: 1 });
    expect(r.node.requests).toEqual({ cpu: '1100m', memory: '1354Mi' });
    expect(r.breakdown).toEqual({ guest: 1024, qemu: 64, bootFiles: 64, tcgCode: 128, pageTables: 2, vcpus: 8, falconNode: 64 });
    expect(r.switches).toEqual({});
    expect(r.total).toEqual({ milliCpu: 1100, memoryMiB: 1354 });
  });

  it('KVM has no code cache; a capped cache counts its cap; page tables and vCPUs scale', () => {
    const spec = duo(8192, 8).toSpec();
    expect(podResources(spec, 'violin', { kvm: true, cpuAllocationRatio: 1 }).node.requests).toEqual({ cpu: '8100m', memory: `${8192 + 64 + 64 + 16 + 64 + 64}Mi` });
    const d = duo();
    d.setTcgCacheSize('violin', 32);
    expect(podResources(d.toSpec(), 'violin', { kvm: false, cpuAllocationRatio: 1 }).breakdown.tcgCode).toBe(32);
  });

  it('cpuAllocationRatio divides the vCPUs, not the overhead', () => {
    expect(podResources(duo(1024, 4).toSpec(), 'violin', { kvm: false, cpuAllocationRatio: 10 }).node.requests.cpu).toBe('500m');
  });

  it('a switch in the pod is its own container: 250m and 64Mi each', () => {
    const d = new Topology('softnpu');
    const s = d.node('scrimlet', 'tiny', 1, 256);
    d.softnpuLink(s, d.node('gc1', 'tiny', 1, 256));
    d.sidecarLink(d.node('sc', 'tiny', 1, 256), s, 2);
    const r = podResources(d.toSpec(), 'scrimlet', { kvm: false, cpuAllocationRatio: 1 });
    expect(Object.keys(r.switches)).toEqual(['scrimlet', 'scrimlet.sidemux']);
    expect(r.switches.scrimlet!.requests).toEqual({ cpu: '250m', memory: '64Mi' });
    expect(r.total.milliCpu).toBe(1100 + 500);
    const pod = nodePod(d.toSpec(), 'scrimlet', resolveK8sOptions(d.toSpec(), V), 'x');
    expect(pod.spec.containers.map((c) => [c.name, c.args?.at(-1), c.resources?.requests?.cpu])).toEqual([
      ['falcon-node', 'scrimlet', '200m'],
      ['switch', 'scrimlet', '250m'],
      ['sidemux', 'scrimlet.sidemux', '250m'],
    ]);
  });
});

describe('affinity toward link peers', () => {
  it('a preferred term per peer, weighted by twice the links to it, on kubernetes.io/hostname; anti-affinity of 1 toward the topology', () => {
    const d = new Topology('tri');
    const [a, b, c] = ['a', 'b', 'c'].map((n) => d.node(n, 'tiny', 1, 256));
    d.link(a!, b!);
    d.link(a!, c!);
    d.link(b!, a!);
    const spec = d.toSpec();
    expect([...linkPeers(spec, 'a')]).toEqual([['b', 2], ['c', 1]]);
    const terms = podAffinity(spec, 'a')!.podAffinity!.preferredDuringSchedulingIgnoredDuringExecution;
    expect(terms.map((t) => [t.weight, t.podAffinityTerm.labelSelector.matchExpressions[0]!.values[0], t.podAffinityTerm.topologyKey])).toEqual([
      [4, 'b', 'kubernetes.io/hostname'],
      [2, 'c', 'kubernetes.io/hostname'],
    ]);
    // Against the topology's other pods, weaker: a host with a peer and a stranger is neutral.
    expect(podAffinity(spec, 'a')!.podAntiAffinity!.preferredDuringSchedulingIgnoredDuringExecution).toEqual([
      { weight: 1, podAffinityTerm: { labelSelector: { matchExpressions: [{ key: 'falcon.oxide/topology', operator: 'In', values: ['tri'] }] }, topologyKey: 'kubernetes.io/hostname' } },
    ]);
    expect(terms[0]!.podAffinityTerm.labelSelector.matchExpressions[0]!.key).toBe('falcon.oxide/node');
  });

  it('SoftNPU and sidecar links count; a lone node has none; a pin is a required node affinity', () => {
    const d = new Topology('t');
    const s = d.node('s', 'tiny', 1, 256);
    d.softnpuLink(s, d.node('g', 'tiny', 1, 256));
    d.sidecarLink(d.node('sc', 'tiny', 1, 256), s, 4);
    d.node('lone', 'tiny', 1, 256);
    const spec = d.toSpec();
    expect([...linkPeers(spec, 's')]).toEqual([['g', 1], ['sc', 1]]);
    expect(podAffinity(spec, 'lone')).toBeUndefined();
    expect(podAffinity(spec, 'lone', 'host-b')).toEqual({
      nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['host-b'] }] }] } },
    });
  });
});

describe('MTU arithmetic', () => {
  it('VXLAN costs 50 bytes over IPv4, 54 with an outer VLAN, 70 over IPv6', () => {
    expect(VXLAN_OVERHEAD).toEqual({ ipv4: 50, 'ipv4-vlan': 54, ipv6: 70, 'ipv6-vlan': 74 });
    expect(maxGuestMtu(1500)).toBe(1450);
    expect(maxGuestMtu(1450, 'ipv4')).toBe(1400);
    expect(maxGuestMtu(1500, 'ipv6')).toBe(1430);
  });

  it('ok with the headroom, or the problem and both fixes', () => {
    expect(checkMtu(1450, 1500)).toEqual({ ok: true, guestMtu: 1450, podMtu: 1500, overhead: 50, headroom: 0 });
    expect(checkMtu(1500, 1600, 'ipv4-vlan')).toMatchObject({ ok: true, headroom: 46 });
    const bad = checkMtu(1500, 1450, 'ipv4');
    expect(bad).toEqual({
      ok: false,
      guestMtu: 1500,
      podMtu: 1450,
      overhead: 50,
      problem: 'guest MTU 1500 + 50 bytes of VXLAN over ipv4 needs a pod MTU of 1550, and the pod interface has 1450: larger frames are fragmented on the pod network, or lost where it drops fragments',
      fix: "raise the pod network's MTU to 1550 or more (the CNI's mtu setting) or lower the guest's MTU to 1400 (in the guest: ip link set dev eth0 mtu 1400; or the link's mtu in the topology)",
    });
    expect(checkMtu(1500, 1500, 'ipv6')).toMatchObject({ ok: false, problem: expect.stringContaining('needs a pod MTU of 1570') });
    const tiny = checkMtu(1500, 600, 'ipv6');
    expect(!tiny.ok && tiny.fix).toMatch(/a guest MTU of 530 would be below IPv4's minimum of 576, so the pod MTU must rise/);
  });

  it('per link, as info reports it', () => {
    expect(linkMtuChecks(duo().toSpec(), 1550).map((m) => [m.link, m.check.ok])).toEqual([[0, true]]);
    expect(linkMtuChecks(duo().toSpec(), 1500).map((m) => [m.link, m.check.ok])).toEqual([[0, false]]);
  });
});

describe('preflight on a cluster', () => {
  const pre = (d: Topology, net = {}) => k8sPreflight(d.toSpec(), resolveK8sOptions(d.toSpec(), V), net);

  it('refuses external links, with the reason and the fix', () => {
    const d = duo();
    d.extLink('eth1', 'violin');
    d.defaultExtLink('piano');
    expect(pre(d).problems).toEqual([
      {
        path: 'links[1]',
        message: 'extLink gives node "violin" the host interface eth1, and on a cluster the node runs in a pod, which has no host interface to give',
        fix: 'drop the external link for --backend k8s (or connect the node to a node that routes), or launch this topology with the local backend',
      },
      expect.objectContaining({ path: 'links[2]', message: expect.stringContaining('the host interface (default route)') }),
    ]);
  });

  it('refuses a switch program that is a file on this machine', () => {
    const d = new Topology('t');
    const s = d.node('s', 'tiny', 1, 256);
    d.softnpuLink(s, d.node('g', 'tiny', 1, 256));
    d.softnpu(s, { program: '/home/me/pipeline.js' });
    expect(pre(d).problems).toEqual([expect.objectContaining({ path: 'nodes.s.softnpu.program', fix: expect.stringContaining('built-in program') })]);
  });

  it('maps host folders, boot ISOs and VNC with warnings; a small pod MTU is a warning with the fix', () => {
    const d = duo();
    d.mount('/srv/bay', '/opt/bay', 'violin');
    d.setVncPort('piano', 5901);
    d.setBootIso('piano', '/srv/boot.iso');
    const r = pre(d, { podMtu: 1450 });
    expect(r.problems).toEqual([]);
    expect(r.warnings.map((w) => w.path)).toEqual(['nodes.violin.mounts[0]', 'nodes.piano.bootIso', 'nodes.piano.vncPort', 'links[0]']);
    expect(r.warnings[2]!.fix).toBe('kubectl port-forward -n falcon-duo pod/piano 5901');
    expect(r.warnings[3]!.fix).toMatch(/raise the pod network's MTU to 1550/);
    expect(pre(d, { podMtu: 1550 }).warnings.map((w) => w.path)).not.toContain('links[0]');
  });

  it('refuses two images whose default references collide', () => {
    const d = duo();
    d.node('cello', 'Tiny', 1, 256);
    expect(pre(d).problems).toEqual([expect.objectContaining({ path: 'images.tiny', message: 'images "Tiny" and "tiny" both map to the OCI reference falcon.local/images/tiny:latest' })]);
  });
});

describe('the pod', () => {
  it('privileged, /dev/net/tun always and /dev/kvm with kvm, restartPolicy Never, the agent as readiness probe', () => {
    const spec = duo().toSpec();
    const tcg = nodePod(spec, 'violin', resolveK8sOptions(spec, V), 'abc');
    const kvm = nodePod(spec, 'violin', resolveK8sOptions(spec, { ...V, kvm: true }), 'abc');
    const main = (p: typeof tcg) => p.spec.containers[0]!;
    expect(tcg.spec.restartPolicy).toBe('Never');
    expect(main(tcg).securityContext).toEqual({ privileged: true });
    expect(main(tcg).readinessProbe?.exec.command).toEqual(['falcon-node', 'ready']);
    expect(tcg.spec.volumes!.filter((v) => 'hostPath' in v).map((v) => v.name)).toEqual(['dev-net-tun']);
    expect(kvm.spec.volumes!.filter((v) => 'hostPath' in v)).toEqual([
      { name: 'dev-net-tun', hostPath: { path: '/dev/net/tun', type: 'CharDevice' } },
      { name: 'dev-kvm', hostPath: { path: '/dev/kvm', type: 'CharDevice' } },
    ]);
    expect(main(kvm).volumeMounts!.map((m) => m.mountPath)).toContain('/dev/kvm');
    expect(main(kvm).env!.find((e) => e.name === 'FALCON_ACCEL')!.value).toBe('kvm');
    expect(main(tcg).env!.find((e) => e.name === 'FALCON_ACCEL')!.value).toBe('tcg');
    expect(tcg.metadata.annotations!['falcon.oxide/spec-sha256']).toBe('abc');
  });

  it('a mount becomes a read-only hostPath at /falcon/mounts/<i>', () => {
    const d = duo();
    d.mount('/srv/bay', '/opt/bay', 'violin');
    const pod = nodePod(d.toSpec(), 'violin', resolveK8sOptions(d.toSpec(), V), 'x');
    expect(pod.spec.volumes).toContainEqual({ name: 'mount-0', hostPath: { path: '/srv/bay', type: 'Directory' } });
    expect(pod.spec.containers[0]!.volumeMounts).toContainEqual({ name: 'mount-0', mountPath: '/falcon/mounts/0', readOnly: true });
  });

  it('an unknown node is NODE_NOT_FOUND', () => {
    const spec = duo().toSpec();
    expect(code(() => nodePod(spec, 'cello', resolveK8sOptions(spec, V), 'x'))).toBe('NODE_NOT_FOUND: topology "duo" has no node "cello"; its nodes are violin, piano');
  });

  it('the ConfigMap holds topology.json and its digest, which every pod carries', () => {
    const spec = duo().toSpec();
    const m = k8sManifests(spec, V);
    expect(JSON.parse(m.configMap.data['topology.json']!)).toEqual(spec);
    expect(m.pods.map((p) => p.metadata.annotations!['falcon.oxide/spec-sha256'])).toEqual([m.specSha256, m.specSha256]);
    expect(m.namespace.metadata).toEqual({
      name: 'falcon-duo',
      labels: { 'app.kubernetes.io/managed-by': 'falcon', 'falcon.oxide/topology': 'duo', 'pod-security.kubernetes.io/enforce': 'privileged' },
      annotations: { 'falcon.oxide/topology-name': 'duo' },
    });
    expect(m.ownsNamespace).toBe(true);
    // A namespace given by the user is theirs: not in the objects (never created, labelled or deleted).
    const given = k8sManifests(spec, { ...V, namespace: 'lab' });
    expect(given.ownsNamespace).toBe(false);
    expect(given.objects.map((o) => `${o.kind}/${o.metadata.namespace}`)).toEqual(['ConfigMap/lab', 'Pod/lab', 'Pod/lab']);
  });
});

describe('canonical serialization', () => {
  it('sorted keys at every level, undefined dropped, the same bytes for the same objects', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: undefined, e: 3 }] })).toBe('{\n  "a": [\n    {\n      "d": 2,\n      "e": 3\n    }\n  ],\n  "b": 1\n}\n');
    const spec = duo().toSpec();
    expect(canonicalJson(manifestList(k8sManifests(spec, V).objects))).toBe(canonicalJson(manifestList(k8sManifests(structuredClone(spec), V).objects)));
    expect(manifestList([]).kind).toBe('List');
  });
});
