#!/bin/sh
# Falcon tiny image: system start (busybox init's sysinit).
export PATH=/sbin:/bin:/usr/sbin:/usr/bin

mounted() { grep -qs " $1 " /proc/mounts; }
mounted /proc || mount -t proc -o nosuid,nodev,noexec proc /proc
mounted /sys || mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mounted /dev || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /dev/shm
mount -t tmpfs -o nosuid,nodev,mode=755 tmpfs /run
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /tmp
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd

# Warnings and worse only on the console, so the console shell stays readable.
dmesg -n 4

for m in virtio_net virtio_console 9pnet_virtio 9p; do
	modprobe "$m" || echo "rcS: cannot load module $m"
done

hostname -F /etc/hostname
ip link set lo up

# virtio-serial ports by name, as udev would make them: /dev/virtio-ports/<name>.
# Ports are announced by the device after the driver loads, so wait briefly for them.
if ls -d /sys/bus/virtio/drivers/virtio_console/virtio* >/dev/null 2>&1; then
	n=0
	while [ -z "$(ls /sys/class/virtio-ports 2>/dev/null)" ] && [ "$n" -lt 20 ]; do
		usleep 50000
		n=$((n + 1))
	done
fi
mkdir -p /dev/virtio-ports
for p in /sys/class/virtio-ports/*; do
	[ -r "$p/name" ] || continue
	name=$(cat "$p/name")
	[ -n "$name" ] && ln -sf "../${p##*/}" "/dev/virtio-ports/$name"
done

echo "FALCON-BOOTED"
