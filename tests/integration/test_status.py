"""`<driver> status`: what the driver holds on the node, read from the
kernel's tables, after real kubelet sequences with the loop driver (real
loop devices and mounts), plus orphans and stale FUSE mounts made by hand."""
import ctypes
import json
import os
import subprocess

import pytest

from cloud_common import POD_A, POD_B

SPEC = "pv-status"
OPTS = {"image": "status.img", "size": "64Mi"}
libc = ctypes.CDLL(None, use_errno=True)


def status(node, *args):
    env = dict(node.driver.env)
    base = [node.driver.path, "status", "--kubelet-root", node.kubelet.root]
    text = subprocess.run(base + list(args), capture_output=True, text=True, env=env, timeout=120)
    js = subprocess.run(base + ["--json"] + list(args), capture_output=True, text=True, env=env, timeout=120)
    assert text.returncode == 0 and js.returncode == 0
    assert text.stderr == "" and js.stderr == ""
    return json.loads(js.stdout), text.stdout


def mount_for_pods(node, pods):
    k = node.kubelet
    a = k.attach(SPEC, OPTS)
    assert a.status == "Success", a
    w = k.wait_for_attach(SPEC, OPTS, a.json.get("device", ""))
    assert w.status == "Success", w
    assert k.mount_device(SPEC, OPTS, w.json["device"]).status == "Success"
    for p in pods:
        assert k.set_up_pod(p, SPEC, OPTS, read_only=(p is POD_B)).status == "Success"
    # The loop device is bound by mountdevice (waitforattach answers the image's path).
    return subprocess.run(["findmnt", "-n", "-o", "SOURCE", "-M", k.global_path(SPEC)], capture_output=True,
                          text=True, check=True).stdout.strip()


def test_lists_a_mounted_volume_with_its_pod_binds(loop_node):
    device = mount_for_pods(loop_node, [POD_A, POD_B])
    k = loop_node.kubelet
    with open(os.path.join(k.pod_dir(POD_A["uid"], SPEC), "data"), "wb") as f:
        f.write(os.urandom(4 << 20))
    st, text = status(loop_node)
    assert st["driver"] == "loop"
    assert [v["volume"] for v in st["volumes"]] == [SPEC]
    v = st["volumes"][0]
    assert v["global_path"] == k.global_path(SPEC)
    assert v["device"] == device and v["fstype"] == "ext4"
    assert v["image"] == loop_node.image("status.img")
    assert v["stale"] is False and 0 < v["size"] <= 64 << 20 and v["used"] >= 4 << 20
    pods = {p["pod_uid"]: p for p in v["pods"]}
    assert set(pods) == {POD_A["uid"], POD_B["uid"]}
    assert pods[POD_A["uid"]]["path"] == k.pod_dir(POD_A["uid"], SPEC)
    assert pods[POD_A["uid"]]["read_only"] is False and pods[POD_B["uid"]]["read_only"] is True
    assert st["loop_devices"] == [{"device": device, "image": loop_node.image("status.img"), "mounted": True}]
    assert st["stale"] == [] and st["unused_global_mounts"] == [] and st["unmounted_devices"] == []
    assert st["pod_mounts"] == [] and st["locks"] == []
    assert "volume %s: %s ext4 on %s" % (SPEC, device, k.global_path(SPEC)) in text
    assert "  pod %s: %s (ro)" % (POD_B["uid"], k.pod_dir(POD_B["uid"], SPEC)) in text


def test_orphans_a_global_mount_without_pods_and_a_bound_device_without_mount(loop_node):
    device = mount_for_pods(loop_node, [POD_A])
    k = loop_node.kubelet
    assert k.tear_down_pod(POD_A["uid"], SPEC).status == "Success"
    # A loop device bound to an image under image-root that nothing mounts.
    with open(loop_node.image("orphan.img"), "wb") as f:
        f.truncate(8 << 20)
    orphan = subprocess.run(["losetup", "-f", "--show", loop_node.image("orphan.img")], capture_output=True,
                            text=True, check=True).stdout.strip()
    st, text = status(loop_node)
    assert st["unused_global_mounts"] == [k.global_path(SPEC)]
    assert st["volumes"][0]["pods"] == []
    assert st["unmounted_devices"] == [{"device": orphan, "image": loop_node.image("orphan.img")}]
    assert {d["device"]: d["mounted"] for d in st["loop_devices"]} == {device: True, orphan: False}
    assert "ORPHAN global mount with no pod bind: %s" % k.global_path(SPEC) in text
    assert "ORPHAN device bound but not mounted: %s" % orphan in text


