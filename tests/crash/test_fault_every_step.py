"""Errors at every step: each node-side call of each block driver meets one
failing syscall (strace inject error=EIO, ENOSPC, EINTR, EBUSY... on its
writes, ioctls, mounts, locks, waits; never the write of its reply). The
call must answer within its bound: Success if it could cope, or a Failure
with a message (one JSON object, nothing on stderr) that changed no mount;
the next clean call succeeds, and the lifecycle ends as an unbroken one
(same data, same file system, nothing left behind)."""
import pytest

import strace_points as sp
from lifecycle import NODE_STEPS, record_step, recover_node, run_points
from test_kill_every_step import CLOUD_SHARE, CLOUDS, NEW_SHARE, cloud_volume, fresh_loop_image, loop_volume


def error_wrappers(trace, share=1.0):
    return [sp.error_wrapper(n, k, e) for n, k, e in sp.error_points(trace.steps(), share)]


@pytest.mark.parametrize("call", NODE_STEPS)
def test_loop_errors_at_every_step(loop_node, call):
    vol = loop_volume(loop_node)
    vol.lifecycle()
    trace = record_step(vol, call)
    run_points(vol, "error loop " + call, call, error_wrappers(trace), "error", len(trace.steps()),
               recover=recover_node)


@pytest.mark.parametrize("call", ["waitforattach", "mountdevice"])
def test_loop_errors_while_creating_and_formatting(loop_node, call):
    vol = loop_volume(loop_node, "fresh.img")
    fresh_loop_image(vol)
    vol.lifecycle()
    trace = record_step(vol, call, make_fresh=fresh_loop_image)
    run_points(vol, "error loop %s (new volume)" % call, call, error_wrappers(trace, NEW_SHARE), "error",
               len(trace.steps()),
               make_fresh=fresh_loop_image, recover=recover_node)


@pytest.mark.parametrize("kind", CLOUDS)
@pytest.mark.parametrize("call", NODE_STEPS)
def test_cloud_errors_at_every_step(make_cloud, kind, call):
    vol = cloud_volume(make_cloud(kind), kind)
    vol.lifecycle()
    trace = record_step(vol, call)
    run_points(vol, "error %s %s" % (kind, call), call, error_wrappers(trace, CLOUD_SHARE), "error",
               len(trace.steps()), recover=recover_node)
