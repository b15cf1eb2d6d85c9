#!/bin/sh
# flexvol installer: the DaemonSet container on every node (control-plane nodes included).
#
#   install.sh [install]   install the drivers and their config, check them, then sleep
#   install.sh uninstall   remove the drivers (refused while a volume of theirs is mounted)
#   install.sh check       only check that the installed drivers answer init, and run their doctor
#
# Environment (the defaults match install/deploy/base):
#   FLEXVOL_PLUGIN_DIR       the kubelet plugin dir as mounted in this container     [/flexmnt]
#   FLEXVOL_HOST_PLUGIN_DIR  the same dir as the host (kubelet) sees it; with hostPID the
#                            init check runs there, in the host's mount namespace      [unset]
#   FLEXVOL_DRIVERS          drivers to install, space or comma separated; empty = all [all]
#   FLEXVOL_VENDOR           vendor prefix: drivers go to <vendor>~<driver>/<driver>   [flexvol]
#   FLEXVOL_BUNDLE           the drivers shipped in the image: <x>~<driver>/<driver>   [/opt/flexvol/drivers]
#   FLEXVOL_SECRET_DIR       a mounted Secret: keys <driver>.conf (config), <name>.json (key files) [/etc/flexvol-secret]
#   FLEXVOL_HOST_CONFIG_DIR  the host's /etc/flexvol as mounted here                   [/host/etc/flexvol]
#   FLEXVOL_INIT_CHECK       auto | host | local | none                                [auto]
#   FLEXVOL_DOCTOR           after the init check, run each driver's doctor the same way and log
#                            its lines (a FAIL is logged, not fatal)                      [true]
#   NODE_NAME                the node's name, for the cloud drivers' doctor (the DaemonSet sets it)
#   FLEXVOL_PURGE_CONFIG     uninstall also removes <driver>.conf                      [false]
#   FLEXVOL_FORCE            uninstall even while volumes are mounted                  [false]
#   FLEXVOL_ONESHOT          exit when done instead of sleeping                        [false]
#   FLEXVOL_RESYNC_SECONDS   while sleeping, re-apply the Secret's config this often   [60; 0 = never]
#   FLEXVOL_READY_FILE       created once everything is installed and checked         [/tmp/flexvol-ready]
#   FLEXVOL_HOST_PID         a process in the host's mount namespace (1 with hostPID)   [1]
#   FLEXVOL_MOUNTINFO        where uninstall looks for mounted volumes  [/proc/<host pid>/mountinfo]
#
# Every file lands atomically: written under a dot name (kubelet's prober ignores dot names) in the
# same directory, then renamed over the final name. A new driver directory is filled under a dot
# name and renamed into place whole, so kubelet never sees a driver dir without its executable.
# A running driver is never written to: the rename leaves its inode alone. Stopping this container
# never removes anything: volumes in use must still unmount and detach.
set -eu

PLUGIN_DIR=${FLEXVOL_PLUGIN_DIR:-/flexmnt}
HOST_PLUGIN_DIR=${FLEXVOL_HOST_PLUGIN_DIR:-}
DRIVERS=${FLEXVOL_DRIVERS:-}
VENDOR=${FLEXVOL_VENDOR:-flexvol}
BUNDLE=${FLEXVOL_BUNDLE:-/opt/flexvol/drivers}
SECRET_DIR=${FLEXVOL_SECRET_DIR:-/etc/flexvol-secret}
HOST_CONFIG_DIR=${FLEXVOL_HOST_CONFIG_DIR:-/host/etc/flexvol}
INIT_CHECK=${FLEXVOL_INIT_CHECK:-auto}
DOCTOR=${FLEXVOL_DOCTOR:-true}
PURGE_CONFIG=${FLEXVOL_PURGE_CONFIG:-false}
FORCE=${FLEXVOL_FORCE:-false}
ONESHOT=${FLEXVOL_ONESHOT:-false}
READY_FILE=${FLEXVOL_READY_FILE:-/tmp/flexvol-ready}
HOST_PID=${FLEXVOL_HOST_PID:-1}
RESYNC=${FLEXVOL_RESYNC_SECONDS:-60}
QUIET=
TAG=".install.$$"

say() { printf 'flexvol-installer: %s\n' "$*"; }
die() {
	printf 'flexvol-installer: error: %s\n' "$*" >&2
	exit 1
}
is_true() { case $1 in true | TRUE | True | 1 | yes) return 0 ;; *) return 1 ;; esac; }

