"""Encrypted loop volumes through the kubelet sequence on a kernel with
dm-crypt. This host's kernel has no device-mapper: tests/vm/test_crypt_vm.py
runs this file inside the VM guest (Debian kernel), where nothing skips."""
import os
import subprocess

import pytest

from cloud_common import mounts_under
from kubelet import go_json
from conftest import LoopNode, cleanup_tree, needs_loop
from crypt_common import KEY, OTHER_KEY, add_key, dm_crypt_available, mappings, pod, write_crypt_config

pytestmark = pytest.mark.skipif(not dm_crypt_available(), reason="this kernel has no dm-crypt (the VM tier runs these)")

SIZE = "64Mi"


@pytest.fixture
def node(tmp_path):
    needs_loop()
    n = LoopNode(tmp_path)
    write_crypt_config(n)
    add_key(n, "k1", KEY)
    before = set(mappings())
    yield n
    for m in sorted(mounts_under(n.tmp), key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True)
    # Only after a failed test. Without DM_DISABLE_UDEV cryptsetup waits for a
    # udev rule (95-dm-notify) this node may not have: the teardown would hang.
    for name in set(mappings()) - before:
        subprocess.run(["cryptsetup", "close", name], capture_output=True, timeout=60,
                       env=dict(os.environ, DM_DISABLE_UDEV="1"))
    cleanup_tree(n.tmp)


def opts(image="vol.img", key="k1", **extra):
    o = {"image": image, "size": SIZE, "encrypted": "true", "encryptionKeyName": key}
    o.update(extra)
    return o


def test_lifecycle_data_is_encrypted_on_the_image(node):
    k = node.kubelet
    o = opts()
    r = k.mount_volume(pod(1), "pv-enc", o)
    assert r.status == "Success", r
    assert "flexvol-pv-enc" in mappings()
    secret = b"plain text that must not reach the image " * 4
    with open(os.path.join(k.pod_dir(pod(1)["uid"], "pv-enc"), "file"), "wb") as f:
        f.write(secret)
    assert k.tear_down_pod(pod(1)["uid"], "pv-enc").status == "Success"
    assert k.unmount_device("pv-enc").status == "Success"
    assert "flexvol-pv-enc" not in mappings()
    assert node.loop_devices() == []
    with open(node.image("vol.img"), "rb") as f:
        raw = f.read()
    assert raw[:4] == b"LUKS"
    assert secret[:40] not in raw
    # Again: opened, not formatted; the data is there.
    r = k.mount_volume(pod(2), "pv-enc", o)
    assert r.status == "Success", r
    with open(os.path.join(k.pod_dir(pod(2)["uid"], "pv-enc"), "file"), "rb") as f:
        assert f.read() == secret
    assert k.tear_down_pod(pod(2)["uid"], "pv-enc").status == "Success"
    assert k.unmount_device("pv-enc").status == "Success"
    assert "flexvol-pv-enc" not in mappings()


def write_file(k, pod_n, spec, data):
    with open(os.path.join(k.pod_dir(pod(pod_n)["uid"], spec), "file"), "wb") as f:
        f.write(data)


def read_file(k, pod_n, spec):
    with open(os.path.join(k.pod_dir(pod(pod_n)["uid"], spec), "file"), "rb") as f:
        return f.read()


def down(k, pod_n, spec):
    assert k.tear_down_pod(pod(pod_n)["uid"], spec).status == "Success"
    r = k.unmount_device(spec)
    assert r is None or r.status == "Success", r
    assert "flexvol-" + spec not in mappings()


def test_xfs_inside_and_every_call_twice(node):
    k = node.kubelet
    o = opts(**{"kubernetes.io/fsType": "xfs"})
    o["size"] = "400Mi"
    for _ in range(2):
        r = k.mount_volume(pod(1), "pv-x", o, fs_type="xfs")
        assert r is None or r.status == "Success", r
    r = k.driver.call("mountdevice", k.global_path("pv-x"), node.image("vol.img"),
                      __import__("kubelet").go_json(k.options("pv-x", o, "xfs")))
    assert r.status == "Success", r  # already mounted from the mapping: fine
    out = subprocess.run(["findmnt", "-n", "-o", "SOURCE,FSTYPE", "-M", k.global_path("pv-x")],
                         capture_output=True, text=True).stdout.split()
    assert out == ["/dev/mapper/flexvol-pv-x", "xfs"], out
    down(k, 1, "pv-x")
    r = k.driver.call("unmountdevice", k.global_path("pv-x"))
    assert r.status == "Success", r
    assert node.loop_devices() == []


def test_wrong_key_and_swapped_device_are_refused(node):
    k = node.kubelet
    add_key(node, "k2", OTHER_KEY)
    assert k.mount_volume(pod(1), "pv-a", opts("a.img")).status == "Success"
    write_file(k, 1, "pv-a", b"volume a")
    down(k, 1, "pv-a")
    assert k.mount_volume(pod(1), "pv-b", opts("b.img")).status == "Success"
    down(k, 1, "pv-b")
    before = sha(node.image("a.img"))
    r = k.mount_volume(pod(1), "pv-a", opts("a.img", key="k2"))
    assert r.status == "Failure" and "the key does not open the LUKS container" in r.message, r
    # b's disk under a's name, with the key both share.
    r = k.mount_volume(pod(1), "pv-a", opts("b.img"))
    assert r.status == "Failure" and "labelled for volume 'pv-b', not 'pv-a'" in r.message, r
    assert sha(node.image("a.img")) == before
    assert "flexvol-pv-a" not in mappings() and node.loop_devices() == [] and node.mounts() == []
    assert k.mount_volume(pod(1), "pv-a", opts("a.img")).status == "Success"
    assert read_file(k, 1, "pv-a") == b"volume a"
    down(k, 1, "pv-a")


