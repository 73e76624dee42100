/**
 * Extra disks, raw QEMU devices, bumpRadix and mountLinux as a topology program declares them,
 * and as a saved (possibly hand-edited) topology.json is checked.
 */
import { describe, expect, it } from 'vitest';
import {
  Disk,
  Topology,
  TopologyError,
  TopologyValidationError,
  endpoints,
  gb,
  hostInterfaces,
  nicCount,
  parseTopologyFile,
  tapName,
  altName,
  defaultMac,
  type TopologySpec,
} from '../../src/model/index.js';
import { npuPlans, streamNics } from '../../src/model/softnpu.js';

/** The problems a call throws, as `path: message` lines. */
function thrown(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof TopologyValidationError) return e.problems.map((p) => `${p.path}: ${p.message}`);
    throw e;
  }
  throw new Error('expected the call to throw');
}

function sled(): { d: Topology; s: ReturnType<Topology['node']>; p: ReturnType<Topology['node']> } {
  const d = new Topology('lab');
  return { d, s: d.node('sled', 'debian-12', 2, gb(2)), p: d.node('peer', 'tiny', 1, gb(1)) };
}

/** A saved topology with `edit` applied, parsed as launch would parse it. */
function reparse(d: Topology, edit: (s: TopologySpec) => void): TopologySpec {
  const s = d.toSpec();
  edit(s);
  return parseTopologyFile(JSON.stringify(s), 'topology.json');
}

