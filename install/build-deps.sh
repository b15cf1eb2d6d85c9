#!/bin/sh
# Builds the static libraries that Debian does not ship (libmount, and a small
# libcurl without LDAP/Kerberos/SSH/RTMP), from the Debian source packages of
# the very versions whose -dev headers the drivers were compiled against.
#
#   install/build-deps.sh <prefix> util-linux [curl]
#
# Installs <prefix>/lib/*.a and <prefix>/lib/pkgconfig/*.pc. Each component is
# built once per source version (a stamp file in <prefix> says which).
# Sources come through apt-get with a private configuration under <prefix>/apt:
# the machine's own apt setup is not changed. FLEXVOL_DEBIAN_MIRROR overrides
# the mirror (default http://deb.debian.org/debian).
set -eu
# Called from make: the caller's command-line variables (DESTDIR above all) must not reach the
# sub-builds through MAKEFLAGS.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES DESTDIR || true

prefix=${1:?usage: build-deps.sh <prefix> <component>...}
shift
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
jobs=$(nproc 2>/dev/null || echo 2)
mirror=${FLEXVOL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# shellcheck source=/dev/null
. /etc/os-release
suite=${VERSION_CODENAME:?cannot tell the Debian release from /etc/os-release}

say() { printf 'build-deps: %s\n' "$*" >&2; }

# Step output goes to <prefix>/log/<component>.log; its tail is shown when a step fails.
mkdir -p "$prefix/log"
log="$prefix/log/build-deps.log"
quiet() {
	if ! "$@" >>"$log" 2>&1; then
		say "failed: $* (last lines of $log:)"
		tail -n 30 "$log" >&2
		exit 1
	fi
}

apt_opts() {
	printf '%s\n' -o "Dir::Etc::SourceList=$prefix/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null \
		-o "Dir::State::Lists=$prefix/apt/lists" -o "Dir::Cache=$prefix/apt/cache" -o APT::Sandbox::User=root
}

apt_ready=
apt_setup() {
	[ -n "$apt_ready" ] && return 0
	mkdir -p "$prefix/apt/lists/partial" "$prefix/apt/cache/archives/partial"
	cat >"$prefix/apt/sources.list" <<EOF
deb-src $mirror $suite main
deb-src $mirror $suite-updates main
deb-src ${FLEXVOL_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security} $suite-security main
EOF
	# shellcheck disable=SC2046
	quiet apt-get $(apt_opts) -q update
	apt_ready=1
}

# The source version behind an installed -dev package: its headers are what the
# objects were compiled against, so the static library must come from the same.
source_version() {
	dpkg-query -W -f '${source:Version}' "$1" 2>/dev/null || {
		say "$1 is not installed (apt-get install $1)"
		exit 1
	}
}

# fetch <source package> <version> <dir>: unpacked and patched Debian source in <dir>.
fetch() {
	pkg=$1 ver=$2 dir=$3
	[ -d "$dir" ] && return 0
	apt_setup
	work="$prefix/src/.fetch-$pkg"
	rm -rf "$work"
	mkdir -p "$work"
		# shellcheck disable=SC2046
	if ! (cd "$work" && apt-get $(apt_opts) -q source --download-only "$pkg=$ver" >>"$log" 2>&1); then
		# The archive keeps only the newest point release: same upstream version is ABI-identical.
		say "source $pkg=$ver is gone from the archive; using the newest $pkg of the same upstream version"
		# shellcheck disable=SC2046
		# shellcheck disable=SC2016,SC2046
		quiet sh -c 'cd "$1" && shift && exec "$@"' sh "$work" apt-get $(apt_opts) -q source --download-only "$pkg"
	fi
	dsc=$(ls "$work"/*.dsc)
	quiet dpkg-source --no-check -x "$dsc" "$dir"
	rm -rf "$work"
	# Debian's patches touch configure.ac and Makefile.am; the generated files
	# they ship are current, so mark them newer instead of needing autotools.
	find "$dir" -name aclocal.m4 -exec touch {} +
	sleep 1
	find "$dir" \( -name configure -o -name Makefile.in -o -name config.h.in -o -name '*.h.in' \) -exec touch {} +
}

# stamp_ok <component> <version> <library>: built from that version and still installed.
stamp_ok() { [ -f "$prefix/.$1.done" ] && [ "$(cat "$prefix/.$1.done")" = "$2" ] && [ -f "$prefix/lib/$3" ]; }

installed() {
	for f in "$@"; do
		[ -f "$prefix/lib/$f" ] || {
			say "$prefix/lib/$f was not installed"
			exit 1
		}
	done
}

CFLAGS_DEPS="-O2 -g -fPIE -ffunction-sections -fdata-sections -fstack-protector-strong"

build_util_linux() {
	ver=$(source_version libmount-dev)
	stamp_ok util-linux "$ver" libmount.a && return 0
	src="$prefix/src/util-linux-$ver"
	fetch util-linux "$ver" "$src"
	say "building static libmount and libblkid (util-linux $ver), log in $log"
	cd "$src"
	# No SELinux, udev or systemd: the drivers ask libmount for plain mount(2) calls only.
	quiet ./configure --prefix="$prefix" --disable-all-programs --enable-libmount --enable-libblkid \
		--disable-shared --enable-static --without-selinux --without-udev --without-systemd \
		--without-python --without-audit --without-btrfs --without-cryptsetup --without-econf \
		--without-libmagic --disable-nls --disable-asciidoc --disable-bash-completion CFLAGS="$CFLAGS_DEPS"
	quiet make -j"$jobs" libblkid.la libmount.la
	quiet make install-nodist_blkidincHEADERS install-nodist_mountincHEADERS install-usrlib_execLTLIBRARIES \
		install-pkgconfigDATA DESTDIR=
	cd - >/dev/null
	installed libmount.a libblkid.a pkgconfig/mount.pc pkgconfig/blkid.pc
	printf '%s\n' "$ver" >"$prefix/.util-linux.done"
}

build_curl() {
	ver=$(source_version libcurl4-openssl-dev)
	stamp_ok curl "$ver" libcurl.a && return 0
	src="$prefix/src/curl-$ver"
	fetch curl "$ver" "$src"
	say "building static libcurl (curl $ver: http and https over OpenSSL only), log in $log"
	cd "$src"
	# Debian's libcurl.a wants LDAP, Kerberos, SSH, RTMP, PSL, nghttp2 and zstd archives that
	# Debian does not ship; the drivers speak plain HTTP(S) only.
	quiet ./configure --prefix="$prefix" --disable-shared --enable-static --with-pic \
		--with-openssl --with-zlib --enable-threaded-resolver \
		--with-ca-bundle=/etc/ssl/certs/ca-certificates.crt --with-ca-path=/etc/ssl/certs \
		--disable-ldap --disable-ldaps --disable-rtsp --disable-dict --disable-telnet --disable-tftp \
		--disable-pop3 --disable-imap --disable-smb --disable-smtp --disable-gopher --disable-mqtt \
		--disable-ftp --disable-file --disable-manual --disable-ntlm --disable-alt-svc \
		--without-libssh2 --without-libssh --without-librtmp --without-libpsl --without-libidn2 \
		--without-nghttp2 --without-nghttp3 --without-ngtcp2 --without-brotli --without-zstd \
		--without-gssapi --without-libgsasl CFLAGS="$CFLAGS_DEPS"
	quiet make -j"$jobs" -C lib
	quiet make -C lib install DESTDIR=
	quiet make -C include install DESTDIR=
	quiet make install-pkgconfigDATA DESTDIR=
	cd - >/dev/null
	installed libcurl.a pkgconfig/libcurl.pc
	printf '%s\n' "$ver" >"$prefix/.curl.done"
}

for component in "$@"; do
	case $component in
	util-linux) build_util_linux ;;
	curl) build_curl ;;
	*)
		say "unknown component '$component' (known: util-linux curl)"
		exit 2
		;;
	esac
done
