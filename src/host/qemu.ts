/**
 * Building QEMU command lines. Pure: the same inputs always give the same argument array, so
 * unit tests can check them and hyperstart restarts a node with exactly its original devices.
 */
import type { NodeSpec } from '../model/spec.js';
import { MAX_MOUNTS, MAX_NICS } from '../model/validate.js';
import { FalconError } from '../util/errors.js';

export type Accel = 'kvm' | 'tcg';

export type QemuBoot =
  | { method: 'direct'; kernel: string; initrd?: string; cmdline: string }
  | { method: 'firmware'; firmware: 'bios' | 'uefi'; /** per-node copy of the UEFI variable store */ varsFile?: string };

export type QemuNic =
  | { kind: 'tap'; ifname: string; mac: string }
  /** A macvtap opened by the caller and passed to QEMU as this fd number. */
  | { kind: 'fd'; fd: number; mac: string }
  /** A unix socket QEMU serves (`-netdev stream,server=on`) for a switch process to connect to. */
  | { kind: 'stream'; path: string; mac: string };

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

/** PCI slots: fixed ones for the disk and channels, NICs from 0x10 in declaration order. */
export const PCI = { disk: 3, serial: 4, rng: 5, cdrom: 6, firstMount: 7, firstNic: 0x10 } as const;

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

export function qemuArgs(c: QemuNodeConfig): string[] {
  const n = c.node;
  if (c.nics.length > MAX_NICS) throw new FalconError('TOPOLOGY_INVALID', `node "${n.name}" has ${c.nics.length} interfaces; at most ${MAX_NICS} fit; remove links from it`);
  if (n.mounts.length > MAX_MOUNTS) throw new FalconError('TOPOLOGY_INVALID', `node "${n.name}" has ${n.mounts.length} mounts; at most ${MAX_MOUNTS} fit; mount a common parent folder instead`);
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
  if (c.boot.method === 'direct') {
    a.push('-kernel', c.boot.kernel, '-append', c.boot.cmdline);
    if (c.boot.initrd) a.push('-initrd', c.boot.initrd);
  } else if (c.boot.firmware === 'uefi') {
    if (!c.ovmfCode || !c.boot.varsFile) throw new FalconError('INTERNAL', `node "${n.name}": UEFI boot needs OVMF code and a variable store`);
    a.push(
      '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${qemuEscape(c.ovmfCode)}`,
      '-drive', `if=pflash,format=raw,unit=1,file=${qemuEscape(c.boot.varsFile)}`,
    );
  }
  if (n.bootIso) {
    a.push(
      '-drive', `file=${qemuEscape(n.bootIso)},if=none,id=cd0,media=cdrom,readonly=on`,
      '-device', `ide-cd,drive=cd0,bootindex=0`,
    );
  }
  n.mounts.forEach((m, i) => {
    a.push(
      '-fsdev', `local,id=fs${i},path=${qemuEscape(m.source)},security_model=none,readonly=on`,
      '-device', `virtio-9p-pci,fsdev=fs${i},mount_tag=${mountTag(i)},addr=${hex(PCI.firstMount + i)}`,
    );
  });
  c.nics.forEach((nic, i) => {
    a.push(
      '-netdev', netdevOption(nic, `net${i}`),
      '-device', `virtio-net-pci,netdev=net${i},mac=${nic.mac},addr=${hex(PCI.firstNic + i)}`,
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
  return a;
}
