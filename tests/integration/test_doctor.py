"""`<driver> doctor`: the real binaries installed in a node tree under tmp
(<plugin dir>/flexvol~<driver>/<driver>), a real process named kubelet whose
command line (or config file) names the plugin dir, and the fake clouds."""
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import BUILD
from cloud_common import cloud_fixtures
from cinder_helpers import CinderCloud
from gcepd_helpers import GCECloud

LINE = re.compile(r"^(OK|WARN|FAIL) [a-z0-9._-]+: .+$")


def no_wrapper(tmp_path):
    return ()


make_cinder, _ = cloud_fixtures(CinderCloud, no_wrapper)


class FakeKubelet:
    """A real process whose argv[0] is `kubelet` (a shell waiting on its
    stdin), so doctor finds it through /proc as it finds the real one."""

    def __init__(self, *flags):
        self.proc = subprocess.Popen(["kubelet", "-c", "read line"] + list(flags), executable="/bin/sh",
                                     stdin=subprocess.PIPE)

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.fixture
def kubelet():
    started = []

    def start(*flags):
        k = FakeKubelet(*flags)
        started.append(k)
        return k

    yield start
    for k in started:
        k.stop()


class Node:
    """A node tree: plugin dir with the driver installed as kubelet finds it,
    config dir, run dir."""

    def __init__(self, tmp, driver, config_dir=None, run_dir=None):
        self.tmp = str(tmp)
        self.driver = driver
        self.plugin_dir = os.path.join(self.tmp, "plugins")
        self.binary = os.path.join(self.plugin_dir, "flexvol~" + driver, driver)
        os.makedirs(os.path.dirname(self.binary))
        shutil.copy(os.path.join(BUILD, driver), self.binary)
        os.chmod(self.binary, 0o755)
        self.config_dir = config_dir or os.path.join(self.tmp, "etc")
        self.run_dir = run_dir or os.path.join(self.tmp, "run")
        os.makedirs(self.config_dir, exist_ok=True)
        os.makedirs(self.run_dir, 0o700, exist_ok=True)
        self.env = dict(os.environ, FLEXVOL_CONFIG_DIR=self.config_dir, FLEXVOL_RUN_DIR=self.run_dir)
        self.env.pop("GCE_METADATA_HOST", None)

    def doctor(self, *args, **env):
        e = dict(self.env, **env)
        text = subprocess.run([self.binary, "doctor"] + list(args), capture_output=True, text=True, env=e,
                              timeout=120)
        assert text.stderr == ""
        for line in text.stdout.splitlines():
            assert LINE.match(line), "not a check line: %r" % line
        js = subprocess.run([self.binary, "doctor", "--json"] + list(args), capture_output=True, text=True, env=e,
                            timeout=120)
        assert js.stderr == "" and js.returncode == text.returncode
        out = json.loads(js.stdout)
        assert out["driver"] == self.driver
        checks = {c["name"]: c for c in out["checks"]}
        assert len(checks) == len(out["checks"]) == len(text.stdout.splitlines())
        return text.returncode, checks, text.stdout


def failed(checks):
    return sorted(n for n, c in checks.items() if c["status"] == "FAIL")


@pytest.fixture
def loop_tree(tmp_path):
    n = Node(tmp_path, "loop")
    with open(os.path.join(n.config_dir, "loop.conf"), "w") as f:
        f.write("[loop]\nimage-root = %s/images\n" % n.tmp)
    return n


def test_passes_on_an_installed_node(loop_tree, kubelet):
    k = kubelet("--volume-plugin-dir=" + loop_tree.plugin_dir, "--root-dir", loop_tree.tmp + "/kubelet")
    rc, checks, text = loop_tree.doctor()
    assert rc == 0, text
    assert failed(checks) == [], text
    for name in ("binary", "plugin-dir", "config", "config-mode", "config-keys", "mkfs.ext4", "mkfs.xfs",
                 "kernel-ext4", "kernel-xfs", "loop-control", "run-dir", "locks"):
        assert checks[name]["status"] == "OK", (name, text)
    assert "pid %d" % k.proc.pid in checks["plugin-dir"]["detail"]
    assert loop_tree.binary in checks["binary"]["detail"]


def test_plugin_dir_from_kubelets_config_file(loop_tree, kubelet):
    conf = os.path.join(loop_tree.tmp, "kubelet-config.yaml")
    with open(conf, "w") as f:
        f.write("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
                "volumePluginDir: \"%s\"\n" % loop_tree.plugin_dir)
    kubelet("--config=" + conf)
    rc, checks, text = loop_tree.doctor()
    assert checks["plugin-dir"]["status"] == "OK", text
    assert "volumePluginDir" in checks["plugin-dir"]["detail"]


