import { describe, expect, it } from 'vitest';
import { Topology, gb } from '../../src/model/index.js';
import { PCI, qemuArgs, qemuDeviceOption, qemuEscape, type QemuExtraDisk, type QemuNodeConfig } from '../../src/host/qemu.js';
import { isFalconError } from '../../src/util/errors.js';

function config(over: Partial<QemuNodeConfig> = {}): QemuNodeConfig {
  const t = new Topology('duo');
  const v = t.node('violin', 'tiny', 2, gb(1));
  t.mount('/srv/bay,1', '/opt/bay', v);
  t.setVncPort(v, 5905);
  t.setSmbiosType1(v, { manufacturer: 'Oxide, Inc', serial: 'S1' });
  return {
    topology: 'duo',
    node: t.toSpec().nodes[0]!,
    accel: 'tcg',
    disk: '/img/topo/duo/violin.qcow2',
    boot: { method: 'direct', kernel: '/img/tiny/vmlinuz', initrd: '/img/tiny/initrd.img', cmdline: 'console=ttyS0 root=/dev/vda' },
    nics: [
      { kind: 'tap', ifname: 'fnabc0', mac: '02:00:00:00:00:01' },
      { kind: 'fd', fd: 3, mac: '02:00:00:00:00:02' },
    ],
    sockets: { qmp: '/s/violin.qmp', console: '/s/violin.console', exec: '/s/violin.exec' },
    consoleLog: '/f/violin.console.log',
    pidFile: '/f/violin.pid',
    ...over,
  };
}

/** The value following each occurrence of an option. */
function values(args: string[], opt: string): string[] {
  return args.flatMap((a, i) => (a === opt ? [args[i + 1]!] : []));
}

