"""`make bundle`: self-contained drivers that run on a node holding nothing but a kernel.

Every driver answers init inside an empty root (a private mount namespace whose root is a tmpfs
holding only the plugin dir: no /usr, /lib, /etc, /proc or /dev), and the loop driver goes through
its whole lifecycle inside a root that holds only the bundle, mkfs.ext4 with the libraries
mkfs.ext4 itself needs, and /dev, /proc, /sys. Tools a driver execs are the node's; libraries are
ours."""
import os
import shutil
import stat
import subprocess

import pytest

from install_common import (DEFAULT_PLUGIN_DIR, VENDOR, bind, bundle_tree, elf_dynamic_info, libc, mount, providers,
                            umount_tree, unshare_mounts)
from kubelet import DriverError, Kubelet, Reply
from cloud_common import mounts_under, needs_loop
from conftest import cleanup_tree, loop_devices_backed_under

PROVIDERS = providers()
POD_RW = {"name": "app-0", "namespace": "default", "uid": "0a0a0a0a-aaaa-4aaa-8aaa-00000000b001"}
POD_RO = {"name": "app-1", "namespace": "default", "uid": "0b0b0b0b-bbbb-4bbb-8bbb-00000000b002"}


@pytest.fixture(scope="session")
def bundle(tmp_path_factory):
    return bundle_tree(tmp_path_factory)


def plugin_dir(tree):
    return tree + DEFAULT_PLUGIN_DIR


def test_every_provider_is_bundled_with_the_install_layout(bundle):
    assert PROVIDERS, "no providers/*/provider.mk found"
    top = plugin_dir(bundle)
    assert sorted(os.listdir(top)) == sorted("%s~%s" % (VENDOR, p) for p in PROVIDERS)
    for p in PROVIDERS:
        d = os.path.join(top, "%s~%s" % (VENDOR, p))
        # Only the executable: no dot files left from the rename, nothing kubelet would trip on.
        assert os.listdir(d) == [p], os.listdir(d)
        st = os.stat(os.path.join(d, p))
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o755


@pytest.mark.parametrize("driver", PROVIDERS)
def test_driver_is_static(bundle, driver):
    interp, needed = elf_dynamic_info(os.path.join(plugin_dir(bundle), "%s~%s" % (VENDOR, driver), driver))
    assert interp is None, "%s asks for the interpreter %s" % (driver, interp)
    assert needed == [], "%s needs shared libraries: %s" % (driver, needed)


def chroot_into(root):
    def enter():
        if libc.chroot(root.encode()) != 0:
            raise OSError("chroot %s failed" % root)
        os.chdir("/")
    return enter


def run_in_empty_root(tree, argv, tmp_path):
    """argv (paths inside the new root) in a new mount namespace whose root is a tmpfs holding only
    the plugin dir, bound read-only from the bundle."""
    root = str(tmp_path / "root")
    os.makedirs(root)

    def enter():
        unshare_mounts()
        mount("tmpfs", root, "tmpfs", 0, "mode=0755,size=1m")
        inside = root + DEFAULT_PLUGIN_DIR
        os.makedirs(inside)
        bind(plugin_dir(tree), inside, readonly=True)
        libc.chroot(root.encode())
        os.chdir("/")
        if os.listdir("/") != ["usr"] or os.path.exists("/lib") or os.path.exists("/proc/self"):
            os._exit(99)

    p = subprocess.run(argv, preexec_fn=enter, capture_output=True, text=True, env={}, timeout=60)
    return p


@pytest.mark.parametrize("driver", PROVIDERS)
def test_init_in_an_empty_root(bundle, driver, tmp_path):
    needs_loop()
    path = "%s/%s~%s/%s" % (DEFAULT_PLUGIN_DIR, VENDOR, driver, driver)
    p = run_in_empty_root(bundle, [path, "init"], tmp_path)
    assert p.returncode != 99, "the empty root was not empty"
    reply = Reply([path, "init"], p.returncode, p.stdout, p.stderr)
    assert not reply.contract_errors, reply.contract_errors
    assert reply.status == "Success", reply
    assert isinstance(reply.json.get("capabilities", {}).get("attach"), bool), reply


