"""The smb driver against Samba's smbd, run INSIDE the VM guest.

The host kernel has no cifs, so tests/vm/test_vm_smb.py boots a guest and
runs this file there with pytest (the host never collects it: its name does
not match test_*.py). Every test plays kubelet with the same harness as the
host tiers; the server is smbd on the guest's loopback sharing a tmpfs, its
smb.conf and databases written under the guest's /tmp; the client is the
guest kernel's cifs.
"""
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

from kubelet import Driver, Kubelet  # noqa: E402
from syslog_capture import Syslog  # noqa: E402

BUILD = os.path.join(REPO, os.environ.get("FLEXVOL_BUILD", "build"))
DRIVER = os.path.join(BUILD, "smb")
SERVER = "127.0.0.1"
PASSWORD = "S3cret,pw-7Qx"   # a comma: the kernel's option parser needs it escaped
SECRET = {"username": "root", "password": PASSWORD}
MAIN_PORT = 445
STOP_PORT = 4450   # a second server, for the tests that freeze it

SMB_CONF = """[global]
  server role = standalone server
  smb ports = {port}
  interfaces = lo
  private dir = {d}/private
  lock directory = {d}/lock
  state directory = {d}/state
  cache directory = {d}/cache
  pid directory = {d}/pid
  ncalrpc dir = {d}/lock/ncalrpc
  log file = {d}/log.%m
  passdb backend = tdbsam:{d}/private/passdb.tdb
  server min protocol = SMB2_10
  load printers = no
  disable spoolss = yes
  printcap name = /dev/null
  map to guest = bad user
  unix extensions = no
[share]
  path = {d}/share
  read only = no
  valid users = root
  create mask = 0777
  directory mask = 0777
[public]
  path = {d}/public
  read only = no
  guest ok = yes
  force user = root
"""


def pod(n, ns="default", name=None):
    return {"name": name or "pod-%d" % n, "namespace": ns, "uid": "5eb0c1f5-0000-4000-8000-%012d" % n,
            "serviceAccount": "default"}