# Temporary names of this run, removed on any exit (an interrupted run leaves no stray files).
cleanup() {
	for t in "$PLUGIN_DIR"/.*"$TAG" "$PLUGIN_DIR"/*/.*"$TAG" "$HOST_CONFIG_DIR"/.*"$TAG"; do
		[ -e "$t" ] && rm -rf "$t"
	done
	return 0
}
trap cleanup EXIT

valid_name() {
	case $1 in
	'' | *[!a-z0-9._-]* | [._-]*) return 1 ;;
	*) return 0 ;;
	esac
}

# ---------------------------------------------------------------------------------------------
# The plugin dir: refuse clearly instead of installing where kubelet does not look.

check_plugin_dir() {
	if [ ! -d "$PLUGIN_DIR" ]; then
		die "the plugin dir $PLUGIN_DIR does not exist in this container. Mount the kubelet's" \
			"plugin dir there (a hostPath volume of the path given to kubelet --volume-plugin-dir," \
			"default /usr/libexec/kubernetes/kubelet-plugins/volume/exec) or set FLEXVOL_PLUGIN_DIR."
	fi
	cp_probe="$PLUGIN_DIR/.flexvol-write-test$TAG"
	if ! (: >"$cp_probe") 2>/dev/null; then
		die "the plugin dir $PLUGIN_DIR is not writable (read-only file system or read-only mount?)." \
			"On hosts with a read-only /usr, point kubelet --volume-plugin-dir and" \
			"kube-controller-manager --flex-volume-plugin-dir at a writable path and use the" \
			"matching overlay (see docs/install.md)."
	fi
	rm -f "$cp_probe"
	# A hostPath one level too high makes kubelet probe 'volume' or 'exec' as a driver.
	for cp_odd in kubelet-plugins volume exec; do
		if [ -d "$PLUGIN_DIR/$cp_odd" ]; then
			say "warning: $PLUGIN_DIR contains '$cp_odd/': is the hostPath a parent of the real plugin dir?"
		fi
	done
}

# ---------------------------------------------------------------------------------------------
# The drivers in the image and the selection.

bundle_source() { # <driver> -> path of the shipped executable
	for bs_s in "$BUNDLE"/*~"$1"/"$1" "$BUNDLE"/"$1"/"$1"; do
		if [ -f "$bs_s" ] && [ -x "$bs_s" ]; then
			printf '%s\n' "$bs_s"
			return 0
		fi
	done
	return 1
}

bundle_drivers() {
	for bd_d in "$BUNDLE"/*/; do
		[ -d "$bd_d" ] || continue
		bd_d=${bd_d%/}
		bd_d=${bd_d##*/}
		bd_d=${bd_d##*~}
		bundle_source "$bd_d" >/dev/null && printf '%s\n' "$bd_d"
	done
	return 0
}

selected_drivers() {
	if [ -z "$(printf '%s' "$DRIVERS" | tr -d ' ,')" ] || [ "$DRIVERS" = all ]; then
		bundle_drivers
		return 0
	fi
	for sd_d in $(printf '%s' "$DRIVERS" | tr ',' ' '); do
		printf '%s\n' "$sd_d"
	done
}

# ---------------------------------------------------------------------------------------------
# Atomic file placement.

# Shell functions share one set of variables: each function's own names carry its prefix.
# put_file <src> <dir> <name> <mode>: <dir>/<name> becomes a copy of <src>, via <dir>/.<name>.install.<pid>.
# Returns 1 when it was already identical (nothing written, so kubelet sees no event).
put_file() {
	pf_src=$1 pf_dir=$2 pf_name=$3 pf_mode=$4
	# Called in if/|| contexts, where set -e is off: every step checks for itself.
	if [ -f "$pf_dir/$pf_name" ] && cmp -s "$pf_src" "$pf_dir/$pf_name"; then
		# Even a chmod is an event kubelet re-probes on: only when the mode is wrong.
		[ -n "$(find "$pf_dir/$pf_name" -prune -perm "$pf_mode")" ] || chmod "$pf_mode" "$pf_dir/$pf_name" ||
			die "cannot chmod $pf_dir/$pf_name"
		return 1
	fi
	pf_tmp="$pf_dir/.$pf_name$TAG"
	rm -f "$pf_tmp" || die "cannot remove $pf_tmp"
	(umask 077 && cat "$pf_src" >"$pf_tmp") || die "cannot write $pf_tmp"
	chmod "$pf_mode" "$pf_tmp" || die "cannot chmod $pf_tmp"
	cmp -s "$pf_src" "$pf_tmp" || die "the copy of $pf_src at $pf_tmp is incomplete (disk full?)"
	sync "$pf_tmp" 2>/dev/null || sync
	mv -f "$pf_tmp" "$pf_dir/$pf_name" || die "cannot rename $pf_tmp to $pf_dir/$pf_name"
	return 0
}

install_driver() { # <driver>
	id_d=$1
	id_src=$(bundle_source "$id_d") || die "driver '$id_d' is not in this image (it has: $(bundle_drivers | tr '\n' ' '))"
	id_dir="$PLUGIN_DIR/$VENDOR~$id_d"
	if [ ! -d "$id_dir" ]; then
		# First install: fill a dot-named dir, then rename it into place in one step.
		id_tmpdir="$PLUGIN_DIR/.$VENDOR~$id_d$TAG"
		rm -rf "$id_tmpdir"
		{ mkdir "$id_tmpdir" && chmod 0755 "$id_tmpdir"; } || die "cannot create $id_tmpdir"
		put_file "$id_src" "$id_tmpdir" "$id_d" 0755 || true
		if [ ! -e "$id_dir" ]; then
			mv -f "$id_tmpdir" "$id_dir" || die "cannot rename $id_tmpdir to $id_dir"
		fi
		if [ -f "$id_dir/$id_d" ] && [ ! -e "$id_dir/.$VENDOR~$id_d$TAG" ]; then
			say "$id_d: installed $id_dir/$id_d"
			return 0
		fi
		# Someone created the dir meanwhile: fall through to the in-place rename.
		rm -rf "$id_dir/.$VENDOR~$id_d$TAG" "$id_tmpdir"
	fi
	[ -d "$id_dir" ] || die "$id_dir exists and is not a directory"
	if put_file "$id_src" "$id_dir" "$id_d" 0755; then
		say "$id_d: updated $id_dir/$id_d"
	else
		say "$id_d: $id_dir/$id_d is up to date"
	fi
}

# ---------------------------------------------------------------------------------------------
# Config from the mounted Secret: each key <driver>.conf or <name>.json -> <host config dir>/, 0600.

install_config() {
	if [ ! -d "$SECRET_DIR" ]; then
		[ -n "$QUIET" ] || say "no config Secret mounted at $SECRET_DIR: drivers keep the config they have"
		return 0
	fi
	ic_found=
	for ic_f in "$SECRET_DIR"/*; do
		[ -e "$ic_f" ] || continue
		ic_name=${ic_f##*/}
		# A Secret volume holds ..data and ..<timestamp> dirs and symlinks to them; keys are the links.
		[ -f "$ic_f" ] || continue
		# <driver>.conf is a driver's config; <name>.json a credential file a config names
		# (gcepd's credentials-file, a service-account key).
		case $ic_name in
		*.conf | *.json) ;;
		*)
			[ -n "$QUIET" ] || say "warning: ignoring Secret key '$ic_name' (keys are named <driver>.conf or <name>.json)"
			continue
			;;
		esac
		valid_name "${ic_name%.*}" || die "Secret key '$ic_name' is not a valid config file name"
		if [ -z "$ic_found" ]; then
			if [ ! -d "$HOST_CONFIG_DIR" ]; then
				(umask 077 && mkdir -p "$HOST_CONFIG_DIR")
			fi
			(: >"$HOST_CONFIG_DIR/.flexvol-write-test$TAG") 2>/dev/null ||
				die "the host config dir $HOST_CONFIG_DIR is not writable"
			rm -f "$HOST_CONFIG_DIR/.flexvol-write-test$TAG"
			ic_found=1
		fi
		if put_file "$ic_f" "$HOST_CONFIG_DIR" "$ic_name" 0600; then
			say "config: installed $HOST_CONFIG_DIR/$ic_name (mode 0600)"
		elif [ -z "$QUIET" ]; then
			say "config: $HOST_CONFIG_DIR/$ic_name is up to date"
		fi
	done
	[ -n "$ic_found" ] || [ -n "$QUIET" ] || say "the config Secret at $SECRET_DIR has no <driver>.conf or <name>.json keys"
	return 0
}

