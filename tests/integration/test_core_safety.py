"""The core's safety against hostile volume specs and stuck clouds, with the
real binaries: locks keyed on the kubelet path (never a name from the
options), any valid PV name, secrets wiped from our argv, every HTTP wait
bounded by the call's deadline, and no proxy from the environment."""
import base64
import fcntl
import glob
import json
import os
import socket
import subprocess
import threading
import time

import pytest

from cinder_helpers import CinderCloud, opts as cinder_opts
from cloud_common import cloud_fixtures, mounts_under, needs_loop
from conftest import LoopNode, cleanup_tree, driver_path, valgrind_wrapper
from kubelet import Driver, Kubelet, go_json, lock_path

make_cloud, cloud = cloud_fixtures(CinderCloud, valgrind_wrapper)


def pod(n):
    return {"name": "p-%d" % n, "namespace": "tenant-%d" % n, "uid": "22222222-0000-4000-8000-%012d" % n}


class HostpathNode:
    """hostpath with one allowed root: the cheapest driver whose mount call
    takes the core's lock."""

    def __init__(self, tmp):
        self.tmp = str(tmp)
        self.root = os.path.join(self.tmp, "allowed")
        self.run_dir = os.path.join(self.tmp, "run")
        etc = os.path.join(self.tmp, "etc")
        for d in (os.path.join(self.root, "a"), os.path.join(self.root, "b"), etc):
            os.makedirs(d)
        with open(os.path.join(etc, "hostpath.conf"), "w") as f:
            f.write("[hostpath]\nallowed-roots = %s\n" % self.root)
        env = dict(os.environ, FLEXVOL_CONFIG_DIR=etc, FLEXVOL_RUN_DIR=self.run_dir)
        self.driver = Driver(driver_path("hostpath"), env)
        self.kubelet = Kubelet(self.driver, os.path.join(self.tmp, "kubelet"))

    def lock_files(self):
        return set(glob.glob(os.path.join(self.run_dir, "locks", "hostpath", "*")))


@pytest.fixture
def hostpath(tmp_path):
    needs_loop()
    node = HostpathNode(tmp_path)
    yield node
    for m in sorted(mounts_under(node.tmp), key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True)


