"""The nfs driver against a real NFSv4 server, run INSIDE the VM guest.

The host kernel has no NFS client, so tests/vm/test_nfs.py boots a guest
and runs this file there with pytest (its name does not match test_*.py, so
the host never collects it). Every test plays kubelet with the same harness
as the host tiers; the server is nfs-ganesha on the guest's loopback,
exporting a tmpfs, and the client is the guest kernel's NFS.
"""
import errno
import os
import select
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))
sys.path.insert(0, os.path.join(REPO, "tests", "vm", "guest"))

import ganesha  # noqa: E402
from kubelet import Driver, Kubelet, go_json  # noqa: E402

BUILD = os.path.join(REPO, os.environ.get("FLEXVOL_BUILD", "build"))
DRIVER = os.path.join(BUILD, "nfs")
SERVER = "127.0.0.1"
MAIN_PORT = 2049     # the default NFS port: no port= option needed
STOP_PORT = 20490    # a second server, for the tests that freeze it
SQUASH_PORT = 20492  # a third, squashing root


def pod(n, ns="default", name=None, sa="default"):
    return {"name": name or "pod-%d" % n, "namespace": ns, "uid": "7e57c0de-0000-4000-8000-%012d" % n,
            "serviceAccount": sa}


class NfsServer:
    """ganesha exporting a fresh tmpfs (its VFS backend needs real file handles)."""

    def __init__(self, port, squash="No_Root_Squash"):
        self.port = port
        self.export = "/tmp/nfs-export-%d" % port
        os.makedirs(self.export, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", self.export], check=True)
        self.pid = ganesha.start(self.export, port, squash=squash)
        self.share = "/export"

    def path(self, *parts):
        return os.path.join(self.export, *parts)

    def freeze(self):
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self):
        os.kill(self.pid, signal.SIGCONT)

    def close(self):
        self.thaw()
        ganesha.stop(self.port)
        subprocess.run(["umount", "-l", self.export])


@pytest.fixture(scope="module")
def server():
    s = NfsServer(MAIN_PORT)
    yield s
    s.close()


@pytest.fixture
def frozen_server():
    """A server of its own: tests stop it (SIGSTOP) and let it go again."""
    s = NfsServer(STOP_PORT)
    yield s
    s.close()


def mounts_under(prefix):
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(prefix + "/")]


def mount_line(path):
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if line.split()[4] == path:
                return line
    return None