# ---------------------------------------------------------------------------------------------
# init check: run each driver the way kubelet will, and expect {"status":"Success",…}.

init_mode() {
	case $INIT_CHECK in
	host | local | none) printf '%s\n' "$INIT_CHECK" ;;
	auto)
		# The host's view needs hostPID (so /proc/1 is the host's init) and the host path.
		im_ns=$(readlink "/proc/$HOST_PID/ns/mnt" 2>/dev/null) || im_ns=
		if [ -n "$HOST_PLUGIN_DIR" ] && [ -n "$im_ns" ] && [ "$im_ns" != "$(readlink /proc/self/ns/mnt 2>/dev/null)" ] &&
			command -v nsenter >/dev/null 2>&1; then
			echo host
		else
			echo local
		fi
		;;
	*) die "FLEXVOL_INIT_CHECK must be auto, host, local or none (not '$INIT_CHECK')" ;;
	esac
}

check_driver() { # <driver> <mode>
	cd_d=$1 cd_mode=$2
	cd_rel="$VENDOR~$cd_d/$cd_d"
	case $cd_mode in
	none) return 0 ;;
	host)
		[ -n "$HOST_PLUGIN_DIR" ] || die "FLEXVOL_INIT_CHECK=host needs FLEXVOL_HOST_PLUGIN_DIR"
		# Is the file kubelet will run the one in our mount? (A wrong hostPath shows up here.)
		if ! cmp -s "$PLUGIN_DIR/$cd_rel" "/proc/$HOST_PID/root$HOST_PLUGIN_DIR/$cd_rel"; then
			die "$cd_d: $HOST_PLUGIN_DIR/$cd_rel on the host is missing or is not the file installed at" \
				"$PLUGIN_DIR/$cd_rel: FLEXVOL_HOST_PLUGIN_DIR and the plugin-dir hostPath disagree"
		fi
		# The host's mount namespace and a clean environment, as kubelet runs it.
		cd_out=$(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin nsenter -t "$HOST_PID" -m -- "$HOST_PLUGIN_DIR/$cd_rel" init 2>&1) || true
		cd_where="$HOST_PLUGIN_DIR/$cd_rel (host mount namespace)"
		;;
	local)
		cd_out=$(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin FLEXVOL_CONFIG_DIR="$HOST_CONFIG_DIR" \
			"$PLUGIN_DIR/$cd_rel" init 2>&1) || true
		cd_where="$PLUGIN_DIR/$cd_rel"
		;;
	esac
	case $cd_out in
	*'"status":"Success"'*)
		say "$cd_d: init OK from $cd_where"
		return 0
		;;
	esac
	say "$cd_d: init FAILED from $cd_where: ${cd_out:-<no output>}"
	return 1
}

