#!/usr/bin/python3
"""The demo's fallback when runc cannot run here (demo.py says so): roughly
what a container runtime does with a pod volume dir (run under unshare -m):
a fresh root on tmpfs, the host's /usr read-only, the volume at /data, then
pivot_root into it, so the process sees only the container's mounts."""
import ctypes
import os
import subprocess
import sys

MS_RDONLY, MS_BIND, MS_REC, MS_REMOUNT = 1, 4096, 16384, 32
libc = ctypes.CDLL(None, use_errno=True)


def mount(src, dst, fstype, flags):
    if libc.mount(src.encode(), dst.encode(), fstype.encode() if fstype else None, flags, None) != 0:
        raise OSError(ctypes.get_errno(), "mount %s on %s" % (src, dst))


def main(volume_dir):
    root = "/tmp/flexvol-demo-rootfs"
    os.makedirs(root, exist_ok=True)
    mount("tmpfs", root, "tmpfs", 0)
    for d in ("usr", "data", "proc", "oldroot"):
        os.mkdir(os.path.join(root, d))
    for link in ("bin", "lib", "lib64", "sbin"):
        os.symlink("usr/" + link, os.path.join(root, link))
    mount("/usr", root + "/usr", None, MS_BIND | MS_REC)
    mount("none", root + "/usr", None, MS_BIND | MS_REMOUNT | MS_RDONLY)
    mount(volume_dir, root + "/data", None, MS_BIND)
    os.chdir(root)
    if libc.syscall(155, b".", b"oldroot") != 0:  # pivot_root(2)
        raise OSError(ctypes.get_errno(), "pivot_root")
    os.chdir("/")
    libc.umount2(b"/oldroot", 2)  # MNT_DETACH: the host's tree is gone from view
    os.rmdir("/oldroot")
    mount("proc", "/proc", "proc", 0)
    for argv in (["/usr/bin/ls", "/"], ["/usr/bin/cat", "/data/hello.txt"],
                 ["/usr/bin/findmnt", "-o", "TARGET,FSTYPE", "/data"]):
        print("(container)$ " + " ".join(argv), flush=True)
        subprocess.run(argv, check=True)


if __name__ == "__main__":
    main(sys.argv[1])
