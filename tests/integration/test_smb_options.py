"""The smb driver's option checking and refusals, through the real binary and
the kubelet harness. This host kernel has no cifs: a volume that passes every
check reaches mount(2), which fails with ENODEV, and the reply says so; the
mounts themselves are tested in the VM tier (tests/vm/test_vm_smb.py)."""
import os
import subprocess
import threading

import pytest

from cloud_common import mounts_under
from conftest import driver_path
from kubelet import Driver, Kubelet, go_json
from syslog_capture import Syslog

PASSWORD = "pa55,w0rd-Zq9!x"   # a comma: the kernel's parser needs it doubled
SECRET = {"username": "alice", "password": PASSWORD, "domain": "CORP"}
SOURCE = "//localhost/share"  # resolves everywhere; the driver resolves before mount(2)
HAS_CIFS = any(line.split()[-1] == "cifs" for line in open("/proc/filesystems"))


def pod(n, name=None):
    return {"name": name or "web-%d" % n, "namespace": "default", "uid": "5eb00000-0000-4000-8000-%012d" % n,
            "serviceAccount": "default"}


class SmbNode:
    def __init__(self, tmp):
        self.tmp = str(tmp)
        self.config_dir = os.path.join(self.tmp, "etc")
        os.makedirs(self.config_dir)
        self.configure()
        env = dict(os.environ, FLEXVOL_CONFIG_DIR=self.config_dir, FLEXVOL_RUN_DIR=os.path.join(self.tmp, "run"))
        self.driver = Driver(driver_path("smb"), env)
        self.kubelet = Kubelet(self.driver, os.path.join(self.tmp, "kubelet"))

    def configure(self, text="", allowed="localhost, files.example.com, 127.0.0.1"):
        with open(os.path.join(self.config_dir, "smb.conf"), "w") as f:
            f.write("[smb]\n" + ("allowed-servers = %s\n" % allowed if allowed is not None else "") + text)

    def up(self, opts, secrets=SECRET, n=1, read_only=False):
        return self.kubelet.set_up_pod(pod(n), "vol", opts, read_only=read_only, secrets=secrets)

    def mounts(self):
        return mounts_under(self.tmp)


