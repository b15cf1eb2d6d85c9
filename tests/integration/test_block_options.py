"""Block volume options (issue 13): mountOptions, mkfsOptions and partition,
through the real loop and cinder drivers on real loop devices."""
import os
import shutil
import subprocess

import pytest

from test_loop import POD_A, attach_and_mount, tear_down


def super_options(path):
    """The mount options and super options of the mount at path (mountinfo)."""
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == real:
                sep = fields.index("-")
                return set(fields[5].split(",")) | set(fields[sep + 3].split(","))
    raise AssertionError("%s is not mounted" % path)


def blkid(path, tag):
    # blkid exits 2 when it finds nothing: that is "" here.
    return subprocess.run(["blkid", "-p", "-s", tag, "-o", "value", path], capture_output=True,
                          text=True).stdout.strip()


@pytest.mark.parametrize("given,want", [
    ("noatime,commit=30", {"noatime", "commit=30"}),
    ("nosuid,nodev,noexec,data=journal,nodiratime", {"noexec", "data=journal", "nodiratime"}),
])
def test_mount_options_reach_the_mount(loop_node, given, want):
    node, k = loop_node, loop_node.kubelet
    opts = {"image": "mo.img", "size": "64Mi", "mountOptions": given}
    attach_and_mount(node, "pv-mo", opts, [POD_A])
    have = super_options(k.global_path("pv-mo"))
    assert want | {"nosuid", "nodev", "rw"} <= have, have
    tear_down(node, "pv-mo", [POD_A])


@pytest.mark.parametrize("bad,named", [
    ("suid", "'suid' is not allowed"), ("noatime,dev", "'dev' is not allowed"), ("exec", "'exec'"),
    ("ro", "'ro' is not allowed"), ("errors=panic", "errors"), ("noload", "'noload'"),
    ("noatime,x-mount.mkdir", "x-mount.mkdir"), ("commit=999", "commit"), ("noatime,,nodiratime", "empty"),
    ("noatime,relatime", "conflicts"),
])
def test_refused_mount_options_name_the_option_and_change_nothing(loop_node, bad, named):
    node, k = loop_node, loop_node.kubelet
    opts = {"image": "bad.img", "size": "64Mi", "mountOptions": bad}
    r = k.attach("pv-bad", opts)
    assert r.status == "Failure" and named in r.message and "mountOptions" in r.message, r
    # Not even an image: waitforattach refuses before creating anything.
    w = k.wait_for_attach("pv-bad", opts)
    assert w.status == "Failure" and named in w.message, w
    assert not os.path.exists(node.image("bad.img"))
    m = k.mount_device("pv-bad", opts, node.image("bad.img"))
    assert m.status == "Failure" and named in m.message, m
    assert node.mounts() == [] and node.loop_devices() == []


def test_xfs_only_option_on_an_ext4_volume_is_refused(loop_node):
    node, k = loop_node, loop_node.kubelet
    opts = {"image": "x.img", "size": "64Mi", "mountOptions": "inode64"}
    w = k.wait_for_attach("pv-x", opts, fs_type="ext4")
    assert w.status == "Failure" and "'inode64' is not an ext4 mount option" in w.message, w
    # With no fsType it may be an xfs: checked against what the device holds.
    w = k.wait_for_attach("pv-x", opts)
    assert w.status == "Success", w
    m = k.mount_device("pv-x", opts, w.json["device"])
    assert m.status == "Failure" and "'inode64' is not an ext4 mount option" in m.message, m
    assert node.mounts() == [] and node.loop_devices() == []
    assert blkid(node.image("x.img"), "TYPE") == "", "a refused option must not leave a format behind"


