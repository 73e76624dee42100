/**
 * Building QEMU command lines. Pure: the same inputs always give the same argument array, so
 * unit tests can check them and hyperstart restarts a node with exactly its original devices.
 */
import type { NodeSpec, QemuDeviceSpec } from '../model/spec.js';
import { MAX_DISKS, MAX_MOUNTS, MAX_NICS, PCI, diskAddresses, diskDriveId, formatPciAddress, nicSlot, type DiskBus } from '../model/pci.js';
import { FalconError } from '../util/errors.js';

export { PCI } from '../model/pci.js';

export type Accel = 'kvm' | 'tcg';

export type QemuBoot =
  | { method: 'direct'; kernel: string; initrd?: string; cmdline: string }
  | { method: 'firmware'; firmware: 'bios' | 'uefi'; /** per-node copy of the UEFI variable store */ varsFile?: string };

export type QemuNic = (
  | { kind: 'tap'; ifname: string; mac: string }
  /** A macvtap opened by the caller and passed to QEMU as this fd number. */
  | { kind: 'fd'; fd: number; mac: string }
  /** A unix socket QEMU serves (`-netdev stream,server=on`) for a switch process to connect to. */
  | { kind: 'stream'; path: string; mac: string }
) & {
  /**
   * The NIC's index on the node (the endpoint index): its PCI slot is 0x10 + index and its
   * netdev `net<index>`. Default: its position in `nics`, which is only right when the node
   * reserved no index with bumpRadix.
   */
  index?: number;
};

/** An extra disk of the node (`Topology.disk`) with the path of its qcow2 file. */
export interface QemuExtraDisk {
  name: string;
  path: string;
  bus: DiskBus;
  serial: string;
}

export interface QemuNodeConfig {
  topology: string;
  node: NodeSpec;
  accel: Accel;
  disk: string;
  boot: QemuBoot;
  nics: QemuNic[];
  sockets: { qmp: string; console: string; exec: string };
  consoleLog: string;
  pidFile: string;
  /** UEFI firmware code, when boot.firmware is 'uefi'. */
  ovmfCode?: string;
  /** A SoftNPU node's management UART: the socket QEMU serves as its 4th UART (ttyS3). */
  npuMgmt?: string;
  /**
   * The node's extra disks, every one of `node.disks` in the same order (bus 'none' ones too:
   * they get a drive for a qemuDevice to attach). Default none.
   */
  extraDisks?: QemuExtraDisk[];
}

/** The netdev of a NIC: QEMU's option value. */
function netdevOption(nic: QemuNic, id: string): string {
  switch (nic.kind) {
    case 'tap':
      return `tap,id=${id},ifname=${nic.ifname},script=no,downscript=no`;
    case 'fd':
      return `tap,id=${id},fd=${nic.fd}`;
    case 'stream':
      // QEMU serves: 7.2 cannot reconnect as a client, and it re-listens after the switch goes.
      return `stream,id=${id},server=on,addr.type=unix,addr.path=${qemuEscape(nic.path)}`;
  }
}

/** QEMU option values escape "," by doubling it. */
export function qemuEscape(value: string): string {
  return value.replace(/,/g, ',,');
}

const hex = (n: number) => `0x${n.toString(16)}`;

/** The 9p mount tag of a node's i-th mount (tags are limited in length, paths are not). */
export function mountTag(i: number): string {
  return `falcon${i}`;
}

/**
 * The `-accel` value. The translation cache size is a TCG property: KVM runs guest code natively
 * and has no cache, so a node's `tcgCacheMiB` does not apply there.
 */
function accelOption(accel: Accel, n: NodeSpec): string {
  if (accel === 'kvm') return 'kvm';
  const props = [...(n.cores > 1 ? ['thread=multi'] : []), ...(n.tcgCacheMiB !== undefined ? [`tb-size=${n.tcgCacheMiB}`] : [])];
  return ['tcg', ...props].join(',');
}

/**
 * The QEMU command line of a node: Falcon's devices at their fixed PCI slots (pci.ts,
 * docs/devices.md), NIC index i at slot 0x10 + i, extra disks in slots 0x02 and 0x06, and the
 * node's raw qemuDevices last, so QEMU gives those without an address the slots left over.
 *
 * ```ts
 * const args = qemuArgs({ topology: 'duo', node, accel: 'tcg', disk, boot, nics, sockets, consoleLog, pidFile });
 * spawn('qemu-system-x86_64', args);
 * ```
 */
