"""The gcepd driver with real hot-plugged disks, real udev and a real kernel.

Split as in a cluster, with no network between host and guest, as in
tests/vm/test_cinder_vm.py:

* host = the cloud and the controller-manager: the fake GCE
  (tests/fakes/gce.py) on 127.0.0.1, and the driver's attach, detach,
  isattached and expandvolume against it. When an attachDisk operation
  completes, the fake hot-plugs the disk's image into the guest as a
  virtio-blk disk whose serial is the deviceName (VMNode: QMP device_add /
  device_del / block_resize).
* guest = the node: the kubelet's waitforattach, mountdevice, mount, unmount,
  unmountdevice and expandfs (tests/vm/guest_tests/cloud_node.py, using the
  same harness). With GCE's udev rule installed the guest's udev makes
  /dev/disk/by-id/google-<deviceName>; without it the driver finds the disk
  by its serial in /sys/block. The node-side calls also ask the compute API
  which disk the instance has under the device name; with no network to the
  host, cloud_node.py answers them from a mirror of the host fake's state
  started in the guest for the step (node(..., cloud=...)).
"""
import os
import shutil
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.path.insert(0, os.path.join(REPO, "tests", "vm", "guest_tests"))

from cloud_common import ResizableVMNode  # noqa: E402
from cloud_node import run_in  # noqa: E402
from gcepd_helpers import PROJECT, ZONE, GCECloud, opts  # noqa: E402
from kubelet import go_json  # noqa: E402

GIB = 1 << 30
BY_ID = "/dev/disk/by-id"
NODE_CONFIG = {"attach-timeout": 120, "rescan-after": 15, "device-dir": BY_ID}
# For a waitforattach that must fail: the disk is gone, waiting longer shows nothing.
SHORT_WAIT = {"attach-timeout": 4, "rescan-after": 2, "device-dir": BY_ID}
# What GCE's guest environment installs on an instance (google-guest-configs):
# a persistent disk's serial is its device name.
GCE_RULE = "/etc/udev/rules.d/65-gce-disk-naming.rules"
GCE_RULE_TEXT = ('KERNEL=="vd*[!0-9]", ATTRS{serial}=="?*", SYMLINK+="disk/by-id/google-$attr{serial}"\n')


def node(guest, pd=None, cloud=None, **args):
    """One step of the guest's kubelet (tests/vm/guest_tests/cloud_node.py);
    with cloud, the compute API it asks mirrors cloud's attachments now."""
    if pd:
        args["options"] = {"pdName": pd}
    if cloud is not None:
        args.setdefault("config", NODE_CONFIG)
        args["gce"] = {"project": PROJECT, "zone": ZONE, "attached": cloud.attached()}
    return run_in(guest, driver="gcepd", **args)


def setup_node(guest, google_links=True):
    s = node(guest, step="setup", config=NODE_CONFIG, udev_rules={GCE_RULE: GCE_RULE_TEXT if google_links else None})
    assert s["init"]["status"] == "Success" and s["udev_reload"] == 0, s


