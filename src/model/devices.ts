/**
 * Extra disks and raw QEMU devices of a node, as pure data: their defaults and their checks.
 * Used when they are declared (`Topology.disk`, `Topology.qemuDevice`) and by `validateSpec`, so
 * a hand-edited topology.json is checked the same way. See docs/devices.md.
 */
import { createHash } from 'node:crypto';
import type { TopologyProblem } from './errors.js';
import { FALCON_BUSES, MAX_DISKS, diskAddresses, diskDriveId, isFalconId, nicSlot, parsePciAddress } from './pci.js';
import type { DiskSpec, NodeSpec, QemuDeviceSpec } from './spec.js';
import { push } from './validate.js';

/** Disk names become file names and QEMU ids. */
export const MAX_DISK_NAME_LENGTH = 32;
const DISK_NAME_RE = /^[a-z0-9][a-z0-9_-]*$/;
/** NVMe's serial number field is 20 bytes; virtio-blk's is too (the guest sees no more). */
export const MAX_SERIAL_LENGTH = 20;
/** Printable ASCII, no space at either end (the guest trims trailing ones). */
const SERIAL_RE = /^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/;
export const MAX_DISK_GIB = 16384;

/**
 * The serial a disk gets when none is given: `<node>-<disk>` when it fits in 20 characters,
 * else its first 13 characters, "-" and 6 hex digits of a hash of both, so it stays unique.
 *
 * ```ts
 * defaultDiskSerial('sled', 'disk0'); // 'sled-disk0'
 * ```
 */
export function defaultDiskSerial(node: string, disk: string): string {
  const full = `${node}-${disk}`;
  if (full.length <= MAX_SERIAL_LENGTH) return full;
  const h = createHash('sha256').update(`${node}\0${disk}`).digest('hex').slice(0, 6);
  return `${full.slice(0, MAX_SERIAL_LENGTH - 7)}-${h}`;
}

/**
 * The first `disk<k>` (k from the disk count up) the node does not have yet.
 *
 * ```ts
 * defaultDiskName(['disk1']); // 'disk2'
 * ```
 */
export function defaultDiskName(taken: readonly string[]): string {
  for (let k = taken.length; ; k++) if (!taken.includes(`disk${k}`)) return `disk${k}`;
}

/**
 * Problems of one disk's own fields, at `at` (e.g. `nodes.sled.disks[0]`).
 *
 * ```ts
 * diskProblems({ name: 'd', sizeGiB: 0, bus: 'nvme', serial: 's' }, 'nodes.n.disks[0]'); // [{ path: 'nodes.n.disks[0].sizeGiB', ... }]
 * ```
 */
export function diskProblems(d: DiskSpec, at: string): TopologyProblem[] {
  const problems: TopologyProblem[] = [];
  if (typeof d.name !== 'string' || !DISK_NAME_RE.test(d.name) || d.name.length > MAX_DISK_NAME_LENGTH)
    push(problems, `${at}.name`, `disk name ${JSON.stringify(d.name)} is invalid; use 1-${MAX_DISK_NAME_LENGTH} lowercase letters, digits, "_" and "-", starting with a letter or digit`);
  if (!Number.isInteger(d.sizeGiB) || d.sizeGiB < 1 || d.sizeGiB > MAX_DISK_GIB)
    push(problems, `${at}.sizeGiB`, `disk size is ${String(d.sizeGiB)} GiB; give a whole number of GiB from 1 to ${MAX_DISK_GIB}`);
  if (!['nvme', 'virtio', 'none'].includes(d.bus))
    push(problems, `${at}.bus`, `bus is ${JSON.stringify(d.bus)}; use "nvme" (default), "virtio", or "none" (attached only by a qemuDevice)`);
  if (typeof d.serial !== 'string' || !SERIAL_RE.test(d.serial))
    push(problems, `${at}.serial`, `serial ${JSON.stringify(d.serial)} is invalid; use printable ASCII characters without spaces at either end`);
  else if (d.serial.length > MAX_SERIAL_LENGTH)
    push(problems, `${at}.serial`, `serial "${d.serial}" is ${d.serial.length} characters; NVMe and virtio disks hold at most ${MAX_SERIAL_LENGTH}`);
  return problems;
}

/**
 * Problems of a node's disks: each disk's fields, duplicate names and serials, and how many fit.
 *
 * ```ts
 * nodeDiskProblems(spec.nodes[0]); // [] when they are fine
 * ```
 */
