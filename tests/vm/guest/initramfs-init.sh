#!/bin/busybox sh
# Stage 1 of the guest boot, run as /init from the initramfs built by vm.py.
# It loads just enough modules to mount the host's / (9p, read-only), puts a
# tmpfs overlay on top so the guest can write, and switches into it.
# Settings come from the kernel command line as environment variables:
#   vm_stage2  script to exec as PID 1 in the new root (tests/vm/guest/init.sh)
# The remaining vm_* variables are passed through to stage 2 untouched.

/bin/busybox --install -s /bin
export PATH=/bin

die() {
    echo "vm-init: $*" >&2
    # PID 1 exiting panics the kernel; with panic=-1 and -no-reboot QEMU exits,
    # so the host sees the failure at once instead of waiting for a timeout.
    exit 1
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# The initramfs has no /dev/console node, so the kernel started us with no
# stdio at all; everything after this (stage 2 too) logs to the console.
exec </dev/console >/dev/console 2>&1

# modules.list is in dependency order (from modprobe --show-depends).
while read -r ko; do
    insmod "/modules/$ko" || die "insmod $ko failed"
done < /modules.list

mkdir -p /lower /upper /newroot
# msize: 9p's default 8 KiB messages make every file read a long chain of
# round trips under TCG; 512000 is the most virtio allows. cache=loose keeps
# looked-up files and their pages in the guest: ~15% less CPU for the boot
# and faster program start-up, at the price that host files changed while
# the guest runs may look stale in it.
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /lower ||
    die "cannot mount the host root over 9p"
mount -t tmpfs -o mode=0755 upper /upper
mkdir /upper/data /upper/work
mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work \
    overlay /newroot || die "cannot mount the overlay root"

for fs in dev proc sys; do
    mount --move "/$fs" "/newroot/$fs" || die "cannot move /$fs"
done
[ -x "/newroot$vm_stage2" ] || die "stage 2 '$vm_stage2' not found in the host root"
exec switch_root /newroot "$vm_stage2"
