"""The loop driver through the whole kubelet sequence, on real loop devices."""
import fcntl
import hashlib
import os
import signal
import subprocess
import threading
import time

import pytest

from cloud_common import each_call_twice
from kubelet import go_json, lock_path

POD_A = {"name": "app-0", "namespace": "default", "uid": "0a0a0a0a-aaaa-4aaa-8aaa-000000000001"}
POD_B = {"name": "app-1", "namespace": "default", "uid": "0b0b0b0b-bbbb-4bbb-8bbb-000000000002"}


def pod(n):
    return {"name": "p-%d" % n, "namespace": "default", "uid": "00000000-0000-4000-8000-%012d" % n}


def fs_type_of(path):
    return subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "-M", path], capture_output=True,
                          text=True).stdout.strip()


def fs_uuid(path):
    return subprocess.run(["blkid", "-p", "-s", "UUID", "-o", "value", path], capture_output=True,
                          text=True, check=True).stdout.strip()


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def attach_and_mount(node, spec, opts, pods, fs_type="", ro_pods=()):
    k = node.kubelet
    a = k.attach(spec, opts, fs_type)
    assert a.status == "Success", a
    w = k.wait_for_attach(spec, opts, a.json.get("device", ""), fs_type)
    assert w.status == "Success", w
    m = k.mount_device(spec, opts, w.json["device"], fs_type)
    assert m is None or m.status == "Success", m
    for p in pods:
        r = k.set_up_pod(p, spec, opts, fs_type, read_only=p in ro_pods)
        assert r is None or r.status == "Success", r
    return w.json["device"]


def tear_down(node, spec, pods):
    k = node.kubelet
    for p in pods:
        r = k.tear_down_pod(p["uid"], spec)
        assert r is None or r.status == "Success", r
    r = k.unmount_device(spec)
    assert r is None or r.status == "Success", r
    assert k.detach(spec).status == "Success"


@pytest.mark.parametrize("fs_type", ["ext4", "xfs"])
def test_full_lifecycle_two_pods(loop_node, fs_type):
    node, k = loop_node, loop_node.kubelet
    opts = {"image": "vol.img", "size": "320Mi"}
    assert k.init().json["capabilities"]["attach"] is True
    dev = attach_and_mount(node, "pv-a", opts, [POD_A, POD_B], fs_type, ro_pods=[POD_B])
    assert dev.startswith("/dev/loop")
    assert os.path.getsize(node.image("vol.img")) == 320 << 20
    gpath = k.global_path("pv-a")
    assert fs_type_of(gpath) == fs_type
    rw, ro = k.pod_dir(POD_A["uid"], "pv-a"), k.pod_dir(POD_B["uid"], "pv-a")
    with open(os.path.join(rw, "hello.txt"), "w") as f:
        f.write("from pod A")
    with open(os.path.join(ro, "hello.txt")) as f:
        assert f.read() == "from pod A"
    with pytest.raises(OSError) as e:
        open(os.path.join(ro, "nope.txt"), "w")
    assert e.value.errno == 30  # EROFS: the read-only pod really is read-only
    tear_down(node, "pv-a", [POD_A, POD_B])
    assert not os.path.exists(rw) and not os.path.exists(ro) and not os.path.exists(gpath)
    assert node.loop_devices() == [], "unmountdevice must release the loop device"
    assert node.mounts() == []


def test_data_survives_a_second_lifecycle(loop_node):
    node, k = loop_node, loop_node.kubelet
    opts = {"image": "keep.img", "size": "64Mi"}
    attach_and_mount(node, "pv-keep", opts, [POD_A])
    with open(os.path.join(k.pod_dir(POD_A["uid"], "pv-keep"), "data"), "w") as f:
        f.write("persistent")
    tear_down(node, "pv-keep", [POD_A])
    uuid = fs_uuid(node.image("keep.img"))
    attach_and_mount(node, "pv-keep", opts, [POD_B])
    with open(os.path.join(k.pod_dir(POD_B["uid"], "pv-keep"), "data")) as f:
        assert f.read() == "persistent"
    tear_down(node, "pv-keep", [POD_B])
    assert fs_uuid(node.image("keep.img")) == uuid, "the second mountdevice formatted again"


def test_every_call_repeated_is_harmless(loop_node):
    node, k, d = loop_node, loop_node.kubelet, loop_node.driver
    opts = {"image": "rep.img", "size": "64Mi"}
    j = lambda: go_json(k.options("pv-r", opts))
    for _ in range(2):
        assert k.attach("pv-r", opts).status == "Success"
    devs = {d.call("waitforattach", "", j()).json["device"] for _ in range(3)}
    assert len(devs) == 1 and len(node.loop_devices()) == 1, "waitforattach reuses the loop device"
    dev = devs.pop()
    each_call_twice(k, "pv-r", opts, dev, POD_A["uid"], node.mounts)
    assert node.mounts() == [] and node.loop_devices() == []