class SmbServer:
    """smbd sharing a fresh tmpfs as //127.0.0.1/share, user root."""

    def __init__(self, port):
        self.port = port
        self.dir = "/tmp/smb-%d" % port
        for sub in ("share", "public", "private", "lock", "state", "cache", "pid"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", self.path()], check=True)
        self.conf = os.path.join(self.dir, "smb.conf")
        with open(self.conf, "w") as f:
            f.write(SMB_CONF.format(port=port, d=self.dir))
        subprocess.run(["smbpasswd", "-c", self.conf, "-s", "-a", "root"], input="%s\n%s\n" % (PASSWORD, PASSWORD),
                       text=True, check=True, capture_output=True)
        # A session of its own: smbd signals its whole process group when it exits.
        self.proc = subprocess.Popen(["smbd", "--foreground", "--no-process-group", "-s", self.conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.source = "//%s/share" % SERVER
        deadline = time.monotonic() + 30
        while not self.listening():
            assert self.proc.poll() is None, "smbd exited"
            assert time.monotonic() < deadline, "smbd did not listen"
            time.sleep(0.2)

    def listening(self):
        with open("/proc/net/tcp") as f:
            return any(line.split()[1].endswith(":%04X" % self.port) and line.split()[3] == "0A" for line in f)

    def path(self, *parts):
        return os.path.join(self.dir, "share", *parts)

    def freeze(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def close(self):
        self.thaw()
        self.proc.terminate()
        self.proc.wait(10)
        subprocess.run(["umount", "-l", self.path()])


@pytest.fixture(scope="module")
def server():
    s = SmbServer(MAIN_PORT)
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


def driver_processes():
    found = []
    for pid in os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if f.read().split(b"\0")[0].decode(errors="replace") == DRIVER:
                    found.append(pid)
        except OSError:
            continue
    return found


class Node:
    def __init__(self, tmp):
        self.tmp = str(tmp)
        self.config_dir = os.path.join(self.tmp, "etc")
        os.makedirs(self.config_dir)
        self.configure()
        env = dict(os.environ, FLEXVOL_CONFIG_DIR=self.config_dir, FLEXVOL_RUN_DIR=os.path.join(self.tmp, "run"))
        if not os.access(DRIVER, os.X_OK):
            pytest.fail("driver %s is not built (run make on the host first)" % DRIVER)
        self.driver = Driver(DRIVER, env)
        self.kubelet = Kubelet(self.driver, os.path.join(self.tmp, "kubelet"))

    def configure(self, text=""):
        with open(os.path.join(self.config_dir, "smb.conf"), "w") as f:
            f.write("[smb]\nallowed-servers = %s\n%s" % (SERVER, text))

    def mounts(self):
        return mounts_under(self.tmp)

    def dir(self, p, spec):
        return self.kubelet.pod_dir(p["uid"], spec)

    def up(self, p, spec, opts, secrets=SECRET, read_only=False):
        return self.kubelet.set_up_pod(p, spec, opts, read_only=read_only, secrets=secrets)


@pytest.fixture
def node(tmp_path):
    n = Node(tmp_path)
    yield n
    for m in sorted(n.mounts(), key=len, reverse=True):
        subprocess.run(["umount", "-l", m])


def read(path):
    with open(path) as f:
        return f.read()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


# --------------------------------------------------------------------------

def test_two_pods_share_one_share(node, server):
    k = node.kubelet
    opts = {"source": server.source, "mountOptions": "vers=3.1.1,uid=0,gid=0,file_mode=0660,dir_mode=0770"}
    a, b = pod(1), pod(2)
    for p in (a, b):
        r = node.up(p, "shared", opts)
        assert r.status == "Success", r
        line = mount_line(node.dir(p, "shared"))
        assert line and " cifs " in line and server.source in line, line
        flags = line.split()[5].split(",")
        assert "nosuid" in flags and "nodev" in flags and "rw" in flags, line
        assert PASSWORD not in line and PASSWORD.replace(",", ",,") not in line
    write(os.path.join(node.dir(a, "shared"), "greeting"), "from pod A")
    assert read(os.path.join(node.dir(b, "shared"), "greeting")) == "from pod A"
    assert read(server.path("greeting")) == "from pod A", "lands on the server"
    # Repeated mount: idempotent.
    assert node.driver.call("mount", node.dir(a, "shared"),
                            '{"source":"%s","kubernetes.io/secret/username":"cm9vdA==",'
                            '"kubernetes.io/secret/password":"eA=="}' % server.source).status == "Success"
    # A read-only pod.
    c = pod(3)
    r = node.up(c, "ro", opts, read_only=True)
    assert r.status == "Success", r
    with pytest.raises(OSError):
        write(os.path.join(node.dir(c, "ro"), "nope"), "x")
    for p, spec in ((a, "shared"), (b, "shared"), (c, "ro")):
        r = k.tear_down_pod(p["uid"], spec)
        assert r.status == "Success", r
    assert node.mounts() == []
    assert read(server.path("greeting")) == "from pod A", "unmount keeps the data"


def test_subdir_templates_and_creation(node, server):
    k = node.kubelet
    opts = {"source": server.source, "subDir": "tenants/${pod.namespace}/${pv.name}/${pod.name}",
            "createSubDir": "true"}
    p1, p2 = pod(11, "ns-a", "web-0"), pod(12, "ns-b", "web-0")
    for p in (p1, p2):
        r = node.up(p, "pv-tmpl", opts)
        assert r.status == "Success", r
        assert server.source + "/tenants/%s/pv-tmpl/web-0" % p["namespace"] in mount_line(node.dir(p, "pv-tmpl"))
    for p in (p1, p2):
        where = server.path("tenants", p["namespace"], "pv-tmpl", p["name"])
        assert os.path.isdir(where)
        write(os.path.join(node.dir(p, "pv-tmpl"), "whoami"), p["namespace"])
        assert read(os.path.join(where, "whoami")) == p["namespace"], "each pod lands in its own directory"
    # An existing subDir needs no createSubDir; a missing one without it fails, creating nothing.
    r = node.up(pod(14), "pv-exist", {"source": server.source, "subDir": "tenants"})
    assert r.status == "Success", r
    before = sorted(os.listdir(server.path()))
    r = node.up(pod(15), "pv-missing", {"source": server.source, "subDir": "not/there"})
    assert r.status == "Failure" and "does not exist" in r.message and "createSubDir" in r.message, r
    assert sorted(os.listdir(server.path())) == before
    for p, spec in ((p1, "pv-tmpl"), (p2, "pv-tmpl"), (pod(14), "pv-exist")):
        assert k.tear_down_pod(p["uid"], spec).status == "Success"
    assert node.mounts() == []


def test_wrong_password_fails_cleanly_and_leaks_nothing(node, server):
    wrong = "Wr0ng,Pass-Kx3"
    seen = []
    stop = threading.Event()

    def sample():
        me = str(os.getpid())
        while not stop.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or pid == me:
                    continue
                for what in ("cmdline", "environ"):
                    try:
                        with open("/proc/%s/%s" % (pid, what), "rb") as f:
                            data = f.read()
                    except OSError:
                        continue
                    for secret in (wrong, PASSWORD):
                        if secret.encode() in data:
                            seen.append((pid, what))

    t = threading.Thread(target=sample)
    with Syslog() as log:
        t.start()
        try:
            bad = node.up(pod(21), "bad", {"source": server.source, "mountTimeout": "20"},
                          secrets={"username": "root", "password": wrong})
            good = node.up(pod(22), "good", {"source": server.source, "subDir": "x/${pod.name}",
                                            "createSubDir": "true"})
        finally:
            stop.set()
            t.join()
        text = log.text()
    assert bad.status == "Failure" and "access denied" in bad.message and SERVER in bad.message, bad
    assert good.status == "Success", good
    assert "mounted //127.0.0.1/share/x/pod-22" in text, "the syslog check would be vacuous"
    assert seen == []
    for r in (bad, good):
        assert wrong not in r.stdout and PASSWORD not in r.stdout
    for secret in (wrong, PASSWORD, wrong.replace(",", ",,"), PASSWORD.replace(",", ",,")):
        assert secret not in text
    # The repository may be checked out under /tmp (CI's clone is): its files,
    # this one included, hold the test's passwords as literals.
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    for top in (node.tmp, "/tmp"):
        for dirpath, _, files in os.walk(top):
            if dirpath.startswith("/tmp/smb-"):
                continue  # the server's own password database
            if dirpath == repo or dirpath.startswith(repo + "/"):
                continue
            for name in files:
                try:
                    with open(os.path.join(dirpath, name), "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                assert wrong.encode() not in data and PASSWORD.encode() not in data, os.path.join(dirpath, name)
    assert node.mounts() == [node.dir(pod(22), "good")]
    assert node.kubelet.tear_down_pod(pod(22)["uid"], "good").status == "Success"


def test_guest_share_needs_no_secret(node, server):
    r = node.up(pod(61), "guest", {"source": "//%s/public" % SERVER, "mountOptions": "guest"}, secrets=None)
    assert r.status == "Success", r
    write(os.path.join(node.dir(pod(61), "guest"), "g"), "as guest")
    assert read(os.path.join(server.dir, "public", "g")) == "as guest"
    assert node.kubelet.tear_down_pod(pod(61)["uid"], "guest").status == "Success"
    r = node.up(pod(62), "noguest", {"source": "//%s/public" % SERVER}, secrets=None)
    assert r.status == "Failure" and "'username' and 'password'" in r.message, r


def test_smb1_is_refused_by_default(node, server):
    r = node.up(pod(31), "smb1", {"source": server.source, "mountOptions": "vers=1.0"})
    assert r.status == "Failure" and "allow-smb1" in r.message, r
    assert node.mounts() == []


@pytest.mark.parametrize("subdir", [None, "sub"])
def test_hung_server_gives_a_bounded_failure(node, subdir):
    frozen = SmbServer(STOP_PORT)
    try:
        os.makedirs(frozen.path("sub"))
        opts = {"source": frozen.source, "mountOptions": "port=%d" % STOP_PORT, "mountTimeout": "4"}
        if subdir:
            opts["subDir"] = subdir
        frozen.freeze()
        r = node.up(pod(41), "hung", opts)
        assert r.status == "Failure" and "did not answer within 4 s" in r.message and SERVER in r.message, r
        assert node.mounts() == []
        assert driver_processes() == [], "no child left behind"
    finally:
        frozen.close()


def test_unmount_with_a_hung_server_is_bounded(node):
    frozen = SmbServer(STOP_PORT)
    try:
        node.configure("unmount-timeout = 3\n")
        r = node.up(pod(51), "stale", {"source": frozen.source, "mountOptions": "port=%d,soft" % STOP_PORT})
        assert r.status == "Success", r
        frozen.freeze()
        r = node.kubelet.tear_down_pod(pod(51)["uid"], "stale")
        assert r.status == "Success", r
        assert node.mounts() == []
    finally:
        frozen.close()