describe('extra disks', () => {
  it('default to NVMe, disk0, disk1, ... and a serial from node and disk name', () => {
    const { d, s } = sled();
    const a = d.disk(s, { sizeGiB: 10 });
    const b = d.disk(s, { sizeGiB: 2, bus: 'virtio', name: 'scratch' });
    const c = d.disk('sled', { sizeGiB: 1, serial: 'U2-SN-0042' });
    expect([a, b, c].map((x) => [x.node, x.name])).toEqual([
      ['sled', 'disk0'],
      ['sled', 'scratch'],
      ['sled', 'disk2'],
    ]);
    expect(a).toBeInstanceOf(Disk);
    expect(d.toSpec().nodes[0]!.disks).toEqual([
      { name: 'disk0', sizeGiB: 10, bus: 'nvme', serial: 'sled-disk0' },
      { name: 'scratch', sizeGiB: 2, bus: 'virtio', serial: 'sled-scratch' },
      { name: 'disk2', sizeGiB: 1, bus: 'nvme', serial: 'U2-SN-0042' },
    ]);
  });

  it('skip a default name that is taken, and keep long default serials within 20 characters, distinct', () => {
    const d = new Topology('lab');
    const n = d.node('a_rather_long_node_name', 'tiny', 1, gb(1));
    d.disk(n, { sizeGiB: 1, name: 'disk1' });
    expect(d.disk(n, { sizeGiB: 1 }).name).toBe('disk2');
    const serials = d.toSpec().nodes[0]!.disks!.map((x) => x.serial);
    for (const s of serials) expect(s.length).toBeLessThanOrEqual(20);
    expect(serials[0]).toMatch(/^a_rather_long\x2d[0-9a-f]{6}$/);
    expect(new Set(serials).size).toBe(2);
  });

  it('a name the node already has is refused when added, naming the node', () => {
    const { d, s, p } = sled();
    d.disk(s, { sizeGiB: 1, name: 'data' });
    expect(() => d.disk(s, { sizeGiB: 1, name: 'data' })).toThrow(TopologyError);
    expect(() => d.disk(s, { sizeGiB: 1, name: 'data' })).toThrow(/node "sled": already has a disk named "data"; give each disk of a node its own name/);
    expect(d.disk(p, { sizeGiB: 1, name: 'data' }).node).toBe('peer');
  });

  it('bad options are reported together, with their paths, when declared', () => {
    const { d, s } = sled();
    d.disk(s, { sizeGiB: 1, serial: 'same' });
    expect(thrown(() => d.disk(s, { sizeGiB: 0.5, name: 'Bad Name', serial: 'same' }))).toEqual([
      expect.stringMatching(/^nodes\.sled\.disks\[1\]\.name: disk name "Bad Name" is invalid; use 1-32 lowercase letters/),
      expect.stringMatching(/^nodes\.sled\.disks\[1\]\.sizeGiB: disk size is 0.5 GiB; give a whole number of GiB from 1 to 16384/),
      expect.stringMatching(/^nodes\.sled\.disks\[1\]\.serial: serial "same" is also the serial of disks\[0\]/),
    ]);
    expect(thrown(() => d.disk(s, { sizeGiB: 20000, serial: 'x'.repeat(21) }))).toEqual([
      expect.stringMatching(/sizeGiB: disk size is 20000 GiB/),
      expect.stringMatching(/serial: serial "x{21}" is 21 characters; NVMe and virtio disks hold at most 20/),
    ]);
    expect(thrown(() => d.disk(s, { sizeGiB: 1, serial: ' lead' }))).toEqual([expect.stringMatching(/serial " lead" is invalid; use printable ASCII/)]);
    expect(thrown(() => d.disk(s, { sizeGiB: 1, serial: 'tab\there' }))).toEqual([expect.stringMatching(/is invalid; use printable ASCII/)]);
    expect(thrown(() => d.disk(s, { sizeGiB: 1, bus: 'scsi' as 'nvme' }))).toEqual([expect.stringMatching(/bus is "scsi"; use "nvme" \(default\), "virtio", or "none"/)]);
    // Nothing that was refused was added.
    expect(d.toSpec().nodes[0]!.disks).toHaveLength(1);
    // Commas in a serial are fine: QEMU gets them escaped.
    expect(d.disk(s, { sizeGiB: 1, serial: 'a,b' }).name).toBe('disk1');
  });

  it('hold 16 per node: the first 8 NVMe in one slot, virtio and further NVMe disks in another', () => {
    const { d, s, p } = sled();
    for (let i = 0; i < 16; i++) d.disk(s, { sizeGiB: 1 });
    expect(thrown(() => d.disk(s, { sizeGiB: 1 }))).toEqual([expect.stringMatching(/^nodes\.sled\.disks: node "sled" has 17 disks; at most 16 fit on a node/)]);
    for (let i = 0; i < 8; i++) d.disk(p, { sizeGiB: 1, bus: 'virtio' });
    expect(thrown(() => d.disk(p, { sizeGiB: 1, bus: 'virtio' }))).toEqual([
      expect.stringMatching(/^nodes\.peer\.disks: node "peer" has more disks than its two disk slots hold: virtio disks and NVMe disks past the 8th share 8 places; make 1 of them NVMe/),
    ]);
    expect(d.disk(p, { sizeGiB: 1, bus: 'nvme' }).name).toBe('disk8');
  });

  it('are saved in topology.json and checked again when it is read; files without disks still load', () => {
    const { d, s } = sled();
    d.disk(s, { sizeGiB: 4, serial: 'S,1' });
    const back = parseTopologyFile(JSON.stringify(d.toSpec()), 'topology.json');
    expect(back).toEqual(d.toSpec());
    expect(Topology.fromSpec(back).toSpec().nodes[0]!.disks).toEqual([{ name: 'disk0', sizeGiB: 4, bus: 'nvme', serial: 'S,1' }]);
    // A file from before disks existed: no disks, devices or reservedNics keys at all.
    const old = new Topology('old');
    old.link(old.node('a', 'tiny', 1, gb(1)), old.node('b', 'tiny', 1, gb(1)));
    const text = JSON.stringify(old.toSpec());
    expect(text).not.toMatch(/disks|devices|reservedNics/);
    expect(parseTopologyFile(text, 'topology.json').nodes[0]!.disks).toBeUndefined();
    // A hand edit is checked like a declaration, every problem with its path.
    expect(() =>
      reparse(d, (x) => {
        x.nodes[0]!.disks!.push({ name: 'disk0', sizeGiB: 0, bus: 'nvme', serial: 'S,1' });
      }),
    ).toThrow(/nodes\.sled\.disks\[1\]\.sizeGiB: disk size is 0 GiB[\s\S]*nodes\.sled\.disks\[1\]\.name: node "sled" already has a disk named "disk0"[\s\S]*serial "S,1" is also the serial of disks\[0\]/);
    expect(() => reparse(d, (x) => ((x.nodes[0]!.disks![0] as { bus: string }).bus = 'ide'))).toThrow(/topology.json is damaged:\n {2}- nodes.0.disks.0.bus/);
  });
});