def test_mkfs_options_shape_the_new_file_system(loop_node):
    node, k = loop_node, loop_node.kubelet
    opts = {"image": "mk.img", "size": "64Mi", "mkfsOptions": "-i 65536 -L data -E stride=16"}
    attach_and_mount(node, "pv-mk", opts, [POD_A])
    tear_down(node, "pv-mk", [POD_A])
    img = node.image("mk.img")
    assert blkid(img, "LABEL") == "data"
    out = subprocess.run(["dumpe2fs", "-h", img], capture_output=True, text=True, check=True).stdout
    info = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    inodes, blocks, bsize = (int(info[k].strip()) for k in ("Inode count", "Block count", "Block size"))
    # One inode per 64 KiB of the file system (rounded up to whole inode tables per group).
    assert blocks * bsize // 65536 <= inodes < blocks * bsize // 65536 * 1.1, (inodes, blocks, bsize)
    assert int(info["RAID stride"].strip()) == 16
    assert int(info["Reserved block count"].strip()) == 0, "our -m 0 default stays"
    assert "nodiscard" not in out  # nothing of ours leaks into the fs; our -E still applied (no lazy init)


def test_mkfs_options_xfs(loop_node):
    node, k = loop_node, loop_node.kubelet
    opts = {"image": "mkx.img", "size": "320Mi", "mkfsOptions": "-L xdata -i size=1024 -n size=8192"}
    attach_and_mount(node, "pv-mkx", opts, [POD_A], fs_type="xfs")
    out = subprocess.run(["xfs_info", k.global_path("pv-mkx")], capture_output=True, text=True, check=True).stdout
    tear_down(node, "pv-mkx", [POD_A])
    assert blkid(node.image("mkx.img"), "LABEL") == "xdata"
    assert "isize=1024" in out and "bsize=8192" in out.split("naming")[1], out


@pytest.mark.parametrize("bad,named", [
    ("-F", "-F is not allowed"), ("-i 65536 -f", "-f is not allowed"), ("-d /etc", "-d is not allowed"),
    ("/dev/sda", "'/dev/sda' is not a mkfs.ext4 flag"), ("-i 10", "-i bytes-per-inode"),
    ("-L", "needs a value"), ("-L 'a b'", "label"), ("-E offset=4096", "'offset'"),
    ("-i 65536 -i 4096", "twice"), ("-O ^has_journal", "has_journal"), ("-b 4096 1024", "'1024'"),
])
def test_refused_mkfs_options(loop_node, bad, named):
    node, k = loop_node, loop_node.kubelet
    opts = {"image": "mb.img", "size": "64Mi", "mkfsOptions": bad}
    w = k.wait_for_attach("pv-mb", opts)
    assert w.status == "Failure" and named in w.message and "mkfsOptions" in w.message, w
    assert not os.path.exists(node.image("mb.img"))


def test_mkfs_options_ignored_for_an_existing_file_system(loop_node):
    node, k = loop_node, loop_node.kubelet
    attach_and_mount(node, "pv-ex", {"image": "ex.img", "size": "64Mi"}, [POD_A])
    tear_down(node, "pv-ex", [POD_A])
    uuid = blkid(node.image("ex.img"), "UUID")
    attach_and_mount(node, "pv-ex", {"image": "ex.img", "mkfsOptions": "-L other"}, [POD_A])
    tear_down(node, "pv-ex", [POD_A])
    assert blkid(node.image("ex.img"), "UUID") == uuid and blkid(node.image("ex.img"), "LABEL") == ""


