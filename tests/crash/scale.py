"""Many loop volumes at once, and many calls racing on one: what
test_scale.py asserts (0 errors, 0 leaks) and bench/scale times.

parallel(): `volumes` distinct volumes through attach, waitforattach,
mountdevice, mount (every one in use at the same time), then unmount,
unmountdevice, detach, `workers` calls at a time.
race(): `racers` calls of each node-side step at once on one volume, half
of them naming its image through a symlink (two names, one file: one loop
device, one mount); waitforattach, mountdevice and unmountdevice, where the
image is bound and released, WAIT_ROUNDS times.
"""
import concurrent.futures
import os
import time

from kubelet import go_json
from lifecycle import POD, Volume

WAIT_ROUNDS = 8


def _volume(node, i, image=None, spec=None):
    return Volume(node.kubelet, spec or "pv-%03d" % i, {"image": image or "v%03d.img" % i, "size": "16Mi"},
                  "ext4", node.tmp, node.image_root, node.run_dir)


def _steps(vol, steps, errors):
    for s in steps:
        r = vol.step(s)
        if not vol.ok(r):
            errors.append("%s %s: %r" % (vol.spec, s, r))
            return
        if s == "mount":
            vol.check_in_use(None, None)


def parallel(node, volumes=256, workers=16):
    """(errors, leaks, {phase: seconds}, devices)."""
    vols = [_volume(node, i) for i in range(volumes)]
    errors, times = [], {}
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for phase, steps in (("set up", ("attach", "waitforattach", "mountdevice", "mount")),
                             ("tear down", ("unmount", "unmountdevice", "detach"))):
            t = time.monotonic()
            for f in [pool.submit(_steps, v, steps, errors) for v in vols]:
                try:
                    f.result()
                except AssertionError as e:
                    errors.append(str(e))
            times[phase] = time.monotonic() - t
            if phase == "set up":
                devices = {v.device for v in vols}
                mounts = node.mounts()
                if len(devices) != volumes:
                    errors.append("%d volumes in use on %d distinct devices" % (volumes, len(devices)))
                for v in vols:
                    if mounts.count(v.global_path()) != 1 or mounts.count(v.pod_path()) != 1:
                        errors.append("%s is not mounted once at each path" % v.spec)
    vols[0].baseline = None
    return errors, vols[0].leaks(), times, len(devices)


def race(node, racers=32):
    """(errors, leaks, {step: seconds})."""
    k, d = node.kubelet, node.driver
    os.symlink("one.img", node.image("alias.img"))
    vol = _volume(node, 0, "one.img", "pv-race")
    names = [{"image": "one.img", "size": "16Mi"} if i % 2 else {"image": "alias.img", "size": "16Mi"}
             for i in range(racers)]
    errors, times = [], {}
    pods = [dict(POD, uid="%s-%02d" % (POD["uid"][:-3], i)) for i in range(racers)]
    g = k.global_path("pv-race")

    def at_once(step, argvs):
        t = time.monotonic()
        started = [d.start(*a) for a in argvs]
        replies = [d.finish(s) for s in started]
        times[step] = time.monotonic() - t
        bad = [r for r in replies if r.status != "Success"]
        errors.extend("%s: %r" % (step, r) for r in bad)
        return replies

    with open(node.image("one.img"), "wb") as f:
        f.truncate(16 << 20)
    assert vol.step("attach").status == "Success"
    os.makedirs(g, 0o750)
    paths = [k.pod_dir(p["uid"], "pv-race") for p in pods]
    # Binding the image (in waitforattach or mountdevice, as the driver
    # chooses) is the racy part: a few rounds of it, torn down in between.
    for round_ in range(WAIT_ROUNDS):
        replies = at_once("waitforattach", [("waitforattach", "", go_json(k.options("pv-race", o)))
                                            for o in names])
        devs = [r.json.get("device", "") for r in replies]
        if len(node.loop_devices()) > 1:
            errors.append("after waitforattach, one image through two names on loop devices %s"
                          % node.loop_devices())
        # Each racer passes what its own waitforattach answered, as kubelet does.
        at_once("mountdevice", [("mountdevice", g, dev, go_json(k.options("pv-race", o)))
                                for dev, o in zip(devs, names)])
        if node.mounts().count(g) != 1 or len(node.loop_devices()) != 1:
            errors.append("after mountdevice, the global path is mounted %d times, loop devices %s" % (
                node.mounts().count(g), node.loop_devices()))
        if round_ == WAIT_ROUNDS - 1:
            for p in paths:
                os.makedirs(p, 0o750)
            at_once("mount", [("mount", p, go_json(k.options("pv-race", o, pod=pod)))
                              for p, o, pod in zip(paths, names, pods)])
            mounts = node.mounts()
            errors.extend("%s mounted %d times" % (p, mounts.count(p)) for p in paths if mounts.count(p) != 1)
            at_once("unmount", [("unmount", p) for p in paths])
        at_once("unmountdevice", [("unmountdevice", g) for _ in range(racers)])
        if node.mounts().count(g):
            errors.append("the global path is still mounted after unmountdevice")
    for p in paths + [g]:
        os.rmdir(p)
    assert vol.step("detach").status == "Success"
    return errors, vol.leaks(), times