def leftover_processes():
    """mount.nfs or driver processes still alive (the driver forks helpers)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv0 = f.read().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        if argv0.endswith("mount.nfs") or argv0 == DRIVER:
            found.append((pid, argv0))
    return found


class Node:
    def __init__(self, tmp, config=""):
        self.tmp = str(tmp)
        self.config_dir = os.path.join(self.tmp, "etc")
        os.makedirs(self.config_dir)
        self.configure(config)
        env = dict(os.environ, FLEXVOL_CONFIG_DIR=self.config_dir, FLEXVOL_RUN_DIR=os.path.join(self.tmp, "run"))
        if not os.access(DRIVER, os.X_OK):
            pytest.fail("driver %s is not built (run make on the host first)" % DRIVER)
        self.driver = Driver(DRIVER, env)
        self.kubelet = Kubelet(self.driver, os.path.join(self.tmp, "kubelet"))

    def configure(self, text, allowed=SERVER):
        """allowed: the [nfs] allowed-servers line (None: no such key)."""
        with open(os.path.join(self.config_dir, "nfs.conf"), "w") as f:
            f.write("[nfs]\n" + ("allowed-servers = %s\n" % allowed if allowed is not None else "") + text)

    def mounts(self):
        return mounts_under(self.tmp)

    def dir(self, p, spec):
        return self.kubelet.pod_dir(p["uid"], spec)


@pytest.fixture
def node(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    n = Node(tmp_path)
    yield n
    for m in sorted(n.mounts(), key=len, reverse=True):
        subprocess.run(["umount", "-l", m])


def vol(server, **extra):
    o = {"server": SERVER, "share": server.share}
    if server.port != 2049:
        o["mountOptions"] = "port=%d" % server.port
    o.update(extra)
    return o


def read(path):
    with open(path) as f:
        return f.read()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


# --------------------------------------------------------------------------

def test_init_capabilities(node):
    caps = node.kubelet.init().json["capabilities"]
    assert caps == {"attach": False, "selinuxRelabel": False, "fsGroup": False, "supportsMetrics": True,
                    "requiresFSResize": False}
    node.configure("fsgroup = true\n")
    assert node.kubelet.init().json["capabilities"]["fsGroup"] is True
    node.configure("fsgroup = maybe\n")
    assert node.kubelet.init().json["capabilities"]["fsGroup"] is False, "init never fails"


# The options of both PVs in install/examples/nfs-shared-subdir/, less
# server and share (test_example_manifests_match checks they agree).
SEED_OPTIONS = {"subDir": "shared/data", "createSubDir": "true", "subDirMode": "0775",
                "mountOptions": "vers=4.1,hard,timeo=600,noatime", "mountTimeout": "60"}
EXAMPLES = os.path.join(REPO, "install", "examples", "nfs-shared-subdir")


def test_example_manifests_match_the_seed_scenario():
    yaml = pytest.importorskip("yaml")
    with open(os.path.join(EXAMPLES, "00-persistentvolumes.yaml")) as f:
        pvs = {d["metadata"]["name"]: d for d in yaml.safe_load_all(f)}
    assert sorted(pvs) == ["shared-reader", "shared-writer"]
    for name, pv in pvs.items():
        assert pv["spec"]["flexVolume"]["driver"] == "flexvol/nfs"
        opts = dict(pv["spec"]["flexVolume"]["options"])
        assert opts.pop("server") and opts.pop("share") == "/export"
        want = dict(SEED_OPTIONS)
        if name == "shared-reader":
            want.pop("subDirMode")
        assert opts == want, name
    with open(os.path.join(EXAMPLES, "00-node-config.yaml")) as f:
        conf = yaml.safe_load(f)["stringData"]["nfs.conf"]
    allowed = [line.split("=", 1)[1].split() for line in conf.splitlines() if line.startswith("allowed-servers")]
    assert allowed == [[pvs["shared-writer"]["spec"]["flexVolume"]["options"]["server"]]], conf
    with open(os.path.join(EXAMPLES, "03-deployment-reader.yaml")) as f:
        dep = yaml.safe_load(f)
    claim = dep["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]
    assert claim == {"claimName": "shared-reader", "readOnly": True}, "readOnly comes from the claim reference"


def test_seed_scenario_shared_subdir_writer_and_reader(node, server):
    """Two PVs on the same server/share/subDir: deployment A (two pods) mounts
    shared-writer read-write, deployment B (two pods) shared-reader read-only."""
    k, d = node.kubelet, node.driver
    common = vol(server, **SEED_OPTIONS)
    writer, reader = "shared-writer", "shared-reader"
    a_pods = [pod(1, "team", "deploy-a-1"), pod(2, "team", "deploy-a-2")]
    b_pods = [pod(3, "team", "deploy-b-1"), pod(4, "team", "deploy-b-2")]
    # Deployment A's pods start together: kubelet mounts them concurrently.
    started = []
    for p in a_pods:
        os.makedirs(node.dir(p, writer), 0o750)
        started.append(d.start("mount", node.dir(p, writer), go_json(k.options(writer, common, pod=p))))
    for s in started:
        r = d.finish(s)
        assert r.status == "Success", r
    for p in b_pods:
        r = k.set_up_pod(p, reader, common, read_only=True)
        assert r.status == "Success", r
    for p in a_pods + b_pods:
        spec = writer if p in a_pods else reader
        line = mount_line(node.dir(p, spec))
        assert line and "nfs4" in line and "%s:%s/shared/data" % (SERVER, server.share) in line, line
        flags = line.split()[5].split(",")
        assert "nosuid" in flags and "nodev" in flags
        assert ("ro" if spec == reader else "rw") in flags, line

    a1, a2 = (node.dir(p, writer) for p in a_pods)
    b1, b2 = (node.dir(p, reader) for p in b_pods)
    write(os.path.join(a1, "greeting"), "written by A-1")
    os.makedirs(os.path.join(a2, "sub"))
    write(os.path.join(a2, "sub", "more"), "written by A-2")
    assert read(server.path("shared", "data", "greeting")) == "written by A-1", "lands on the server"
    for b in (b1, b2):
        assert read(os.path.join(b, "greeting")) == "written by A-1"
        assert read(os.path.join(b, "sub", "more")) == "written by A-2"
        for attempt in (lambda: write(os.path.join(b, "nope"), "x"), lambda: os.mkdir(os.path.join(b, "nope")),
                        lambda: os.unlink(os.path.join(b, "greeting"))):
            with pytest.raises(OSError) as e:
                attempt()
            assert e.value.errno == errno.EROFS
    assert read(server.path("shared", "data", "greeting")) == "written by A-1", "B changed nothing"

    # A goes away; B keeps working and sees what the server has.
    write(os.path.join(a1, "last-words"), "bye")
    for p in a_pods:
        r = k.tear_down_pod(p["uid"], writer)
        assert r.status == "Success", r
        assert not os.path.exists(node.dir(p, writer))
    write(server.path("shared", "data", "after-a"), "still here")
    for b in (b1, b2):
        assert read(os.path.join(b, "greeting")) == "written by A-1"
        assert read(os.path.join(b, "last-words")) == "bye"
        assert read(os.path.join(b, "after-a")) == "still here"
    for p in b_pods:
        assert k.tear_down_pod(p["uid"], reader).status == "Success"
    assert node.mounts() == []
    assert read(server.path("shared", "data", "greeting")) == "written by A-1", "unmount keeps the data"


def test_subdir_templates_and_creation(node, server):
    k = node.kubelet
    opts = vol(server, subDir="tenants/${pod.namespace}/${pv.name}/${pod.name}", createSubDir="true",
               subDirMode="0750")
    p1, p2 = pod(11, "ns-a", "web-0"), pod(12, "ns-b", "web-0")
    for p in (p1, p2):
        r = k.set_up_pod(p, "pv-tmpl", opts)
        assert r.status == "Success", r
    for p in (p1, p2):
        where = server.path("tenants", p["namespace"], "pv-tmpl", p["name"])
        assert os.path.isdir(where)
        for d in (server.path("tenants"), server.path("tenants", p["namespace"]), where):
            assert stat.S_IMODE(os.stat(d).st_mode) == 0o750, (d, oct(os.stat(d).st_mode))
        write(os.path.join(node.dir(p, "pv-tmpl"), "whoami"), p["namespace"])
        assert read(os.path.join(where, "whoami")) == p["namespace"], "each pod lands in its own directory"
    # Default mode 0775; ${pod.uid} and ${serviceAccount.name}.
    p3 = pod(13, sa="builder")
    r = k.set_up_pod(p3, "pv-uid", vol(server, subDir="by-uid/${pod.uid}-${serviceAccount.name}",
                                       createSubDir="true"))
    assert r.status == "Success", r
    made = server.path("by-uid", "%s-builder" % p3["uid"])
    assert stat.S_IMODE(os.stat(made).st_mode) == 0o775
    # An existing subDir needs no createSubDir; a missing one without it fails, creating nothing.
    r = k.set_up_pod(pod(14), "pv-exist", vol(server, subDir="by-uid"))
    assert r.status == "Success", r
    before = sorted(os.listdir(server.export))
    r = k.set_up_pod(pod(15), "pv-missing", vol(server, subDir="not/there"))
    assert r.status == "Failure" and "does not exist" in r.message and "createSubDir" in r.message, r
    assert sorted(os.listdir(server.export)) == before
    assert not os.path.exists(node.dir(pod(15), "pv-missing"))
    for p, spec in ((p1, "pv-tmpl"), (p2, "pv-tmpl"), (p3, "pv-uid"), (pod(14), "pv-exist")):
        assert k.tear_down_pod(p["uid"], spec).status == "Success"
    assert node.mounts() == []


def test_subdir_across_a_nested_export(node, server):
    """share "/" is ganesha's NFSv4 pseudo root; subDir "export/..." crosses
    into the real export there (a separate file system the client
    automounts): the walk follows the crossing as the kernel mount does."""
    os.makedirs(server.path("nested", "data"))
    write(server.path("nested", "data", "marker"), "nested")
    r = node.kubelet.set_up_pod(pod(16), "pv-nested", dict(vol(server), share="/", subDir="export/nested/data"))
    assert r.status == "Success", r
    assert read(os.path.join(node.dir(pod(16), "pv-nested"), "marker")) == "nested"
    assert node.kubelet.tear_down_pod(pod(16)["uid"], "pv-nested").status == "Success"


def test_mount_options_accepted(node, server):
    k = node.kubelet
    opts = vol(server, mountOptions="vers=4.1,hard,timeo=150,retrans=3,noatime,noexec,actimeo=5")
    r = k.set_up_pod(pod(21), "pv-opts", opts, read_only=True)
    assert r.status == "Success", r
    line = mount_line(node.dir(pod(21), "pv-opts"))
    mount_flags, super_opts = line.split()[5].split(","), line.split(" - ")[1].split()[2].split(",")
    for f in ("ro", "nosuid", "nodev", "noexec", "noatime"):
        assert f in mount_flags, line
    for o in ("vers=4.1", "hard", "timeo=150", "retrans=3", "acregmin=5", "acdirmax=5"):
        assert o in super_opts, line
    assert k.tear_down_pod(pod(21)["uid"], "pv-opts").status == "Success"


@pytest.mark.parametrize("mount_options,why", [
    ("suid", "always mounts nosuid"),
    ("dev", "always mounts nodev"),
    ("rw", "readOnly"),
    ("vers=4.1,ro", "readOnly"),
    ("addr=10.6.6.6", "option 'server'"),
    ("sec=sys,suid", "always mounts nosuid"),
    ("vers=4.1,,hard", "empty entry"),
    ("bg", "background"),
    ("remount", "not an NFS mount option"),
    ("vers=9", "one of"),
    ("hard,soft", "conflicts"),
])
def test_mount_options_refused(node, server, mount_options, why):
    r = node.kubelet.set_up_pod(pod(22), "pv-bad", vol(server, mountOptions=mount_options), read_only=True)
    assert r.status == "Failure" and why in r.message, r
    assert node.mounts() == [] and not os.path.exists(node.dir(pod(22), "pv-bad"))


@pytest.mark.parametrize("opts,why", [
    ({"server": ""}, "option 'server' is required"),
    ({"server": "fd00::1"}, "in brackets"),
    ({"server": "nfs,addr=10.6.6.6"}, "not a host name"),
    ({"share": "export"}, "absolute path"),
    ({"share": "/export/../etc"}, "'..'"),
    ({"subDir": "../escape"}, "'..'"),
    ({"subDir": "a/../../escape"}, "'..'"),
    ({"subDir": "/abs"}, "relative path"),
    ({"subDir": "a//b"}, "empty components"),
    ({"subDir": "${pod.labels}"}, "unknown variable"),
    ({"subDir": "x/${pod.name}", "kubernetes.io/pod.name": ".."}, "not a valid directory name"),
    ({"createSubDir": "yes", "subDir": "x"}, "true or false"),
    ({"createSubDir": "true"}, "needs option 'subDir'"),
    ({"subDirMode": "999", "subDir": "x"}, "octal"),
    ({"mountTimeout": "0"}, "mountTimeout"),
    ({"mountTimeout": "1m"}, "mountTimeout"),
    ({"mountTimeout": "3600"}, "above this node's limit of 120 s ([nfs] max-mount-timeout)"),
    ({"subdir": "x"}, "unknown option 'subdir'"),
    ({"subDir": "x", "createSubDir": "true", "subDirUid": "-1"}, "option 'subDirUid' must be a number"),
    ({"subDir": "x", "createSubDir": "true", "subDirGid": "4294967295"}, "out of range"),
    ({"subDir": "x", "subDirUid": "1000"}, "needs createSubDir"),
    ({"subDir": "shared/${pv.name}", "createSubDir": "true", "subDirOnUnmount": "delete"}, "may be shared"),
    ({"subDir": "p/${pod.uid}", "subDirOnUnmount": "archive"}, "needs createSubDir"),
    ({"subDir": "p/${pod.uid}", "createSubDir": "true", "subDirOnUnmount": "purge"}, "retain, delete or archive"),
])
def test_bad_input_fails_and_changes_nothing(node, server, opts, why):
    before = sorted(os.listdir(server.export))
    r = node.kubelet.set_up_pod(pod(23), "pv-bad", dict(vol(server), **opts))
    assert r.status == "Failure" and why in r.message, r
    assert node.mounts() == [] and sorted(os.listdir(server.export)) == before


def test_symlinks_on_the_server_are_not_followed(node, server):
    """Someone with write access to the export plants symlinks: the kernel
    would follow them when resolving server:/share/subDir; the driver refuses
    them, and creates nothing through them."""
    os.makedirs(server.path("jail", "real"))
    os.makedirs(server.path("other-tenant"))
    write(server.path("other-tenant", "secret"), "other tenant's data")
    os.symlink("/", server.path("jail", "to-root"))
    os.symlink("../other-tenant", server.path("jail", "sideways"))
    os.symlink("real", server.path("jail", "alias"))
    k = node.kubelet
    before = sorted(os.listdir(server.export))
    for sub, create in (("jail/to-root", "false"), ("jail/sideways", "false"), ("jail/sideways/new", "true"),
                        ("jail/alias", "false"), ("jail/to-root/new", "true")):
        r = k.set_up_pod(pod(31), "pv-link", vol(server, subDir=sub, createSubDir=create))
        assert r.status == "Failure" and "is a symlink on the server" in r.message, (sub, r)
        assert node.mounts() == []
    assert sorted(os.listdir(server.export)) == before
    assert os.listdir(server.path("other-tenant")) == ["secret"], "nothing created through the symlink"
    # A file where a directory is expected.
    write(server.path("jail", "file"), "x")
    r = k.set_up_pod(pod(31), "pv-link", vol(server, subDir="jail/file/x", createSubDir="true"))
    assert r.status == "Failure" and "not a directory" in r.message, r
    r = k.set_up_pod(pod(31), "pv-link", vol(server, subDir="jail/real"))
    assert r.status == "Success", r
    assert k.tear_down_pod(pod(31)["uid"], "pv-link").status == "Success"


def test_symlink_swapped_in_during_mounts_is_never_mounted(node, server):
    """Another NFS client of the export keeps renaming jail2/flip between a
    real directory and a symlink to another tenant's directory while mounts
    run. (The renames go through NFS: ganesha caches what it has seen, so
    changes made behind its back on the exported tmpfs would not race.) A
    mount either fails or shows the real directory, never the victim's."""
    os.makedirs(server.path("jail2", "flip"))
    write(server.path("jail2", "flip", "marker"), "mine")
    os.makedirs(server.path("victim"))
    write(server.path("victim", "marker"), "VICTIM")
    os.symlink("../victim", server.path("jail2", "link"))
    tenant = os.path.join(node.tmp, "tenant")
    os.makedirs(tenant)
    subprocess.run(["mount", "-t", "nfs4", "%s:%s" % (SERVER, server.share), tenant], check=True)
    stop = threading.Event()
    swaps = [0]

    def swapper():
        flip, link, hold = (os.path.join(tenant, "jail2", n) for n in ("flip", "link", "hold"))
        while not stop.is_set():
            os.rename(flip, hold)   # flip: gone
            os.rename(link, flip)   # flip: the symlink
            os.rename(flip, link)   # flip: gone
            os.rename(hold, flip)   # flip: the directory
            swaps[0] += 1
            time.sleep(0.02)        # mostly the directory; and CPU left to the mounts

    t = threading.Thread(target=swapper)
    t.start()
    outcomes = []
    try:
        for i in range(6):
            p = pod(40 + i)
            t0 = time.monotonic()
            # vers pinned: unpinned, mount.nfs answers a vanished path by
            # falling back to NFSv3 and waiting for an rpcbind ganesha lacks.
            r = node.kubelet.set_up_pod(p, "pv-flip", vol(server, subDir="jail2/flip", mountOptions="vers=4.2"))
            outcomes.append("%.1f s: %s" % (time.monotonic() - t0, r.status if r.status == "Success" else r.message))
            if r.status == "Success":
                got = read(os.path.join(node.dir(p, "pv-flip"), "marker"))
                assert got == "mine", "mount %d shows the victim's directory" % i
                assert node.kubelet.tear_down_pod(p["uid"], "pv-flip").status == "Success"
            else:
                # Refused at the walk, caught by the inode check after the
                # mount, or gone (between renames) at the walk or at the mount.
                assert any(why in r.message for why in ("is a symlink", "changed while", "does not exist",
                                                         "No such file or directory")), r
    finally:
        stop.set()
        t.join()
        subprocess.run(["umount", tenant])
    print("outcomes under the swapper (%d swaps): %s" % (swaps[0], outcomes))
    assert swaps[0] > 6, "the swapper barely ran"
    assert node.mounts() == []