export function nodeDiskProblems(n: Pick<NodeSpec, 'name' | 'disks'>, at = `nodes.${n.name}`): TopologyProblem[] {
  const disks = n.disks ?? [];
  const problems = disks.flatMap((d, i) => diskProblems(d, `${at}.disks[${i}]`));
  disks.forEach((d, i) => {
    const first = disks.findIndex((o) => o.name === d.name);
    if (first !== i) push(problems, `${at}.disks[${i}].name`, `node "${n.name}" already has a disk named "${d.name}" (disks[${first}]); give each disk of a node its own name`);
    const twin = disks.findIndex((o) => o.serial === d.serial);
    if (twin !== i)
      push(problems, `${at}.disks[${i}].serial`, `serial "${d.serial}" is also the serial of disks[${twin}]; give each disk of a node its own serial`);
  });
  if (disks.length > MAX_DISKS) {
    push(problems, `${at}.disks`, `node "${n.name}" has ${disks.length} disks; at most ${MAX_DISKS} fit on a node`);
  } else {
    const placed = diskAddresses(disks);
    const lost = disks.filter((d, i) => d.bus !== 'none' && !placed[i]).length;
    if (lost)
      push(problems, `${at}.disks`, `node "${n.name}" has more disks than its two disk slots hold: virtio disks and NVMe disks past the 8th share 8 places; make ${lost} of them NVMe, or use fewer`);
  }
  return problems;
}

/** QEMU driver and property names: a letter, then letters, digits, "_", "-", ".". */
const QEMU_NAME_RE = /^[A-Za-z][A-Za-z0-9_.-]*$/;
/** Properties that name a backend: a qemuDevice gets none but a bus 'none' disk (`drive`). */
const BACKEND_PROPS = ['netdev', 'chardev', 'fsdev', 'rng', 'memdev', 'audiodev', 'iothread'] as const;

/** The context a raw device is checked in: its node's disks and reserved NIC indexes. */
export type DeviceContext = Pick<NodeSpec, 'name' | 'disks' | 'reservedNics'>;

/**
 * Problems of one raw device of node `n`, at `at` (e.g. `nodes.sled.devices[0]`).
 *
 * ```ts
 * deviceProblems({ driver: 'e1000', props: { netdev: 'net0' } }, node, 'nodes.sled.devices[0]'); // the netdev is refused
 * ```
 */
export function deviceProblems(dev: QemuDeviceSpec, n: DeviceContext, at: string): TopologyProblem[] {
  const problems: TopologyProblem[] = [];
  if (typeof dev.driver !== 'string' || !QEMU_NAME_RE.test(dev.driver) || dev.driver.length > 64)
    push(problems, `${at}.driver`, `driver ${JSON.stringify(dev.driver)} is not a QEMU device name; name one like "nvme" or "pvpanic" (qemu-system-x86_64 -device help lists them)`);
  for (const [key, value] of Object.entries(dev.props)) {
    const p = `${at}.props.${key}`;
    if (!QEMU_NAME_RE.test(key) || key === 'driver') push(problems, p, `"${key}" is not a property name; use letters, digits, "_", "-" and "." (the driver goes in "driver")`);
    else push(problems, p, valueProblem(value));
  }
  push(problems, `${at}.props.id`, idProblem(dev.props.id));
  for (const key of BACKEND_PROPS)
    if (key in dev.props)
      push(problems, `${at}.props.${key}`, `"${key}" would connect the device to a backend of Falcon's (or another node's); a qemuDevice brings no backends: use link(), mount() or disk() for those`);
  if ('drive' in dev.props) push(problems, `${at}.props.drive`, driveProblem(dev.props.drive, n));
  const bus = dev.props.bus;
  if (typeof bus === 'string' && (FALCON_BUSES as readonly string[]).includes(bus))
    push(problems, `${at}.props.bus`, `bus "${bus}" is Falcon's own (the exec channel's); leave bus out or name a bus of a device of your own`);
  if ('addr' in dev.props && (bus === undefined || bus === 'pci.0')) push(problems, `${at}.props.addr`, addrProblem(dev.props.addr, n));
  const boot = dev.props.bootindex;
  if (boot !== undefined && (String(boot) === '0' || String(boot) === '1'))
    push(problems, `${at}.props.bootindex`, `bootindex ${String(boot)} is taken by Falcon (0: a boot ISO, 1: the boot disk); use 2 or more`);
  return problems;
}

