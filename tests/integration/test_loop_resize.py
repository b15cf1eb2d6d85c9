"""loop expandfs (issue 13, item 7): the image, the loop device and the file
system grow online, and the format record's MiB stays outside the file system."""
import os
import subprocess

import pytest

from kubelet import go_json
from test_loop import POD_A, attach_and_mount, tear_down

MIB = 1 << 20


def has_cap_sys_resource():
    with open("/proc/self/status") as f:
        eff = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    return bool(eff & (1 << 24))


def fs_bytes(path):
    st = os.statvfs(path)
    return st.f_blocks * st.f_frsize


def device_of(path):
    return subprocess.run(["findmnt", "-n", "-o", "SOURCE", "-M", path], capture_output=True, text=True,
                          check=True).stdout.strip()


def ext4_size(dev):
    out = subprocess.run(["dumpe2fs", "-h", dev], capture_output=True, text=True, check=True).stdout
    info = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return int(info["Block count"]) * int(info["Block size"])


def expandfs(k, spec, opts, device, path, new, old, fs_type=""):
    return k.driver.call("expandfs", go_json(k.options(spec, opts, fs_type)), device, path, str(new), str(old))


@pytest.mark.parametrize("fs_type,old,new", [("ext4", 64 * MIB, 128 * MIB), ("xfs", 320 * MIB, 400 * MIB)])
def test_loop_volume_grows_online(loop_node, fs_type, old, new):
    if fs_type == "ext4" and not has_cap_sys_resource():
        # ext4's online resize ioctl wants CAP_SYS_RESOURCE, which some sandboxes drop:
        # tests/vm/test_vm_loop_resize.py runs this test in the guest, which has it.
        pytest.skip("no CAP_SYS_RESOURCE here: ext4 online resize runs in the VM tier")
    node, k = loop_node, loop_node.kubelet
    opts = {"image": "grow.img", "size": str(old)}
    dev = attach_and_mount(node, "pv-g", opts, [POD_A], fs_type)
    pod = k.pod_dir(POD_A["uid"], "pv-g")
    with open(os.path.join(pod, "keep"), "w") as f:
        f.write("before")
    before = fs_bytes(pod)
    assert before < old - MIB
    r = expandfs(k, "pv-g", opts, dev, pod, new, old, fs_type)
    assert r.status == "Success", r
    assert os.path.getsize(node.image("grow.img")) == new
    after = fs_bytes(pod)
    # df shows the new size; the last MiB (the format record's) stays out of the file system.
    assert after > before + (new - old) * 9 // 10, (before, after)
    loopdev = device_of(k.global_path("pv-g"))
    if fs_type == "ext4":
        assert new - 2 * MIB < ext4_size(loopdev) <= new - MIB
    with open(os.path.join(pod, "keep")) as f:
        assert f.read() == "before"
    # Again (kubelet retries): nothing more to do, still Success.
    r = expandfs(k, "pv-g", opts, dev, pod, new, old, fs_type)
    assert r.status == "Success" and fs_bytes(pod) == after, r
    tear_down(node, "pv-g", [POD_A])
    # Mounted again: the grown file system, not a format.
    attach_and_mount(node, "pv-g", {"image": "grow.img"}, [POD_A], fs_type)
    assert fs_bytes(pod) == after
    with open(os.path.join(pod, "keep")) as f:
        assert f.read() == "before"
    tear_down(node, "pv-g", [POD_A])
    assert node.mounts() == [] and node.loop_devices() == []


def test_expandfs_refusals(loop_node):
    node, k = loop_node, loop_node.kubelet
    with open(os.path.join(node.config_dir, "loop.conf"), "a") as f:
        f.write("max-size = 100Mi\n")
    opts = {"image": "r.img", "size": "64Mi"}
    pod = k.pod_dir(POD_A["uid"], "pv-r")
    r = expandfs(k, "pv-r", opts, "", pod, 128 * MIB, 64 * MIB)
    assert r.status == "Failure" and "max-size" in r.message, r
    dev = attach_and_mount(node, "pv-r", opts, [POD_A])
    r = expandfs(k, "pv-r", opts, dev, pod, 200 * MIB, 64 * MIB)
    assert r.status == "Failure" and "max-size" in r.message, r
    assert os.path.getsize(node.image("r.img")) == 64 * MIB
    tear_down(node, "pv-r", [POD_A])
    # Not mounted: refused, the image untouched.
    r = expandfs(k, "pv-r", opts, dev, pod, 96 * MIB, 64 * MIB)
    assert r.status == "Failure" and "online" in r.message, r
    assert os.path.getsize(node.image("r.img")) == 64 * MIB


def test_capabilities_ask_for_expandfs(loop_node):
    assert loop_node.kubelet.init().json["capabilities"]["requiresFSResize"] is True
