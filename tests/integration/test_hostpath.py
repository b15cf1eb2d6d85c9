"""The hostpath driver through kubelet's mount-only sequence, with real binds.

The node's allowed root is <tmp>/allowed; <tmp>/outside holds a SECRET file
that no pod may ever see, whatever symlinks a pod author (or anyone who can
write beneath the allowed root) plants or swaps in.
"""
import ctypes
import errno
import os
import stat
import subprocess
import threading

import pytest

from cloud_common import mounts_under
from conftest import driver_path
from kubelet import Driver, Kubelet, go_json, is_likely_not_mount_point

SECRET = "SECRET: host data outside the allowed root"
INSIDE = "inside the allowed root"


def pod(n):
    return {"name": "web-%d" % n, "namespace": "default", "uid": "11111111-0000-4000-8000-%012d" % n}


POD_A, POD_B = pod(1), pod(2)


class HostpathNode:
    def __init__(self, tmp, roots=None):
        self.tmp = str(tmp)
        self.root = os.path.join(self.tmp, "allowed")
        self.outside = os.path.join(self.tmp, "outside")
        self.config_dir = os.path.join(self.tmp, "etc")
        os.makedirs(os.path.join(self.root, "data"))
        os.makedirs(self.outside)
        os.makedirs(self.config_dir)
        write(os.path.join(self.outside, "marker"), SECRET)
        write(os.path.join(self.root, "data", "marker"), INSIDE)
        self.configure(self.root if roots is None else roots)
        env = dict(os.environ, FLEXVOL_CONFIG_DIR=self.config_dir, FLEXVOL_RUN_DIR=os.path.join(self.tmp, "run"))
        self.driver = Driver(driver_path("hostpath"), env)
        self.kubelet = Kubelet(self.driver, os.path.join(self.tmp, "kubelet"))

    def configure(self, roots):
        path = os.path.join(self.config_dir, "hostpath.conf")
        if roots is False:
            if os.path.exists(path):
                os.unlink(path)
            return
        write(path, "[hostpath]\nallowed-roots = %s\n" % roots)

    def p(self, *parts):
        return os.path.join(self.root, *parts)

    def mounts(self):
        return mounts_under(self.tmp)

    def snapshot(self):
        """Every path (and its mode) under the tmp dir except the kubelet's and the run dir."""
        seen = {}
        for top in (self.root, self.outside):
            for dirpath, dirs, files in os.walk(top):
                for name in dirs + files:
                    full = os.path.join(dirpath, name)
                    seen[full] = os.lstat(full).st_mode
        return seen


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def read(path):
    with open(path) as f:
        return f.read()


