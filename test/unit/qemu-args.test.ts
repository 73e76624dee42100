import { describe, expect, it } from 'vitest';
import { Topology, gb } from '../../src/model/index.js';
import { qemuArgs, qemuEscape, type QemuNodeConfig } from '../../src/host/qemu.js';

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
