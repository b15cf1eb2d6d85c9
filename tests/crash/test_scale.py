"""Scale: CRASH_SCALE_VOLUMES (256) distinct loop volumes in use at once,
set up and torn down CRASH_SCALE_WORKERS (16) calls at a time, and 32 calls of
each node-side step racing on one volume (half through a symlink to its
image): no call fails, one loop device and one mount per volume, nothing
left behind. How long it takes is bench/scale's business, not a test's."""
import strace_points as sp
import scale
from lifecycle import STATS


def test_many_volumes_in_parallel(loop_node):
    n = sp.env_int("CRASH_SCALE_VOLUMES", 256)
    errors, leaks, _, devices = scale.parallel(loop_node, n, sp.env_int("CRASH_SCALE_WORKERS", 16))
    STATS.add("scale: %d volumes in parallel" % n, points=n, hit=devices, failures=len(errors), leaks=len(leaks))
    assert not errors, "%d errors:\n%s" % (len(errors), "\n".join(errors[:10]))
    assert not leaks, "left behind:\n" + "\n".join(leaks[:20])


def test_racing_calls_on_one_volume(loop_node):
    errors, leaks, _ = scale.race(loop_node, 32)
    STATS.add("scale: 32 racing calls per step", points=32, failures=len(errors), leaks=len(leaks))
    assert not errors, "%d errors:\n%s" % (len(errors), "\n".join(errors[:10]))
    assert not leaks, "left behind:\n" + "\n".join(leaks[:20])