def test_repeated_calls_are_harmless(node, server):
    k, d = node.kubelet, node.driver
    path = node.dir(pod(51), "pv-rep")
    os.makedirs(path, 0o750)
    j = go_json(k.options("pv-rep", vol(server), pod=pod(51)))
    for _ in range(2):
        assert d.call("mount", path, j).status == "Success"
    assert node.mounts().count(path) == 1
    # Another volume (or read-only) on the same dir is refused, not stacked.
    r = d.call("mount", path, go_json(k.options("pv-rep", vol(server), read_only=True, pod=pod(51))))
    assert r.status == "Failure" and "already has" in r.message, r
    for _ in range(2):
        assert d.call("unmount", path).status == "Success"
    assert node.mounts() == []
    os.rmdir(path)
    assert d.call("unmount", path).status == "Success"


def test_missing_mount_nfs_is_reported(node, server):
    """mount.nfs hidden (in a private mount namespace of the call only)."""
    hide = ("unshare", "-m", "--propagation", "private", "sh", "-c",
            'mount --bind /dev/null "$(readlink -f /usr/sbin/mount.nfs)" && exec "$0" "$@"')
    d = Driver(DRIVER, node.driver.env, wrapper=hide)
    path = node.dir(pod(52), "pv-nomount")
    os.makedirs(path, 0o750)
    r = d.call("mount", path, go_json(node.kubelet.options("pv-nomount", vol(server), pod=pod(52))))
    assert r.status == "Failure" and "mount.nfs is not installed" in r.message and "nfs-common" in r.message, r
    assert node.mounts() == []
    assert d.call("unmount", path).status == "Success", "unmount needs no mount.nfs"