# doctor: is the node ready for the driver (its place and the plugin dir kubelet uses, config,
# programs, kernel, run dir, cloud credentials)? Run the way init was, every line logged. A FAIL is
# reported, not fatal: the driver is installed, and works once what doctor names is fixed.
doctor_driver() { # <driver> <mode>
	dd_d=$1 dd_mode=$2
	dd_rel="$VENDOR~$dd_d/$dd_d"
	dd_rc=0
	case $dd_mode in
	host)
		dd_out=$(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin ${NODE_NAME:+"NODE_NAME=$NODE_NAME"} \
			nsenter -t "$HOST_PID" -m -- "$HOST_PLUGIN_DIR/$dd_rel" doctor 2>&1) || dd_rc=$?
		;;
	local)
		dd_out=$(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin FLEXVOL_CONFIG_DIR="$HOST_CONFIG_DIR" \
			${NODE_NAME:+"NODE_NAME=$NODE_NAME"} "$PLUGIN_DIR/$dd_rel" doctor 2>&1) || dd_rc=$?
		;;
	*) return 0 ;;
	esac
	dd_fail=0 dd_warn=0 dd_ifs=$IFS
	# One line per check: split on newlines only, and never glob.
	set -f
	IFS='
'
	for dd_line in $dd_out; do
		case $dd_line in
		FAIL*) dd_fail=$((dd_fail + 1)) ;;
		WARN*) dd_warn=$((dd_warn + 1)) ;;
		esac
		say "$dd_d: doctor: $dd_line"
	done
	IFS=$dd_ifs
	set +f
	if [ "$dd_rc" -eq 0 ] && [ "$dd_fail" -eq 0 ]; then
		say "$dd_d: doctor: passed ($dd_warn WARN)"
	else
		say "$dd_d: doctor: $dd_fail FAIL, $dd_warn WARN (exit status $dd_rc): the lines above say what to fix" \
			"(docs/install.md, Troubleshooting)"
	fi
}

doctor_all() {
	is_true "$DOCTOR" || {
		say "doctor skipped (FLEXVOL_DOCTOR=$DOCTOR)"
		return 0
	}
	da_mode=$(init_mode)
	[ "$da_mode" = none ] && return 0
	for da_d in $(selected_drivers); do
		doctor_driver "$da_d" "$da_mode"
	done
}

check_all() {
	ca_mode=$(init_mode)
	[ "$ca_mode" = none ] && {
		say "init check skipped (FLEXVOL_INIT_CHECK=none)"
		return 0
	}
	ca_failed=
	for ca_d in $(selected_drivers); do
		check_driver "$ca_d" "$ca_mode" || ca_failed="$ca_failed $ca_d"
	done
	[ -z "$ca_failed" ] || die "init failed for:$ca_failed"
}