describe('raw QEMU devices', () => {
  it('are saved as driver and props, a disk handle standing for its drive', () => {
    const { d, s } = sled();
    const raw = d.disk(s, { sizeGiB: 4, bus: 'none', name: 'raw' });
    d.qemuDevice(s, { driver: 'nvme', serial: 'u2-7', drive: raw, 'num_queues': 4, 'use-intel-id': true });
    d.qemuDevice(s, { driver: 'pvpanic' });
    expect(d.toSpec().nodes[0]!.devices).toEqual([
      { driver: 'nvme', props: { serial: 'u2-7', drive: 'disk-raw', num_queues: 4, 'use-intel-id': true } },
      { driver: 'pvpanic', props: {} },
    ]);
    expect(d.problems()).toEqual([]);
    expect(parseTopologyFile(JSON.stringify(d.toSpec()), 't.json')).toEqual(d.toSpec());
  });

  it("refuse props that reach Falcon's backends, ids and buses, each with its path", () => {
    const { d, s } = sled();
    expect(thrown(() => d.qemuDevice(s, { driver: 'virtio-net-pci', netdev: 'net0', id: 'net3' }))).toEqual([
      expect.stringMatching(/^nodes\.sled\.devices\[0\]\.props\.id: id "net3" is one of Falcon's own/),
      expect.stringMatching(/^nodes\.sled\.devices\[0\]\.props\.netdev: "netdev" would connect the device to a backend of Falcon's \(or another node's\)/),
    ]);
    expect(thrown(() => d.qemuDevice(s, { driver: 'virtserialport', chardev: 'con0', bus: 'vser0.0' }))).toEqual([
      expect.stringMatching(/props\.chardev: "chardev" would connect/),
      expect.stringMatching(/props\.bus: bus "vser0.0" is Falcon's own/),
    ]);
    expect(thrown(() => d.qemuDevice(s, { driver: 'virtio-9p-pci', fsdev: 'fs0', mount_tag: 'x' }))).toEqual([expect.stringMatching(/props\.fsdev: "fsdev" would connect/)]);
    expect(thrown(() => d.qemuDevice(s, { driver: 'virtio-rng-pci', rng: 'rng0' }))).toEqual([expect.stringMatching(/props\.rng: "rng" would connect/)]);
    for (const id of ['disk0', 'qmp0', 'fs2', 'disk-raw', 'falconthing']) expect(thrown(() => d.qemuDevice(s, { driver: 'pvpanic', id }))).toHaveLength(1);
    expect(thrown(() => d.qemuDevice(s, { driver: 'no driver!' }))).toEqual([expect.stringMatching(/driver "no driver!" is not a QEMU device name/)]);
    expect(thrown(() => d.qemuDevice(s, { driver: 'nvme', 'bad key': 1, serial: 'a\nb' }))).toEqual([
      expect.stringMatching(/props\.bad key: "bad key" is not a property name/),
      expect.stringMatching(/props\.serial: "a\\nb" has control characters/),
    ]);
    expect(thrown(() => d.qemuDevice(s, { driver: 'nvme', serial: 'x', bootindex: 1 }))).toEqual([expect.stringMatching(/bootindex 1 is taken by Falcon/)]);
    expect(d.toSpec().nodes[0]!.devices).toBeUndefined();
  });

  it('attach only a bus none disk of their own node as drive', () => {
    const { d, s, p } = sled();
    const mine = d.disk(s, { sizeGiB: 1 });
    const raw = d.disk(s, { sizeGiB: 1, bus: 'none', name: 'raw' });
    const theirs = d.disk(p, { sizeGiB: 1, bus: 'none', name: 'raw' });
    expect(thrown(() => d.qemuDevice(s, { driver: 'nvme', serial: 'x', drive: mine }))).toEqual([
      expect.stringMatching(/props\.drive: drive "disk-disk0" is disk "disk0", which Falcon attaches itself \(bus 'nvme'\); give that disk bus: 'none'/),
    ]);
    expect(thrown(() => d.qemuDevice(s, { driver: 'nvme', serial: 'x', drive: 'disk-ghost' }))).toEqual([
      expect.stringMatching(/drive "disk-ghost" is not a disk of node "sled"; its bus 'none' disks are "disk-raw", or declare one/),
    ]);
    expect(() => d.qemuDevice(s, { driver: 'nvme', serial: 'x', drive: theirs })).toThrow(/node "sled": cannot attach disk "raw" of node "peer"/);
    const other = new Topology('other');
    const od = other.disk(other.node('sled', 'tiny', 1, gb(1)), { sizeGiB: 1, bus: 'none', name: 'raw' });
    expect(() => d.qemuDevice(s, { driver: 'nvme', serial: 'x', drive: od })).toThrow(/of node "sled" in topology "other"/);
    d.qemuDevice(s, { driver: 'nvme', serial: 'x', drive: raw });
    expect(thrown(() => d.qemuDevice(s, { driver: 'virtio-blk-pci', drive: raw }))).toEqual([
      expect.stringMatching(/devices\[1\]\.props\.drive: drive "disk-raw" is also the drive of devices\[0\]; a disk attaches to one device/),
    ]);
  });

  it('take a root-bus addr only in the slot of a NIC index reserved with bumpRadix', () => {
    const { d, s, p } = sled();
    d.link(s, p);
    expect(thrown(() => d.qemuDevice(s, { driver: 'e1000', addr: '0x11' }))).toEqual([
      expect.stringMatching(/props\.addr: addr "0x11" on the root bus is a slot Falcon plans for its own devices \(docs\/devices.md\); leave addr out .* or reserve a NIC index with bumpRadix\(sled\)/),
    ]);
    const i = d.bumpRadix(s);
    expect(i).toBe(1);
    d.qemuDevice(s, { driver: 'e1000', addr: '0x11' });
    expect(thrown(() => d.qemuDevice(s, { driver: 'e1000', addr: '11' }))).toEqual([expect.stringMatching(/addr "11" is also the address of devices\[0\]/)]);
    expect(thrown(() => d.qemuDevice(s, { driver: 'e1000', addr: 17 }))).toEqual([
      expect.stringMatching(/addr 17 must be a string such as "0x11" \(QEMU reads addr as hexadecimal\); the root-bus slots free for it are those of the NIC indexes reserved with bumpRadix: "0x11" \(NIC index 1\)/),
    ]);
    expect(thrown(() => d.qemuDevice(s, { driver: 'e1000', addr: '0x3' }))).toHaveLength(1);
    expect(thrown(() => d.qemuDevice(s, { driver: 'e1000', addr: 'slot3' }))).toEqual([expect.stringMatching(/addr "slot3" is not a PCI slot/)]);
    // Another function of the reserved slot, and any addr on a bus of the user's own, pass.
    d.qemuDevice(s, { driver: 'e1000', addr: '0x11.1' });
    d.qemuDevice(s, { driver: 'pci-bridge', id: 'mybr', chassis_nr: 2 });
    d.qemuDevice(s, { driver: 'e1000', bus: 'mybr', addr: '0x3' });
    expect(d.problems()).toEqual([]);
  });

  it('are checked again in a hand-edited topology.json', () => {
    const { d, s } = sled();
    d.qemuDevice(s, { driver: 'pvpanic' });
    expect(() =>
      reparse(d, (x) => {
        x.nodes[0]!.devices!.push({ driver: 'virtio-net-pci', props: { netdev: 'net0', addr: '0x10' } });
      }),
    ).toThrow(/nodes\.sled\.devices\[1\]\.props\.netdev: "netdev" would connect[\s\S]*nodes\.sled\.devices\[1\]\.props\.addr: addr "0x10" on the root bus is a slot Falcon plans/);
  });
});

describe('bumpRadix', () => {
  it("reserves the node's next NIC index: later links skip it in names, MACs and every plan", () => {
    const { d, s, p } = sled();
    d.link(s, p);
    expect(d.bumpRadix(s)).toBe(1);
    d.link(s, p);
    expect(d.bumpRadix(s)).toBe(3);
    d.extLink('eth9', s);
    const spec = d.toSpec();
    expect(spec.nodes[0]!.reservedNics).toEqual([1, 3]);
    expect(endpoints(spec).filter((e) => e.node === 'sled').map((e) => e.index)).toEqual([0, 2, 4]);
    // The peer's indexes are its own.
    expect(endpoints(spec).filter((e) => e.node === 'peer').map((e) => e.index)).toEqual([0, 1]);
    const ifs = hostInterfaces(spec).filter((h) => h.node === 'sled');
    expect(ifs.map((h) => h.altname)).toEqual(['lab_sled_vn_sim0', 'lab_sled_vn_sim2', 'lab_sled_vn_sim4']);
    expect(ifs.map((h) => h.ifname)).toEqual([0, 2, 4].map((i) => tapName('lab', 'sled', i)));
    expect(ifs.map((h) => h.mac)).toEqual([0, 2, 4].map((i) => defaultMac('lab', 'sled', i)));
    expect(ifs[1]!.peerIfname).toBe(tapName('lab', 'peer', 1));
    expect(altName('lab', 'sled', 2)).toBe('lab_sled_vn_sim2');
    expect(nicCount(spec, 'sled')).toBe(5);
    expect(nicCount(spec, 'peer')).toBe(2);
    expect(parseTopologyFile(JSON.stringify(spec), 't.json').nodes[0]!.reservedNics).toEqual([1, 3]);
  });

  it('puts a SoftNPU node\'s CPU NIC after its reserved indexes, and sidecar driver NICs around them', () => {
    const d = new Topology('npu');
    const sc = d.node('scrimlet', 'tiny', 1, gb(1));
    const g = d.node('gimlet', 'tiny', 1, gb(1));
    const drv = d.node('driver', 'tiny', 1, gb(1));
    d.softnpuLink(sc, g);
    d.link(sc, g);
    expect(d.bumpRadix(sc)).toBe(1);
    expect(d.bumpRadix(drv)).toBe(0);
    d.sidecarLink(g, drv, 2);
    const spec = d.toSpec();
    expect(npuPlans(spec)[0]!.cpuNics.map((c) => c.index)).toEqual([2]);
    expect(nicCount(spec, 'scrimlet')).toBe(3);
    expect(streamNics(spec).filter((n) => n.node === 'driver').map((n) => n.index)).toEqual([1, 2]);
    expect(nicCount(spec, 'driver')).toBe(3);
  });

  it('counts reserved indexes against the 16 NIC slots; a hand-edited reservation must be a real, unused index', () => {
    const { d, s, p } = sled();
    for (let i = 0; i < 15; i++) d.link(s, p);
    d.bumpRadix(s);
    expect(d.problems()).toEqual([]);
    d.bumpRadix(s);
    expect(d.problems()).toEqual([expect.objectContaining({ path: 'nodes.sled', message: expect.stringMatching(/has 17 interfaces \(reserved ones included\); at most 16 fit on a node/) })]);
    const small = new Topology('small');
    small.link(small.node('a', 'tiny', 1, gb(1)), small.node('b', 'tiny', 1, gb(1)));
    const bad = small.toSpec();
    bad.nodes[0]!.reservedNics = [5, -1, 0, 0];
    expect(() => parseTopologyFile(JSON.stringify(bad), 't.json')).toThrow(
      /nodes\.a\.reservedNics\[0\]: reserved NIC index 5 is past the node's 5 interfaces[\s\S]*reservedNics\[1\]: reserved NIC index -1 is not a whole number[\s\S]*reservedNics\[3\]: NIC index 0 is reserved twice/,
    );
  });
});

describe('mountLinux', () => {
  it('is the same read-only 9p mount as mount, saved the same way', () => {
    const a = new Topology('m');
    const b = new Topology('m');
    a.mount('/tmp', '/opt/bay', a.node('n', 'tiny', 1, gb(1)));
    b.mountLinux('/tmp', '/opt/bay', b.node('n', 'tiny', 1, gb(1)));
    expect(b.toSpec()).toEqual(a.toSpec());
    expect(b.toSpec().nodes[0]!.mounts).toEqual([{ source: '/tmp', destination: '/opt/bay' }]);
  });
});

describe('doMount', () => {
  it("takes upstream's two mechanisms as the same mount and refuses any other, naming the node", () => {
    const a = new Topology('m');
    const n = a.node('n', 'tiny', 1, gb(1));
    a.doMount('/tmp', '/opt/a', n, 'p9kp');
    a.doMount('/tmp', '/opt/b', n, 'mount');
    expect(a.toSpec().nodes[0]!.mounts).toEqual([
      { source: '/tmp', destination: '/opt/a' },
      { source: '/tmp', destination: '/opt/b' },
    ]);
    expect(() => a.doMount('/tmp', '/opt/c', n, 'nfs' as never)).toThrow(/node "n".*mechanism "nfs" is unknown; use "p9kp" or "mount"/);
  });
});