def test_concurrent_calls_on_one_volume(loop_node):
    node, k, d = loop_node, loop_node.kubelet, loop_node.driver
    opts = {"image": "shared.img", "size": "64Mi"}
    j = go_json(k.options("pv-c", opts))
    # Eight waitforattach at once: one image, one loop device, one reply for all.
    started = [d.start("waitforattach", "", j) for _ in range(8)]
    replies = [d.finish(s) for s in started]
    assert {r.status for r in replies} == {"Success"}
    assert len({r.json["device"] for r in replies}) == 1
    assert len(node.loop_devices()) == 1
    dev = replies[0].json["device"]
    g = k.global_path("pv-c")
    os.makedirs(g, 0o750)
    started = [d.start("mountdevice", g, dev, j) for _ in range(4)]
    assert {d.finish(s).status for s in started} == {"Success"}
    assert node.mounts().count(g) == 1
    pods = [pod(i) for i in range(6)]
    for p in pods:
        os.makedirs(k.pod_dir(p["uid"], "pv-c"), 0o750)
    started = [d.start("mount", k.pod_dir(p["uid"], "pv-c"), j) for p in pods]
    assert {d.finish(s).status for s in started} == {"Success"}
    assert all(node.mounts().count(k.pod_dir(p["uid"], "pv-c")) == 1 for p in pods)
    tear_down(node, "pv-c", pods)
    assert node.loop_devices() == []


def test_concurrent_lifecycles_on_many_volumes(loop_node):
    node = loop_node
    errors = []

    def one(i):
        try:
            spec, opts = "pv-%d" % i, {"image": "many-%d.img" % i, "size": "64Mi"}
            attach_and_mount(node, spec, opts, [pod(i)])
            path = os.path.join(node.kubelet.pod_dir(pod(i)["uid"], spec), "id")
            with open(path, "w") as f:
                f.write(spec)
            tear_down(node, spec, [pod(i)])
        except Exception as e:  # collected: assertions in threads would be lost
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert node.loop_devices() == [] and node.mounts() == []


def write_bytes_at(path, offset, data, size=64 << 20):
    with open(path, "wb") as f:
        f.truncate(size)
        f.seek(offset)
        f.write(data)


@pytest.mark.parametrize("what,offset,data,expect", [
    ("random bytes, no signature", 4096, os.urandom(4096), "holds data"),
    ("one non-zero byte late in the first MiB", (1 << 20) - 1, b"\x01", "holds data"),
    ("a DOS partition table", 510, b"\x55\xaa", "holds data"),
])
def test_device_with_data_is_refused_and_left_unchanged(loop_node, what, offset, data, expect):
    node, k = loop_node, loop_node.kubelet
    write_bytes_at(node.image("data.img"), offset, data)
    if what.startswith("a DOS"):
        # A real partition table: one partition entry, as fdisk would write.
        subprocess.run(["sfdisk", "-q", node.image("data.img")], input="label: dos\n,1M\n", text=True, check=True)
    before = sha(node.image("data.img"))
    opts = {"image": "data.img"}
    dev = k.wait_for_attach("pv-d", opts).json["device"]
    r = k.mount_device("pv-d", opts, dev)
    assert r.status == "Failure" and expect in r.message, r
    assert "refusing" in r.message
    assert node.mounts() == []
    k.unmount_device("pv-d")
    subprocess.run(["losetup", "-d", dev], check=True)
    assert sha(node.image("data.img")) == before, "the device was modified"


def test_existing_filesystem_of_another_type_is_refused(loop_node):
    node, k = loop_node, loop_node.kubelet
    with open(node.image("x.img"), "wb") as f:
        f.truncate(320 << 20)
    subprocess.run(["mkfs.xfs", "-q", node.image("x.img")], check=True)
    before = sha(node.image("x.img"))
    opts = {"image": "x.img"}
    dev = k.wait_for_attach("pv-x", opts, fs_type="ext4").json["device"]
    r = k.mount_device("pv-x", opts, dev, fs_type="ext4")
    assert r.status == "Failure" and "holds a xfs file system" in r.message, r
    subprocess.run(["losetup", "-d", dev], check=True)
    assert sha(node.image("x.img")) == before


def test_blank_read_only_volume_is_not_formatted(loop_node):
    node, k = loop_node, loop_node.kubelet
    opts = {"image": "ro.img", "size": "64Mi"}
    dev = k.wait_for_attach("pv-ro", opts, read_only=True).json["device"]
    r = k.mount_device("pv-ro", opts, dev, read_only=True)
    assert r.status == "Failure" and "read-only" in r.message, r
    subprocess.run(["losetup", "-d", dev], check=True)
    with open(node.image("ro.img"), "rb") as f:
        assert f.read(1 << 20) == bytes(1 << 20)