def test_fails_for_a_wrong_plugin_dir(loop_tree, kubelet):
    elsewhere = os.path.join(loop_tree.tmp, "kubelet-plugins")
    kubelet("--volume-plugin-dir", elsewhere)
    rc, checks, text = loop_tree.doctor()
    assert rc == 1
    assert failed(checks) == ["plugin-dir"], text
    assert elsewhere in checks["plugin-dir"]["detail"] and loop_tree.plugin_dir in checks["plugin-dir"]["detail"]


def test_fails_for_a_wrong_plugin_dir_in_kubelets_config_file(loop_tree, kubelet):
    conf = os.path.join(loop_tree.tmp, "kubelet-config.json")
    with open(conf, "w") as f:
        json.dump({"kind": "KubeletConfiguration", "volumePluginDir": "/var/lib/kubelet/volumeplugins"}, f, indent=1)
    kubelet("--config", conf)
    rc, checks, text = loop_tree.doctor()
    assert failed(checks) == ["plugin-dir"], text
    assert "/var/lib/kubelet/volumeplugins" in checks["plugin-dir"]["detail"]


def test_fails_for_a_binary_outside_a_vendor_dir(loop_tree, kubelet):
    kubelet("--volume-plugin-dir=" + loop_tree.plugin_dir)
    out = subprocess.run([os.path.join(BUILD, "loop"), "doctor"], capture_output=True, text=True, env=loop_tree.env)
    assert out.returncode == 1
    assert re.search(r"^FAIL binary: .*<plugin dir>/<vendor>~loop/loop", out.stdout, re.M), out.stdout


def test_fails_for_a_missing_mkfs_xfs(loop_tree, kubelet):
    kubelet("--volume-plugin-dir=" + loop_tree.plugin_dir)
    tools = os.path.join(loop_tree.tmp, "sbin")
    os.makedirs(tools)
    os.symlink("/usr/sbin/mkfs.ext4", os.path.join(tools, "mkfs.ext4"))
    rc, checks, text = loop_tree.doctor(FLEXVOL_TOOL_PATH=tools)
    assert rc == 1
    assert failed(checks) == ["mkfs.xfs"], text
    assert "xfsprogs" in checks["mkfs.xfs"]["detail"]
    assert checks["mkfs.ext4"]["detail"] == os.path.join(tools, "mkfs.ext4")


def test_warns_naming_an_unknown_config_key(loop_tree, kubelet):
    kubelet("--volume-plugin-dir=" + loop_tree.plugin_dir)
    with open(os.path.join(loop_tree.config_dir, "loop.conf"), "a") as f:
        f.write("image_root = /typo\n[lop]\nimage-root = /x\n")
    rc, checks, text = loop_tree.doctor()
    assert rc == 0
    assert checks["config-keys"]["status"] == "WARN"
    assert "[loop] image_root" in checks["config-keys"]["detail"]
    assert "[lop] image-root" in checks["config-keys"]["detail"]


def test_knows_the_encryption_keys_of_a_block_driver(loop_tree, kubelet):
    kubelet("--volume-plugin-dir=" + loop_tree.plugin_dir)
    with open(os.path.join(loop_tree.config_dir, "loop.conf"), "a") as f:
        f.write("cipher = aes-xts-plain64\nkey-size = 512\npbkdf-memory = 65536\npbkdf-time = 1000\n"
                "pbkdf-iterations = 4\nallow-discards = false\n")
    rc, checks, text = loop_tree.doctor()
    assert checks["config-keys"]["status"] == "OK", text


def test_fails_for_a_config_that_does_not_parse(loop_tree, kubelet):
    kubelet("--volume-plugin-dir=" + loop_tree.plugin_dir)
    with open(os.path.join(loop_tree.config_dir, "loop.conf"), "w") as f:
        f.write("[loop\nimage-root\n")
    rc, checks, text = loop_tree.doctor()
    assert failed(checks) == ["config"], text
    assert "line 1" in checks["config"]["detail"]


def test_a_secret_in_a_readable_config_fails(loop_tree, kubelet):
    kubelet("--volume-plugin-dir=" + loop_tree.plugin_dir)
    path = os.path.join(loop_tree.config_dir, "loop.conf")
    with open(path, "a") as f:
        f.write("password = hunter2\n")
    os.chmod(path, 0o644)
    rc, checks, text = loop_tree.doctor()
    assert "config-mode" in failed(checks)
    assert "hunter2" not in text


def test_a_held_lock_is_named_with_its_holder(loop_tree, kubelet):
    kubelet("--volume-plugin-dir=" + loop_tree.plugin_dir)
    locks = os.path.join(loop_tree.run_dir, "locks", "loop")
    os.makedirs(locks, 0o700)
    holder = subprocess.Popen(["flock", os.path.join(locks, "pv-held.lock"), "sh", "-c", "read line"],
                              stdin=subprocess.PIPE)
    try:
        for _ in range(200):
            rc, checks, text = loop_tree.doctor()
            if "pv-held" in checks["locks"]["detail"]:
                break
        assert checks["locks"]["status"] == "OK"
        assert re.search(r"'pv-held' held by pid %d \(flock" % holder.pid, checks["locks"]["detail"]), text
    finally:
        holder.stdin.close()
        holder.wait()


