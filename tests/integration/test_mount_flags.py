"""Every mount and bind a driver makes carries nosuid,nodev unless the node's
config relaxes it, and a block volume with no fsType holds only ext4 or xfs
unless the node's config widens that: real loop and hostpath drivers, real
mounts, the setuid attack reproduced."""
import os
import shutil
import subprocess

import pytest

from conftest import LoopNode, cleanup_tree, needs_loop
from kubelet import go_json
from test_hostpath import HostpathNode, POD_A, POD_B

MIB = 1 << 20
SETPRIV = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def mount_flags(path):
    """The per-mount options of the topmost mount on path, from mountinfo."""
    real = os.path.realpath(path)
    found = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            target = fields[4].encode().decode("unicode_escape")
            if target == real:
                found = set(fields[5].split(","))
    assert found is not None, "%s is not mounted" % path
    return found


def plant_setuid_id(directory):
    """The attack: a root pod copies id(1) onto its volume, setuid root."""
    path = os.path.join(directory, "id")
    shutil.copy("/usr/bin/id", path)
    os.chown(path, 0, 0)
    os.chmod(path, 0o4755)
    return path


def euid_of(binary):
    """Runs binary as nobody through an inherited descriptor (the test's tmp
    dirs are not searchable by nobody); exec still honours the mount's
    nosuid."""
    if not shutil.which("setpriv"):
        pytest.skip("setpriv is not installed")
    fd = os.open(binary, os.O_RDONLY)
    try:
        out = subprocess.run(SETPRIV + ["/proc/self/fd/%d" % fd, "-u"], pass_fds=[fd], capture_output=True,
                             text=True, check=True).stdout
    finally:
        os.close(fd)
    return int(out.strip())


def device_node_opens(directory):
    """A 0666 node for /dev/null's device (1:3) planted on the volume."""
    path = os.path.join(directory, "null")
    os.mknod(path, 0o20666, os.makedev(1, 3))
    try:
        with open(path, "w") as f:
            f.write("x")
        return True
    except PermissionError:
        return False


@pytest.fixture
def loop_conf(tmp_path):
    needs_loop()
    made = []

    def make(extra=""):
        node = LoopNode(tmp_path / ("n%d" % len(made)))
        if extra:
            with open(os.path.join(node.config_dir, "loop.conf"), "a") as f:
                f.write(extra)
        made.append(node)
        return node
    yield make
    for node in made:
        cleanup_tree(node.tmp)


def loop_volume(node, spec, opts, fs_type="", pods=(POD_A,), ro_pods=()):
    k = node.kubelet
    w = k.wait_for_attach(spec, opts, "", fs_type)
    assert w.status == "Success", w
    m = k.mount_device(spec, opts, w.json["device"], fs_type)
    if m is not None and m.status != "Success":
        return m
    for p in pods:
        r = k.set_up_pod(p, spec, opts, fs_type, read_only=p in ro_pods)
        assert r is None or r.status == "Success", r
    return m


def test_loop_mounts_are_nosuid_nodev(loop_conf):
    node = loop_conf()
    k = node.kubelet
    assert loop_volume(node, "pv-a", {"image": "a.img", "size": "64Mi"}, pods=(POD_A, POD_B),
                       ro_pods=(POD_B,)).status == "Success"
    gpath, rw, ro = k.global_path("pv-a"), k.pod_dir(POD_A["uid"], "pv-a"), k.pod_dir(POD_B["uid"], "pv-a")
    for path in (gpath, rw, ro):
        assert {"nosuid", "nodev"} <= mount_flags(path), path
    assert "ro" in mount_flags(ro)
    binary = plant_setuid_id(rw)
    assert euid_of(binary) == 65534
    assert euid_of(os.path.join(ro, "id")) == 65534
    assert not device_node_opens(rw)


def test_loop_allow_setuid_and_devices_relax_the_flags(loop_conf):
    node = loop_conf("allow-setuid = true\nallow-devices = yes\n")
    k = node.kubelet
    assert loop_volume(node, "pv-b", {"image": "b.img", "size": "64Mi"}).status == "Success"
    rw = k.pod_dir(POD_A["uid"], "pv-b")
    for path in (k.global_path("pv-b"), rw):
        assert not {"nosuid", "nodev"} & mount_flags(path), path
    assert euid_of(plant_setuid_id(rw)) == 0
    assert device_node_opens(rw)


def test_bad_policy_value_fails_every_call(loop_conf):
    node = loop_conf("allow-setuid = perhaps\n")
    r = node.kubelet.wait_for_attach("pv-c", {"image": "c.img", "size": "64Mi"})
    assert r.status == "Failure" and "allow-setuid" in r.message, r