def sha(path):
    import hashlib
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# Where a first, formatting mountdevice is killed: the driver's own writes,
# syncs, device-mapper ioctls, mounts and child starts, a sample of them.
KILL_SYSCALLS = ("pwrite64", "write", "fdatasync", "fsync", "ioctl", "mount", "move_mount", "clone", "clone3")
KILL_POINTS = int(os.environ.get("CRYPT_KILL_POINTS", "4"))


def recorded_steps(node, k, o):
    """(syscall, k) for every kill-worthy syscall of one whole mountdevice."""
    trace = os.path.join(node.tmp, "trace")
    k.wait_for_attach("pv-rec", o)
    argv = ["strace", "-qq", "-o", trace, "-e", "trace=" + ",".join(KILL_SYSCALLS), k.driver.path, "mountdevice",
            k.global_path("pv-rec"), node.image(o["image"]), __import__("kubelet").go_json(k.options("pv-rec", o))]
    os.makedirs(k.global_path("pv-rec"), exist_ok=True)
    subprocess.run(argv, env=k.driver.env, capture_output=True, check=True)
    counts, steps = {}, []
    with open(trace) as f:
        for line in f:
            name = line.split("(", 1)[0].strip()
            if name in KILL_SYSCALLS:
                counts[name] = counts.get(name, 0) + 1
                steps.append((name, counts[name]))
    assert k.driver.call("unmountdevice", k.global_path("pv-rec")).status == "Success"
    return steps


@pytest.mark.skipif(not __import__("shutil").which("strace"), reason="strace is not installed")
def test_killed_at_sampled_steps_of_a_formatting_mountdevice_replays_without_reformat(node):
    """Each kill leaves the volume closed, or open (and maybe mounted); the
    replay kubelet makes ends mounted, and data written then survives the
    next mountdevice: the volume is never formatted again once in use."""
    k = node.kubelet
    steps = recorded_steps(node, k, opts("rec.img"))
    assert len(steps) > 20, steps
    n = min(KILL_POINTS, len(steps))
    picks = [steps[i * (len(steps) - 1) // max(n - 1, 1)] for i in range(n)]
    for i, (name, when) in enumerate(picks):
        spec, img = "pv-k%d" % i, "k%d.img" % i
        o = opts(img)
        assert k.wait_for_attach(spec, o).status == "Success"
        os.makedirs(k.global_path(spec), exist_ok=True)
        argv = ["strace", "-qq", "-o", "/dev/null", "-e", "inject=%s:signal=KILL:when=%d" % (name, when),
                k.driver.path, "mountdevice", k.global_path(spec), node.image(img),
                __import__("kubelet").go_json(k.options(spec, o))]
        subprocess.run(argv, env=k.driver.env, capture_output=True)
        where = "killed at %s #%d" % (name, when)
        r = k.mount_volume(pod(1), spec, o)
        assert r is None or r.status == "Success", (where, r)
        write_file(k, 1, spec, b"written after " + where.encode())
        down(k, 1, spec)
        assert node.loop_devices() == [], where
        assert k.mount_volume(pod(2), spec, o).status == "Success", where
        assert read_file(k, 2, spec) == b"written after " + where.encode(), where
        down(k, 2, spec)


def test_expandfs_grows_the_mapping_then_the_file_system(node):
    """expandfs on an encrypted loop volume: the image and the loop device
    grow, then the mapping over it, then the file system inside; the data
    stays and the key still opens the container afterwards."""
    k = node.kubelet
    mib = 1 << 20
    o = opts(image="grow.img")
    a = k.attach("pv-grow", o)
    w = k.wait_for_attach("pv-grow", o, a.json.get("device", ""))
    assert w.status == "Success", w
    r = k.mount_device("pv-grow", o, w.json["device"])
    assert r is None or r.status == "Success", r
    assert k.set_up_pod(pod(1), "pv-grow", o).status == "Success"
    write_file(k, 1, "pv-grow", b"kept across the resize")
    pod_dir = k.pod_dir(pod(1)["uid"], "pv-grow")
    before = os.statvfs(pod_dir).f_blocks * os.statvfs(pod_dir).f_frsize
    r = k.driver.call("expandfs", go_json(k.options("pv-grow", o)), w.json["device"], k.global_path("pv-grow"),
                      str(128 * mib), str(64 * mib))
    assert r.status == "Success", r
    assert os.path.getsize(node.image("grow.img")) == 128 * mib
    mapped = subprocess.run(["blockdev", "--getsize64", "/dev/mapper/flexvol-pv-grow"], capture_output=True,
                            text=True, check=True).stdout.strip()
    # The mapping grew, not just the image: all of it but the LUKS2 header (16 MiB).
    assert int(mapped) == (128 - 16) * mib, mapped
    after = os.statvfs(pod_dir).f_blocks * os.statvfs(pod_dir).f_frsize
    assert after > before + 56 * mib, (before, after)
    assert read_file(k, 1, "pv-grow") == b"kept across the resize"
    down(k, 1, "pv-grow")
    # Opened again with the same key: the grown file system, not a format.
    r = k.mount_volume(pod(2), "pv-grow", {"image": "grow.img", "encrypted": "true", "encryptionKeyName": "k1"})
    assert r.status == "Success", r
    assert read_file(k, 2, "pv-grow") == b"kept across the resize"
    st = os.statvfs(k.pod_dir(pod(2)["uid"], "pv-grow"))
    assert st.f_blocks * st.f_frsize == after
    down(k, 2, "pv-grow")
