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

# Only errors and worse from the kernel on the console, so the console shell stays readable.
dmesg -n 4

for m in virtio_net virtio_console 9pnet_virtio 9p; do
	modprobe "$m" || echo "rcS: cannot load module $m"
done

# NVMe disks: the driver only when there is a controller (PCI class 0x010802), so nodes without
# one boot as fast as before. It probes in the background: wait (up to 5 s) until every
# controller is live and has its namespaces, so /dev/nvme0n1 is there when the node is ready.
if grep -qs '^0x010802' /sys/bus/pci/devices/*/class; then
	modprobe nvme || echo "rcS: cannot load module nvme"
	n=0
	want=$(cat /sys/bus/pci/devices/*/class | grep -c '^0x010802')
	while [ "$n" -lt 50 ]; do
		live=$(cat /sys/class/nvme/nvme*/state 2>/dev/null | grep -c '^live$')
		[ "$live" -ge "$want" ] && ls /sys/block | grep -q '^nvme' && break
		n=$((n + 1))
		usleep 100000
	done
fi

hostname -F /etc/hostname
ip link set lo up

# falcon-agent finds its virtio-serial port in /sys/class/virtio-ports itself (no udev here).
echo "FALCON-BOOTED"