def test_stale_device_name_is_refused(loop_node):
    """mountdevice must never trust the device string it is handed."""
    node, k = loop_node, loop_node.kubelet
    a, b = {"image": "a.img", "size": "64Mi"}, {"image": "b.img", "size": "64Mi"}
    dev_a = k.wait_for_attach("pv-a", a).json["device"]
    dev_b = k.wait_for_attach("pv-b", b).json["device"]
    r = k.mount_device("pv-a", a, dev_b)
    assert r.status == "Failure" and "not the loop device" in r.message, r
    with open(node.image("b.img"), "rb") as f:
        assert f.read(1 << 20) == bytes(1 << 20), "b.img must stay blank"
    for dev in (dev_a, dev_b):
        subprocess.run(["losetup", "-d", dev], check=True)


def nothing_left(node, files_before):
    assert node.loop_devices() == [], "a loop device was left bound"
    assert node.mounts() == [], "a mount was left behind"
    assert sorted(os.listdir(node.image_root)) == files_before, "a file was created"


@pytest.mark.parametrize("args,expect", [
    (["waitforattach", "", "{not json"], "not valid JSON"),
    (["waitforattach", "", '{"image":1}'], "must be a string"),
    (["waitforattach", "", "[]"], "JSON object"),
    (["waitforattach", "", '{"kubernetes.io/fsType":""}'], "'image' is required"),
    (["waitforattach", "", '{"image":"missing.img"}'], "does not exist"),
    (["waitforattach", "", '{"image":"../escape.img","size":"64Mi"}'], "'..'"),
    (["waitforattach", "", '{"image":"/etc/passwd"}'], "relative path"),
    (["waitforattach", "", '{"image":"link-out.img"}'], "outside"),
    (["waitforattach", "", '{"image":"dir-link/x.img","size":"64Mi"}'], "outside"),
    (["waitforattach", "", '{"image":"new.img","size":"12XB"}'], "option 'size'"),
    (["waitforattach", "", '{"image":"new.img","size":"64Mi","kubernetes.io/fsType":"vfat"}'], "not supported"),
    (["waitforattach", "", '{"image":"new.img","size":"64Mi","sise":"1Gi"}'], "unknown option 'sise'"),
    (["waitforattach", ""], "takes 2 arguments"),
    (["mountdevice", "/x", "/dev/loop0"], "takes 3 arguments"),
    (["mountdevice", "relative/path", "/dev/loop0", '{"image":"a.img"}'], "not an absolute path"),
    (["mount", "/tmp/x", '{"image":"a.img"}', "extra"], "takes 2 arguments"),
    (["unmount"], "takes 1 argument"),
    (["attach", '{"image":"../../etc/shadow"}', "node-1"], "'..'"),
])
def test_bad_input_fails_and_changes_nothing(loop_node, args, expect):
    node = loop_node
    outside = os.path.join(node.tmp, "outside")
    os.makedirs(outside)
    with open(os.path.join(outside, "victim.img"), "wb") as f:
        f.truncate(64 << 20)
    os.symlink(os.path.join(outside, "victim.img"), node.image("link-out.img"))
    os.symlink(outside, node.image("dir-link"))
    before = sorted(os.listdir(node.image_root))
    r = node.driver.call(*args)
    assert r.status == "Failure" and expect in r.message, r
    nothing_left(node, before)
    assert os.listdir(outside) == ["victim.img"]


def test_symlink_inside_image_root_is_followed(loop_node):
    node, k = loop_node, loop_node.kubelet
    os.makedirs(node.image("real"))
    with open(node.image("real/disk.img"), "wb") as f:
        f.truncate(64 << 20)
    os.symlink("real/disk.img", node.image("alias.img"))
    r = k.wait_for_attach("pv-s", {"image": "alias.img"})
    assert r.status == "Success", r
    subprocess.run(["losetup", "-d", r.json["device"]], check=True)


def test_sigterm_ends_a_waiting_call_with_failure(loop_node):
    node, k, d = loop_node, loop_node.kubelet, loop_node.driver
    opts = {"image": "t.img", "size": "64Mi"}
    dev = k.wait_for_attach("pv-t", opts).json["device"]
    g = k.global_path("pv-t")
    os.makedirs(g, 0o750)
    # Hold the volume's lock the way a concurrent call would, so mountdevice waits.
    os.makedirs(os.path.join(node.run_dir, "locks", "loop"), exist_ok=True)
    with open(lock_path(node.run_dir, "loop", g), "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        started = d.start("mountdevice", g, dev, go_json(k.options("pv-t", opts)))
        time.sleep(0.5)
        assert started[1].poll() is None, "mountdevice should be waiting for the lock"
        started[1].send_signal(signal.SIGTERM)
        r = d.finish(started, timeout=10)
    assert r.status == "Failure" and "terminated" in r.message, r
    assert node.mounts() == []
    subprocess.run(["losetup", "-d", dev], check=True)
