"""The loop driver under crashes, races and hostile specs (issue 10 #3-#5,
issue 11 #10): no leaked loop device, one device per image, no half-made
image, and the node's limits on what a volume may reach."""
import os
import subprocess
import threading

import pytest

from kubelet import go_json

POD = {"name": "app", "namespace": "default", "uid": "0a0a0a0a-aaaa-4aaa-8aaa-00000000000a"}


def ns_pod(ns, n):
    return {"name": "p-%d" % n, "namespace": ns, "uid": "00000000-0000-4000-8000-%012d" % n}


def configure(node, extra):
    with open(os.path.join(node.config_dir, "loop.conf"), "a") as f:
        f.write(extra)


def mounted_up(node, spec, opts, device=""):
    k = node.kubelet
    w = k.wait_for_attach(spec, opts, device)
    assert w.status == "Success", w
    m = k.mount_device(spec, opts, w.json["device"])
    assert m is None or m.status == "Success", m
    return w.json["device"]


def killed_at(node, syscall, *args):
    """Runs one driver call under strace, SIGKILLed at its first `syscall`."""
    trace = os.path.join(node.tmp, "strace.out")
    p = subprocess.run(["strace", "-f", "-o", trace, "-e", "trace=%s" % syscall,
                        "-e", "inject=%s:signal=KILL" % syscall, node.driver.path] + list(args),
                       stdin=subprocess.DEVNULL, capture_output=True, env=node.driver.env, timeout=120)
    assert p.returncode != 0 and p.stdout == b"", "the call was not killed at %s: %r" % (syscall, p.stdout)


def needs_strace():
    if subprocess.run(["strace", "-V"], capture_output=True).returncode != 0:
        pytest.skip("strace is not installed")


# --- issue 10 #3: loop devices leak ---

def test_unmountdevice_after_a_foreign_unmount_leaves_no_device(loop_node):
    node, k = loop_node, loop_node.kubelet
    mounted_up(node, "pv-f", {"image": "f.img", "size": "64Mi"})
    assert len(node.loop_devices()) == 1
    g = k.global_path("pv-f")
    subprocess.run(["umount", g], check=True)  # an operator, or a node agent
    r = node.driver.call("unmountdevice", g)
    assert r.status == "Success", r
    assert node.loop_devices() == [], "the loop device outlived its mount"


def test_waitforattach_without_mountdevice_leaves_no_device(loop_node):
    """The pod was deleted before mountdevice (or mountdevice was refused):
    nothing may stay bound, holding a possibly deleted image open."""
    node, k = loop_node, loop_node.kubelet
    for _ in range(2):
        assert k.wait_for_attach("pv-w", {"image": "w.img", "size": "64Mi"}).status == "Success"
    os.unlink(node.image("w.img"))
    assert node.loop_devices() == [], "a device holds the deleted image open"


def test_mountdevice_killed_at_mount_leaves_no_device_and_a_retry_mounts(loop_node):
    needs_strace()
    node, k = loop_node, loop_node.kubelet
    opts = {"image": "k.img", "size": "64Mi"}
    dev = k.wait_for_attach("pv-k", opts).json["device"]
    g = k.global_path("pv-k")
    os.makedirs(g, 0o750)
    killed_at(node, "mount", "mountdevice", g, dev, go_json(k.options("pv-k", opts)))
    assert node.mounts() == [] and node.loop_devices() == [], "a killed mountdevice leaked its device"
    r = node.driver.call("mountdevice", g, dev, go_json(k.options("pv-k", opts)))
    assert r.status == "Success", r
    assert node.mounts() == [g] and len(node.loop_devices()) == 1
    assert k.unmount_device("pv-k").status == "Success"
    assert node.loop_devices() == []


def test_device_bound_by_an_older_version_is_reclaimed(loop_node):
    """A device bound without AUTOCLEAR (by the previous driver) and never
    mounted is released by the next waitforattach of its image."""
    node, k = loop_node, loop_node.kubelet
    with open(node.image("old.img"), "wb") as f:
        f.truncate(64 << 20)
    subprocess.run(["losetup", "-f", node.image("old.img")], check=True)
    assert len(node.loop_devices()) == 1
    assert k.wait_for_attach("pv-o", {"image": "old.img"}).status == "Success"
    assert node.loop_devices() == []


# --- issue 10 #4: two loop devices on one image ---

