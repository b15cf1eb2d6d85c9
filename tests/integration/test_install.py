"""install/install.sh (the DaemonSet installer) and the kustomize manifests.

The installer runs twice over: under the image's own shell and tools (busybox from the image root
file system that install/build-bundle.sh makes, the one the Dockerfile copies) and under Debian's
dash with coreutils. The plugin dir is a real directory, so the installer's init check really
enters the host's mount namespace (nsenter -t 1 -m), as in the DaemonSet with hostPID."""
import errno
import glob
import os
import re
import shutil
import signal
import stat
import subprocess
import time

import pytest
import yaml

from install_common import (IMAGE_DRIVERS, REPO, VENDOR, Watcher, bind, image_root, libc, mount, providers,
                            umount_tree, unshare_mounts)
from cloud_common import needs_loop

INSTALL_SH = os.path.join(REPO, "install", "install.sh")
DEPLOY = os.path.join(REPO, "install", "deploy")
OVERLAY_PLUGIN_DIRS = {
    "default": "/usr/libexec/kubernetes/kubelet-plugins/volume/exec",
    "kubeadm": "/opt/libexec/kubernetes/kubelet-plugins/volume/exec",
    "gke": "/home/kubernetes/flexvolume",
    "openshift": "/etc/kubernetes/kubelet-plugins/volume/exec",
}


@pytest.fixture(scope="session")
def image(tmp_path_factory):
    return image_root(tmp_path_factory)