describe('qemu arguments', () => {
  it.each([
    ['tcg', 1, undefined, 'tcg', []],
    ['tcg', 4, undefined, 'tcg,thread=multi', []],
    ['tcg', 1, 32, 'tcg,tb-size=32', []],
    ['tcg', 4, 32, 'tcg,thread=multi,tb-size=32', []],
    ['kvm', 1, undefined, 'kvm', ['host']],
    ['kvm', 2, undefined, 'kvm', ['host']],
    // KVM has no translation cache: the node option does not apply.
    ['kvm', 1, 32, 'kvm', ['host']],
    ['kvm', 2, 32, 'kvm', ['host']],
  ] as const)('%s with %i core(s), TCG cache %s MiB: one -accel option (%s) and no accel= on -machine', (accel, cores, tcgCacheMiB, accelOpt, cpu) => {
    const base = config({ accel });
    const a = qemuArgs({ ...base, node: { ...base.node, cores, tcgCacheMiB } });
    expect(values(a, '-machine')).toEqual(['pc']);
    expect(values(a, '-accel')).toEqual([accelOpt]);
    expect(values(a, '-cpu')).toEqual(cpu);
    expect(values(a, '-smp')).toEqual([String(cores)]);
    if (accel === 'kvm') expect(a.join(' ')).not.toContain('tb-size');
  });

  it('takes the TCG cache size from the topology declaration', () => {
    const t = new Topology('tb');
    const n = t.node('small', 'tiny', 1, gb(1));
    t.setTcgCacheSize(n, 64);
    const a = qemuArgs({ ...config(), node: t.toSpec().nodes[0]! });
    expect(values(a, '-accel')).toEqual(['tcg,tb-size=64']);
  });

  it('gives the declared memory', () => {
    expect(values(qemuArgs(config()), '-m')).toEqual(['1024M']);
  });

  it('puts QMP, console (with its log) and the exec port on sockets', () => {
    const a = qemuArgs(config());
    expect(values(a, '-chardev')).toEqual([
      'socket,id=qmp0,path=/s/violin.qmp,server=on,wait=off',
      'socket,id=con0,path=/s/violin.console,server=on,wait=off,logfile=/f/violin.console.log,logappend=on',
      'socket,id=exec0,path=/s/violin.exec,server=on,wait=off',
    ]);
    expect(values(a, '-serial')).toEqual(['chardev:con0']);
    expect(values(a, '-device')).toContain('virtserialport,bus=vser0.0,chardev=exec0,name=org.falcon.exec');
  });

  it('mounts read-only 9p shares and escapes commas in paths', () => {
    const a = qemuArgs(config());
    expect(values(a, '-fsdev')).toEqual(['local,id=fs0,path=/srv/bay,,1,security_model=none,readonly=on']);
    expect(values(a, '-device')).toContain('virtio-9p-pci,fsdev=fs0,mount_tag=falcon0,addr=0x7');
    expect(qemuEscape('a,b,,c')).toBe('a,,b,,,,c');
  });

  it('gives NICs consecutive PCI slots in declaration order', () => {
    const a = qemuArgs(config());
    expect(values(a, '-netdev')).toEqual(['tap,id=net0,ifname=fnabc0,script=no,downscript=no', 'tap,id=net1,fd=3']);
    const nics = values(a, '-device').filter((d) => d.startsWith('virtio-net-pci'));
    expect(nics).toEqual([
      'virtio-net-pci,netdev=net0,mac=02:00:00:00:00:01,addr=0x10',
      'virtio-net-pci,netdev=net1,mac=02:00:00:00:00:02,addr=0x11',
    ]);
  });

  it('serves stream NICs (switch ports) on unix sockets, in the given order among taps', () => {
    const a = qemuArgs(
      config({
        nics: [
          { kind: 'tap', ifname: 'fnabc0', mac: '02:00:00:00:00:01' },
          { kind: 'stream', path: '/s/violin.nic1', mac: '02:00:00:00:00:02' },
          { kind: 'stream', path: '/s/a,b/violin.nic2', mac: 'a8:40:25:f0:00:01' },
        ],
      }),
    );
    expect(values(a, '-netdev')).toEqual([
      'tap,id=net0,ifname=fnabc0,script=no,downscript=no',
      'stream,id=net1,server=on,addr.type=unix,addr.path=/s/violin.nic1',
      'stream,id=net2,server=on,addr.type=unix,addr.path=/s/a,,b/violin.nic2',
    ]);
    expect(values(a, '-device').filter((d) => d.startsWith('virtio-net-pci'))[2]).toBe('virtio-net-pci,netdev=net2,mac=a8:40:25:f0:00:01,addr=0x12');
  });

  it("gives an npu node its management UART as the 4th serial port, and other nodes none", () => {
    const a = qemuArgs(config({ npuMgmt: '/s/violin.npumgmt' }));
    expect(values(a, '-chardev')).toContain('socket,id=npumgmt,path=/s/violin.npumgmt,server=on,wait=off');
    expect(values(a, '-device')).toContain('isa-serial,index=3,chardev=npumgmt');
    // ttyS0 stays the console.
    expect(values(a, '-serial')).toEqual(['chardev:con0']);
    expect(qemuArgs(config()).join(' ')).not.toContain('npumgmt');
  });

  it('passes direct boot, VNC and SMBIOS settings', () => {
    const a = qemuArgs(config());
    expect(values(a, '-kernel')).toEqual(['/img/tiny/vmlinuz']);
    expect(values(a, '-initrd')).toEqual(['/img/tiny/initrd.img']);
    expect(values(a, '-append')).toEqual(['console=ttyS0 root=/dev/vda']);
    expect(values(a, '-vnc')).toEqual(['127.0.0.1:5']);
    expect(values(a, '-smbios')).toEqual(['type=1,manufacturer=Oxide,, Inc,serial=S1']);
    expect(values(a, '-display')).toEqual(['none']);
  });

  it('boots UEFI images from OVMF with a per-node variable store, and an ISO first', () => {
    const c = config({ boot: { method: 'firmware', firmware: 'uefi', varsFile: '/f/violin.vars' }, ovmfCode: '/usr/share/OVMF/OVMF_CODE_4M.fd' });
    c.node.bootIso = '/isos/x.iso';
    const a = qemuArgs(c);
    expect(values(a, '-drive')).toEqual([
      'file=/img/topo/duo/violin.qcow2,if=none,id=disk0,format=qcow2,cache=writeback,discard=unmap',
      'if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd',
      'if=pflash,format=raw,unit=1,file=/f/violin.vars',
      'file=/isos/x.iso,if=none,id=cd0,media=cdrom,readonly=on',
    ]);
    expect(values(a, '-device')).toContain('ide-cd,drive=cd0,bootindex=0');
    expect(values(a, '-kernel')).toEqual([]);
  });
});

