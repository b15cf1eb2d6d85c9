"""What the cloud drivers' tests share, whichever the cloud: the repository
and the harness on sys.path, the skeleton of a fake cloud with its driver and
a kubelet per node (CloudBase), the VM node that can resize, the make_cloud
and cloud fixtures, and the kubelet sequence, pod and mount helpers.

cinder_helpers.py and gcepd_helpers.py build their clouds on it, and the
tests of both drivers (tests/integration/test_cinder.py, test_gcepd.py, and
their tests/vm counterparts) use it. It must not import conftest: the VM tier
imports it too, under its own conftest.
"""
import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
HARNESS = os.path.join(REPO, "tests", "harness")
if HARNESS not in sys.path:
    sys.path.insert(0, HARNESS)

from tests.fakes import common as fake_common  # noqa: E402
from kubelet import Driver, Kubelet, go_json  # noqa: E402

NODES = ("node-1", "node-2")


class ResizableVMNode(fake_common.VMNode):
    """VMNode (tests/fakes/common.py) plus what an online extend needs: the
    hypervisor telling the guest the disk's new size (QMP block_resize), as
    Nova does for an in-use volume. VMNode.resize only grows the image file,
    which the guest never notices."""

    def resize(self, disk_id, size_bytes):
        super().resize(disk_id, size_bytes)
        serial = self._serials.get(disk_id)
        if serial is not None:
            node_name, _ = self.vm._disks[serial]
            self.vm.qmp.command("block_resize", **{"node-name": node_name, "size": size_bytes})


class CloudBase:
    """A fake cloud's common part: the layout under tmp (by-id/, sys/, etc/,
    run/, images/), the node where attached disks appear, the driver and a
    kubelet per node. A subclass names its driver (driver_name), calls
    __init__, starts its fake as self.fake, writes its configuration, and
    then calls start_driver()."""

    driver_name = None

    def __init__(self, tmp, node=None):
        self.tmp = str(tmp)
        self.device_dir = os.path.join(self.tmp, "by-id")
        self.sysfs = os.path.join(self.tmp, "sys")
        self.config_dir = os.path.join(self.tmp, "etc")
        self.run_dir = os.path.join(self.tmp, "run")
        os.makedirs(self.config_dir)
        self.cleanups = []   # callables run by close(), after unmounting, last first
        # Where attached disks appear: loop devices here, or a VM (node=, tests/vm).
        self.node = node or fake_common.HostLoopNode(self.device_dir, self.sysfs, os.path.join(self.tmp, "images"))

    @property
    def config_path(self):
        return os.path.join(self.config_dir, self.driver_name + ".conf")

    def start_driver(self, wrapper=(), unset_env=()):
        env = dict(os.environ, FLEXVOL_CONFIG_DIR=self.config_dir, FLEXVOL_RUN_DIR=self.run_dir)
        for name in unset_env:
            env.pop(name, None)
        build = os.path.join(REPO, os.environ.get("FLEXVOL_BUILD", "build"))
        self.driver = Driver(os.path.join(build, self.driver_name), env, wrapper)
        self.kubelets = {n: Kubelet(self.driver, os.path.join(self.tmp, "kubelet-" + n), node=n) for n in NODES}
        self.kubelet = self.kubelets["node-1"]

    def close(self):
        for fn in reversed(self.cleanups):
            fn()
        self.fake.stop()
        self.node.close()


def write_private(path, text, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def pod(n):
    return {"name": "p-%d" % n, "namespace": "default", "uid": "00000000-0000-4000-8000-%012d" % n}


POD_A, POD_B = pod(1), pod(2)


def cleanup_mounts(prefix):
    for m in sorted(mounts_under(prefix), key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True)


def mounts_under(prefix):
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(prefix + "/")]


def needs_loop():
    if os.geteuid() != 0:
        pytest.skip("needs root (mounts and loop devices)")
    if not os.path.exists("/dev/loop-control"):
        pytest.skip("no /dev/loop-control: the loop module is not available")


# Notices about valgrind itself, not errors in the driver: libblkid's SCSI
# probe ioctl is unknown to it. Lines valgrind prefixes "--pid--" are its own
# messages (an unhandled syscall such as open_tree, 428); errors say "==pid==".
VALGRIND_NOTICES = ("unhandled ioctl 0x5395", "spurious value errors", "README_MISSING_SYSCALL_OR_IOCTL")
VALGRIND_OWN_MESSAGE = re.compile(r"^--\d+-- ")


