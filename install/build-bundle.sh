#!/bin/sh
# Builds the DaemonSet image's root file system. install/Dockerfile runs exactly this, and so
# does CI (no container engine there): what CI tests is what the image ships.
#
#   install/build-bundle.sh <out>
#
# <out>/rootfs/
#   bin/busybox + applet links    sh, cp, mv, cmp, nsenter…: static, from Debian's busybox-static
#   opt/flexvol/install.sh        the installer (the image's entrypoint)
#   opt/flexvol/drivers/flexvol~<driver>/<driver>
#                                 `make bundle` output: static drivers, one per provider
#   flexmnt, host/etc/flexvol, etc/flexvol-secret, tmp
#                                 mount points of the DaemonSet's volumes
#
# Environment: MAKE (make), BUNDLE_DEPS (where the static libmount/libcurl are built and kept),
# VERSION (passed to make when set).
set -eu

out=${1:?usage: build-bundle.sh <out dir>}
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
root="$out/rootfs"
jobs=$(nproc 2>/dev/null || echo 2)
make=${MAKE:-make}

say() { printf 'build-bundle: %s\n' "$*" >&2; }

set -- -C "$here" --no-print-directory
[ -n "${VERSION:-}" ] && set -- "$@" VERSION="$VERSION"
[ -n "${BUNDLE_DEPS:-}" ] && set -- "$@" BUNDLE_DEPS="$BUNDLE_DEPS"

rm -rf "$root.new"
mkdir -p "$root.new"
"$make" "$@" -j"$jobs" all
"$make" "$@" bundle DESTDIR="$root.new" PLUGIN_DIR=/opt/flexvol/drivers PREFIX_VENDOR=flexvol

# busybox: the installed busybox-static, or the package fetched (not installed) from Debian.
busybox=
if [ "$(dpkg-query -W -f '${Status}' busybox-static 2>/dev/null)" = "install ok installed" ]; then
	busybox=$(dpkg-query -L busybox-static | grep -m1 '/bin/busybox$')
else
	mkdir -p "$out/cache"
	(cd "$out/cache" && rm -f busybox-static_*.deb && apt-get download busybox-static >&2)
	rm -rf "$out/cache/busybox-static"
	dpkg-deb -x "$out"/cache/busybox-static_*.deb "$out/cache/busybox-static"
	busybox="$out/cache/busybox-static/bin/busybox"
fi
if readelf -lW "$busybox" | grep -q 'Requesting program interpreter'; then
	say "$busybox is not static"
	exit 1
fi
mkdir -p "$root.new/bin"
install -m 0755 "$busybox" "$root.new/bin/busybox"
for applet in $("$busybox" --list); do
	[ "$applet" = busybox ] || ln -s busybox "$root.new/bin/$applet"
done

install -m 0755 "$here/install/install.sh" "$root.new/opt/flexvol/install.sh"
mkdir -p "$root.new/flexmnt" "$root.new/host/etc/flexvol" "$root.new/etc/flexvol-secret" "$root.new/tmp" \
	"$root.new/proc" "$root.new/dev" "$root.new/sys"
chmod 1777 "$root.new/tmp"

rm -rf "$root"
mv "$root.new" "$root"
say "image root file system in $root:"
(cd "$root" && find opt -type f -exec ls -l {} + | sed 's/^/  /') >&2
say "$(du -sh "$root" | cut -f1) in all"
