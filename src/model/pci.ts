/**
 * The PCI plan of a node's VM (QEMU's `pc` machine, root bus only): which slot each device
 * takes. Pure data, so validation (model) and the QEMU command line (host/qemu.ts) agree, and
 * so nothing a topology adds (a disk, a mount, a raw device) ever moves a NIC: NIC index i is
 * always slot 0x10 + i, which is what keeps the guest's interface names stable (docs/devices.md).
 *
 * | slot        | device                                                                 |
 * | ----------- | ---------------------------------------------------------------------- |
 * | 0x00        | host bridge (i440FX)                                                   |
 * | 0x01        | PIIX3: ISA bridge, IDE (a boot ISO's CD-ROM), power management         |
 * | 0x02        | NVMe disks 1-8, functions 0-7 (else free: the first slot QEMU gives away) |
 * | 0x03        | the boot disk (virtio-blk, /dev/vda)                                   |
 * | 0x04        | virtio-serial (the exec channel)                                       |
 * | 0x05        | virtio-rng                                                             |
 * | 0x06        | virtio disks, then NVMe disks past the 8th, functions 0-7              |
 * | 0x07-0x0f   | 9p mounts, mount i at 0x07 + i                                         |
 * | 0x10-0x1f   | NICs, index i at 0x10 + i (an index reserved with bumpRadix stays empty) |
 *
 * Extra disks share two multifunction slots rather than sitting behind a PCI bridge: with
 * `pci=noacpi` (the tiny image's fast-boot flag) Linux assigns a bridge's memory window on top
 * of the local APIC, and devices behind it do not work.
 */

/** Fixed slots on the root bus. */
export const PCI = { nvmeDisks: 0x02, disk: 0x03, serial: 0x04, rng: 0x05, disks: 0x06, firstMount: 0x07, firstNic: 0x10 } as const;

/** NIC slots 0x10-0x1f. */
export const MAX_NICS = 16;
/** Mount slots 0x07-0x0f. */
export const MAX_MOUNTS = 9;
/** Functions of one multifunction slot. */
export const FUNCTIONS_PER_SLOT = 8;
/** Extra disks attached by Falcon: two slots of eight functions; bus 'none' disks count too. */
export const MAX_DISKS = 2 * FUNCTIONS_PER_SLOT;

/** A PCI address on the root bus. */
export interface PciAddress {
  slot: number;
  fn: number;
}

/**
 * The slot of NIC index `index`, reserved or not.
 *
 * ```ts
 * nicSlot(1); // 0x11
 * ```
 */
export function nicSlot(index: number): number {
  return PCI.firstNic + index;
}

/**
 * QEMU's form of an address: `0x10`, or `0x6.1` for a function other than 0.
 *
 * ```ts
 * formatPciAddress({ slot: 6, fn: 1 }); // '0x6.1'
 * ```
 */
export function formatPciAddress(a: PciAddress): string {
  return `0x${a.slot.toString(16)}${a.fn ? `.${a.fn}` : ''}`;
}

/**
 * An `addr` value as QEMU reads it from the command line: hexadecimal slot, optional `.function`
 * (`0x11`, `11`, `0x11.1`); undefined when it is not one.
 *
 * ```ts
 * parsePciAddress('11.1'); // { slot: 0x11, fn: 1 }
 * ```
 */
export function parsePciAddress(value: string): PciAddress | undefined {
  const m = /^(?:0x)?([0-9a-f]{1,2})(?:\.([0-7]))?$/i.exec(value);
  if (!m) return undefined;
  const slot = parseInt(m[1]!, 16);
  return slot < 32 ? { slot, fn: m[2] ? Number(m[2]) : 0 } : undefined;
}

/** The bus of a disk as the model stores it. */
export type DiskBus = 'nvme' | 'virtio' | 'none';

/**
 * Where each of a node's disks sits, in declaration order: the first eight NVMe disks in slot
 * 0x02 (scanned before 0x06, so NVMe names follow declaration order), virtio disks and further
 * NVMe disks in slot 0x06 (after the boot disk at 0x03, so it stays /dev/vda). Functions are
 * packed (function 0 is always used), since Linux looks no further in a slot without one.
 * Undefined for a bus 'none' disk (its qemuDevice places it) and for disks that do not fit.
 *
 * ```ts
 * diskAddresses([{ bus: 'nvme' }, { bus: 'virtio' }]); // [{ slot: 2, fn: 0 }, { slot: 6, fn: 0 }]
 * ```
 */
export function diskAddresses(disks: readonly { bus: DiskBus }[]): (PciAddress | undefined)[] {
  let nvme = 0;
  let rest = 0;
  return disks.map((d) => {
    if (d.bus === 'none') return undefined;
    if (d.bus === 'nvme' && nvme < FUNCTIONS_PER_SLOT) return { slot: PCI.nvmeDisks, fn: nvme++ };
    if (rest < FUNCTIONS_PER_SLOT) return { slot: PCI.disks, fn: rest++ };
    return undefined;
  });
}

/**
 * QEMU's drive id of a node's extra disk `name`: what a qemuDevice's `drive` names.
 *
 * ```ts
 * diskDriveId('raw'); // 'disk-raw'
 * ```
 */
export function diskDriveId(name: string): string {
  return `disk-${name}`;
}

/**
 * Ids Falcon gives its own QEMU objects; a qemuDevice must not take them. Fixed ones, plus
 * `net<i>` (NICs), `fs<i>` (mounts), `disk-<name>` (extra disks) and anything `falcon...`.
 */
const FALCON_IDS = new Set(['qmp0', 'con0', 'vser0', 'exec0', 'rng0', 'disk0', 'cd0', 'npumgmt']);
const FALCON_ID_RE = /^(net\d+|fs\d+|disk-.*|falcon.*)$/i;

/**
 * Whether `id` is one of Falcon's own QEMU ids (or in a family of them).
 *
 * ```ts
 * isFalconId('net3'); // true
 * ```
 */
export function isFalconId(id: string): boolean {
  return FALCON_IDS.has(id) || FALCON_ID_RE.test(id);
}

/** Buses of Falcon's own devices: a qemuDevice on them would take Falcon's places. */
export const FALCON_BUSES = ['vser0.0'] as const;