@pytest.mark.parametrize("subdir", ["", "frozen/sub"])
def test_server_that_stops_answering_gives_a_bounded_failure(node, frozen_server, subdir):
    s = frozen_server
    os.makedirs(s.path("frozen", "sub"))
    opts = vol(s, mountTimeout="6")
    if subdir:
        opts["subDir"] = subdir
    s.freeze()
    try:
        t0 = time.monotonic()
        r = node.kubelet.set_up_pod(pod(61), "pv-frozen", opts)
        took = time.monotonic() - t0
    finally:
        s.thaw()
    assert r.status == "Failure", r
    assert SERVER in r.message and "did not answer within 6 s" in r.message, r
    assert took < 6 + 8, "the mount took %.1f s with mountTimeout 6" % took
    assert node.mounts() == [], "nothing stays mounted"
    assert leftover_processes() == [], "mount.nfs and helpers are gone"
    assert not os.path.exists(node.dir(pod(61), "pv-frozen"))
    # The server is back: the same volume mounts.
    r = node.kubelet.set_up_pod(pod(62), "pv-frozen", vol(s, subDir=subdir) if subdir else vol(s))
    assert r.status == "Success", r
    assert node.kubelet.tear_down_pod(pod(62)["uid"], "pv-frozen").status == "Success"


