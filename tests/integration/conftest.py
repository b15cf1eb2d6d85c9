"""Fixtures for the integration tier: real drivers, real loop devices, real
mounts, all inside a private mount namespace so nothing leaks to the host."""
import ctypes
import glob
import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))

from kubelet import Driver, Kubelet  # noqa: E402
from cloud_common import mounts_under, needs_loop  # noqa: E402

BUILD = os.path.join(REPO, os.environ.get("FLEXVOL_BUILD", "build"))
CLONE_NEWNS = 0x00020000
MS_REC, MS_PRIVATE = 0x4000, 0x40000


def _private_mount_namespace():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), "make / rprivate")


def pytest_configure(config):
    if os.geteuid() == 0:
        _private_mount_namespace()


def driver_path(name):
    path = os.path.join(BUILD, name)
    if not os.access(path, os.X_OK):
        pytest.fail("driver %s is not built (run make first)" % path)
    return path


def valgrind_wrapper(tmp_path):
    """With FLEXVOL_VALGRIND=1 every driver call runs under memcheck; its
    report goes to files, never to the driver's stderr."""
    if os.environ.get("FLEXVOL_VALGRIND") != "1":
        return ()
    return ("valgrind", "-q", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite",
            "--suppressions=%s/tests/valgrind.supp" % REPO, "--log-file=%s/valgrind.%%p" % tmp_path)


def loop_devices_backed_under(prefix):
    found = []
    for bf in glob.glob("/sys/block/loop*/loop/backing_file"):
        try:
            with open(bf) as f:
                backing = f.read().strip()
        except OSError:
            continue
        if backing.startswith(prefix + "/") or backing.startswith(prefix + " "):
            found.append("/dev/" + bf.split("/")[3])
    return found


def cleanup_tree(prefix):
    for m in sorted(mounts_under(prefix), key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True)
    for dev in loop_devices_backed_under(prefix):
        subprocess.run(["losetup", "-d", dev], capture_output=True)


class LoopNode:
    """A node with the loop driver installed: kubelet root, image root, config."""

    def __init__(self, tmp_path, wrapper=()):
        self.tmp = str(tmp_path)
        self.image_root = os.path.join(self.tmp, "images")
        self.config_dir = os.path.join(self.tmp, "etc")
        self.run_dir = os.path.join(self.tmp, "run")
        os.makedirs(self.image_root)
        os.makedirs(self.config_dir)
        with open(os.path.join(self.config_dir, "loop.conf"), "w") as f:
            f.write("[loop]\nimage-root = %s\n" % self.image_root)
        env = dict(os.environ, FLEXVOL_CONFIG_DIR=self.config_dir, FLEXVOL_RUN_DIR=self.run_dir)
        self.driver = Driver(driver_path("loop"), env, wrapper)
        self.kubelet = Kubelet(self.driver, os.path.join(self.tmp, "kubelet"))

    def image(self, name):
        return os.path.join(self.image_root, name)

    def loop_devices(self):
        return loop_devices_backed_under(self.image_root)

    def mounts(self):
        return mounts_under(self.tmp)


@pytest.fixture
def loop_node(tmp_path):
    needs_loop()
    node = LoopNode(tmp_path, valgrind_wrapper(tmp_path))
    yield node
    cleanup_tree(node.tmp)
    check_valgrind_reports(node.tmp)


# valgrind 3.19 predates openat2 (the driver falls back) and the loop ioctls;
# those notices are about valgrind, not about our code.
VALGRIND_NOISE = re.compile(r"^--\d+-- .*\n|^==\d+== (Warning: noted but unhandled ioctl.*|   This could cause.*|"
                            r"   See README_MISSING_SYSCALL_OR_IOCTL.*)\n", re.M)


def check_valgrind_reports(directory):
    for report in glob.glob(os.path.join(directory, "valgrind.*")):
        with open(report) as f:
            text = VALGRIND_NOISE.sub("", f.read())
        assert not text.strip(), "valgrind report:\n" + text