def test_hostpath_binds_are_nosuid_nodev(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root (bind mounts)")
    node = HostpathNode(tmp_path)
    try:
        k = node.kubelet
        for p, ro in ((POD_A, False), (POD_B, True)):
            r = k.set_up_pod(p, "vol", {"path": node.p("data")}, read_only=ro)
            assert r.status == "Success", r
            assert {"nosuid", "nodev"} <= mount_flags(k.pod_dir(p["uid"], "vol"))
        rw = k.pod_dir(POD_A["uid"], "vol")
        assert euid_of(plant_setuid_id(rw)) == 65534
        assert not device_node_opens(rw)
        # Relaxed by the node's config, never by a volume option.
        with open(os.path.join(node.config_dir, "hostpath.conf"), "a") as f:
            f.write("allow-setuid = true\nallow-devices = true\n")
        os.makedirs(node.p("other"))
        r = k.set_up_pod(POD_A, "vol2", {"path": node.p("other")})
        assert r.status == "Success", r
        assert not {"nosuid", "nodev"} & mount_flags(k.pod_dir(POD_A["uid"], "vol2"))
    finally:
        for m in sorted(node.mounts(), key=len, reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True)


def make_ext2(path):
    with open(path, "wb") as f:
        f.truncate(64 * MIB)
    subprocess.run(["mkfs.ext2", "-q", "-F", path], check=True, capture_output=True)


def test_ext2_with_no_fstype_is_refused(loop_conf):
    node = loop_conf()
    make_ext2(node.image("old.img"))
    r = loop_volume(node, "pv-ext2", {"image": "old.img"}, pods=())
    assert r.status == "Failure", r
    assert "ext2" in r.message and "allowed-fstypes" in r.message, r.message
    assert node.mounts() == []


def test_ext2_is_mounted_when_allowed_fstypes_lists_it(loop_conf):
    node = loop_conf("allowed-fstypes = ext2, vfat\n")
    make_ext2(node.image("old.img"))
    r = loop_volume(node, "pv-ext2", {"image": "old.img"})
    assert r.status == "Success", r
    gpath = node.kubelet.global_path("pv-ext2")
    assert subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "-M", gpath], capture_output=True,
                          text=True).stdout.strip() == "ext2"
    assert {"nosuid", "nodev"} <= mount_flags(gpath)


# A bind and its flags must arrive together: with the old bind-then-remount, a
# remount that failed, or a driver killed between the two, left a plain bind on
# the pod dir, and kubelet's retry skips a pod dir that is already a mount point,
# so a read-only pod kept a writable, suid bind. Each point breaks the pod bind
# of a read-only pod: the second mount(2) (the remount of the old way, also the
# libmount fallback forced by mount_setattr failing with ENOSYS) and the steps of
# the one-step bind. Afterwards the pod dir is either no mount at all or a
# read-only nosuid,nodev one. (A driver killed inside the fallback itself, on a
# kernel without mount_setattr, is the documented exception: design.md.)
@pytest.mark.parametrize("inject", [
    ["-e", "inject=mount:error=EBUSY:when=2"],
    ["-e", "inject=mount:signal=KILL:when=2"],
    ["-e", "inject=mount_setattr:error=ENOSYS", "-e", "inject=mount:error=EBUSY:when=2"],
    ["-e", "inject=move_mount:signal=KILL:when=1"],
    ["-e", "inject=mount_setattr:error=EIO:when=1"],
], ids=["remount-fails", "killed-before-remount", "fallback-remount-fails",
        "killed-at-move", "setattr-fails"])
def test_a_pod_bind_never_stands_without_its_flags(loop_conf, inject):
    if not shutil.which("strace"):
        pytest.skip("strace is not installed")
    node = loop_conf()
    k = node.kubelet
    assert loop_volume(node, "pv-f", {"image": "f.img", "size": "64Mi"}, pods=()).status == "Success"
    opts = k.options("pv-f", {"image": "f.img", "size": "64Mi"}, read_only=True, pod=POD_B)
    pod_dir = k.pod_dir(POD_B["uid"], "pv-f")
    os.makedirs(pod_dir, mode=0o750, exist_ok=True)
    # Under strace, as kubelet would run the driver (argv, env), only traced.
    subprocess.run(["strace", "-f", "-qq", "-o", "/dev/null"] + inject +
                   [node.driver.path, "mount", pod_dir, go_json(opts)],
                   env=node.driver.env, capture_output=True, timeout=120)
    with open("/proc/self/mountinfo") as f:
        on_pod_dir = [line for line in f if line.split()[4] == os.path.realpath(pod_dir)]
    if on_pod_dir:
        flags = mount_flags(pod_dir)
        assert {"ro", "nosuid", "nodev"} <= flags, flags
    # And kubelet's next try (it calls mount again only when the dir is no mount point) ends read-only.
    r = k.set_up_pod(POD_B, "pv-f", {"image": "f.img", "size": "64Mi"}, read_only=True)
    assert r is None or r.status == "Success", r
    assert {"ro", "nosuid", "nodev"} <= mount_flags(pod_dir)