@pytest.fixture(scope="module")
def cloud(guest, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gcepd-vm")
    c = GCECloud(tmp, node=ResizableVMNode(guest, str(tmp / "images")),
                 gcepd={"device-dir": BY_ID, "attach-timeout": "120"})
    setup_node(guest)
    yield c
    c.close()
    assert not c.fake.errors, "\n".join(c.fake.errors)


def attach(cloud, spec, pd, node_name="node-1"):
    t0 = time.monotonic()
    a = cloud.kubelets[node_name].attach(spec, opts(pd))
    return a, time.monotonic() - t0


def test_lifecycle_on_a_hot_plugged_disk(guest, cloud):
    pd = cloud.disk("pd-vm")
    a, took = attach(cloud, "pv-vm", pd)
    assert a.status == "Success", a
    assert a.json["device"] == BY_ID + "/google-pv-vm"
    m = node(guest, step="mount", spec="pv-vm", pd=pd, device=a.json["device"], write="from the guest", cloud=cloud)
    assert m["waitforattach"]["status"] == "Success", m
    assert m["waitforattach"]["device"] == BY_ID + "/google-pv-vm", "udev's link, checked against the serial"
    assert m["realpath"].startswith("/dev/vd") and m["serial"] == "pv-vm", m
    assert m["mountdevice"]["status"] == "Success" and m["mount"]["status"] == "Success", m
    assert m["fstype"] == "ext4" and m["read"] == "from the guest", m
    print("attach %.2f s (host), waitforattach %.2f s (guest, udev included)" % (took, m["waitforattach_s"]))
    # A volume named like this one with another pdName: the disk is not handed out.
    s = node(guest, step="mount", spec="pv-vm", pd="pd-other", device=a.json["device"], cloud=cloud)
    assert s["waitforattach"]["status"] == "Failure", s
    assert "GCE disk pd-vm, not pd-other" in s["waitforattach"]["message"], s

    r = cloud.kubelets["node-2"].attach("pv-vm", opts(pd))
    assert r.status == "Failure" and "node-1" in r.message, r
    assert cloud.kubelet.is_attached("pv-vm", opts(pd)).json["attached"] is True

    u = node(guest, step="unmount", spec="pv-vm")
    assert u["unmount"]["status"] == "Success" and u["unmountdevice"]["status"] == "Success", u
    # The controller lost its state (restart, failover): detach needs none.
    shutil.rmtree(cloud.run_dir)
    d = cloud.kubelet.detach("pv-vm")
    assert d.status == "Success", d
    assert cloud.attached() == {}
    w = node(guest, step="mount", spec="pv-vm", pd=pd, config=SHORT_WAIT, cloud=cloud)
    assert w["waitforattach"]["status"] == "Failure", "the disk left the guest"
    assert "no disk appeared" in w["waitforattach"]["message"], w

    a, _ = attach(cloud, "pv-vm", pd)
    assert a.status == "Success", a
    m = node(guest, step="mount", spec="pv-vm", pd=pd, device=a.json["device"], cloud=cloud)
    assert m["mountdevice"]["status"] == "Success" and m["read"] == "from the guest", m
    assert node(guest, step="unmount", spec="pv-vm")["unmountdevice"]["status"] == "Success"
    assert cloud.kubelet.detach("pv-vm").status == "Success"
    assert cloud.attached() == {}


def test_online_expand_of_ext4(guest, cloud):
    pd = cloud.disk("pd-grow", size_gb=1)
    a, _ = attach(cloud, "pv-grow", pd)
    assert a.status == "Success", a
    m = node(guest, step="mount", spec="pv-grow", pd=pd, device=a.json["device"], write="before", cloud=cloud)
    assert m["mount"]["status"] == "Success", m
    before = m["fs_bytes"]
    k = cloud.kubelet
    j = go_json(k.options("pv-grow", opts(pd), "ext4"))
    r = cloud.driver.call("expandvolume", j, "flexvol/gcepd/mounts/pv-grow", str(2 * GIB), str(GIB))
    assert r.status == "Success", r
    assert cloud.fake.disk(pd)["sizeGb"] == "2"
    e = node(guest, step="expandfs", spec="pv-grow", pd=pd, device=a.json["device"], new_size=2 * GIB,
             old_size=GIB, cloud=cloud)
    assert [x["status"] for x in e["expandfs"]] == ["Success", "Success"], e
    assert e["fs_bytes"] > before * 1.8, (before, e["fs_bytes"])
    assert node(guest, step="unmount", spec="pv-grow")["unmountdevice"]["status"] == "Success"
    assert cloud.kubelet.detach("pv-grow").status == "Success"


def test_found_by_serial_without_gce_udev_rules(guest, cloud):
    """A node image without GCE's guest environment: no google-* links."""
    setup_node(guest, google_links=False)
    try:
        pd = cloud.disk("pd-serial")
        a, _ = attach(cloud, "pv-serial", pd)
        assert a.status == "Success", a
        m = node(guest, step="mount", spec="pv-serial", pd=pd, device=a.json["device"], write="x", cloud=cloud)
        assert m["waitforattach"]["status"] == "Success", m
        assert m["waitforattach"]["device"].startswith("/dev/vd") and m["serial"] == "pv-serial", m
        assert m["mountdevice"]["status"] == "Success" and m["read"] == "x", m
        assert node(guest, step="unmount", spec="pv-serial")["unmountdevice"]["status"] == "Success"
        assert cloud.kubelet.detach("pv-serial").status == "Success"
    finally:
        setup_node(guest)