def test_unmount_of_a_stale_mount_is_bounded(node, frozen_server):
    s = frozen_server
    node.configure("unmount-timeout = 5\n")
    k = node.kubelet
    r = k.set_up_pod(pod(71), "pv-stale", vol(s))
    assert r.status == "Success", r
    path = node.dir(pod(71), "pv-stale")
    write(os.path.join(path, "f"), "x")
    s.freeze()
    try:
        # As kubelet's UnmountVolume, minus its stat of the dir (which, on a
        # dead mount, is kubelet's own risk, not the driver's).
        t0 = time.monotonic()
        r = node.driver.call("unmount", path, timeout=120)
        took = time.monotonic() - t0
        assert r.status == "Success", r
        assert took < 5 + 10, "unmount took %.1f s with unmount-timeout 5" % took
        assert node.mounts() == []
        os.rmdir(path)  # kubelet's os.Remove: fails with EBUSY if anything is left
        assert leftover_processes() == []
        # Again, now that nothing is there: still Success, still quick.
        os.makedirs(path)
        t0 = time.monotonic()
        assert node.driver.call("unmount", path).status == "Success"
        assert time.monotonic() - t0 < 5
    finally:
        s.thaw()


# ---- what the node allows (issue 11 #4 and #10) --------------------------

def test_no_allowed_servers_refuses_every_mount(node, server):
    """Default-deny: any pod author may write an inline volume naming any
    server, so without [nfs] allowed-servers nothing is mounted."""
    node.configure("", allowed=None)
    before = sorted(os.listdir(server.export))
    r = node.kubelet.set_up_pod(pod(91), "pv-deny", vol(server, subDir="made", createSubDir="true"))
    assert r.status == "Failure" and "allowed-servers" in r.message and "disabled" in r.message, r
    assert node.mounts() == [] and sorted(os.listdir(server.export)) == before, "nothing touched on the server"
    assert leftover_processes() == []


