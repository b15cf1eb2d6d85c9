"""Shared by test_bundle.py and test_install.py: the bundle and image root file
system (built once per session), providers, private roots and an inotify
watcher (ctypes, no inotify-tools needed)."""
import ctypes
import ctypes.util
import glob
import os
import select
import shutil
import struct
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_PLUGIN_DIR = "/usr/libexec/kubernetes/kubelet-plugins/volume/exec"
IMAGE_DRIVERS = "opt/flexvol/drivers"  # inside the image root file system
VENDOR = "flexvol"

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
MNT_DETACH = 2


def providers():
    """Every provider the top-level Makefile builds (providers/*/provider.mk)."""
    return sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(REPO, "providers/*/provider.mk")))


def _check(rc, what):
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, "%s: %s" % (what, os.strerror(e)))


def mount(src, target, fstype=None, flags=0, data=None):
    _check(libc.mount(src.encode() if src else None, target.encode(), fstype.encode() if fstype else None,
                      ctypes.c_ulong(flags), data.encode() if data else None), "mount %s on %s" % (src, target))


def bind(src, target, readonly=False, recursive=False):
    mount(src, target, None, MS_BIND | (MS_REC if recursive else 0))
    if readonly:
        mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY)


def umount_tree(prefix):
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for p in sorted((p for p in points if p == prefix or p.startswith(prefix + "/")), key=len, reverse=True):
        libc.umount2(p.encode(), MNT_DETACH)


def unshare_mounts():
    _check(libc.unshare(CLONE_NEWNS), "unshare")
    mount("none", "/", None, MS_REC | MS_PRIVATE)


# --- the bundle and the image root, built once per session --------------------------------------

_built = {}


def _run_build(argv, what):
    # Under `make check` the outer make's flags (jobserver fds, variables) must not leak in.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    p = subprocess.run(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=3600,
                       env=env)
    if p.returncode != 0:
        pytest.fail("%s failed (exit %d):\n%s" % (what, p.returncode, p.stdout[-6000:]))
    return p.stdout


def bundle_tree(tmp_path_factory):
    """`make bundle DESTDIR=<dir>` with the default PLUGIN_DIR: the tree an operator would copy."""
    if "bundle" not in _built:
        out = str(tmp_path_factory.mktemp("bundle"))
        _run_build(["make", "--no-print-directory", "bundle", "DESTDIR=" + out], "make bundle")
        _built["bundle"] = out
    return _built["bundle"]


def image_root(tmp_path_factory):
    """install/build-bundle.sh <dir>: the DaemonSet image's root file system (what the Dockerfile copies)."""
    if "image" not in _built:
        out = str(tmp_path_factory.mktemp("image"))
        _run_build(["sh", os.path.join(REPO, "install/build-bundle.sh"), out], "install/build-bundle.sh")
        _built["image"] = os.path.join(out, "rootfs")
    return _built["image"]


def elf_dynamic_info(path):
    """(interpreter or None, [DT_NEEDED names]) read from the ELF file itself."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:4] == b"\x7fELF" and data[4] == 2, "%s is not a 64-bit ELF file" % path
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    interp, dynamic, loads = None, None, []
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz, _, _ = struct.unpack_from("<IIQQQQQQ", data, phoff + i * phentsize)
        if p_type == 3:
            interp = data[p_offset:p_offset + p_filesz].rstrip(b"\0").decode()
        elif p_type == 2:
            dynamic = (p_offset, p_filesz)
        elif p_type == 1:
            loads.append((p_vaddr, p_offset, p_filesz))
    needed = []
    if dynamic:
        entries, strtab = [], None
        for off in range(dynamic[0], dynamic[0] + dynamic[1], 16):
            tag, val = struct.unpack_from("<qQ", data, off)
            if tag == 0:
                break
            entries.append((tag, val))
            if tag == 5:  # DT_STRTAB: a virtual address
                strtab = next(o + val - v for v, o, n in loads if v <= val < v + n)
        for tag, val in entries:
            if tag == 1:  # DT_NEEDED
                end = data.index(b"\0", strtab + val)
                needed.append(data[strtab + val:end].decode())
    return interp, needed


# --- inotify: what kubelet's prober would see ----------------------------------------------------

IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x2, 0x4, 0x8
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_DELETE_SELF, IN_MOVE_SELF, IN_ISDIR = 0x400, 0x800, 0x40000000
# kubelet's fsnotify watch: Create, Write, Remove, Rename, Chmod (not open/read).
KUBELET_MASK = (IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE | IN_DELETE_SELF
                | IN_MOVE_SELF | IN_ATTRIB)
EVENT_NAMES = {IN_MODIFY: "MODIFY", IN_ATTRIB: "ATTRIB", IN_CLOSE_WRITE: "CLOSE_WRITE", IN_MOVED_FROM: "MOVED_FROM",
               IN_MOVED_TO: "MOVED_TO", IN_CREATE: "CREATE", IN_DELETE: "DELETE", IN_DELETE_SELF: "DELETE_SELF",
               IN_MOVE_SELF: "MOVE_SELF"}


class Watcher:
    """A recursive inotify watch on a plugin dir, like kubelet's prober (probe.go addWatchRecursive:
    every directory at start, then each directory that appears)."""

    def __init__(self, root):
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        _check(0 if self.fd >= 0 else -1, "inotify_init1")
        self.paths = {}
        self.events = []  # (path relative to root, [event names])
        self.root = root
        for d, _, _ in os.walk(root):
            self._add(d)

    def _add(self, path):
        wd = libc.inotify_add_watch(self.fd, path.encode(), KUBELET_MASK)
        if wd >= 0:
            self.paths[wd] = path

    def poll(self, timeout=0.0):
        while select.select([self.fd], [], [], timeout)[0]:
            buf = os.read(self.fd, 65536)
            off = 0
            while off < len(buf):
                wd, mask, _, length = struct.unpack_from("iIII", buf, off)
                name = buf[off + 16:off + 16 + length].rstrip(b"\0").decode()
                off += 16 + length
                base = self.paths.get(wd, "?")
                full = os.path.join(base, name) if name else base
                names = [n for bit, n in EVENT_NAMES.items() if mask & bit]
                if mask & IN_ISDIR:
                    names.append("ISDIR")
                self.events.append((os.path.relpath(full, self.root), names))
                # probe.go: an event whose base name starts with '.' is dropped before the new
                # directory would be watched.
                if mask & (IN_CREATE | IN_MOVED_TO) and mask & IN_ISDIR and not name.startswith("."):
                    for d, _, _ in os.walk(full):
                        self._add(d)
            timeout = 0.0
        return self.events

    def visible(self):
        """Events kubelet acts on (probe.go handleWatchEvent): base name not starting with a dot."""
        return [(p, n) for p, n in self.poll() if not os.path.basename(p).startswith(".")]

    def close(self):
        os.close(self.fd)


def copy_tree(src, dst):
    shutil.copytree(src, dst, symlinks=True)
    return dst