def test_xfs_clone_mounts_beside_its_origin_with_nouuid(loop_node):
    node, k = loop_node, loop_node.kubelet
    pod_b = dict(POD_A, uid="0c0c0c0c-cccc-4ccc-8ccc-000000000003")
    attach_and_mount(node, "pv-orig", {"image": "orig.img", "size": "320Mi"}, [POD_A], fs_type="xfs")
    with open(os.path.join(k.pod_dir(POD_A["uid"], "pv-orig"), "f"), "w") as f:
        f.write("origin")
    tear_down(node, "pv-orig", [POD_A])
    # A snapshot's clone: the same bytes, so the same xfs UUID.
    shutil.copyfile(node.image("orig.img"), node.image("clone.img"))
    assert blkid(node.image("orig.img"), "UUID") == blkid(node.image("clone.img"), "UUID")
    attach_and_mount(node, "pv-orig", {"image": "orig.img"}, [POD_A], fs_type="xfs")
    assert "nouuid" not in super_options(k.global_path("pv-orig"))
    attach_and_mount(node, "pv-clone", {"image": "clone.img"}, [pod_b], fs_type="xfs")
    assert "nouuid" in super_options(k.global_path("pv-clone"))
    with open(os.path.join(k.pod_dir(pod_b["uid"], "pv-clone"), "f")) as f:
        assert f.read() == "origin"
    tear_down(node, "pv-clone", [pod_b])
    tear_down(node, "pv-orig", [POD_A])
    # Alone, the clone mounts without it; asked for, nouuid is kept.
    attach_and_mount(node, "pv-clone", {"image": "clone.img", "mountOptions": "nouuid,inode64"}, [pod_b],
                     fs_type="xfs")
    assert {"nouuid", "inode64"} <= super_options(k.global_path("pv-clone"))
    tear_down(node, "pv-clone", [pod_b])
    assert node.mounts() == [] and node.loop_devices() == []


def test_xfs_clones_mounted_at_once_all_mount(loop_node):
    """Clones mounted concurrently: none sees the others before its mount;
    the kernel refuses the later ones (duplicate UUID) and the driver retries
    them with nouuid."""
    node, k, d = loop_node, loop_node.kubelet, loop_node.driver
    attach_and_mount(node, "pv-o", {"image": "o.img", "size": "320Mi"}, [], fs_type="xfs")
    tear_down(node, "pv-o", [])
    names = ["c%d" % i for i in range(4)]
    for n in names:
        subprocess.run(["cp", "--sparse=always", node.image("o.img"), node.image(n + ".img")], check=True)
    started = []
    for n in names:
        g = k.global_path("pv-" + n)
        os.makedirs(g, 0o750)
        j = __import__("kubelet").go_json(k.options("pv-" + n, {"image": n + ".img"}, "xfs"))
        started.append(d.start("mountdevice", g, node.image(n + ".img"), j))
    for st in started:
        r = d.finish(st)
        assert r.status == "Success", r
    assert sum("nouuid" in super_options(k.global_path("pv-" + n)) for n in names) >= len(names) - 1
    for n in names:
        tear_down(node, "pv-" + n, [])
    assert node.mounts() == [] and node.loop_devices() == []


def test_loop_refuses_partition(loop_node):
    k = loop_node.kubelet
    w = k.wait_for_attach("pv-p", {"image": "p.img", "size": "64Mi", "partition": "1"})
    assert w.status == "Failure" and "partition" in w.message, w
    for bad in ("0", "129", "01", "1a", ""):
        w = k.wait_for_attach("pv-p", {"image": "p.img", "size": "64Mi", "partition": bad})
        assert w.status == "Failure" and "'partition' must be a partition number" in w.message, (bad, w)


# ---- partition (cinder; the core's clouddisk.c serves gcepd the same way) ----

from cinder_helpers import CinderCloud, opts as cinder_opts  # noqa: E402
from cloud_common import cloud_fixtures, tear_down as cloud_tear_down  # noqa: E402
from conftest import valgrind_wrapper  # noqa: E402

make_cloud, cloud = cloud_fixtures(CinderCloud, valgrind_wrapper)
CLOUD_POD = {"name": "p-9", "namespace": "default", "uid": "00000000-0000-4000-8000-000000000009"}


def scan_partitions(dev):
    """The partitions' devices, as the kernel's partition scan makes them on
    a real node (BLKPG through partx: a loop device's own scan may lag)."""
    subprocess.run(["partx", "-u", dev], check=True, capture_output=True)
    assert os.path.exists(dev + "p1"), os.listdir("/dev")