def test_the_dynamic_build_does_not_run_in_an_empty_root(tmp_path):
    """The control for the test above: Debian's build needs the node's loader and libraries."""
    needs_loop()
    dyn = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "build", "loop")
    if not os.path.exists(dyn) or elf_dynamic_info(dyn)[0] is None:
        pytest.skip("no dynamically linked build/loop to compare with")
    tree = str(tmp_path / "tree")
    os.makedirs(plugin_dir(tree) + "/flexvol~loop")
    shutil.copy(dyn, plugin_dir(tree) + "/flexvol~loop/loop")
    with pytest.raises(OSError):  # ENOENT: its interpreter does not exist there
        run_in_empty_root(tree, [DEFAULT_PLUGIN_DIR + "/flexvol~loop/loop", "init"], tmp_path)


# --- the loop lifecycle inside a minimal root -------------------------------------------------------

def ldd_closure(binary):
    """The files a dynamic program needs: itself, its loader and its libraries (real paths)."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    files = [binary]
    for line in out.splitlines():
        parts = line.split()
        if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
            files.append(parts[2])
        elif parts and parts[0].startswith("/"):
            files.append(parts[0])
    return files


def copy_with_parents(path, root, as_path=None):
    dst = root + (as_path or path)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copy2(os.path.realpath(path), dst)


class ChrootDriver:
    """Runs the driver chrooted into `root`, the way kubelet on that node would: the harness
    works with paths as the test sees them, the driver gets them as seen inside the root."""

    def __init__(self, root, path, env):
        self.root, self.path, self.env, self.history = root, path, env, []

    def _inside(self, arg):
        arg = str(arg)
        return arg[len(self.root):] if arg.startswith(self.root + "/") else arg

    def call(self, *args, timeout=600):
        argv = [self.path] + [self._inside(a) for a in args]
        p = subprocess.run(argv, preexec_fn=chroot_into(self.root), stdin=subprocess.DEVNULL, capture_output=True,
                           env=self.env, timeout=timeout, text=True)
        reply = Reply(argv, p.returncode, p.stdout, p.stderr)
        self.history.append(reply)
        if reply.contract_errors:
            raise DriverError("%r broke the contract: %s" % (argv[1:2], "; ".join(reply.contract_errors)))
        return reply


@pytest.fixture
def minimal_root(bundle, tmp_path):
    """A root holding only: the bundle's plugin dir, mkfs.ext4 and its libraries, /dev, /proc, /sys,
    the driver's config and state dirs, the image root and kubelet's root."""
    needs_loop()
    root = str(tmp_path / "node")
    os.makedirs(root)
    mount("tmpfs", root, "tmpfs", 0, "mode=0755")
    try:
        for d in ("dev", "proc", "sys", "etc/flexvol", "run", "images", "var/lib/kubelet", DEFAULT_PLUGIN_DIR[1:]):
            os.makedirs(os.path.join(root, d), exist_ok=True)
        bind(plugin_dir(bundle), root + DEFAULT_PLUGIN_DIR, readonly=True)
        bind("/dev", root + "/dev", recursive=True)
        bind("/sys", root + "/sys", recursive=True)
        mount("proc", root + "/proc", "proc")
        with open(root + "/etc/flexvol/loop.conf", "w") as f:
            f.write("[loop]\nimage-root = /images\n")
        yield root
    finally:
        cleanup_tree(root)
        umount_tree(root)


def add_mkfs_ext4(root):
    mkfs = shutil.which("mkfs.ext4", path="/usr/sbin:/sbin")
    assert mkfs, "mkfs.ext4 (e2fsprogs) is needed on the test machine"
    files = ldd_closure(mkfs)
    copy_with_parents(mkfs, root, "/usr/sbin/mkfs.ext4")
    for f in files[1:]:
        copy_with_parents(f, root)
    return files


def loop_kubelet(root):
    env = {"FLEXVOL_CONFIG_DIR": "/etc/flexvol", "FLEXVOL_RUN_DIR": "/run/flexvol"}
    driver = ChrootDriver(root, "%s/%s~loop/loop" % (DEFAULT_PLUGIN_DIR, VENDOR), env)
    return driver, Kubelet(driver, root + "/var/lib/kubelet")


def fs_type(path):
    return subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "-M", path], capture_output=True, text=True).stdout.strip()


def test_loop_lifecycle_in_a_minimal_root(minimal_root):
    if "loop" not in PROVIDERS:
        pytest.skip("no loop provider")
    root = minimal_root
    add_mkfs_ext4(root)
    # Nothing but what we put there: no shell, no libc outside mkfs.ext4's closure, no mount(8).
    for absent in ("/bin/sh", "/usr/bin/mount", "/sbin/blkid", "/usr/sbin/losetup", "/etc/passwd"):
        assert not os.path.lexists(root + absent), absent
    driver, k = loop_kubelet(root)
    opts = {"image": "vol.img", "size": "64Mi"}
    assert k.init().json["capabilities"]["attach"] is True
    a = k.attach("pv-min", opts, "ext4")
    assert a.status == "Success", a
    w = k.wait_for_attach("pv-min", opts, "", "ext4")
    assert w.status == "Success", w
    dev = w.json["device"]
    assert dev.endswith("/vol.img"), "waitforattach replies with the image path"
    m = k.mount_device("pv-min", opts, dev, "ext4")
    assert m.status == "Success", m
    assert fs_type(k.global_path("pv-min")) == "ext4", "mkfs.ext4 from the minimal root did not run"
    for pod, ro in ((POD_RW, False), (POD_RO, True)):
        r = k.set_up_pod(pod, "pv-min", opts, "ext4", read_only=ro)
        assert r.status == "Success", r
    rw, ro = k.pod_dir(POD_RW["uid"], "pv-min"), k.pod_dir(POD_RO["uid"], "pv-min")
    with open(os.path.join(rw, "hello"), "w") as f:
        f.write("from the minimal root")
    with open(os.path.join(ro, "hello")) as f:
        assert f.read() == "from the minimal root"
    with pytest.raises(OSError):
        open(os.path.join(ro, "nope"), "w")
    for pod in (POD_RW, POD_RO):
        assert k.tear_down_pod(pod["uid"], "pv-min").status == "Success"
    assert k.unmount_device("pv-min").status == "Success"
    assert k.detach("pv-min").status == "Success"
    assert mounts_under(root + "/var") == []
    assert loop_devices_backed_under(root + "/images") == []
    # A second lifecycle finds the file system (no second mkfs) and the data.
    w = k.wait_for_attach("pv-min", opts, "", "ext4")
    assert k.mount_device("pv-min", opts, w.json["device"], "ext4").status == "Success"
    assert k.set_up_pod(POD_RW, "pv-min", opts, "ext4").status == "Success"
    with open(os.path.join(rw, "hello")) as f:
        assert f.read() == "from the minimal root"
    assert k.tear_down_pod(POD_RW["uid"], "pv-min").status == "Success"
    assert k.unmount_device("pv-min").status == "Success"
    assert loop_devices_backed_under(root + "/images") == []


def test_tools_are_the_nodes(minimal_root):
    """Without mkfs.ext4 on the node the driver says which package to install, and changes nothing."""
    if "loop" not in PROVIDERS:
        pytest.skip("no loop provider")
    driver, k = loop_kubelet(minimal_root)
    opts = {"image": "bare.img", "size": "64Mi"}
    dev = k.wait_for_attach("pv-bare", opts, "", "ext4").json["device"]
    r = k.mount_device("pv-bare", opts, dev, "ext4")
    assert r.status == "Failure" and "mkfs.ext4" in r.message and "e2fsprogs" in r.message, r
    assert mounts_under(minimal_root + "/var") == []
    # The refused mountdevice let its loop device go (auto-cleared with its last fd).
    assert loop_devices_backed_under(minimal_root + "/images") == []