/** A node with disks, mounts and raw devices around the same three links, and its config. */
function sledConfig(extras: { disks?: boolean; mounts?: number; devices?: boolean; reserve?: boolean }): QemuNodeConfig {
  const t = new Topology('lab');
  const s = t.node('sled', 'debian-12', 2, gb(2));
  const p = t.node('peer', 'tiny', 1, gb(1));
  t.link(s, p);
  if (extras.reserve) t.bumpRadix(s);
  t.link(s, p);
  t.link(s, p);
  const extraDisks: QemuExtraDisk[] = [];
  if (extras.disks) {
    t.disk(s, { sizeGiB: 10, serial: 'u2,0' });
    t.disk(s, { sizeGiB: 2, bus: 'virtio', name: 'scratch' });
    t.disk(s, { sizeGiB: 10 });
    const raw = t.disk(s, { sizeGiB: 1, bus: 'none', name: 'raw' });
    if (extras.devices) t.qemuDevice(s, { driver: 'nvme', serial: 'raw,1', drive: raw });
  }
  for (let i = 0; i < (extras.mounts ?? 0); i++) t.mount(`/srv/m${i}`, `/opt/m${i}`, s);
  if (extras.devices) {
    t.qemuDevice(s, { driver: 'pvpanic' });
    if (extras.reserve) t.qemuDevice(s, { driver: 'e1000', addr: '0x11', mac: '02:00:00:00:00:77', 'x-lat': true, 'x-off': false });
  }
  const node = t.toSpec().nodes[0]!;
  for (const d of node.disks ?? []) extraDisks.push({ ...d, path: `/img/topo/lab/sled.${d.name}.qcow2` });
  const indexes = extras.reserve ? [0, 2, 3] : [0, 1, 2];
  return config({ topology: 'lab', node, nics: indexes.map((index) => ({ kind: 'tap', ifname: `fn${index}`, mac: `02:00:00:00:00:0${index}`, index })), extraDisks });
}

/** The `addr=` of every virtio-net device, in command-line order. */
const nicAddrs = (a: string[]) => values(a, '-device').filter((d) => d.startsWith('virtio-net-pci')).map((d) => /addr=(0x[0-9a-f]+)/.exec(d)![1]);