def test_a_read_only_run_dir_fails(loop_tree, kubelet):
    kubelet("--volume-plugin-dir=" + loop_tree.plugin_dir)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,mode=0700", "tmpfs", loop_tree.run_dir], check=True)
    try:
        rc, checks, text = loop_tree.doctor()
    finally:
        subprocess.run(["umount", loop_tree.run_dir], check=True)
    assert failed(checks) == ["run-dir"], text
    assert "Read-only" in checks["run-dir"]["detail"]


# --- cloud drivers, against the fakes ---

@pytest.fixture
def cinder_tree(make_cinder, tmp_path, kubelet):
    cloud = make_cinder()
    node = Node(tmp_path / "node", "cinder", config_dir=cloud.config_dir, run_dir=cloud.run_dir)
    kubelet("--volume-plugin-dir=" + node.plugin_dir)
    return cloud, node


def test_cinder_passes_against_the_cloud(cinder_tree):
    cloud, node = cinder_tree
    before = cloud.auths()
    rc, checks, text = node.doctor("--node", "node-1")
    assert rc == 0, text
    assert failed(checks) == []
    for name in ("config-mode", "cloud-auth", "compute-endpoint", "volume-endpoint", "node-lookup", "resize2fs"):
        assert checks[name]["status"] == "OK", (name, text)
    assert cloud.servers["node-1"] in checks["node-lookup"]["detail"]
    # One Keystone authentication per run (doctor ran twice: text and --json), and no token
    # left behind in the driver's cache.
    assert cloud.auths() - before == 2
    assert not os.path.exists(os.path.join(cloud.run_dir, "tokens"))
    assert cloud.password not in text


def test_cinder_fails_for_a_0644_credentials_file(cinder_tree):
    cloud, node = cinder_tree
    cloud.write_config(mode=0o644)
    rc, checks, text = node.doctor("--node", "node-1")
    assert rc == 1
    assert checks["config-mode"]["status"] == "FAIL"
    assert "0644" in checks["config-mode"]["detail"] and "chmod 0600" in checks["config-mode"]["detail"]
    assert cloud.password not in text


def test_cinder_fails_for_a_wrong_keystone_password(cinder_tree):
    cloud, node = cinder_tree
    right = cloud.password
    cloud.password = "not-" + right
    cloud.write_config()
    rc, checks, text = node.doctor("--node", "node-1")
    assert rc == 1
    assert failed(checks) == ["cloud-auth"], text
    assert "401" in checks["cloud-auth"]["detail"]
    assert cloud.password not in text and right not in text


def test_cinder_without_credentials_only_warns(cinder_tree):
    cloud, node = cinder_tree
    with open(cloud.config_path, "w") as f:
        f.write("[flexvol]\nudevadm = none\n")
    rc, checks, text = node.doctor("--node", "node-1")
    assert rc == 0, text
    assert checks["cloud-auth"]["status"] == "WARN" and "auth-url" in checks["cloud-auth"]["detail"]
    assert "node-lookup" not in checks


def test_cinder_fails_for_a_node_not_found(cinder_tree):
    cloud, node = cinder_tree
    rc, checks, text = node.doctor(NODE_NAME="node-9")
    assert rc == 1
    assert failed(checks) == ["node-lookup"], text
    assert "node-9" in checks["node-lookup"]["detail"]


make_gce, _ = cloud_fixtures(GCECloud, no_wrapper)


@pytest.fixture(params=["key-file", "metadata-token"])
def gce_tree(request, make_gce, tmp_path, kubelet):
    cloud = make_gce(key=request.param == "key-file")
    node = Node(tmp_path / "node", "gcepd", config_dir=cloud.config_dir, run_dir=cloud.run_dir)
    kubelet("--volume-plugin-dir=" + node.plugin_dir)
    return cloud, node


def test_gcepd_passes_and_fails_for_a_node_not_found(gce_tree):
    cloud, node = gce_tree
    rc, checks, text = node.doctor("--node", "node-1")
    assert rc == 0, text
    assert not os.path.exists(os.path.join(cloud.run_dir, "tokens")), "doctor's token stays in its scratch dir"
    for name in ("cloud-auth", "compute-endpoint", "node-lookup"):
        assert checks[name]["status"] == "OK", (name, text)
    rc, checks, text = node.doctor("--node", "node-9")
    assert rc == 1
    assert failed(checks) == ["node-lookup"], text
    assert "node-9" in checks["node-lookup"]["detail"]
