"""Kill at every step: each node-side call of each block driver is SIGKILLed
at one syscall (strace inject), then kubelet does what it does next (retries
the call, goes on, tears down). The end state must be the one of an unbroken
run: mounted once with the data byte-identical and the same file system
(never formatted again), then torn down with no mount, loop device, held
lock, process or file left behind. See lifecycle.py and strace_points.py."""
import os

import pytest

import lifecycle
import strace_points as sp
from lifecycle import NODE_STEPS, Volume, record_step, recover_node, run_points

# A format is the step that can lose data: mkfs is killed too (strace -f), at
# this many of its own writes.
MKFS_POINTS = sp.env_int("CRASH_MKFS_POINTS", 4)


def loop_volume(node, image="data.img"):
    return Volume(node.kubelet, "pv-crash", {"image": image, "size": "64Mi"}, "ext4", node.tmp, node.image_root,
                  node.run_dir)


def fresh_loop_image(vol):
    """Forget the image: the next lifecycle creates and formats it anew."""
    path = os.path.join(vol.images, vol.opts["image"])
    if os.path.exists(path):
        os.unlink(path)
    vol.uuid = vol.data_sha = None


# A new volume costs two lifecycles per point: half the points.
NEW_SHARE = 0.5


def kill_wrappers(trace, children=None, share=1.0):
    wrappers = [sp.kill_wrapper(n, k) for n, k in sp.kill_points(trace.steps(), share)]
    if children:
        wrappers += [sp.kill_wrapper(n, k, children=True)
                     for n, k in sp.child_kill_points(trace, children, MKFS_POINTS)]
    return wrappers


@pytest.mark.parametrize("call", NODE_STEPS)
def test_loop_killed_at_every_step_keeps_the_data(loop_node, call):
    vol = loop_volume(loop_node)
    vol.lifecycle()                      # the data, the file system, the baseline
    trace = record_step(vol, call)
    run_points(vol, "kill loop " + call, call, kill_wrappers(trace), "kill", len(trace.steps()),
               recover=recover_node)


@pytest.mark.parametrize("call", ["waitforattach", "mountdevice"])
def test_loop_killed_while_creating_and_formatting(loop_node, call):
    """A new volume: waitforattach creates and sizes the image, mountdevice
    formats it (mkfs killed too). Every later lifecycle finds the same data."""
    vol = loop_volume(loop_node, "fresh.img")
    fresh_loop_image(vol)
    vol.lifecycle()
    trace = record_step(vol, call, make_fresh=fresh_loop_image)
    wrappers = kill_wrappers(trace, "mkfs" if call == "mountdevice" else None, NEW_SHARE)
    run_points(vol, "kill loop %s (new volume)" % call, call, wrappers, "kill", len(trace.steps()),
               make_fresh=fresh_loop_image, recover=recover_node)


CLOUDS = ("cinder", "gcepd")
# The cloud drivers' node-side calls are the core's (clouddisk.c, block.c,
# mount.c), which the loop tests above break step by step: a share of that.
CLOUD_SHARE = 0.25


def cloud_volume(cloud, kind, attached=True):
    """A cloud disk; attached: attached once, for node-side lifecycles only
    (the controller's attach and detach are not the node's, and cost a
    second on the fakes)."""
    import cinder_helpers
    import gcepd_helpers
    if kind == "cinder":
        opts = cinder_helpers.opts(cloud.volume())
    else:
        cloud.crash_disks = getattr(cloud, "crash_disks", 0) + 1
        opts = gcepd_helpers.opts(cloud.disk("pd-crash-%d" % cloud.crash_disks, size_gb=1))
    vol = Volume(cloud.kubelet, "pv-crash", opts, "ext4", cloud.tmp, None, cloud.run_dir, ignore={"images"},
                 steps=NODE_STEPS if attached else lifecycle.STEPS)
    vol.cloud, vol.kind = cloud, kind
    if attached:
        assert vol.step("attach").status == "Success"
    return vol


def fresh_cloud_disk(vol):
    """A new blank disk under the same PV name."""
    new = cloud_volume(vol.cloud, vol.kind, attached=False)
    vol.opts = new.opts
    vol.uuid = vol.data_sha = None


@pytest.mark.parametrize("kind", CLOUDS)
@pytest.mark.parametrize("call", NODE_STEPS)
def test_cloud_killed_at_every_step_keeps_the_data(make_cloud, kind, call):
    vol = cloud_volume(make_cloud(kind), kind)
    vol.lifecycle()
    trace = record_step(vol, call)
    wrappers = [sp.kill_wrapper(n, k) for n, k in sp.kill_points(trace.steps(), CLOUD_SHARE)]
    run_points(vol, "kill %s %s" % (kind, call), call, wrappers, "kill", len(trace.steps()), recover=recover_node)


@pytest.mark.parametrize("kind", CLOUDS)
def test_cloud_killed_while_formatting(make_cloud, kind):
    """A new disk's mountdevice killed while it formats, or mkfs killed
    midway: the next mountdevice finishes the format and nothing formats it
    again later."""
    vol = cloud_volume(make_cloud(kind), kind, attached=False)
    vol.lifecycle()
    trace = record_step(vol, "mountdevice", make_fresh=fresh_cloud_disk)
    driver = [s for s in trace.steps() if s[0] in ("clone", "clone3", "wait4", "mount", "ioctl")]
    wrappers = [sp.kill_wrapper(n, k) for n, k, _ in sp._spread(driver, 2)]
    wrappers += [sp.kill_wrapper(n, k, children=True)
                 for n, k in sp.child_kill_points(trace, "mkfs", 4)[1:3]]   # mkfs midway
    run_points(vol, "kill %s mountdevice (new disk)" % kind, "mountdevice", wrappers, "kill", len(trace.steps()),
               make_fresh=fresh_cloud_disk, recover=recover_node)
