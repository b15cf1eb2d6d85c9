"""loop expandfs killed at each of its commit points (the image's ftruncate,
each ioctl, the grow tool's exec and inside the tool), then retried as kubelet
does: the retry succeeds, the file system ends at the new record offset, the
data is intact and the volume mounts again without a format."""
import os
import subprocess

import pytest

from kubelet import go_json
from test_loop import POD_A, attach_and_mount, tear_down
from test_loop_resize import has_cap_sys_resource

MIB = 1 << 20
STRACE = ["strace", "-qq", "-o", "/dev/null"]
# (flags, syscall, when): one kill each, every one a step where state changes.
POINTS = [((), "ftruncate", 1)] + [((), "ioctl", k) for k in range(1, 7)] + \
         [(("-f",), "execve", 2), (("-f",), "ioctl", 12), (("-f",), "pwrite64", 1)]


def uuid_of(path):
    return subprocess.run(["blkid", "-p", "-s", "UUID", "-o", "value", path], capture_output=True,
                          text=True).stdout.strip()


@pytest.mark.parametrize("fs_type,start", [("ext4", 64 * MIB), ("xfs", 320 * MIB)])
def test_expandfs_killed_at_each_step_then_retried(loop_node, fs_type, start):
    if fs_type == "ext4" and not has_cap_sys_resource():
        pytest.skip("no CAP_SYS_RESOURCE here: ext4 online resize (the VM tier runs it)")
    node, k, d = loop_node, loop_node.kubelet, loop_node.driver
    opts = {"image": "crash-grow.img", "size": str(start)}
    dev = attach_and_mount(node, "pv-cg", opts, [POD_A], fs_type)
    pod = k.pod_dir(POD_A["uid"], "pv-cg")
    data = os.urandom(1 << 20)
    with open(os.path.join(pod, "data.bin"), "wb") as f:
        f.write(data)
    uuid = uuid_of(node.image("crash-grow.img"))
    j = go_json(k.options("pv-cg", opts, fs_type))
    size, killed = start, 0
    fs = os.statvfs(pod).f_blocks * os.statvfs(pod).f_frsize
    for flags, syscall, when in POINTS:
        new = size + 16 * MIB
        d.arm(STRACE + list(flags) + ["-e", "inject=%s:signal=KILL:when=%d" % (syscall, when)])
        r = d.call("expandfs", j, dev, pod, new, size)
        killed += getattr(r, "killed", False)
        for _ in range(3):
            r = d.call("expandfs", j, dev, pod, new, size)
            if r.status == "Success":
                break
        assert r.status == "Success", (syscall, when, r)
        assert os.path.getsize(node.image("crash-grow.img")) == new
        st = os.statvfs(pod)
        grown = st.f_blocks * st.f_frsize
        assert fs + 15 * MIB <= grown <= fs + 16 * MIB, (syscall, when, fs, grown)
        size, fs = new, grown
    assert killed >= 5, "most points must really have killed the call"
    with open(os.path.join(pod, "data.bin"), "rb") as f:
        assert f.read() == data
    tear_down(node, "pv-cg", [POD_A])
    assert uuid_of(node.image("crash-grow.img")) == uuid, "never formatted again"
    attach_and_mount(node, "pv-cg", {"image": "crash-grow.img"}, [POD_A], fs_type)
    with open(os.path.join(pod, "data.bin"), "rb") as f:
        assert f.read() == data
    tear_down(node, "pv-cg", [POD_A])
    assert node.mounts() == [] and node.loop_devices() == []