@pytest.fixture
def node(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root (bind mounts)")
    n = HostpathNode(tmp_path)
    yield n
    for m in sorted(n.mounts(), key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True)


def up(node, p, opts, read_only=False):
    return node.kubelet.set_up_pod(p, "vol", opts, read_only=read_only)


def down(node, p):
    return node.kubelet.tear_down_pod(p["uid"], "vol")


def test_init_capabilities(node):
    caps = node.kubelet.init().json["capabilities"]
    assert caps == {"attach": False, "selinuxRelabel": False, "fsGroup": False, "supportsMetrics": True,
                    "requiresFSResize": False}


def test_lifecycle_two_pods_share_a_directory(node):
    k, opts = node.kubelet, {"path": node.p("data")}
    for p in (POD_A, POD_B):
        r = up(node, p, opts)
        assert r.status == "Success", r
    a, b = k.pod_dir(POD_A["uid"], "vol"), k.pod_dir(POD_B["uid"], "vol")
    assert read(os.path.join(a, "marker")) == INSIDE
    write(os.path.join(a, "from-a"), "hello")
    assert read(os.path.join(b, "from-a")) == "hello"
    assert read(node.p("data", "from-a")) == "hello", "the pod writes land in the host directory"
    assert sorted(node.mounts()) == sorted([a, b])
    for p in (POD_A, POD_B):
        assert down(node, p).status == "Success"
    assert node.mounts() == []
    assert not os.path.exists(a) and not os.path.exists(b), "kubelet's rmdir after unmount must succeed"
    assert read(node.p("data", "from-a")) == "hello", "unmount leaves the host data alone"


def test_read_only_bind(node):
    k = node.kubelet
    assert up(node, POD_A, {"path": node.p("data")}, read_only=True).status == "Success"
    assert up(node, POD_B, {"path": node.p("data")}).status == "Success"
    ro, rw = k.pod_dir(POD_A["uid"], "vol"), k.pod_dir(POD_B["uid"], "vol")
    with pytest.raises(OSError) as e:
        write(os.path.join(ro, "nope"), "x")
    assert e.value.errno == errno.EROFS
    write(os.path.join(rw, "yes"), "x")
    assert read(os.path.join(ro, "yes")) == "x"
    assert read(os.path.join(ro, "marker")) == INSIDE
    for p in (POD_A, POD_B):
        assert down(node, p).status == "Success"
    assert node.mounts() == []


def test_directory_or_create(node):
    k = node.kubelet
    path = node.p("new", "nested", "dir")
    r = up(node, POD_A, {"path": path, "type": "DirectoryOrCreate", "mode": "0750"})
    assert r.status == "Success", r
    for d in (node.p("new"), node.p("new", "nested"), path):
        st = os.lstat(d)
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o750, (d, oct(st.st_mode))
    write(os.path.join(k.pod_dir(POD_A["uid"], "vol"), "f"), "x")
    assert read(os.path.join(path, "f")) == "x"
    assert down(node, POD_A).status == "Success"
    # Default mode 0755, whatever the driver's umask; an existing directory is just used.
    r = up(node, POD_B, {"path": node.p("other"), "type": "DirectoryOrCreate"})
    assert r.status == "Success", r
    assert stat.S_IMODE(os.lstat(node.p("other")).st_mode) == 0o755
    assert up(node, POD_A, {"path": path, "type": "DirectoryOrCreate"}).status == "Success"
    assert read(os.path.join(k.pod_dir(POD_A["uid"], "vol"), "f")) == "x"
    for p in (POD_A, POD_B):
        assert down(node, p).status == "Success"


def test_directory_type_requires_an_existing_directory(node):
    before = node.snapshot()
    r = up(node, POD_A, {"path": node.p("missing")})
    assert r.status == "Failure" and "does not exist" in r.message and "DirectoryOrCreate" in r.message, r
    write(node.p("file"), "x")
    before = node.snapshot()
    r = up(node, POD_A, {"path": node.p("file")})
    assert r.status == "Failure" and "not a directory" in r.message, r
    assert node.snapshot() == before and node.mounts() == []
    assert not os.path.exists(node.kubelet.pod_dir(POD_A["uid"], "vol"))


@pytest.mark.parametrize("path", ["/etc", "/", "OUTSIDE", "ROOT-SIBLING"])
def test_paths_outside_the_allowed_roots_are_refused(node, path):
    path = {"OUTSIDE": node.outside, "ROOT-SIBLING": node.root + "-evil"}.get(path, path)
    os.makedirs(node.root + "-evil", exist_ok=True)
    r = up(node, POD_A, {"path": path})
    assert r.status == "Failure" and "outside the allowed roots" in r.message, r
    assert node.mounts() == []


def test_without_configuration_every_path_is_refused(node):
    node.configure(False)
    r = up(node, POD_A, {"path": node.p("data")})
    assert r.status == "Failure", r
    assert "allowed-roots" in r.message and "[hostpath]" in r.message and "hostpath.conf" in r.message, r
    node.configure("")
    r = up(node, POD_A, {"path": node.p("data")})
    assert r.status == "Failure" and "allowed-roots" in r.message, r
    assert node.mounts() == []


def test_several_roots_and_a_root_itself(node):
    other = os.path.join(node.tmp, "second")
    os.makedirs(os.path.join(other, "x"))
    node.configure("%s/:%s" % (node.root, other))
    assert up(node, POD_A, {"path": os.path.join(other, "x")}).status == "Success"
    assert up(node, POD_B, {"path": node.root}).status == "Success"
    assert read(os.path.join(node.kubelet.pod_dir(POD_B["uid"], "vol"), "data", "marker")) == INSIDE
    for p in (POD_A, POD_B):
        assert down(node, p).status == "Success"


def test_symlink_pointing_outside_is_refused(node):
    os.symlink(node.outside, node.p("escape"))
    os.symlink("../outside", node.p("escape-rel"))
    os.makedirs(node.p("deep"))
    os.symlink("../../outside", node.p("deep", "up"))
    for path in (node.p("escape"), node.p("escape-rel"), node.p("deep", "up"), node.p("escape", "sub")):
        before = node.snapshot()
        for kind in ("Directory", "DirectoryOrCreate"):
            r = up(node, POD_A, {"path": path, "type": kind})
            assert r.status == "Failure" and "outside its allowed root" in r.message, (path, r)
        assert node.snapshot() == before, "nothing created through the symlink"
    # An absolute symlink is resolved beneath the root too, so even one
    # naming a path inside the root (as seen from the host) is refused.
    os.symlink(node.p("data"), node.p("abs-inside"))
    assert up(node, POD_A, {"path": node.p("abs-inside")}).status == "Failure"
    assert node.mounts() == []


def test_symlink_staying_inside_is_followed(node):
    os.symlink("data", node.p("alias"))
    os.makedirs(node.p("deep"))
    os.symlink("../data", node.p("deep", "alias"))
    for path in (node.p("alias"), node.p("deep", "alias")):
        r = up(node, POD_A, {"path": path})
        assert r.status == "Success", r
        assert read(os.path.join(node.kubelet.pod_dir(POD_A["uid"], "vol"), "marker")) == INSIDE
        assert down(node, POD_A).status == "Success"


def test_dot_dot_is_refused(node):
    os.makedirs(node.p("a"))
    for path in (node.p("a", "..", "..", "outside"), node.p("a", ".."), node.p(".", "data"), node.root + "//data"):
        r = up(node, POD_A, {"path": path})
        assert r.status == "Failure" and "'..', '.' or empty components" in r.message, (path, r)
    assert node.mounts() == []


RENAME_EXCHANGE = 2
AT_FDCWD = -100


def test_symlink_swapped_in_during_the_call_never_exposes_outside(node):
    """A thread swaps `flip` between the real directory and a symlink to the
    outside directory (renameat2 RENAME_EXCHANGE, atomic) as fast as it can
    while mounts run. Every mount that succeeds must show the inside
    directory; none may show the outside one, and nothing may be created
    outside."""
    libc = ctypes.CDLL(None, use_errno=True)
    flip, other = node.p("flip"), node.p("other")
    os.makedirs(flip)
    write(os.path.join(flip, "marker"), INSIDE)
    os.symlink(node.outside, other)
    outside_before = sorted(os.listdir(node.outside))
    stop = threading.Event()
    swaps = [0]

    def swapper():
        while not stop.is_set():
            if libc.renameat2(AT_FDCWD, flip.encode(), AT_FDCWD, other.encode(), RENAME_EXCHANGE) != 0:
                raise OSError(ctypes.get_errno(), "renameat2")
            swaps[0] += 1

    t = threading.Thread(target=swapper)
    t.start()
    results = {"Success": 0, "Failure": 0}
    seen = []
    try:
        for i in range(150):
            p = pod(100 + i)
            opts = {"path": flip if i % 2 else os.path.join(flip, "made-%d" % i),
                    "type": "Directory" if i % 2 else "DirectoryOrCreate"}
            r = up(node, p, opts)
            results[r.status] += 1
            if r.status == "Success":
                d = node.kubelet.pod_dir(p["uid"], "vol")
                names = os.listdir(d)
                seen.append(names)
                assert "marker" not in names or read(os.path.join(d, "marker")) == INSIDE, \
                    "mount %d shows the outside directory" % i
                assert down(node, p).status == "Success"
            else:
                assert "outside its allowed root" in r.message or "does not exist" in r.message, r
    finally:
        stop.set()
        t.join()
    assert swaps[0] > 1000, "the swapper barely ran (%d swaps)" % swaps[0]
    assert results["Success"] > 0, results
    assert sorted(os.listdir(node.outside)) == outside_before, "something was created outside"
    assert node.mounts() == []


def test_repeated_calls_are_harmless(node):
    k, d = node.kubelet, node.driver
    path = k.pod_dir(POD_A["uid"], "vol")
    os.makedirs(path, 0o750)
    j = go_json(k.options("vol", {"path": node.p("data")}, pod=POD_A))
    for _ in range(3):
        assert d.call("mount", path, j).status == "Success"
    assert node.mounts().count(path) == 1, "a repeated mount must not stack binds"
    # kubelet's own check cannot see this bind (same file system): it calls
    # mount again, and that must be a no-op too.
    assert is_likely_not_mount_point(path)
    assert k.set_up_pod(POD_A, "vol", {"path": node.p("data")}).status == "Success"
    assert node.mounts().count(path) == 1
    # The same pod dir asked for another directory, or read-only, is refused.
    os.makedirs(node.p("data2"))
    r = d.call("mount", path, go_json(k.options("vol", {"path": node.p("data2")}, pod=POD_A)))
    assert r.status == "Failure" and "something else mounted" in r.message, r
    r = d.call("mount", path, go_json(k.options("vol", {"path": node.p("data")}, read_only=True, pod=POD_A)))
    assert r.status == "Failure" and "already mounted read-write" in r.message, r
    for _ in range(3):
        assert d.call("unmount", path).status == "Success"
    assert node.mounts() == []
    os.rmdir(path)
    assert d.call("unmount", path).status == "Success", "unmount of a missing dir"


def test_unmount_after_the_host_directory_is_gone(node):
    os.makedirs(node.p("gone"))
    assert up(node, POD_A, {"path": node.p("gone")}).status == "Success"
    os.rmdir(node.p("gone"))
    assert down(node, POD_A).status == "Success"
    assert node.mounts() == []


def test_concurrent_mounts_of_one_directory(node):
    d, k = node.driver, node.kubelet
    pods = [pod(200 + i) for i in range(8)]
    started = []
    for p in pods:
        path = k.pod_dir(p["uid"], "vol")
        os.makedirs(path, 0o750)
        started.append(d.start("mount", path, go_json(k.options("vol", {"path": node.p("data")}, pod=p))))
    assert {d.finish(s).status for s in started} == {"Success"}
    assert sorted(node.mounts()) == sorted(k.pod_dir(p["uid"], "vol") for p in pods)
    started = [d.start("unmount", k.pod_dir(p["uid"], "vol")) for p in pods]
    assert {d.finish(s).status for s in started} == {"Success"}
    assert node.mounts() == []


@pytest.mark.parametrize("opts,expect", [
    ({}, "option 'path' is required"),
    ({"path": ""}, "option 'path' is required"),
    ({"path": "relative/dir"}, "must be an absolute path"),
    ({"path": "ROOT/data", "type": "File"}, "must be Directory or DirectoryOrCreate"),
    ({"path": "ROOT/data", "type": "directory"}, "must be Directory or DirectoryOrCreate"),
    ({"path": "ROOT/x", "type": "DirectoryOrCreate", "mode": "0999"}, "octal mode"),
    ({"path": "ROOT/x", "type": "DirectoryOrCreate", "mode": "4755"}, "out of range"),
    ({"path": "ROOT/x", "type": "DirectoryOrCreate", "mode": "rwx"}, "octal mode"),
    ({"path": "ROOT/data", "mode": "0755"}, "only to type DirectoryOrCreate"),
    ({"path": "ROOT/data", "Path": "/etc"}, "unknown option 'Path'"),
])
def test_bad_input_fails_and_changes_nothing(node, opts, expect):
    opts = {k: v.replace("ROOT", node.root) for k, v in opts.items()}
    before = node.snapshot()
    r = up(node, POD_A, opts)
    assert r.status == "Failure" and expect in r.message, r
    assert node.snapshot() == before and node.mounts() == []
    assert not os.path.exists(node.kubelet.pod_dir(POD_A["uid"], "vol"))


def test_malformed_allowed_roots_are_reported(node):
    node.configure("relative/dir:%s" % node.root)
    r = up(node, POD_A, {"path": node.p("data")})
    assert r.status == "Failure" and "not an absolute path" in r.message, r


def test_unknown_calls_are_not_supported(node):
    d = node.driver
    assert d.call("getvolumename", go_json({"path": "/x"})).status == "Not supported"
    assert d.call("attach", go_json({"path": "/x"}), "node").status == "Not supported"
    assert d.call("mountdevice", "/x", "", go_json({"path": "/x"})).status == "Not supported"


def test_help_lists_options_and_config(node):
    out = subprocess.run([driver_path("hostpath"), "--help"], capture_output=True, text=True).stdout
    for word in ("path", "type", "DirectoryOrCreate", "mode", "allowed-roots", "[hostpath]"):
        assert word in out


# ---- nosuid,nodev on every bind (issue 11 #1) ----------------------------

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def run_as_nobody(path):
    """Runs the program at path as nobody. The file is opened here, as root,
    through path (so through the pod's bind), and executed as
    /proc/self/fd/N: nobody needs no search permission on pytest's 0700 tmp
    dirs, and the exec still goes through the mount path was opened on."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return subprocess.run(NOBODY + ["/proc/self/fd/%d" % fd], pass_fds=(fd,), capture_output=True,
                              text=True, timeout=30)
    finally:
        os.close(fd)


def mount_flags(path):
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == path:
                return fields[5].split(",")
    return None


@pytest.mark.parametrize("read_only", [False, True])
def test_bind_is_nosuid_nodev(node, read_only):
    """A root pod (or anyone who can write beneath an allowed root) plants a
    setuid-root program and a 0666 device node in the host directory: through
    the pod's bind, neither gives anything. Read-only binds are made by a
    remount, which must keep the flags too."""
    planted = node.p("data", "id")
    with open("/usr/bin/id", "rb") as src, open(planted, "wb") as dst:
        dst.write(src.read())
    os.chown(planted, 0, 0)
    os.chmod(planted, 0o4755)
    devnode = node.p("data", "null")
    os.mknod(devnode, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.chmod(devnode, 0o666)
    # Controls: where they were planted, both work, so the test can fail.
    direct = run_as_nobody(planted)
    if "euid=0" not in direct.stdout:
        pytest.skip("setuid does not work on the file system holding the tmp dir: %r" % direct.stdout)
    try:
        os.close(os.open(devnode, os.O_WRONLY))
    except OSError as e:
        pytest.skip("device nodes do not work on the file system holding the tmp dir: %s" % e)

    assert up(node, POD_A, {"path": node.p("data")}, read_only=read_only).status == "Success"
    pod_dir = node.kubelet.pod_dir(POD_A["uid"], "vol")
    flags = mount_flags(pod_dir)
    assert flags is not None and "nosuid" in flags and "nodev" in flags, flags
    assert ("ro" if read_only else "rw") in flags, flags
    got = run_as_nobody(os.path.join(pod_dir, "id"))
    assert got.returncode == 0 and "uid=65534" in got.stdout, got
    assert "euid=0" not in got.stdout, "the setuid-root file gave euid 0 through the bind: %s" % got.stdout
    with pytest.raises(OSError) as e:
        os.close(os.open(os.path.join(pod_dir, "null"), os.O_WRONLY))
    assert e.value.errno == errno.EACCES, e.value
    assert down(node, POD_A).status == "Success"
    assert node.mounts() == []