def partitioned_volume(cloud):
    """A volume whose image holds a GPT with an ext4 (label part1) in
    partition 1 and a blank partition 2, as a user's own disk would."""
    vid = cloud.volume()
    img = cloud.node.prepare_image(vid, 1 << 30)
    subprocess.run(["sfdisk", "-q", img], input="label: gpt\n,64MiB\n,64MiB\n", text=True, check=True,
                   capture_output=True)
    dev = subprocess.run(["losetup", "-P", "-f", "--show", img], capture_output=True, text=True,
                         check=True).stdout.strip()
    try:
        scan_partitions(dev)
        subprocess.run(["mkfs.ext4", "-q", "-L", "part1", dev + "p1"], check=True, capture_output=True)
    finally:
        subprocess.run(["losetup", "-d", dev], check=True)
    return vid


def test_partition_1_of_a_cinder_disk_mounts(cloud):
    k = cloud.kubelet
    vid = partitioned_volume(cloud)
    o = cinder_opts(vid, partition="1")
    a = k.attach("pv-part", o)
    assert a.status == "Success", a
    w = k.wait_for_attach("pv-part", o, a.json.get("device", ""))
    assert w.status == "Success", w
    disk = cloud.node.device_of(vid)
    # What the kernel does on a real node when the disk appears (partition
    # scanning): the partitions' devices.
    scan_partitions(disk)
    m = k.mount_device("pv-part", o, w.json["device"])
    assert m is None or m.status == "Success", m
    gpath = k.global_path("pv-part")
    src = subprocess.run(["findmnt", "-n", "-o", "SOURCE", "-M", gpath], capture_output=True, text=True).stdout
    assert src.strip() == disk + "p1"
    assert blkid(disk + "p1", "LABEL") == "part1"
    r = k.set_up_pod(CLOUD_POD, "pv-part", o)
    assert r is None or r.status == "Success", r
    assert os.stat(k.pod_dir(CLOUD_POD["uid"], "pv-part")).st_dev == os.stat(disk + "p1").st_rdev
    # The whole disk under the same name is another device: mount refuses it.
    r = cloud.driver.call("mount", k.pod_dir("00000000-0000-4000-8000-000000000010", "pv-part"),
                          __import__("kubelet").go_json(k.options("pv-part", cinder_opts(vid))))
    assert r.status == "Failure" and "another volume's mount" in r.message, r
    cloud_tear_down(cloud, "pv-part", [CLOUD_POD])


def test_blank_or_missing_partition_is_refused_never_formatted(cloud):
    k = cloud.kubelet
    vid = partitioned_volume(cloud)
    o2 = cinder_opts(vid, partition="2")
    a = k.attach("pv-p2", o2)
    assert a.status == "Success", a
    w = k.wait_for_attach("pv-p2", o2, a.json.get("device", ""))
    assert w.status == "Success", w
    disk = cloud.node.device_of(vid)
    scan_partitions(disk)
    m = k.mount_device("pv-p2", o2, w.json["device"])
    assert m.status == "Failure" and "never formats a partition" in m.message, m
    assert blkid(disk + "p2", "TYPE") == ""
    o3 = cinder_opts(vid, partition="3")
    m = k.mount_device("pv-p2", o3, w.json["device"])
    assert m.status == "Failure" and "has no partition 3" in m.message, m
    # mkfsOptions make no sense with a partition: refused up front.
    r = k.attach("pv-p2", cinder_opts(vid, partition="1", mkfsOptions="-L x"))
    assert r.status == "Failure" and "never formats a partition" in r.message, r
    # The whole disk holds a partition table: never formatted either.
    m = k.mount_device("pv-p2", cinder_opts(vid), w.json["device"])
    assert m.status == "Failure" and "partition table" in m.message, m
    assert mounts_under_tmp(cloud) == []
    assert k.detach("pv-p2").status == "Success"


def mounts_under_tmp(cloud):
    from cloud_common import mounts_under
    return mounts_under(cloud.tmp)
