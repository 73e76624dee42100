import type { ProcessRunner } from './process.js';

/** Debian packages Falcon needs on the host, with what each is for. */
export const HOST_PACKAGES: Record<string, string> = {
  'qemu-system-x86': 'runs the VMs',
  'qemu-utils': 'qemu-img: base images, overlays, snapshots',
  ovmf: 'UEFI firmware for images that boot with it',
  iproute2: 'tap devices, altnames, tc wiring',
  mmdebstrap: 'builds the debian-12 image',
  'busybox-static': 'the tiny image and its initramfs',
  e2fsprogs: 'mke2fs -d: image file systems without root tricks',
  cpio: 'initramfs archives',
  kmod: 'depmod for guest kernel modules',
  'xz-utils': 'raw.xz image import',
  gcc: 'compiles the static guest exec agent',
  'libc6-dev': 'static libc for the guest exec agent',
  tmux: 'pseudo-terminal tests of the serial console',
  tcpdump: 'watching links',
  iperf3: 'link throughput benchmark',
  graphviz: 'dot: graph --format svg',
  'ca-certificates': 'image pulls over HTTPS',
};

/** The packages of `wanted` that dpkg does not report as installed. */
export async function missingPackages(proc: ProcessRunner, wanted: string[]): Promise<string[]> {
  const r = await proc.run('dpkg-query', ['-W', '-f=${Package} ${db:Status-Status}\\n', ...wanted], { reject: false, timeoutMs: 30_000 });
  const installed = new Set(
    r.stdout
      .split('\n')
      .map((l) => l.trim().split(' '))
      .filter(([, status]) => status === 'installed')
      .map(([name]) => name!),
  );
  return wanted.filter((p) => !installed.has(p));
}