@pytest.mark.parametrize("allowed,server_name,ok", [
    ("10.0.0.0/8, nfs.example.com", SERVER, False),
    ("127.0.0.0/8", "localhost", False),     # a name is never resolved to match a prefix
    ("localhost", SERVER, False),            # nor an address to match a name
    ("localhost", "localhost", True),
    ("nfs.example.com 127.0.0.0/30", SERVER, True),
    ("*", SERVER, True),
])
def test_allowed_servers_match_names_and_addresses_as_written(node, server, allowed, server_name, ok):
    node.configure("", allowed=allowed)
    r = node.kubelet.set_up_pod(pod(92), "pv-allow", dict(vol(server), server=server_name))
    if ok:
        assert r.status == "Success", r
        assert mount_line(node.dir(pod(92), "pv-allow")) is not None
        assert node.kubelet.tear_down_pod(pod(92)["uid"], "pv-allow").status == "Success"
    else:
        assert r.status == "Failure" and "'%s' is not among the allowed servers" % server_name in r.message, r
        assert "allowed-servers" in r.message, r
    assert node.mounts() == []


def test_bad_allowed_servers_entry_is_reported(node, server):
    node.configure("", allowed="127.0.0.1, 10.0.0.0/40")
    r = node.kubelet.set_up_pod(pod(93), "pv-allow", vol(server))
    assert r.status == "Failure" and "allowed-servers" in r.message and "'10.0.0.0/40'" in r.message, r
    assert node.mounts() == []


def test_max_mount_timeout_caps_mount_timeout(node, server):
    node.configure("max-mount-timeout = 10\n")
    r = node.kubelet.set_up_pod(pod(94), "pv-cap", vol(server, mountTimeout="11"))
    assert r.status == "Failure" and "limit of 10 s ([nfs] max-mount-timeout)" in r.message, r
    assert node.mounts() == []
    r = node.kubelet.set_up_pod(pod(94), "pv-cap", vol(server, mountTimeout="10"))
    assert r.status == "Success", r
    assert node.kubelet.tear_down_pod(pod(94)["uid"], "pv-cap").status == "Success"
    node.configure("max-mount-timeout = 0\n")
    r = node.kubelet.set_up_pod(pod(94), "pv-cap", vol(server))
    assert r.status == "Failure" and "max-mount-timeout" in r.message, r


