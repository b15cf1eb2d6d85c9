"""The last step of the kubelet flow on a real OCI runtime: runc starts a
busybox container with the pod volume dir mounted at /data exactly as
containerd's CRI plugin mounts a volume (bind; rbind, rprivate, rw|ro). The
volume is a real loop-driver volume mounted through the kubelet harness."""
import os
import sys

import pytest

from conftest import REPO
from cloud_common import POD_A, POD_B

sys.path.insert(0, os.path.join(REPO, "demo"))
import oci  # noqa: E402

SPEC = "pv-runc"
OPTS = {"image": "runc.img", "size": "64Mi"}


@pytest.fixture
def runc(loop_node):
    why = oci.why_not()
    if why:
        pytest.skip(why)
    r = oci.Runc(os.path.join(loop_node.tmp, "oci"))
    probe = r.run("probe", "true", [])
    if probe.returncode != 0:
        pytest.skip("runc cannot start a container here: %s" % probe.stderr.strip())
    return r


def mount(node, pod, read_only=False):
    k = node.kubelet
    a = k.attach(SPEC, OPTS, read_only=read_only)
    assert a.status == "Success", a
    w = k.wait_for_attach(SPEC, OPTS, a.json.get("device", ""), read_only=read_only)
    assert w.status == "Success", w
    m = k.mount_device(SPEC, OPTS, w.json["device"], read_only=read_only)
    assert m is None or m.status == "Success", m
    assert k.set_up_pod(pod, SPEC, OPTS, read_only=read_only).status == "Success"
    return k.pod_dir(pod["uid"], SPEC)


def unmount(node, pod):
    k = node.kubelet
    assert k.tear_down_pod(pod["uid"], SPEC).status == "Success"
    assert k.unmount_device(SPEC).status == "Success"
    assert k.detach(SPEC).status == "Success"


def test_a_container_writes_and_a_new_pods_container_reads_it_back(loop_node, runc):
    pod_dir = mount(loop_node, POD_A)
    w = runc.run("writer", "echo from-the-first-container > /data/note && sync && grep ' /data ' /proc/self/mountinfo",
                 [oci.cri_volume_mount(pod_dir)])
    assert w.returncode == 0, w.stderr
    # The container saw the volume's own file system (the loop device), bound read-write.
    fields = w.stdout.split()
    assert fields[4] == "/data" and fields[5].startswith("rw") and "ext4" in fields
    assert fields[fields.index("-") + 2].startswith("/dev/loop")

    unmount(loop_node, POD_A)
    assert loop_node.loop_devices() == [] and loop_node.mounts() == []

    pod_dir = mount(loop_node, POD_B)
    r = runc.run("reader", "cat /data/note", [oci.cri_volume_mount(pod_dir)])
    assert r.returncode == 0, r.stderr
    assert r.stdout == "from-the-first-container\n"
    unmount(loop_node, POD_B)


def test_a_read_only_volume_refuses_writes_in_the_container(loop_node, runc):
    pod_dir = mount(loop_node, POD_A)
    assert runc.run("seed", "echo seed > /data/seed", [oci.cri_volume_mount(pod_dir)]).returncode == 0
    unmount(loop_node, POD_A)

    pod_dir = mount(loop_node, POD_B, read_only=True)
    script = "cat /data/seed; if echo x > /data/new; then echo WROTE; fi; if rm /data/seed; then echo REMOVED; fi"
    # As containerd mounts a readOnly volume...
    ro = runc.run("ro", script, [oci.cri_volume_mount(pod_dir, read_only=True)])
    assert ro.stdout == "seed\n", ro.stdout
    assert "Read-only file system" in ro.stderr
    # ...and even asked for read-write: the driver's read-only bind is what holds.
    rw = runc.run("rw-over-ro", script, [oci.cri_volume_mount(pod_dir, read_only=False)])
    assert rw.stdout == "seed\n", rw.stdout
    assert "Read-only file system" in rw.stderr
    unmount(loop_node, POD_B)
    pod_dir = mount(loop_node, POD_A)
    assert sorted(os.listdir(pod_dir)) == ["lost+found", "seed"]
    unmount(loop_node, POD_A)
