#!/bin/busybox sh
# Falcon initramfs: load just the drivers for the root disk, mount it and switch to it.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

root=/dev/vda
fstype=ext4
mode=rw
init=/sbin/init
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	root=*) root="${arg#root=}" ;;
	rootfstype=*) fstype="${arg#rootfstype=}" ;;
	init=*) init="${arg#init=}" ;;
	ro) mode=ro ;;
	rw) mode=rw ;;
	esac
done

fail() {
	echo "falcon initramfs: $*" >&2
	echo "FALCON-INITRAMFS-FAILED" >&2
	exec sh
}

# The build lists them in /etc/initramfs-modules; modprobe pulls in their dependencies.
for m in $(cat /etc/initramfs-modules); do
	modprobe "$m" || echo "falcon initramfs: cannot load module $m" >&2
done

# virtio_blk probes synchronously, but give a slow disk up to 5 s.
n=0
while [ ! -b "$root" ]; do
	n=$((n + 1))
	[ "$n" -gt 50 ] && fail "no root disk $root after 5 s (is the disk attached with if=virtio?)"
	usleep 100000
done

mkdir -p /newroot
mount -t "$fstype" -o "$mode" "$root" /newroot || fail "cannot mount $root ($fstype) on /newroot"
[ -x "/newroot$init" ] || [ -L "/newroot$init" ] || fail "no $init on the root disk $root"
mount --move /dev /newroot/dev
umount /sys /proc
exec switch_root /newroot "$init"
