#!/bin/sh
# mmdebstrap hook for the debian-12 image; $1 is the chroot directory.
# - keeps downloaded .debs between builds in $FALCON_DEB_CACHE (seeded at setup, saved at customize);
# - skips initramfs-tools' initrd (the image boots with Falcon's busybox initramfs instead):
#   update-initramfs is diverted to /bin/true while packages install, and restored afterwards.
set -eu
archives="$1/var/cache/apt/archives"
case "$MMDEBSTRAP_HOOK" in
setup)
	mkdir -p "$archives"
	find "$FALCON_DEB_CACHE" -maxdepth 1 -name '*.deb' -exec cp -p -t "$archives" {} +
	;;
essential)
	chroot "$1" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs
	ln -s /bin/true "$1/usr/sbin/update-initramfs"
	;;
customize)
	find "$archives" -maxdepth 1 -name '*.deb' -exec cp -p -n -t "$FALCON_DEB_CACHE" {} +
	rm -f "$1/usr/sbin/update-initramfs"
	chroot "$1" dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs
	;;
esac