class Node:
    """A node's plugin dir, host config dir and mounted Secret, and the installer run against them."""

    def __init__(self, tmp, image, shell):
        self.tmp, self.image, self.shell = tmp, image, shell
        self.plugin_dir = os.path.join(tmp, "plugins")
        self.config_dir = os.path.join(tmp, "etc-flexvol")
        self.secret_dir = os.path.join(tmp, "secret")
        self.ready = os.path.join(tmp, "ready")
        self.bundle = os.path.join(image, IMAGE_DRIVERS)
        os.makedirs(self.plugin_dir)
        self.drivers = sorted(os.path.basename(d).split("~")[-1] for d in glob.glob(self.bundle + "/*~*"))

    def env(self, **extra):
        e = {
            "FLEXVOL_PLUGIN_DIR": self.plugin_dir,
            "FLEXVOL_HOST_PLUGIN_DIR": self.plugin_dir,
            "FLEXVOL_BUNDLE": self.bundle,
            "FLEXVOL_SECRET_DIR": self.secret_dir,
            "FLEXVOL_HOST_CONFIG_DIR": self.config_dir,
            "FLEXVOL_READY_FILE": self.ready,
            "FLEXVOL_ONESHOT": "true",
            # The installer runs in a mount namespace of its own (the container's); the test's
            # namespace plays the host's, as PID 1's does for the DaemonSet with hostPID.
            "FLEXVOL_HOST_PID": str(os.getpid()),
        }
        if self.shell == "image":
            e["PATH"] = os.path.join(self.image, "bin")
        else:
            e["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"
        e.update({k: str(v) for k, v in extra.items()})
        return e

    def argv(self, *args):
        if self.shell == "image":
            return [os.path.join(self.image, "bin", "busybox"), "sh", INSTALL_SH] + list(args)
        return ["/bin/dash", INSTALL_SH] + list(args)

    def run(self, *args, check=True, **env):
        p = subprocess.run(self.argv(*args), env=self.env(**env), capture_output=True, text=True, timeout=120,
                           preexec_fn=unshare_mounts)
        if check:
            assert p.returncode == 0, "installer failed (%d):\n%s%s" % (p.returncode, p.stdout, p.stderr)
        return p

    def start(self, *args, **env):
        return subprocess.Popen(self.argv(*args), env=self.env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, preexec_fn=unshare_mounts)

    def driver_path(self, d):
        return os.path.join(self.plugin_dir, "%s~%s" % (VENDOR, d), d)

    def shipped(self, d):
        return os.path.join(self.bundle, "%s~%s" % (VENDOR, d), d)

    def write_secret(self, files, generation="..2024_01_01_00_00_00.000000001"):
        """The layout kubelet gives a Secret volume: keys are symlinks through ..data."""
        os.makedirs(self.secret_dir, exist_ok=True)
        gen = os.path.join(self.secret_dir, generation)
        os.makedirs(gen)
        for name, text in files.items():
            with open(os.path.join(gen, name), "w") as f:
                f.write(text)
            os.chmod(os.path.join(gen, name), 0o400)
        tmp_link = os.path.join(self.secret_dir, "..data_tmp")
        os.symlink(generation, tmp_link)
        os.replace(tmp_link, os.path.join(self.secret_dir, "..data"))
        for name in files:
            link = os.path.join(self.secret_dir, name)
            if not os.path.lexists(link):
                os.symlink(os.path.join("..data", name), link)


def same_file(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


def stray_files(top):
    return [os.path.join(d, f) for d, dirs, files in os.walk(top) for f in files + dirs if ".install." in f]


@pytest.fixture(params=["image", "dash"])
def node(request, image, tmp_path):
    needs_loop()
    if request.param == "dash" and not os.path.exists("/bin/dash"):
        pytest.skip("no /bin/dash")
    return Node(str(tmp_path), image, request.param)


# --- installing ------------------------------------------------------------------------------------

def test_installs_every_driver_and_checks_init_from_the_host(node):
    assert node.drivers == providers(), "the image must ship every provider"
    p = node.run()
    for d in node.drivers:
        path = node.driver_path(d)
        assert same_file(path, node.shipped(d))
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o755
        assert os.listdir(os.path.dirname(path)) == [d]
        assert "%s: init OK from %s/%s~%s/%s (host mount namespace)" % (d, node.plugin_dir, VENDOR, d, d) in p.stdout
    assert os.path.exists(node.ready)
    assert stray_files(node.plugin_dir) == []


def test_runs_doctor_after_installing_and_logs_each_line(node):
    p = node.run()
    for d in node.drivers:
        assert "%s: doctor: OK binary: %s" % (d, node.driver_path(d)) in p.stdout, p.stdout
        # A summary per driver (nfs may FAIL kernel-nfs here: the host has no NFS client module).
        assert re.search(r"^flexvol-installer: %s: doctor: (passed|\d+ FAIL)" % d, p.stdout, re.M), p.stdout
    for d in ("loop", "hostpath"):
        assert "%s: doctor: passed" % d in p.stdout, p.stdout
    # The node's checks, run inside the host's mount namespace as kubelet would run the driver.
    assert "loop: doctor: OK loop-control: /dev/loop-control is there" in p.stdout
    assert p.stdout.index("loop: init OK") < p.stdout.index("loop: doctor: OK binary")


def test_a_doctor_failure_is_logged_but_does_not_fail_the_install(node):
    # kubelet (a process of that name, seen through the host's /proc) reads another plugin dir.
    elsewhere = os.path.join(node.tmp, "kubelet-plugins")
    kubelet = subprocess.Popen(["kubelet", "-c", "read line", "--volume-plugin-dir=" + elsewhere],
                               executable="/bin/sh", stdin=subprocess.PIPE)
    try:
        p = node.run(FLEXVOL_DRIVERS="loop")
    finally:
        kubelet.stdin.close()
        kubelet.wait()
    assert "loop: doctor: FAIL plugin-dir: kubelet (pid %d) looks for drivers in %s" % (kubelet.pid, elsewhere) \
        in p.stdout, p.stdout
    assert "loop: doctor: 1 FAIL" in p.stdout
    assert os.path.exists(node.ready)


def test_install_is_atomic_for_kubelets_watcher(node, tmp_path):
    """kubelet's prober sees each driver appear through one rename into its final name, on the
    first install (the whole driver dir) and on an upgrade (the executable)."""
    w = Watcher(node.plugin_dir)
    try:
        node.run()
        seen = w.visible()
        expected = [("%s~%s" % (VENDOR, d), ["MOVED_TO", "ISDIR"]) for d in node.drivers]
        assert sorted(seen) == sorted(expected), seen
        # Upgrade: every driver changes.
        newer = str(tmp_path / "newer")
        shutil.copytree(node.bundle, newer)
        for d in node.drivers:
            with open(os.path.join(newer, "%s~%s" % (VENDOR, d), d), "ab") as f:
                f.write(b"\0upgrade")
        w.poll()
        w.events.clear()
        node.run(FLEXVOL_BUNDLE=newer)
        seen = w.visible()
        expected = [("%s~%s/%s" % (VENDOR, d, d), ["MOVED_TO"]) for d in node.drivers]
        assert sorted(seen) == sorted(expected), seen
        for d in node.drivers:
            assert same_file(node.driver_path(d), os.path.join(newer, "%s~%s" % (VENDOR, d), d))
    finally:
        w.close()


def test_rerun_changes_nothing(node):
    node.run()
    inodes = {d: os.stat(node.driver_path(d)).st_ino for d in node.drivers}
    w = Watcher(node.plugin_dir)
    try:
        p = node.run()
        assert w.visible() == [], "an unchanged re-run must not make kubelet re-probe"
    finally:
        w.close()
    assert {d: os.stat(node.driver_path(d)).st_ino for d in node.drivers} == inodes
    for d in node.drivers:
        assert "%s: %s is up to date" % (d, node.driver_path(d)) in p.stdout


def test_upgrade_replaces_a_driver_that_is_running(node, tmp_path):
    d = node.drivers[0]
    old = str(tmp_path / "old")
    os.makedirs(os.path.join(old, "%s~%s" % (VENDOR, d)))
    shutil.copy("/bin/sleep", os.path.join(old, "%s~%s" % (VENDOR, d), d))  # a driver that runs a while
    node.run(FLEXVOL_BUNDLE=old, FLEXVOL_DRIVERS=d, FLEXVOL_INIT_CHECK="none")
    running = subprocess.Popen([node.driver_path(d), "60"])
    try:
        time.sleep(0.2)
        # Writing over it in place is what breaks (ETXTBSY), or worse, corrupts a running call.
        with pytest.raises(OSError) as e:
            open(node.driver_path(d), "r+b")
        assert e.value.errno == errno.ETXTBSY
        node.run(FLEXVOL_DRIVERS=d)
        assert same_file(node.driver_path(d), node.shipped(d))
        assert running.poll() is None, "the running old driver was disturbed"
        assert os.readlink("/proc/%d/exe" % running.pid).endswith("(deleted)")
    finally:
        running.kill()
        running.wait()


def test_selected_drivers_and_vendor(node):
    d = node.drivers[-1]
    p = node.run(FLEXVOL_DRIVERS=" ,%s, " % d, FLEXVOL_VENDOR="example.com")
    assert os.listdir(node.plugin_dir) == ["example.com~%s" % d], p.stdout
    assert same_file(os.path.join(node.plugin_dir, "example.com~%s" % d, d), node.shipped(d))


def test_unknown_driver_is_refused(node):
    p = node.run(check=False, FLEXVOL_DRIVERS="nosuchdriver")
    assert p.returncode != 0 and "'nosuchdriver' is not in this image" in p.stderr, p.stderr
    assert os.listdir(node.plugin_dir) == []


def test_credential_key_file_from_the_secret_is_installed_0600(node):
    key = '{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\n..."}\n'
    node.write_secret({"gcepd.conf": "[gcepd]\ncredentials-file = /etc/flexvol/gcepd-key.json\n",
                       "gcepd-key.json": key})
    node.run()
    path = os.path.join(node.config_dir, "gcepd-key.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as f:
        assert f.read() == key
    assert sorted(os.listdir(node.config_dir)) == ["gcepd-key.json", "gcepd.conf"]


def test_config_from_the_secret_is_installed_0600(node):
    node.write_secret({"loop.conf": "[loop]\nimage-root = /var/lib/flexvol/loop\n", "README": "not config"})
    p = node.run()
    conf = os.path.join(node.config_dir, "loop.conf")
    assert stat.S_IMODE(os.stat(conf).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(node.config_dir).st_mode) == 0o700
    with open(conf) as f:
        assert f.read() == "[loop]\nimage-root = /var/lib/flexvol/loop\n"
    assert "ignoring Secret key 'README'" in p.stdout
    assert sorted(os.listdir(node.config_dir)) == ["loop.conf"], "..data or README leaked"
    # An updated Secret (kubelet swaps ..data) replaces the file through a rename.
    node.write_secret({"loop.conf": "[loop]\nimage-root = /srv/images\n"}, "..2024_02_02_00_00_00.000000002")
    before = os.stat(conf).st_ino
    node.run()
    with open(conf) as f:
        assert f.read() == "[loop]\nimage-root = /srv/images\n"
    assert os.stat(conf).st_ino != before and stat.S_IMODE(os.stat(conf).st_mode) == 0o600
    assert os.listdir(node.config_dir) == ["loop.conf"]


def test_no_secret_is_fine(node):
    p = node.run()
    assert "no config Secret mounted" in p.stdout
    assert not os.path.exists(node.config_dir)


# --- refusing ------------------------------------------------------------------------------------

def test_refuses_a_missing_plugin_dir(node):
    missing = os.path.join(node.tmp, "no", "such", "dir")
    p = node.run(check=False, FLEXVOL_PLUGIN_DIR=missing)
    assert p.returncode != 0
    assert "the plugin dir %s does not exist" % missing in p.stderr and "--volume-plugin-dir" in p.stderr, p.stderr
    assert not os.path.exists(missing)
    assert not os.path.exists(node.ready)


def test_refuses_a_read_only_plugin_dir(node):
    bind(node.plugin_dir, node.plugin_dir, readonly=True)
    try:
        p = node.run(check=False)
    finally:
        umount_tree(node.plugin_dir)
    assert p.returncode != 0
    assert "the plugin dir %s is not writable" % node.plugin_dir in p.stderr and "read-only" in p.stderr, p.stderr
    assert os.listdir(node.plugin_dir) == []


def test_a_driver_failing_init_fails_the_install(node, tmp_path):
    broken = str(tmp_path / "broken")
    os.makedirs(os.path.join(broken, "flexvol~broken"))
    script = os.path.join(broken, "flexvol~broken", "broken")
    with open(script, "w") as f:
        f.write("#!/bin/sh\necho 'jq: command not found'\nexit 127\n")
    os.chmod(script, 0o755)
    p = node.run(check=False, FLEXVOL_BUNDLE=broken)
    assert p.returncode != 0
    assert "broken: init FAILED" in p.stdout and "jq: command not found" in p.stdout, p.stdout
    assert "init failed for: broken" in p.stderr
    assert not os.path.exists(node.ready)


def test_host_path_that_disagrees_with_the_mount_is_caught(node, tmp_path):
    """FLEXVOL_HOST_PLUGIN_DIR names a dir holding another file: kubelet would run that one."""
    elsewhere = str(tmp_path / "elsewhere")
    d = node.drivers[0]
    os.makedirs(os.path.join(elsewhere, "%s~%s" % (VENDOR, d)))
    shutil.copy("/bin/true", os.path.join(elsewhere, "%s~%s" % (VENDOR, d), d))
    p = node.run(check=False, FLEXVOL_HOST_PLUGIN_DIR=elsewhere, FLEXVOL_DRIVERS=d)
    assert p.returncode != 0 and "disagree" in p.stderr, p.stderr


# --- sleeping, stopping, uninstalling --------------------------------------------------------------

def test_sleeps_and_stopping_leaves_the_drivers(node):
    proc = node.start(FLEXVOL_ONESHOT="false", FLEXVOL_RESYNC_SECONDS=1)
    try:
        deadline = time.time() + 60
        while not os.path.exists(node.ready):
            assert proc.poll() is None, proc.communicate()
            assert time.time() < deadline, "installer never became ready"
            time.sleep(0.05)
        time.sleep(0.3)
        assert proc.poll() is None, "the installer must keep running (a DaemonSet pod)"
        # A Secret created or changed later reaches the host while the pod sleeps.
        node.write_secret({"loop.conf": "[loop]\n"})
        conf = os.path.join(node.config_dir, "loop.conf")
        while not os.path.exists(conf):
            assert time.time() < deadline, "the Secret's config never reached the host"
            time.sleep(0.1)
        assert stat.S_IMODE(os.stat(conf).st_mode) == 0o600
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "stopping" in out
    for d in node.drivers:
        assert same_file(node.driver_path(d), node.shipped(d)), "stopping the pod removed %s" % d


def test_uninstall_removes_the_drivers(node):
    node.write_secret({"loop.conf": "[loop]\n"})
    node.run()
    w = Watcher(node.plugin_dir)
    try:
        p = node.run("uninstall")
        seen = w.visible()
    finally:
        w.close()
    assert os.listdir(node.plugin_dir) == [], p.stdout
    for d in node.drivers:
        assert "%s: removed" % d in p.stdout
        # The executable goes first: kubelet's prober unregisters on its removal.
        assert seen.index(("%s~%s/%s" % (VENDOR, d, d), ["DELETE"])) < seen.index(("%s~%s" % (VENDOR, d),
                                                                                      ["DELETE", "ISDIR"]))
    assert os.path.exists(os.path.join(node.config_dir, "loop.conf")), "config stays unless purged"
    node.run("uninstall", FLEXVOL_PURGE_CONFIG="true")
    assert not os.path.exists(os.path.join(node.config_dir, "loop.conf"))


def test_uninstall_is_refused_while_a_volume_is_mounted(node):
    node.run()
    d = node.drivers[0]
    vol = os.path.join(node.tmp, "kubelet/pods/uid-1/volumes/%s~%s/pv-1" % (VENDOR, d))
    os.makedirs(vol)
    mount("tmpfs", vol, "tmpfs", 0, "size=1m")
    try:
        p = node.run("uninstall", check=False, FLEXVOL_DRIVERS=d)
        assert p.returncode != 0 and "volumes are still mounted" in p.stderr and vol in p.stderr, p.stderr
        assert same_file(node.driver_path(d), node.shipped(d))
        node.run("uninstall", FLEXVOL_DRIVERS=d, FLEXVOL_FORCE="true")
        assert not os.path.exists(os.path.dirname(node.driver_path(d)))
    finally:
        umount_tree(vol)


# --- the image as the DaemonSet runs it -------------------------------------------------------------

def rendered(overlay):
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.fail("kubectl is needed to render the kustomize overlays: apt-get install kubernetes-client "
                    "(Debian 12) or kubectl; CI must install it")
    p = subprocess.run([kubectl, "kustomize", os.path.join(DEPLOY, "overlays", overlay)], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, "kubectl kustomize %s failed:\n%s" % (overlay, p.stderr)
    return [doc for doc in yaml.safe_load_all(p.stdout) if doc]


def daemonset(docs):
    ds = [d for d in docs if d["kind"] == "DaemonSet"]
    assert len(ds) == 1
    return ds[0]


def container_env(ds):
    c = ds["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}  # valueFrom: the API server's


def test_the_image_installs_as_the_daemonset_runs_it(image, tmp_path):
    """The image root file system, chrooted, with the DaemonSet's env and mounts (default overlay)."""
    needs_loop()
    ds = daemonset(rendered("default"))
    spec = ds["spec"]["template"]["spec"]
    c = spec["containers"][0]
    env = container_env(ds)
    host_plugin_dir = str(tmp_path / "host-plugins")
    host_config = str(tmp_path / "host-etc-flexvol")
    secret = str(tmp_path / "secret")
    for d in (host_plugin_dir, host_config, secret):
        os.makedirs(d)
    with open(os.path.join(secret, "loop.conf"), "w") as f:
        f.write("[loop]\n")
    env["FLEXVOL_HOST_PLUGIN_DIR"] = host_plugin_dir  # where this "node" keeps it
    env["FLEXVOL_ONESHOT"] = "true"
    env["FLEXVOL_HOST_PID"] = str(os.getpid())  # the test's mount namespace is this node's host
    env["PATH"] = "/bin"
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    sources = {"plugin-dir": host_plugin_dir, "host-config": host_config, "config-secret": secret,
               "tmp": str(tmp_path / "tmp")}
    os.makedirs(sources["tmp"])
    root = str(tmp_path / "container")
    os.makedirs(root)

    def enter():
        unshare_mounts()
        bind(image, root, readonly=True)  # readOnlyRootFilesystem
        bind("/dev", root + "/dev", recursive=True)  # the runtime's /dev (null, urandom…)
        for name, path in mounts.items():
            bind(sources[name], root + path, readonly=name == "config-secret")
        mount("proc", root + "/proc", "proc")  # hostPID: /proc/1 is the host's init
        libc.chroot(root.encode())
        os.chdir("/")

    p = subprocess.run(c["command"] if "command" in c else ["/bin/sh", "/opt/flexvol/install.sh"] + c["args"],
                       preexec_fn=enter, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    for d in providers():
        assert os.path.exists(os.path.join(host_plugin_dir, "%s~%s" % (VENDOR, d), d))
        assert "%s: init OK from %s/%s~%s/%s (host mount namespace)" % (d, host_plugin_dir, VENDOR, d, d) in p.stdout
    assert stat.S_IMODE(os.stat(os.path.join(host_config, "loop.conf")).st_mode) == 0o600
    assert os.path.exists(os.path.join(sources["tmp"], "flexvol-ready")), "the readiness probe's file"
    probe = c["readinessProbe"]["exec"]["command"]
    assert probe[-1] == "/tmp/flexvol-ready" and os.path.exists(os.path.join(image, probe[0].lstrip("/")))


def test_image_root_is_self_contained(image):
    from install_common import elf_dynamic_info
    files = [os.path.join(image, "bin", "busybox")] + glob.glob(os.path.join(image, IMAGE_DRIVERS, "*", "*"))
    for f in files:
        assert elf_dynamic_info(f) == (None, []), "%s is not static" % f
    with open(os.path.join(REPO, "install", "Dockerfile")) as f:
        dockerfile = f.read()
    assert "install/build-bundle.sh /out" in dockerfile and "COPY --from=build /out/rootfs/ /" in dockerfile
    assert '"/opt/flexvol/install.sh"' in dockerfile and os.path.exists(os.path.join(image, "opt/flexvol/install.sh"))
    assert "FROM scratch" in dockerfile


# --- kustomize -------------------------------------------------------------------------------------

def test_every_overlay_is_tested():
    assert sorted(os.listdir(os.path.join(DEPLOY, "overlays"))) == sorted(OVERLAY_PLUGIN_DIRS)


@pytest.mark.parametrize("overlay", sorted(OVERLAY_PLUGIN_DIRS))
def test_overlay_renders_with_consistent_paths(overlay):
    docs = rendered(overlay)
    ds = daemonset(docs)
    path = OVERLAY_PLUGIN_DIRS[overlay]
    spec = ds["spec"]["template"]["spec"]
    c = spec["containers"][0]
    env = container_env(ds)
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}

    assert volumes["plugin-dir"]["hostPath"] == {"path": path, "type": "Directory"}
    assert env["FLEXVOL_HOST_PLUGIN_DIR"] == path
    assert env["FLEXVOL_PLUGIN_DIR"] == mounts["plugin-dir"]
    assert volumes["host-config"]["hostPath"]["path"] == "/etc/flexvol"
    assert env["FLEXVOL_HOST_CONFIG_DIR"] == mounts["host-config"]
    assert volumes["config-secret"]["secret"]["secretName"] == "flexvol-config"
    assert volumes["config-secret"]["secret"]["optional"] is True
    assert env["FLEXVOL_SECRET_DIR"] == mounts["config-secret"]
    assert env["FLEXVOL_VENDOR"] == VENDOR
    assert c["args"] == ["install"]
    assert c["image"] == daemonset(rendered("default"))["spec"]["template"]["spec"]["containers"][0]["image"]
    assert not c["image"].startswith("flexvol-installer"), "the images transformer did not apply"
    assert c["securityContext"]["privileged"] is True
    assert spec["hostPID"] is True
    assert c["resources"]["requests"] and c["resources"]["limits"]
    assert ds["spec"]["updateStrategy"]["type"] == "RollingUpdate"
    # Runs on control-plane nodes too: a toleration that matches their taints.
    for taint in ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"):
        assert any(t.get("operator") == "Exists" and t.get("key") in (None, taint) and
                   t.get("effect") in (None, "NoSchedule") for t in spec["tolerations"]), taint
    assert ds["metadata"]["namespace"] == "kube-system"
    sa = [d for d in docs if d["kind"] == "ServiceAccount"]
    assert [s["metadata"]["name"] for s in sa] == [spec["serviceAccountName"]]
    if overlay == "openshift":
        crb = [d for d in docs if d["kind"] == "ClusterRoleBinding"][0]
        assert crb["subjects"] == [{"kind": "ServiceAccount", "name": spec["serviceAccountName"],
                                    "namespace": "kube-system"}]
        role = [d for d in docs if d["kind"] == "ClusterRole"][0]
        assert role["rules"][0]["resourceNames"] == ["privileged"]


def test_example_manifests_parse():
    files = glob.glob(os.path.join(REPO, "install", "examples", "loop", "*.yaml"))
    assert files
    kinds = set()
    for f in files:
        with open(f) as fh:
            for doc in yaml.safe_load_all(fh):
                if doc:
                    kinds.add(doc["kind"])
                    if doc["kind"] == "PersistentVolume":
                        assert doc["spec"]["flexVolume"]["driver"] == "%s/loop" % VENDOR
    assert {"PersistentVolume", "PersistentVolumeClaim", "Pod"} <= kinds
