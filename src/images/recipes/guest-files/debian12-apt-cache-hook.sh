#!/bin/sh
# mmdebstrap hook: keep downloaded .debs between builds. $1 is the chroot directory,
# FALCON_DEB_CACHE the host cache directory. Setup: seed apt's archive; customize: save it.
set -eu
archives="$1/var/cache/apt/archives"
case "$MMDEBSTRAP_HOOK" in
setup)
	mkdir -p "$archives"
	find "$FALCON_DEB_CACHE" -maxdepth 1 -name '*.deb' -exec cp -p -t "$archives" {} +
	;;
customize)
	find "$archives" -maxdepth 1 -name '*.deb' -exec cp -p -n -t "$FALCON_DEB_CACHE" {} +
	;;
esac