def test_black_hole_server_does_not_hold_up_a_volume_named_alike(node, server):
    """Two pods, each with an inline volume named "data": one names a server
    that accepts the connection and never answers (a listening socket nobody
    accepts on), the other the real one. The healthy mount completes while the
    black-hole mount is still waiting: nothing is locked by the volume's name."""
    k, d = node.kubelet, node.driver
    hole = socket.socket()
    hole.bind((SERVER, 0))
    hole.listen(16)
    try:
        attacker, victim = pod(95), pod(96)
        bad = vol(server, mountOptions="vers=4.2,port=%d" % hole.getsockname()[1], mountTimeout="30")
        bad_dir = node.dir(attacker, "data")
        os.makedirs(bad_dir, 0o750)
        started = d.start("mount", bad_dir, go_json(k.options("data", bad, pod=attacker)))
        # A connection waiting in the backlog: mount.nfs is stuck on the black hole.
        readable, _, _ = select.select([hole], [], [], 60)
        assert readable, "the black-hole mount never reached its server"
        r = k.set_up_pod(victim, "data", vol(server, mountOptions="vers=4.2"))
        hole_still_waiting = started[1].poll() is None
        rb = d.finish(started)
    finally:
        hole.close()
    assert r.status == "Success", r
    assert hole_still_waiting, "the healthy mount waited for the black hole (%s)" % rb
    assert rb.status == "Failure" and "did not answer within 30 s" in rb.message, rb
    flags = mount_line(node.dir(victim, "data")).split()[5].split(",")
    assert "nosuid" in flags and "nodev" in flags
    assert node.mounts() == [node.dir(victim, "data")]
    assert k.tear_down_pod(victim["uid"], "data").status == "Success"
    assert leftover_processes() == []


# ---- owner and lifecycle of created sub-directories (issue 13 #8, #9) ----

def records(node):
    """Records the driver keeps between mount and unmount (subDirOnUnmount)."""
    found = []
    for dirpath, _, files in os.walk(os.path.join(node.tmp, "run", "nfs-subdirs")):
        found += [os.path.join(dirpath, f) for f in files]
    return found


def test_subdir_owner_of_created_directories(node, server):
    os.makedirs(server.path("owned-pre"))
    p = pod(101)
    r = node.kubelet.set_up_pod(p, "pv-own", vol(server, subDir="owned-pre/new/${pod.uid}", createSubDir="true",
                                                 subDirMode="02770", subDirUid="1234", subDirGid="5678"))
    assert r.status == "Success", r
    for d in (server.path("owned-pre", "new"), server.path("owned-pre", "new", p["uid"])):
        st = os.stat(d)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 5678, 0o2770), (d, st)
    st = os.stat(server.path("owned-pre"))
    assert (st.st_uid, st.st_gid) == (0, 0), "an existing directory keeps its owner"
    assert node.kubelet.tear_down_pod(p["uid"], "pv-own").status == "Success"
    # Only the gid: the uid stays the creator's (root here: no root squash).
    p = pod(102)
    r = node.kubelet.set_up_pod(p, "pv-own", vol(server, subDir="owned-gid/${pod.uid}", createSubDir="true",
                                                 subDirGid="600"))
    assert r.status == "Success", r
    st = os.stat(server.path("owned-gid", p["uid"]))
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 600, 0o775), st
    assert node.kubelet.tear_down_pod(p["uid"], "pv-own").status == "Success"
    assert node.mounts() == []