export function qemuArgs(c: QemuNodeConfig): string[] {
  const n = c.node;
  checkCounts(c);
  const a: string[] = [
    '-name', `${c.topology}.${n.name},process=falcon-${n.name}`.slice(0, 200),
    // One -accel option carries the accelerator and its properties; QEMU refuses it beside
    // `-machine accel=`.
    '-machine', 'pc',
    '-accel', accelOption(c.accel, n),
    '-smp', String(n.cores),
    '-m', `${n.memoryMiB}M`,
    '-nodefaults', '-no-user-config', '-display', 'none',
    '-pidfile', c.pidFile,
    '-chardev', `socket,id=qmp0,path=${qemuEscape(c.sockets.qmp)},server=on,wait=off`,
    '-mon', 'chardev=qmp0,mode=control',
    '-chardev', `socket,id=con0,path=${qemuEscape(c.sockets.console)},server=on,wait=off,logfile=${qemuEscape(c.consoleLog)},logappend=on`,
    '-serial', 'chardev:con0',
    '-device', `virtio-serial-pci,id=vser0,addr=${hex(PCI.serial)}`,
    '-chardev', `socket,id=exec0,path=${qemuEscape(c.sockets.exec)},server=on,wait=off`,
    '-device', 'virtserialport,bus=vser0.0,chardev=exec0,name=org.falcon.exec',
    '-object', 'rng-random,id=rng0,filename=/dev/urandom',
    '-device', `virtio-rng-pci,rng=rng0,addr=${hex(PCI.rng)}`,
    '-drive', `file=${qemuEscape(c.disk)},if=none,id=disk0,format=qcow2,cache=writeback,discard=unmap`,
    '-device', `virtio-blk-pci,drive=disk0,addr=${hex(PCI.disk)},bootindex=1`,
  ];
  // Under TCG QEMU's default CPU model boots faster than `max` (fewer features to emulate).
  if (c.accel === 'kvm') a.push('-cpu', 'host');
  a.push(...bootArgs(c));
  if (n.bootIso) {
    // IDE on the PIIX3 (slot 0x01): the CD-ROM takes no PCI slot of its own.
    a.push(
      '-drive', `file=${qemuEscape(n.bootIso)},if=none,id=cd0,media=cdrom,readonly=on`,
      '-device', `ide-cd,drive=cd0,bootindex=0`,
    );
  }
  a.push(...extraDiskArgs(c.extraDisks ?? []));
  n.mounts.forEach((m, i) => {
    a.push(
      '-fsdev', `local,id=fs${i},path=${qemuEscape(m.source)},security_model=none,readonly=on`,
      '-device', `virtio-9p-pci,fsdev=fs${i},mount_tag=${mountTag(i)},addr=${hex(PCI.firstMount + i)}`,
    );
  });
  c.nics.forEach((nic, i) => {
    const index = nic.index ?? i;
    a.push(
      '-netdev', netdevOption(nic, `net${index}`),
      '-device', `virtio-net-pci,netdev=net${index},mac=${nic.mac},addr=${hex(nicSlot(index))}`,
    );
  });
  if (c.npuMgmt) {
    // On `pc`: I/O 0x2e8, irq 3 (ttyS3), with no COM2/COM3; wait=off: boot does not wait for the switch.
    a.push('-chardev', `socket,id=npumgmt,path=${qemuEscape(c.npuMgmt)},server=on,wait=off`, '-device', 'isa-serial,index=3,chardev=npumgmt');
  }
  if (n.vncPort !== undefined) a.push('-vnc', `127.0.0.1:${n.vncPort - 5900}`);
  if (n.smbiosType1) {
    const fields = Object.entries(n.smbiosType1).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${qemuEscape(String(v))}`);
    if (fields.length) a.push('-smbios', ['type=1', ...fields].join(','));
  }
  for (const dev of n.devices ?? []) a.push('-device', qemuDeviceOption(dev));
  return a;
}

/** What validation guarantees, checked again: a command line QEMU would refuse is never built. */
function checkCounts(c: QemuNodeConfig): void {
  const n = c.node;
  const fail = (msg: string) => {
    throw new FalconError('TOPOLOGY_INVALID', `node "${n.name}" ${msg}`);
  };
  if (c.nics.length > MAX_NICS) fail(`has ${c.nics.length} interfaces; at most ${MAX_NICS} fit; remove links from it`);
  const indexes = c.nics.map((nic, i) => nic.index ?? i);
  const bad = indexes.find((x, i) => !Number.isInteger(x) || x < 0 || x >= MAX_NICS || indexes.indexOf(x) !== i);
  if (bad !== undefined) fail(`has a NIC index ${bad} that is out of 0-${MAX_NICS - 1} or given twice; NIC indexes come from the topology's endpoints`);
  if (n.mounts.length > MAX_MOUNTS) fail(`has ${n.mounts.length} mounts; at most ${MAX_MOUNTS} fit; mount a common parent folder instead`);
  const disks = c.extraDisks ?? [];
  if (disks.length > MAX_DISKS) fail(`has ${disks.length} disks; at most ${MAX_DISKS} fit; remove disks from it`);
  const placed = diskAddresses(disks);
  const lost = disks.find((d, i) => d.bus !== 'none' && !placed[i]);
  if (lost) fail(`has no PCI place left for disk "${lost.name}": virtio disks and NVMe disks past the 8th share 8 places; make some of them NVMe`);
  for (const dev of n.devices ?? []) {
    const drive = dev.props.drive;
    if (drive !== undefined && !disks.some((d) => d.bus === 'none' && diskDriveId(d.name) === drive))
      fail(`has a qemuDevice ${dev.driver} with drive=${String(drive)}, which is none of its bus 'none' disks; pass the node's disks as extraDisks`);
  }
}

function bootArgs(c: QemuNodeConfig): string[] {
  if (c.boot.method === 'direct') return ['-kernel', c.boot.kernel, '-append', c.boot.cmdline, ...(c.boot.initrd ? ['-initrd', c.boot.initrd] : [])];
  if (c.boot.firmware !== 'uefi') return [];
  if (!c.ovmfCode || !c.boot.varsFile) throw new FalconError('INTERNAL', `node "${c.node.name}": UEFI boot needs OVMF code and a variable store`);
  return [
    '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${qemuEscape(c.ovmfCode)}`,
    '-drive', `if=pflash,format=raw,unit=1,file=${qemuEscape(c.boot.varsFile)}`,
  ];
}

/**
 * A drive per extra disk, and a device for those Falcon attaches: NVMe or virtio-blk at the
 * disk's function of slot 0x02 or 0x06 (multifunction, function 0 always used).
 *
 * ```ts
 * extraDiskArgs([{ name: 'disk0', path: '/d.qcow2', bus: 'nvme', serial: 's' }]);
 * // ['-drive', 'file=/d.qcow2,if=none,id=disk-disk0,...', '-device', 'nvme,drive=disk-disk0,serial=s,addr=0x2,multifunction=on']
 * ```
 */
export function extraDiskArgs(disks: readonly QemuExtraDisk[]): string[] {
  const placed = diskAddresses(disks);
  return disks.flatMap((d, i) => {
    const id = diskDriveId(d.name);
    const drive = ['-drive', `file=${qemuEscape(d.path)},if=none,id=${id},format=qcow2,cache=writeback,discard=unmap`];
    const at = placed[i];
    if (d.bus === 'none' || !at) return drive;
    const driver = d.bus === 'nvme' ? 'nvme' : 'virtio-blk-pci';
    return [...drive, '-device', `${driver},drive=${id},serial=${qemuEscape(d.serial)},addr=${formatPciAddress(at)},multifunction=on`];
  });
}

/**
 * A raw device's `-device` value, passed as declared: `driver,prop=value,...`, booleans as
 * on/off, commas in values doubled.
 *
 * ```ts
 * qemuDeviceOption({ driver: 'nvme', props: { serial: 'a,b', drive: 'disk-raw' } }); // 'nvme,serial=a,,b,drive=disk-raw'
 * ```
 */
export function qemuDeviceOption(dev: QemuDeviceSpec): string {
  const props = Object.entries(dev.props).map(([k, v]) => `${k}=${typeof v === 'boolean' ? (v ? 'on' : 'off') : qemuEscape(String(v))}`);
  return [dev.driver, ...props].join(',');
}