@pytest.fixture
def node(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root (mount namespaces)")
    n = SmbNode(tmp_path)
    yield n
    for m in sorted(n.mounts(), key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True)


def reached_the_kernel(r):
    """A volume that passed every check: on this host, mount(2) says ENODEV."""
    if HAS_CIFS:
        pytest.skip("this kernel has cifs: the check relies on mount(2) failing with ENODEV")
    return r.status == "Failure" and "does not know type cifs" in r.message


def test_init_capabilities(node):
    caps = node.kubelet.init().json["capabilities"]
    assert caps == {"attach": False, "selinuxRelabel": False, "fsGroup": False, "supportsMetrics": True,
                    "requiresFSResize": False}
    node.configure("fsgroup = true\n")
    assert node.kubelet.init().json["capabilities"]["fsGroup"] is True


def test_help_names_the_options_and_the_secret():
    out = subprocess.run([driver_path("smb"), "--help"], capture_output=True, text=True).stdout
    for word in ("source", "subDir", "createSubDir", "subDirMode", "mountOptions", "mountTimeout", "username",
                 "password", "domain", "allow-smb1", "allowed-servers", "kerberos-cruid"):
        assert word in out, word


@pytest.mark.parametrize("opts, why", [
    ({"mountOptions": "vers=3.1.1,seal,uid=1000,gid=1000,file_mode=0660,dir_mode=0770,cache=strict,actimeo=1,"
                      "nobrl,mfsymlinks,noperm,noatime,nosuid,nodev,sec=ntlmssp"}, "every listed option"),
    ({"subDir": "tenants/${pod.namespace}/${pv.name}/${pod.name}", "createSubDir": "true", "subDirMode": "0750"},
     "subDir templates"),
    ({"mountTimeout": "30", "mountOptions": "vers=2.1,cache=none"}, "timeout"),
])
def test_valid_volumes_pass_every_check(node, opts, why):
    r = node.up(dict(opts, source=SOURCE))
    assert reached_the_kernel(r), (why, r)
    assert PASSWORD not in r.message
    assert node.mounts() == []


@pytest.mark.parametrize("opts", [{"mountOptions": "guest"}, {"mountOptions": "sec=krb5"},
                                  {"mountOptions": "sec=krb5i,vers=3.0"}])
def test_guest_and_kerberos_need_no_secret(node, opts):
    assert reached_the_kernel(node.up(dict(opts, source=SOURCE), secrets=None))


@pytest.mark.parametrize("opts, secrets, why", [
    ({"password": "hunter2"}, SECRET, "option 'password' is refused"),
    ({"username": "alice"}, SECRET, "option 'username' is refused"),
    ({"domain": "CORP"}, SECRET, "option 'domain' is refused"),
    ({"mountOptions": "password=hunter2"}, SECRET, "volume's secret"),
    ({"mountOptions": "pass=hunter2"}, SECRET, "volume's secret"),
    ({"mountOptions": "username=bob"}, SECRET, "volume's secret"),
    ({"mountOptions": "credentials=/etc/creds"}, SECRET, "volume's secret"),
    ({"mountOptions": "domain=X"}, SECRET, "volume's secret"),
    ({"mountOptions": "cruid=0"}, SECRET, "kerberos-cruid"),
    ({"mountOptions": "suid"}, SECRET, "nosuid"),
    ({"mountOptions": "dev"}, SECRET, "nodev"),
    ({"mountOptions": "ro"}, SECRET, "readOnly"),
    ({"mountOptions": "rw"}, SECRET, "readOnly"),
    ({"mountOptions": "ip=10.0.0.1"}, SECRET, "'source'"),
    ({"mountOptions": "unc=\\\\evil\\share"}, SECRET, "'source'"),
    ({"mountOptions": "vers=1.0"}, SECRET, "allow-smb1"),
    ({"mountOptions": "vers=2.0"}, SECRET, "vers"),
    ({"mountOptions": "sec=ntlm"}, SECRET, "sec"),
    ({"mountOptions": "file_mode=4777"}, SECRET, "file_mode"),
    ({"mountOptions": "uid=root"}, SECRET, "uid"),
    ({"mountOptions": "cache=loose,cache=none"}, SECRET, "cache"),
    ({"mountOptions": "x-evil"}, SECRET, "x-evil"),
    ({}, None, "keys 'username' and 'password'"),
    ({}, {"username": "alice"}, "'username' only"),
    ({}, {"password": PASSWORD}, "'password' only"),
    ({"mountOptions": "guest"}, SECRET, "exclude each other"),
    ({"mountOptions": "guest,sec=ntlmssp"}, None, "exclude each other"),
    ({"mountOptions": "sec=none"}, None, "sec"),
    ({}, {"username": "al,ice", "password": "x"}, "commas"),
    ({"subDir": "../up"}, SECRET, "subDir"),
    ({"subDir": "${pod.secret}"}, SECRET, "unknown variable"),
    ({"createSubDir": "true"}, SECRET, "needs option 'subDir'"),
    ({"subDirMode": "0999", "subDir": "a"}, SECRET, "subDirMode"),
    ({"mountTimeout": "9999"}, SECRET, "max-mount-timeout"),
    ({"mountTimeout": "soon"}, SECRET, "mountTimeout"),
    ({"server": "x"}, SECRET, "server"),
])
def test_bad_input_fails_and_changes_nothing(node, opts, secrets, why):
    opts = dict({"source": SOURCE}, **opts)
    r = node.up(opts, secrets=secrets)
    assert r.status == "Failure" and why in r.message, r
    for value in ("hunter2", PASSWORD, "pa55"):
        assert value not in r.message
    assert node.mounts() == []
    assert not os.path.exists(node.kubelet.pod_dir(pod(1)["uid"], "vol"))


@pytest.mark.parametrize("source, why", [
    (None, "'source' is required"),
    ("files.example.com/share", "//server/share"),
    ("\\\\files.example.com\\share", "//server/share"),
    ("//files.example.com", "no share"),
    ("//files.example.com/", "names no share"),
    ("///share", "names no server"),
    ("//files.example.com/share/sub", "option 'subDir'"),
    ("//files.example.com/sh:are", "one name"),
    ("//files.example.com/..", "not a share name"),
    ("//-bad-.example.com/share", "not a host name"),
    ("//fd00::1/share", "brackets"),
    ("//files.example.com/sh\nare", "control characters"),
])
def test_bad_sources_are_refused(node, source, why):
    opts = {"source": source} if source is not None else {}
    r = node.up(opts)
    assert r.status == "Failure" and why in r.message, r


def test_a_trailing_slash_and_an_address_pass(node):
    assert reached_the_kernel(node.up({"source": SOURCE + "/"}))
    assert reached_the_kernel(node.up({"source": "//127.0.0.1/share"}))


def test_smb1_only_when_the_node_allows_it(node):
    r = node.up({"source": SOURCE, "mountOptions": "vers=1.0"})
    assert r.status == "Failure" and "SMB1" in r.message and "allow-smb1 = true" in r.message, r
    node.configure("allow-smb1 = true\n")
    assert reached_the_kernel(node.up({"source": SOURCE, "mountOptions": "vers=1.0"}))


def test_servers_must_be_allowed(node):
    node.configure(allowed=None)
    r = node.up({"source": SOURCE})
    assert r.status == "Failure" and "disabled on this node" in r.message and "allowed-servers" in r.message, r
    node.configure(allowed="other.example.com")
    r = node.up({"source": SOURCE})
    assert r.status == "Failure" and "not among the allowed servers" in r.message, r
    node.configure(allowed="10.0.0.0/8")
    assert reached_the_kernel(node.up({"source": "//10.1.2.3/share"}))


def test_unmount_of_a_plain_directory_succeeds(node):
    d = node.kubelet.pod_dir(pod(1)["uid"], "vol")
    os.makedirs(d)
    assert node.driver.call("unmount", d).status == "Success"
    assert node.driver.call("unmount", os.path.join(node.tmp, "never-there")).status == "Success"


def test_credentials_never_in_argv_environment_logs_or_reply(node):
    """Every process's argv and environment sampled while the calls run, the
    driver's syslog, the reply and the files left under the node's dirs."""
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
                    if PASSWORD.encode() in data:
                        seen.append((pid, what, data[:200]))

    t = threading.Thread(target=sample)
    with Syslog() as log:
        t.start()
        try:
            replies = [node.up({"source": SOURCE, "mountOptions": "vers=3.0"}, n=i) for i in range(5)]
            replies.append(node.up({"source": SOURCE, "subDir": "a/${pod.name}", "createSubDir": "true"}, n=9))
        finally:
            stop.set()
            t.join()
        text = log.text()
    assert "smb" in text, "the driver logged nothing: the syslog check would be vacuous"
    for r in replies:
        assert r.status == "Failure" and PASSWORD not in r.stdout and PASSWORD not in r.message, r
    assert seen == []
    for value in (PASSWORD, PASSWORD.replace(",", ",,")):
        assert value not in text
    for dirpath, _, files in os.walk(node.tmp):
        for name in files:
            try:
                with open(os.path.join(dirpath, name), "rb") as f:
                    assert PASSWORD.encode() not in f.read(), os.path.join(dirpath, name)
            except OSError:
                continue