def test_subdir_on_unmount_delete_never_follows_symlinks(node, server, tmp_path):
    """The pod fills its per-pod directory and plants symlinks pointing out of
    it: to another directory of the export, and to a directory outside the
    export (server and client share this guest, so a removal that followed
    it would reach the real directory). After unmount the per-pod directory
    is gone and every target is untouched."""
    outside = tmp_path / "outside-export"
    outside.mkdir()
    (outside / "keep").write_text("outside the export")
    os.makedirs(server.path("victim-103"))
    write(server.path("victim-103", "keep"), "another tenant")
    p = pod(103)
    opts = vol(server, subDir="pods/${pod.uid}", createSubDir="true", subDirOnUnmount="delete")
    r = node.kubelet.set_up_pod(p, "pv-del", opts)
    assert r.status == "Success", r
    assert len(records(node)) == 1
    d = node.dir(p, "pv-del")
    os.makedirs(os.path.join(d, "a", "b", "c"))
    write(os.path.join(d, "a", "b", "c", "deep"), "x")
    write(os.path.join(d, "top"), "y")
    os.symlink(str(outside), os.path.join(d, "to-outside"))
    os.symlink(str(outside / "keep"), os.path.join(d, "a", "file-outside"))
    os.symlink("../../../../victim-103", os.path.join(d, "a", "b", "to-victim"))
    os.symlink("/", os.path.join(d, "to-root"))
    # kubelet repeats mount: the record stays as it was.
    assert node.driver.call("mount", d, go_json(node.kubelet.options("pv-del", opts, pod=p))).status == "Success"
    assert os.path.isdir(server.path("pods", p["uid"]))
    assert node.kubelet.tear_down_pod(p["uid"], "pv-del").status == "Success"
    assert not os.path.exists(server.path("pods", p["uid"])), "the per-pod directory is deleted"
    assert os.listdir(server.path("pods")) == [], "its parent stays, empty"
    assert (outside / "keep").read_text() == "outside the export"
    assert sorted(os.listdir(str(outside))) == ["keep"]
    assert read(server.path("victim-103", "keep")) == "another tenant"
    assert records(node) == [] and node.mounts() == []
    # Unmount again: nothing left to do, still Success.
    os.makedirs(d)
    assert node.driver.call("unmount", d).status == "Success"


def test_subdir_on_unmount_archive(node, server):
    p = pod(104, name="web-4")
    r = node.kubelet.set_up_pod(p, "pv-arch", vol(server, subDir="arch/${pod.namespace}-${pod.name}/data",
                                                  createSubDir="true", subDirOnUnmount="archive"))
    assert r.status == "Success", r
    write(os.path.join(node.dir(p, "pv-arch"), "kept"), "archived data")
    assert node.kubelet.tear_down_pod(p["uid"], "pv-arch").status == "Success"
    names = os.listdir(server.path("arch"))
    assert len(names) == 1 and names[0].startswith("archived-default-web-4-") and names[0].endswith("Z"), names
    assert read(server.path("arch", names[0], "data", "kept")) == "archived data"
    assert records(node) == [] and node.mounts() == []


def test_subdir_on_unmount_leaves_what_it_did_not_create(node, server):
    """The per-pod directory existed before this mount: delete does not apply
    (it is not the driver's); nor does it with the default, retain."""
    p = pod(105)
    os.makedirs(server.path("pre", p["uid"]))
    write(server.path("pre", p["uid"], "old"), "before")
    r = node.kubelet.set_up_pod(p, "pv-pre", vol(server, subDir="pre/${pod.uid}/new", createSubDir="true",
                                                 subDirOnUnmount="delete"))
    assert r.status == "Success", r
    assert records(node) == [], "nothing recorded: the per-pod directory was not created"
    assert node.kubelet.tear_down_pod(p["uid"], "pv-pre").status == "Success"
    assert read(server.path("pre", p["uid"], "old")) == "before"
    assert os.path.isdir(server.path("pre", p["uid"], "new"))
    p = pod(106)
    r = node.kubelet.set_up_pod(p, "pv-ret", vol(server, subDir="ret/${pod.uid}", createSubDir="true"))
    assert r.status == "Success", r
    assert node.kubelet.tear_down_pod(p["uid"], "pv-ret").status == "Success"
    assert os.path.isdir(server.path("ret", p["uid"])), "retain is the default"
    assert node.mounts() == []


def test_subdir_owner_refused_by_a_squashing_server(node):
    """Root squashed to nobody: the directory is made, its chown refused; the
    mount fails saying so and the directory is gone again, so kubelet's retry
    fails the same way instead of mounting a directory with the wrong owner."""
    s = NfsServer(SQUASH_PORT, squash="Root_Squash")
    try:
        os.makedirs(s.path("open"))
        os.chmod(s.path("open"), 0o777)
        p = pod(107)
        opts = vol(s, subDir="open/${pod.uid}", createSubDir="true", subDirUid="1234")
        for _ in range(2):
            r = node.kubelet.set_up_pod(p, "pv-squash", opts)
            assert r.status == "Failure" and "cannot set the owner of 'open/%s'" % p["uid"] in r.message, r
            assert os.listdir(s.path("open")) == [], "the half-made directory is removed"
        assert node.mounts() == []
        # Without an owner the same volume mounts (the directory is the anonymous user's).
        r = node.kubelet.set_up_pod(p, "pv-squash", vol(s, subDir="open/${pod.uid}", createSubDir="true"))
        assert r.status == "Success", r
        assert os.stat(s.path("open", p["uid"])).st_uid != 0, "made by the anonymous user"
        assert node.kubelet.tear_down_pod(p["uid"], "pv-squash").status == "Success"
    finally:
        s.close()