class Held:
    """flock on the given files, as a call stuck while holding them would."""

    def __init__(self, paths):
        self.files = [open(p, "a") for p in paths]

    def __enter__(self):
        for f in self.files:
            fcntl.flock(f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        for f in self.files:
            f.close()


def test_inline_volumes_named_alike_lock_independently(hostpath):
    """Every pod may name an inline volume `data`: one stuck call on pod A's
    volume must not hold pod B's (the old lock key was the name)."""
    k = hostpath.kubelet
    a, b = pod(1), pod(2)
    before = hostpath.lock_files()
    assert k.set_up_pod(a, "data", {"path": hostpath.root + "/a"}).status == "Success"
    assert k.tear_down_pod(a["uid"], "data").status == "Success"
    a_locks = hostpath.lock_files() - before
    assert a_locks, "pod A's mount took no lock file"
    with Held(a_locks):
        # Within a minute or not at all: the old code waited 10 minutes here.
        path = k.pod_dir(b["uid"], "data")
        os.makedirs(path)
        r = hostpath.driver.call("mount", path, go_json(k.options("data", {"path": hostpath.root + "/b"}, pod=b)),
                                 timeout=60)
        assert r.status == "Success", r
        assert path in mounts_under(hostpath.tmp)
        # Pod A's own path still waits for its holder.
        pa = k.pod_dir(a["uid"], "data")
        os.makedirs(pa)
        started = hostpath.driver.start("mount", pa, go_json(k.options("data", {"path": hostpath.root + "/a"},
                                                                       pod=a)))
        try:
            time.sleep(0.3)
            assert started[1].poll() is None, "pod A's mount must wait for the lock of its path"
        finally:
            started[1].terminate()
            Driver.finish(started, timeout=30)
    assert k.tear_down_pod(b["uid"], "data").status == "Success"


def test_two_spellings_of_a_path_are_one_lock(hostpath):
    k = hostpath.kubelet
    p = pod(3)
    path = k.pod_dir(p["uid"], "v")
    os.makedirs(path)
    opts = go_json(k.options("v", {"path": hostpath.root + "/a"}, pod=p))
    assert hostpath.driver.call("mount", path, opts).status == "Success"
    assert os.path.exists(lock_path(hostpath.run_dir, "hostpath", path)), os.listdir(
        os.path.join(hostpath.run_dir, "locks", "hostpath"))
    odd = path.replace("/pods/", "//pods/./") + "/"
    with Held([lock_path(hostpath.run_dir, "hostpath", path)]):
        started = hostpath.driver.start("unmount", odd)
        time.sleep(0.3)
        assert started[1].poll() is None, "the other spelling must wait for the same lock"
    assert Driver.finish(started, timeout=60).status == "Success"
    r = hostpath.driver.call("unmount", path.replace("/pods/", "/pods/x/../"))
    assert r.status == "Failure" and "'..'" in r.message, r


def test_a_253_character_pv_name_goes_through_the_whole_lifecycle(tmp_path):
    """Valid PV names reach 253 characters; the old lock file name did not
    fit and every locked call failed, unmount included."""
    needs_loop()
    node = LoopNode(tmp_path, valgrind_wrapper(tmp_path))
    try:
        k = node.kubelet
        name = ".".join(["pv-" + "a" * 59] * 4) + ".z"
        assert len(name) == 253 and not name.endswith(".")
        opts = {"image": "long.img", "size": "64Mi"}
        p = pod(4)
        assert k.attach(name, opts).status == "Success"
        r = k.mount_volume(p, name, opts)
        assert r.status == "Success", r
        pod_dir = k.pod_dir(p["uid"], name)
        with open(os.path.join(pod_dir, "f"), "w") as f:
            f.write("kept")
        locks = os.listdir(os.path.join(node.run_dir, "locks", "loop"))
        assert all(len(n) < 256 for n in locks) and any(n.startswith("~") for n in locks), locks
        assert k.tear_down_pod(p["uid"], name).status == "Success"
        assert not os.path.exists(pod_dir)
        r = k.unmount_device(name)
        assert r is not None and r.status == "Success", r
        assert not os.path.exists(k.global_path(name))
        assert k.detach(name).status == "Success"
        assert node.mounts() == [] and node.loop_devices() == []
    finally:
        cleanup_tree(node.tmp)


def test_secrets_are_wiped_from_our_argv(hostpath):
    """/proc/<pid>/cmdline shows argv for the whole call: sampled while the
    call waits for a lock, it must not show the secret."""
    k = hostpath.kubelet
    p = pod(5)
    secret = "s3cr3t-Passw0rd-for-argv"
    b64 = base64.b64encode(secret.encode()).decode()
    before = hostpath.lock_files()
    assert k.set_up_pod(p, "v", {"path": hostpath.root + "/a"}).status == "Success"
    assert k.tear_down_pod(p["uid"], "v").status == "Success"
    held = hostpath.lock_files() - before
    path = k.pod_dir(p["uid"], "v")
    os.makedirs(path)
    opts = go_json(k.options("v", {"path": hostpath.root + "/a"}, pod=p, secrets={"password": secret}))
    with Held(held):
        started = hostpath.driver.start("mount", path, opts)
        pid = started[1].pid
        try:
            # Waiting for the lock: it has the lock file open (its options are parsed by then).
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                fds = [os.readlink(f) for f in glob.glob("/proc/%d/fd/*" % pid) if os.path.exists(f)]
                if any(f in held for f in fds):
                    break
                assert started[1].poll() is None, "the call ended before waiting for the lock"
                time.sleep(0.02)
            else:
                pytest.fail("the call never waited for the held lock")
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                cmdline = f.read()
        finally:
            started[1].terminate()
            Driver.finish(started, timeout=30)
    assert b64.encode() not in cmdline and secret.encode() not in cmdline, cmdline
    args = cmdline.split(b"\0")
    assert args[1:3] == [b"mount", path.encode()], args
    shown = json.loads(args[3])
    assert shown["kubernetes.io/secret/password"] == "***" and shown["path"] == hostpath.root + "/a", shown


# --- HTTP: every wait ends with the call's deadline; no proxy from the environment ---

def test_a_silent_server_after_a_long_token_wait_ends_by_the_deadline(make_cloud):
    """After a 401 the old client waited for the token lock up to 60 s, past
    the call's deadline, then sent the request with CURLOPT_TIMEOUT_MS 0 (no
    limit) to a server that accepted it and never answered."""
    cloud = make_cloud(flexvol={"attach-timeout": "3", "http-timeout": "2"})
    vid = cloud.volume()
    assert cloud.kubelet.is_attached("pv-h", cinder_opts(vid)).status == "Success"  # token 1 in the cache
    # Token 2, as another process would store it: same identity, another run dir.
    other = Driver(cloud.driver.path, dict(cloud.driver.env, FLEXVOL_RUN_DIR=os.path.join(cloud.tmp, "run2")))
    assert Kubelet(other, cloud.kubelet.root).is_attached("pv-h", cinder_opts(vid)).status == "Success"
    token_file = glob.glob(os.path.join(cloud.run_dir, "tokens", "cinder", "*.json"))
    token_locks = glob.glob(os.path.join(cloud.run_dir, "locks", "cinder", "token-*"))
    assert len(token_file) == 1 and len(token_locks) == 1, (token_file, token_locks)
    fresh = os.path.join(cloud.tmp, "run2", "tokens", "cinder", os.path.basename(token_file[0]))
    cloud.fake.add_fault(kind="status", status=401, count=1)  # token 1 refused: re-authenticate
    cloud.fake.add_fault(kind="hang")  # then every request: accepted, never answered
    with Held(token_locks):
        started = cloud.driver.start("attach", go_json(cloud.kubelet.options("pv-h", cinder_opts(vid))), "node-1")
        try:
            # Another process authenticates for longer than the whole call
            # may take, then leaves token 2 behind.
            time.sleep(7)
            os.rename(fresh, token_file[0])
        except BaseException:
            started[1].kill()
            raise
    try:
        r = Driver.finish(started, timeout=40)
    except subprocess.TimeoutExpired:
        started[1].kill()
        started[1].communicate()
        pytest.fail("the call outlived its deadline by more than 40 s")
    finally:
        cloud.fake.clear_faults()
    assert r.status == "Failure" and r.message, r


def test_http_proxy_in_the_environment_is_not_used(make_cloud):
    black_hole = socket.socket()
    black_hole.bind(("127.0.0.1", 0))
    black_hole.listen(16)  # accepts, never answers
    proxy = "http://127.0.0.1:%d" % black_hole.getsockname()[1]
    try:
        cloud = make_cloud(flexvol={"http-timeout": "3", "http-attempts": "1"})
        for var in ("http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
            cloud.driver.env[var] = proxy
        cloud.driver.env.pop("no_proxy", None)
        cloud.driver.env.pop("NO_PROXY", None)
        vid = cloud.volume()
        r = cloud.kubelet.attach("pv-p", cinder_opts(vid))
        assert r.status == "Success", r
        assert cloud.kubelet.detach("pv-p").status == "Success"
    finally:
        black_hole.close()