# ---------------------------------------------------------------------------------------------
# Uninstall: refuse while kubelet has a volume of the driver mounted (it could never unmount it).

mounted_volumes() { # <driver>: mount points of its volumes, from the host's view when we have it
	mv_info=${FLEXVOL_MOUNTINFO:-/proc/$HOST_PID/mountinfo}
	[ -r "$mv_info" ] || mv_info=/proc/self/mountinfo
	while read -r _ _ _ _ mv_mp _; do
		case $mv_mp in
		*/volumes/"$VENDOR~$1"/* | */kubernetes.io/flexvolume/"$VENDOR/$1"/*) printf '%s\n' "$mv_mp" ;;
		esac
	done <"$mv_info"
}

uninstall_driver() { # <driver>
	ud_d=$1
	ud_dir="$PLUGIN_DIR/$VENDOR~$ud_d"
	if [ ! -e "$ud_dir" ]; then
		say "$ud_d: not installed"
	else
		ud_inuse=$(mounted_volumes "$ud_d")
		if [ -n "$ud_inuse" ] && ! is_true "$FORCE"; then
			die "$ud_d: volumes are still mounted, kubelet could not unmount them without the driver" \
				"(delete their pods first, or set FLEXVOL_FORCE=true):" "$(echo "$ud_inuse" | tr '\n' ' ')"
		fi
		# The executable first (kubelet unregisters the driver), then the directory.
		rm -f "$ud_dir/$ud_d"
		rm -rf "$ud_dir"
		say "$ud_d: removed $ud_dir"
	fi
	if is_true "$PURGE_CONFIG" && [ -e "$HOST_CONFIG_DIR/$ud_d.conf" ]; then
		rm -f "$HOST_CONFIG_DIR/$ud_d.conf"
		say "$ud_d: removed $HOST_CONFIG_DIR/$ud_d.conf"
	fi
}

# ---------------------------------------------------------------------------------------------

# wait_forever <message> [resync]: sleep until stopped; with resync, re-apply the Secret's config
# now and then (kubelet updates a mounted Secret in place; unchanged files are not touched).
wait_forever() {
	is_true "$ONESHOT" && exit 0
	say "$1; sleeping (stopping this pod leaves the drivers installed)"
	trap 'say "stopping"; kill "$sleeper" 2>/dev/null; exit 0' TERM INT
	interval=3600
	case $RESYNC in '' | *[!0-9]*) ;; 0) ;; *) [ -n "${2:-}" ] && interval=$RESYNC ;; esac
	QUIET=1
	while :; do
		sleep "$interval" &
		sleeper=$!
		wait "$sleeper" || true
		if [ -n "${2:-}" ] && [ "$interval" != 3600 ]; then
			(install_config) || say "warning: could not re-apply the config Secret"
		fi
	done
}

mode=${1:-install}
case $mode in
install | uninstall | check) ;;
*) die "unknown mode '$mode' (install, uninstall or check)" ;;
esac
valid_name "$VENDOR" || die "FLEXVOL_VENDOR '$VENDOR' is not a valid vendor name (a-z 0-9 . _ -)"
rm -f "$READY_FILE" 2>/dev/null || true
if [ "$mode" = check ]; then
	[ -d "$PLUGIN_DIR" ] || die "the plugin dir $PLUGIN_DIR does not exist in this container"
else
	check_plugin_dir
fi
drivers=$(selected_drivers)
[ -n "$drivers" ] || die "no drivers selected (FLEXVOL_DRIVERS='$DRIVERS', bundle $BUNDLE has: $(bundle_drivers | tr '\n' ' '))"
for d in $drivers; do
	valid_name "$d" || die "'$d' is not a valid driver name"
done

case $mode in
install)
	for d in $drivers; do
		bundle_source "$d" >/dev/null ||
			die "driver '$d' is not in this image (it has: $(bundle_drivers | tr '\n' ' '))"
	done
	for d in $drivers; do
		install_driver "$d"
	done
	install_config
	check_all
	: >"$READY_FILE" 2>/dev/null || true
	doctor_all
	wait_forever "installed: $(echo "$drivers" | tr '\n' ' ')" resync
	;;
check)
	check_all
	doctor_all
	;;
uninstall)
	for d in $drivers; do
		uninstall_driver "$d"
	done
	wait_forever "uninstalled: $(echo "$drivers" | tr '\n' ' ')"
	;;
esac