describe('the PCI plan', () => {
  it('keeps NIC i at slot 0x10 + i whatever disks, mounts and raw devices the node has', () => {
    const plain = nicAddrs(qemuArgs(sledConfig({})));
    expect(plain).toEqual(['0x10', '0x11', '0x12']);
    expect(nicAddrs(qemuArgs(sledConfig({ disks: true })))).toEqual(plain);
    expect(nicAddrs(qemuArgs(sledConfig({ mounts: 9 })))).toEqual(plain);
    expect(nicAddrs(qemuArgs(sledConfig({ disks: true, mounts: 9, devices: true })))).toEqual(plain);
  });

  it('leaves the slot of a reserved index to the device that takes it; later NICs keep 0x10 + index', () => {
    const a = qemuArgs(sledConfig({ reserve: true, disks: true, devices: true }));
    expect(nicAddrs(a)).toEqual(['0x10', '0x12', '0x13']);
    expect(values(a, '-netdev').map((n) => n.split(',')[1])).toEqual(['id=net0', 'id=net2', 'id=net3']);
    expect(values(a, '-device')).toContain('e1000,addr=0x11,mac=02:00:00:00:00:77,x-lat=on,x-off=off');
  });

  it('attaches NVMe disks in slot 0x02 and virtio disks in slot 0x06, one function each, serials escaped', () => {
    const a = qemuArgs(sledConfig({ disks: true, devices: true }));
    expect(values(a, '-drive').slice(1)).toEqual([
      'file=/img/topo/lab/sled.disk0.qcow2,if=none,id=disk-disk0,format=qcow2,cache=writeback,discard=unmap',
      'file=/img/topo/lab/sled.scratch.qcow2,if=none,id=disk-scratch,format=qcow2,cache=writeback,discard=unmap',
      'file=/img/topo/lab/sled.disk2.qcow2,if=none,id=disk-disk2,format=qcow2,cache=writeback,discard=unmap',
      'file=/img/topo/lab/sled.raw.qcow2,if=none,id=disk-raw,format=qcow2,cache=writeback,discard=unmap',
    ]);
    const disks = values(a, '-device').filter((d) => /^(nvme|virtio-blk-pci),drive=disk-/.test(d));
    expect(disks).toEqual([
      'nvme,drive=disk-disk0,serial=u2,,0,addr=0x2,multifunction=on',
      'virtio-blk-pci,drive=disk-scratch,serial=sled-scratch,addr=0x6,multifunction=on',
      'nvme,drive=disk-disk2,serial=sled-disk2,addr=0x2.1,multifunction=on',
    ]);
    // The boot disk stays at 0x03, the first virtio disk, so it stays /dev/vda.
    expect(values(a, '-device')).toContain(`virtio-blk-pci,drive=disk0,addr=0x${PCI.disk},bootindex=1`);
  });

  it('puts raw devices last, as declared, so QEMU gives those without addr the slots left over', () => {
    const a = qemuArgs(sledConfig({ disks: true, devices: true, reserve: true }));
    expect(a.slice(-6)).toEqual(['-device', 'nvme,serial=raw,,1,drive=disk-raw', '-device', 'pvpanic', '-device', 'e1000,addr=0x11,mac=02:00:00:00:00:77,x-lat=on,x-off=off']);
    expect(qemuDeviceOption({ driver: 'x', props: { path: '/a,b', n: 3 } })).toBe('x,path=/a,,b,n=3');
  });

  it('gives a node without disks or devices the command line it had before them', () => {
    const a = qemuArgs(sledConfig({}));
    expect(a.join(' ')).not.toMatch(/multifunction|disk-|0x2[,.]|0x6[,.]/);
  });

  it('refuses NIC indexes given twice or past the 16 slots, and a device whose drive is not passed', () => {
    const c = sledConfig({});
    const err = (cfg: QemuNodeConfig) => {
      try {
        qemuArgs(cfg);
      } catch (e) {
        return isFalconError(e) ? `${e.code}: ${e.message}` : String(e);
      }
      return 'no error';
    };
    expect(err({ ...c, nics: [{ ...c.nics[0]!, index: 1 }, { ...c.nics[1]!, index: 1 }] })).toMatch(/^TOPOLOGY_INVALID: node "sled" has a NIC index 1 that is out of 0-15 or given twice/);
    expect(err({ ...c, nics: [{ ...c.nics[0]!, index: 16 }] })).toMatch(/NIC index 16/);
    const d = sledConfig({ disks: true, devices: true });
    expect(err({ ...d, extraDisks: d.extraDisks!.filter((x) => x.bus !== 'none') })).toMatch(/qemuDevice nvme with drive=disk-raw, which is none of its bus 'none' disks/);
  });
});