def cloud_fixtures(cls, wrapper):
    """The make_cloud and cloud fixtures for the tests of cls's driver;
    assigned at module level (make_cloud, cloud = cloud_fixtures(...)),
    pytest finds them by name. make_cloud(**kw) makes a cls(**kw) under
    tmp_path, checked and cleaned up after the test; cloud is one with the
    defaults. wrapper(tmp_path) gives the driver's command prefix: conftest's
    valgrind_wrapper, passed in because this module cannot import conftest."""

    @pytest.fixture
    def make_cloud(tmp_path):
        needs_loop()
        clouds = []

        def make(**kw):
            c = cls(tmp_path / ("c%d" % len(clouds)), wrapper=wrapper(tmp_path), **kw)
            clouds.append(c)
            return c

        yield make
        for c in clouds:
            cleanup_mounts(c.tmp)
            c.close()
            assert not c.fake.errors, "fake errors:\n" + "\n".join(c.fake.errors)
        for report in tmp_path.glob("valgrind.*"):
            text = report.read_text()
            real = [line for line in text.splitlines()
                    if not any(n in line for n in VALGRIND_NOTICES) and not VALGRIND_OWN_MESSAGE.match(line)]
            assert not "\n".join(real).strip(), "valgrind report:\n" + text

    @pytest.fixture
    def cloud(make_cloud):
        return make_cloud()

    return make_cloud, cloud


def each_call_twice(k, spec, opts, device, pod_uid, mounts):
    """The node's calls after attach, and detach, each made twice as kubelet
    may (after a restart or a lost reply): mountdevice, mount, isattached,
    unmount, unmountdevice, detach. Every repeat succeeds and none stacks a
    second mount. mounts(): the mount points that count."""
    d = k.driver
    j = go_json(k.options(spec, opts))
    g, p = k.global_path(spec), k.pod_dir(pod_uid, spec)
    os.makedirs(g, 0o750)
    os.makedirs(p, 0o750)
    for _ in range(2):
        assert d.call("mountdevice", g, device, j).status == "Success"
    assert mounts().count(g) == 1, "a repeated mountdevice must not stack mounts"
    for _ in range(2):
        assert d.call("mount", p, j).status == "Success"
    assert mounts().count(p) == 1, "a repeated mount must not stack mounts"
    for _ in range(2):
        assert k.is_attached(spec, opts).json["attached"] is True
    for _ in range(2):
        assert d.call("unmount", p).status == "Success"
    for _ in range(2):
        assert d.call("unmountdevice", g).status == "Success"
    for _ in range(2):
        assert d.call("detach", spec, k.node).status == "Success"


def attach_and_mount(cloud, spec, o, pods, fs_type="", node="node-1", read_only=False):
    """The kubelet's sequence up to pods using the volume; the device."""
    k = cloud.kubelets[node]
    a = k.attach(spec, o, fs_type, read_only)
    assert a.status == "Success", a
    w = k.wait_for_attach(spec, o, a.json.get("device", ""), fs_type, read_only)
    assert w.status == "Success", w
    m = k.mount_device(spec, o, w.json["device"], fs_type, read_only)
    assert m is None or m.status == "Success", m
    for p in pods:
        r = k.set_up_pod(p, spec, o, fs_type, read_only)
        assert r is None or r.status == "Success", r
    return w.json["device"]


def tear_down(cloud, spec, pods, node="node-1"):
    k = cloud.kubelets[node]
    for p in pods:
        r = k.tear_down_pod(p["uid"], spec)
        assert r is None or r.status == "Success", r
    r = k.unmount_device(spec)
    assert r is None or r.status == "Success", r
    d = k.detach(spec)
    assert d.status == "Success", d


def requests(cloud, method=None, path=None):
    return cloud.fake.request_log(method=method, path=path)


def fs_type_of(path):
    return subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "-M", path], capture_output=True,
                          text=True).stdout.strip()


def fs_size(path):
    st = os.statvfs(path)
    return st.f_blocks * st.f_frsize


CAP_SYS_RESOURCE = 24


def has_cap(bit):
    with open("/proc/self/status") as f:
        eff = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    return bool(eff >> bit & 1)