function valueProblem(value: unknown): string | undefined {
  if (typeof value === 'boolean') return undefined;
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : `${value} is not a finite number`;
  if (typeof value !== 'string') return `${JSON.stringify(value)} is not a string, number or boolean`;
  // eslint-disable-next-line no-control-regex
  return /[\x00-\x1f\x7f]/.test(value) ? `${JSON.stringify(value)} has control characters; QEMU option values are plain text` : undefined;
}

function idProblem(id: unknown): string | undefined {
  if (id === undefined) return undefined;
  if (typeof id !== 'string' || !QEMU_NAME_RE.test(id)) return `id ${JSON.stringify(id)} is not a QEMU id; start with a letter and use letters, digits, "_", "-", "."`;
  if (isFalconId(id)) return `id "${id}" is one of Falcon's own (qmp0, con0, vser0, exec0, rng0, disk0, cd0, npumgmt, net<i>, fs<i>, disk-<name>, falcon...); choose another`;
  return undefined;
}

function driveProblem(drive: unknown, n: DeviceContext): string | undefined {
  const disks = n.disks ?? [];
  const d = disks.find((x) => diskDriveId(x.name) === drive);
  const none = disks.filter((x) => x.bus === 'none').map((x) => `"${diskDriveId(x.name)}"`);
  const declare = `declare one with disk(${n.name}, { sizeGiB, bus: 'none' }) and pass its handle as drive`;
  if (!d) return `drive ${JSON.stringify(drive)} is not a disk of node "${n.name}"; ${none.length ? `its bus 'none' disks are ${none.join(', ')}, or ` : ''}${declare}`;
  if (d.bus !== 'none') return `drive "${drive}" is disk "${d.name}", which Falcon attaches itself (bus '${d.bus}'); give that disk bus: 'none' to attach it here`;
  return undefined;
}

function addrProblem(addr: unknown, n: DeviceContext): string | undefined {
  const reserved = n.reservedNics ?? [];
  const slots = reserved.map((r) => `"0x${nicSlot(r).toString(16)}" (NIC index ${r})`);
  const hint = slots.length
    ? `the root-bus slots free for it are those of the NIC indexes reserved with bumpRadix: ${slots.join(', ')}`
    : `leave addr out (QEMU picks a free slot), or reserve a NIC index with bumpRadix(${n.name}) and use its slot`;
  if (typeof addr !== 'string') return `addr ${JSON.stringify(addr)} must be a string such as "0x11" (QEMU reads addr as hexadecimal); ${hint}`;
  const a = parsePciAddress(addr);
  if (!a) return `addr "${addr}" is not a PCI slot; write it as QEMU does, like "0x11" or "0x11.1"`;
  if (!reserved.some((r) => nicSlot(r) === a.slot)) return `addr "${addr}" on the root bus is a slot Falcon plans for its own devices (docs/devices.md); ${hint}`;
  return undefined;
}

/**
 * Problems of a node's raw devices: each device, ids used twice, a drive or an address taken twice.
 *
 * ```ts
 * nodeDeviceProblems(spec.nodes[0]); // [] when they are fine
 * ```
 */
export function nodeDeviceProblems(n: DeviceContext & Pick<NodeSpec, 'devices'>, at = `nodes.${n.name}`): TopologyProblem[] {
  const devices = n.devices ?? [];
  const problems = devices.flatMap((d, i) => deviceProblems(d, n, `${at}.devices[${i}]`));
  for (const key of ['id', 'drive'] as const) {
    const seen = new Map<string, number>();
    devices.forEach((d, i) => {
      const v = d.props[key];
      if (typeof v !== 'string') return;
      const prev = seen.get(v);
      if (prev !== undefined) push(problems, `${at}.devices[${i}].props.${key}`, `${key} "${v}" is also the ${key} of devices[${prev}]; ${key === 'id' ? 'give each device its own id' : 'a disk attaches to one device'}`);
      else seen.set(v, i);
    });
  }
  const addrs = new Map<string, number>();
  devices.forEach((d, i) => {
    const a = typeof d.props.addr === 'string' && (d.props.bus === undefined || d.props.bus === 'pci.0') ? parsePciAddress(d.props.addr) : undefined;
    if (!a) return;
    const key = `${a.slot}.${a.fn}`;
    const prev = addrs.get(key);
    if (prev !== undefined) push(problems, `${at}.devices[${i}].props.addr`, `addr "${d.props.addr}" is also the address of devices[${prev}]; give each device its own slot or function`);
    else addrs.set(key, i);
  });
  return problems;
}
