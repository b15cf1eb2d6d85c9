"""The cinder driver with real hot-plugged disks, real udev and a real kernel.

Split as in a cluster, with no network between host and guest:

* host = the cloud and the controller-manager: the fake OpenStack
  (tests/fakes/openstack.py) on 127.0.0.1, and the driver's attach, detach,
  isattached and expandvolume against it. When an attach completes, the fake
  hot-plugs the volume's image into the guest as a virtio-blk disk whose
  serial is the first 20 characters of the volume ID, as Nova does on KVM
  (VMNode: QMP device_add / device_del / block_resize).
* guest = the node: the kubelet's waitforattach, mountdevice, mount, unmount,
  unmountdevice and expandfs (tests/vm/guest_tests/cloud_node.py, using the
  same harness), finding the disk through the by-id link the guest's udev
  made. The guest's cinder.conf has no credentials: node calls need none.
"""
import os
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.path.insert(0, os.path.join(REPO, "tests", "vm", "guest_tests"))

from cinder_helpers import CinderCloud, opts  # noqa: E402
from cloud_common import ResizableVMNode  # noqa: E402
from cloud_node import run_in  # noqa: E402

GIB = 1 << 30
NODE_CONFIG = {"attach-timeout": 120, "rescan-after": 15}
# For a waitforattach that must fail: the disk is gone, waiting longer shows nothing.
SHORT_WAIT = {"attach-timeout": 4, "rescan-after": 2}


def node(guest, volume=None, **args):
    """One step of the guest's kubelet (tests/vm/guest_tests/cloud_node.py)."""
    if volume:
        args["options"] = {"volumeID": volume}
    return run_in(guest, driver="cinder", **args)


@pytest.fixture(scope="module")
def cloud(guest, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cinder-vm")
    c = CinderCloud(tmp, node=ResizableVMNode(guest, str(tmp / "images")),
                    flexvol={"device-dir": "/dev/disk/by-id", "attach-timeout": "120"})
    setup = node(guest, step="setup", config=NODE_CONFIG)
    assert setup["init"]["status"] == "Success"
    yield c
    c.close()
    assert not c.fake.errors, "\n".join(c.fake.errors)


def attach(cloud, spec, vid, node_name="node-1"):
    t0 = time.monotonic()
    a = cloud.kubelets[node_name].attach(spec, opts(vid))
    return a, time.monotonic() - t0


def test_lifecycle_on_a_hot_plugged_disk(guest, cloud):
    vid = cloud.volume(size=1)
    a, took = attach(cloud, "pv-vm", vid)
    assert a.status == "Success", a
    assert a.json["device"] == "/dev/disk/by-id/virtio-" + vid[:20]
    m = node(guest, step="mount", spec="pv-vm", volume=vid, device=a.json["device"], write="from the guest")
    assert m["waitforattach"]["status"] == "Success", m
    assert m["waitforattach"]["device"] == "/dev/disk/by-id/virtio-" + vid[:20], "udev's link, found by serial"
    assert m["realpath"].startswith("/dev/vd") and m["serial"] == vid[:20], m
    assert m["mountdevice"]["status"] == "Success" and m["mount"]["status"] == "Success", m
    assert m["fstype"] == "ext4" and m["read"] == "from the guest", m
    print("attach %.2f s (host), waitforattach %.2f s (guest, udev included)" % (took, m["waitforattach_s"]))

    r = cloud.kubelets["node-2"].attach("pv-vm", opts(vid))
    assert r.status == "Failure" and cloud.servers["node-1"] in r.message, r

    u = node(guest, step="unmount", spec="pv-vm")
    assert u["unmount"]["status"] == "Success" and u["unmountdevice"]["status"] == "Success", u
    d = cloud.kubelet.detach("pv-vm")
    assert d.status == "Success", d
    assert cloud.state(vid)["status"] == "available"
    w = node(guest, step="mount", spec="pv-vm", volume=vid, config=SHORT_WAIT)
    assert w["waitforattach"]["status"] == "Failure", "the disk left the guest"
    assert "no disk appeared" in w["waitforattach"]["message"], w

    # Attached again (after the controller lost its state): same data.
    for name in os.listdir(cloud.run_dir):
        if name == "cinder":
            import shutil
            shutil.rmtree(os.path.join(cloud.run_dir, name))
    a, _ = attach(cloud, "pv-vm", vid)
    assert a.status == "Success", a
    m = node(guest, step="mount", spec="pv-vm", volume=vid, device=a.json["device"])
    assert m["mountdevice"]["status"] == "Success" and m["read"] == "from the guest", m
    assert node(guest, step="unmount", spec="pv-vm")["unmountdevice"]["status"] == "Success"
    assert cloud.kubelet.detach("pv-vm").status == "Success"
    assert cloud.state(vid)["status"] == "available"


def test_online_expand_of_ext4(guest, cloud):
    vid = cloud.volume(size=1)
    a, _ = attach(cloud, "pv-grow", vid)
    assert a.status == "Success", a
    m = node(guest, step="mount", spec="pv-grow", volume=vid, device=a.json["device"], write="before")
    assert m["mount"]["status"] == "Success", m
    before = m["fs_bytes"]
    k = cloud.kubelet
    j = __import__("kubelet").go_json(k.options("pv-grow", opts(vid), "ext4"))
    r = cloud.driver.call("expandvolume", j, "flexvol/cinder/mounts/pv-grow", str(2 * GIB), str(GIB))
    assert r.status == "Success", r
    assert cloud.state(vid)["size"] == 2
    e = node(guest, step="expandfs", spec="pv-grow", volume=vid, device=a.json["device"], new_size=2 * GIB,
             old_size=GIB)
    assert [x["status"] for x in e["expandfs"]] == ["Success", "Success"], e
    assert e["fs_bytes"] > before * 1.8, (before, e["fs_bytes"])
    assert node(guest, step="unmount", spec="pv-grow")["unmountdevice"]["status"] == "Success"
    assert cloud.kubelet.detach("pv-grow").status == "Success"


def test_a_tenant_disk_labelled_config_2_is_not_trusted(guest):
    """node-lookup = config-drive against a disk labelled config-2 with a
    forged meta_data.json: tests/integration/test_cinder.py's test, run in
    the guest, whose kernel mounts vfat (the host's here cannot)."""
    test = "tests/integration/test_cinder.py::test_config_drive_must_be_a_cd_rom"
    build = "FLEXVOL_BUILD=" + os.environ.get("FLEXVOL_BUILD", "build")
    rc, out = guest.run(["/usr/bin/env", build, "/usr/bin/python3", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                         "-rs", test], timeout=240)
    assert rc == 0, out
    summary = out.strip().splitlines()[-1]
    assert "1 passed" in summary and "skipped" not in summary, out