def test_a_pod_bind_of_another_driver_or_a_foreign_loop_device_is_not_listed(loop_node, tmp_path):
    k = loop_node.kubelet
    other = os.path.join(k.root, "pods", POD_A["uid"], "volumes", "flexvol~nfs", "x")
    os.makedirs(other)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", other], check=True)
    foreign = tmp_path / "foreign.img"
    with open(foreign, "wb") as f:
        f.truncate(8 << 20)
    dev = subprocess.run(["losetup", "-f", "--show", str(foreign)], capture_output=True, text=True,
                         check=True).stdout.strip()
    try:
        st, _ = status(loop_node)
        assert st["volumes"] == [] and st["pod_mounts"] == [] and st["loop_devices"] == []
    finally:
        subprocess.run(["losetup", "-d", dev])


def fuse_mount(target):
    """A FUSE mount whose server never answers: the /dev/fuse fd is the
    server. Closing it aborts the connection (every access: ENOTCONN)."""
    fd = os.open("/dev/fuse", os.O_RDWR)
    opts = "fd=%d,rootmode=40000,user_id=0,group_id=0" % fd
    if libc.mount(b"flexvol-test", target.encode(), b"fuse", 0, opts.encode()) != 0:
        e = ctypes.get_errno()
        os.close(fd)
        pytest.skip("cannot mount FUSE here: %s" % os.strerror(e))
    return fd


@pytest.fixture
def fuse_pod_dir(loop_node):
    if not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse: cannot make a mount whose server is gone")
    target = loop_node.kubelet.pod_dir(POD_A["uid"], "pv-fuse")
    os.makedirs(target)
    yield target
    subprocess.run(["umount", "-l", target], capture_output=True)


def test_a_mount_whose_server_died_is_stale(loop_node, fuse_pod_dir):
    fd = fuse_mount(fuse_pod_dir)
    os.close(fd)  # the server dies
    st, text = status(loop_node)
    assert [s["path"] for s in st["stale"]] == [fuse_pod_dir]
    assert "not connected" in st["stale"][0]["error"]
    assert st["pod_mounts"][0]["stale"] is True and st["pod_mounts"][0]["fstype"] == "fuse"
    assert "STALE %s" % fuse_pod_dir in text


def test_a_mount_whose_server_hangs_does_not_hang_status(loop_node, fuse_pod_dir):
    fd = fuse_mount(fuse_pod_dir)  # alive, but never answers
    try:
        st, _ = status(loop_node)
    finally:
        os.close(fd)
    assert [s["path"] for s in st["stale"]] == [fuse_pod_dir]
    assert "did not finish" in st["stale"][0]["error"]


def test_a_held_lock_is_listed_with_its_holder(loop_node):
    locks = os.path.join(loop_node.run_dir, "locks", "loop")
    os.makedirs(locks, 0o700)
    name = "image%3A2049%3A12.lock"
    holder = subprocess.Popen(["flock", os.path.join(locks, name), "sh", "-c", "read line"], stdin=subprocess.PIPE)
    try:
        for _ in range(200):
            st, text = status(loop_node)
            if st["locks"] and "held by" in text:  # flock(1) may not have locked yet
                break
        assert len(st["locks"]) == 1
        lock = st["locks"][0]
        assert lock["key"] == "image:2049:12" and lock["pid"] == holder.pid and lock["command"] == "flock"
        assert "lock 'image:2049:12': held by pid %d" % holder.pid in text
    finally:
        holder.stdin.close()
        holder.wait()
    st, _ = status(loop_node)
    assert st["locks"] == []
