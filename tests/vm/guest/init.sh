#!/bin/sh
# Stage 2 of the guest boot: PID 1 on the overlay root (host / read-only over
# 9p, tmpfs on top). Makes the guest look like a small cloud VM -- kernel
# modules from the Debian package, udevd running, loopback up -- then lets
# the command agent announce itself. When the agent ends, the guest powers off.
# Settings (kernel command line, passed through stage 1):
#   vm_repo     the repo's path on the host (and so in the guest)
#   vm_kdir     dpkg -x'ed linux-image package (has lib/modules/<version>)
#   vm_udev     dpkg -x'ed udev package
#   vm_modules  comma-separated extra modules to load at boot
#
# Under TCG everything here is CPU-bound, so the slow steps (module loading,
# udev coldplug, python start-up) run in parallel on the two vCPUs.

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8
BOOTED=/run/vm/booted   # the agent waits for this before saying "ready"

log() {
    read -r up _ < /proc/uptime
    echo "vm-init: [$up] $*"
}

poweroff_now() {
    sync
    echo o > /proc/sysrq-trigger
    sleep 60
}

die() {
    log "FAILED: $*" >&2
    poweroff_now
}

mount_tmpfs() {
    mount -t tmpfs -o "mode=$2" tmpfs "$1" || die "cannot mount tmpfs on $1"
}

mount_tmpfs /run 0755
# The repo (this script, the agent, the unpacked packages) must stay visible
# at its host path, which may be under /tmp (CI clones anywhere): carry it
# over the fresh tmpfs.
case "$vm_repo" in
/tmp/*)
    mkdir -p /run/vm/repo
    mount --bind "$vm_repo" /run/vm/repo || die "cannot bind-mount $vm_repo"
    mount_tmpfs /tmp 1777
    mkdir -p "$vm_repo"
    mount --move /run/vm/repo "$vm_repo" || die "cannot keep $vm_repo visible"
    ;;
*)
    mount_tmpfs /tmp 1777
    ;;
esac
mkdir -p /run/vm /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=0620,ptmxmode=0666 devpts /dev/pts
mount_tmpfs /dev/shm 1777
ip link set lo up || die "cannot bring lo up"

/usr/bin/python3 "$(dirname "$0")/agent.py" "$BOOTED" &
agent=$!

# Make the package's modules the system's modules, so that plain modprobe and
# the kernel's own module autoloading (mount -t xfs, udev's modalias
# loading) work as on an installed system. The .deb ships no modules.dep;
# vm.py ran depmod on the host when it unpacked the package.
# Loaded now: loop (/dev/loop-control exists only once it is) and virtio_blk
# (so the first hot-plug is as quick as the next). File systems and NFS are
# loaded by the kernel on first mount: loading them here would add ~4 s of
# CPU to every boot.
kver=$(uname -r)
mkdir -p /lib/modules
ln -sfn "$vm_kdir/lib/modules/$kver" "/lib/modules/$kver"
modprobe -a loop virtio_blk $(echo "$vm_modules" | tr , ' ') &
modprobe=$!

# udev is not installed on the host: use the unpacked package as if it were.
# Its systemd-udevd is udevadm under another name (it picks its role from
# argv[0]), as in the real package.
mount --bind "$vm_udev/lib/udev" /lib/udev || die "cannot bind-mount udev rules"
ln -sf "$vm_udev/bin/udevadm" /usr/bin/udevadm
ln -sf /usr/bin/udevadm /lib/systemd/systemd-udevd
/lib/systemd/systemd-udevd --daemon || die "udevd did not start"
# Coldplug only block devices: the emulated PC's other hardware is of no
# interest to the tests and replaying its events costs seconds under TCG.
# Everything that appears later (hot-plugged disks) gets full udev handling.
udevadm trigger --action=add --subsystem-match=block
udevadm settle --timeout=30 || die "udev coldplug did not settle"
log "udev coldplug done"

wait $modprobe || die "cannot load kernel modules"
log "modules loaded"
echo ok > "$BOOTED"

wait $agent
log "agent exited with status $?, powering off"
poweroff_now