def race(node, jobs):
    """Runs each (spec, options) as waitforattach then mountdevice, all at once."""
    k, d = node.kubelet, node.driver
    replies, errors = [], []

    def one(spec, opts):
        try:
            j = go_json(k.options(spec, opts))
            w = d.call("waitforattach", "", j)
            g = k.global_path(spec)
            os.makedirs(g, 0o750, exist_ok=True)
            replies.extend([w, d.call("mountdevice", g, w.json.get("device", ""), j)])
        except Exception as e:  # collected: assertions in threads would be lost
            errors.append(e)

    threads = [threading.Thread(target=one, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [r for r in replies if r.status != "Success"] == []


def two_names(node):
    os.makedirs(node.image("real"))
    with open(node.image("real/disk.img"), "wb") as f:
        f.truncate(64 << 20)
    os.symlink("real/disk.img", node.image("alias.img"))
    return {"image": "real/disk.img"}, {"image": "alias.img"}


def test_two_volumes_naming_one_image_racing_share_one_device(loop_node):
    """Eight waitforattach+mountdevice at once: two PVs, one naming the image
    through a symlink. One loop device; each global path mounted once."""
    node, k = loop_node, loop_node.kubelet
    real, alias = two_names(node)
    race(node, [("pv-1", real), ("pv-2", alias)] * 4)
    assert len(node.loop_devices()) == 1, "two loop devices over one file"
    g1, g2 = k.global_path("pv-1"), k.global_path("pv-2")
    assert node.mounts().count(g1) == 1 and node.mounts().count(g2) == 1
    assert os.stat(g1).st_dev == os.stat(g2).st_dev
    assert k.unmount_device("pv-1").status == "Success"
    assert len(node.loop_devices()) == 1, "the other volume's device was released under it"
    assert os.listdir(g2) == ["lost+found"]
    assert k.unmount_device("pv-2").status == "Success"
    assert node.loop_devices() == [] and node.mounts() == []


# --- issue 10 #5: a crash between creating and sizing an image ---

def test_creation_killed_before_sizing_leaves_no_image_and_a_retry_succeeds(loop_node):
    needs_strace()
    node, k = loop_node, loop_node.kubelet
    opts = {"image": "c.img", "size": "96Mi"}
    killed_at(node, "ftruncate", "waitforattach", "", go_json(k.options("pv-c", opts)))
    assert os.listdir(node.image_root) == [], "a killed creation left a file behind"
    assert k.wait_for_attach("pv-c", opts).status == "Success"
    assert os.path.getsize(node.image("c.img")) == 96 << 20
    assert os.listdir(node.image_root) == ["c.img"]


def test_empty_image_left_by_an_older_version_is_sized(loop_node):
    node, k = loop_node, loop_node.kubelet
    open(node.image("e.img"), "wb").close()
    r = k.wait_for_attach("pv-e", {"image": "e.img"})
    assert r.status == "Failure" and "empty" in r.message, r
    mounted_up(node, "pv-e", {"image": "e.img", "size": "64Mi"})
    assert os.path.getsize(node.image("e.img")) == 64 << 20
    assert k.unmount_device("pv-e").status == "Success"


# --- issue 11 #10: limits on what a volume spec may reach ---

def test_size_over_the_default_max_size_is_refused(loop_node):
    r = loop_node.kubelet.wait_for_attach("pv-big", {"image": "big.img", "size": "2Ti"})
    assert r.status == "Failure" and "max-size" in r.message, r
    assert os.listdir(loop_node.image_root) == []


def test_max_size_from_the_configuration(loop_node):
    node, k = loop_node, loop_node.kubelet
    configure(node, "max-size = 100Mi\n")
    for call in (lambda o: k.attach("pv-m", o), lambda o: k.wait_for_attach("pv-m", o)):
        r = call({"image": "m.img", "size": "101Mi"})
        assert r.status == "Failure" and "[loop] max-size" in r.message, r
    assert os.listdir(node.image_root) == []
    assert k.wait_for_attach("pv-m", {"image": "m.img", "size": "100Mi"}).status == "Success"


def test_bad_max_size_is_a_configuration_error(loop_node):
    configure(loop_node, "max-size = lots\n")
    r = loop_node.kubelet.wait_for_attach("pv-m", {"image": "m.img", "size": "64Mi"})
    assert r.status == "Failure" and "max-size" in r.message, r


def test_per_namespace_binds_only_the_namespaces_own_images(loop_node):
    node, k = loop_node, loop_node.kubelet
    configure(node, "per-namespace = true\n")
    os.makedirs(node.image("team-a"))
    os.makedirs(node.image("team-b"))
    os.symlink("../team-a/vol.img", node.image("team-b/link.img"))
    own = {"image": "team-a/vol.img", "size": "64Mi"}
    mounted_up(node, "pv-a", own)
    with open(os.path.join(k.global_path("pv-a"), "secret"), "w") as f:
        f.write("team-a's")
    assert k.set_up_pod(ns_pod("team-a", 1), "pv-a", own).status == "Success"
    # Another namespace's pod: the same PV, or a symlink into team-a from its own directory.
    r = k.set_up_pod(ns_pod("team-b", 2), "pv-a", own)
    assert r.status == "Failure" and "namespace team-b" in r.message, r
    link = {"image": "team-b/link.img"}
    mounted_up(node, "pv-l", link)
    r = k.set_up_pod(ns_pod("team-b", 3), "pv-l", link)
    assert r.status == "Failure" and "outside" in r.message, r
    pod_dirs = [k.pod_dir(ns_pod("team-b", n)["uid"], s) for n, s in ((2, "pv-a"), (3, "pv-l"))]
    assert not any(os.path.exists(p) for p in pod_dirs)
    assert [m for m in node.mounts() if "/pods/" in m] == [k.pod_dir(ns_pod("team-a", 1)["uid"], "pv-a")]


def test_mount_refuses_a_global_path_holding_another_image(loop_node):
    """Inline volumes named alike share a global path: a pod naming b.img must
    not be handed a.img's file system mounted there."""
    node, k = loop_node, loop_node.kubelet
    mounted_up(node, "data", {"image": "a.img", "size": "64Mi"})
    with open(node.image("b.img"), "wb") as f:
        f.truncate(64 << 20)
    r = k.set_up_pod(POD, "data", {"image": "b.img"})
    assert r.status == "Failure" and "another file system" in r.message, r
    assert node.mounts() == [k.global_path("data")]
