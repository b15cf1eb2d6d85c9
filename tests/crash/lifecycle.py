"""One volume's life as kubelet drives it, with one call broken on purpose,
and the checks that its end state is the one of an unbroken run.

A broken call is killed (SIGKILL at one syscall) or meets an error (one
syscall fails); kubelet then does what it does next: retries the same call
(the harness skips mountdevice/mount when the path is already a mount point,
and unmountdevice when it is not, as kubelet does), then goes on.
"""
import collections
import glob
import hashlib
import os
import subprocess
import threading

from kubelet import Driver, DriverError, Reply
import integration_conftest as integration
from cloud_common import mounts_under

STEPS = ("attach", "waitforattach", "mountdevice", "mount", "unmount", "unmountdevice", "detach")
NODE_STEPS = STEPS[1:6]
REPLAYS = 3             # kubelet retries forever; a call that is not well after 3 is wedged
CALL_TIMEOUT = 120      # s; every call is bounded, this catches one that is not
DATA_FILE = "crash-tier.bin"
POD = {"name": "crash-0", "namespace": "default", "uid": "c0c0c0c0-0000-4000-8000-00000000c0c0"}


class Killed(Reply):
    """What kubelet gets from a driver killed mid-call: an exec error."""

    def __init__(self, argv, rc, stdout, stderr):
        self.argv, self.rc, self.stdout, self.stderr = argv, rc, stdout, stderr
        self.json = {"status": "Failure", "message": "killed"}
        self.contract_errors = []
        self.killed = True


class BreakableDriver(Driver):
    """A Driver whose next call may run under a strace wrapper (arm())."""

    armed = None
    killed_calls = 0

    def arm(self, wrapper):
        self.armed = list(wrapper)

    def call(self, *args, timeout=CALL_TIMEOUT):
        if self.armed is None:
            return super().call(*args, timeout=timeout)
        wrapper, self.armed = self.armed, None
        argv = [self.path] + [str(a) for a in args]
        p = subprocess.run(wrapper + argv, stdin=subprocess.DEVNULL, capture_output=True, env=self.env,
                           timeout=timeout, text=True)
        if p.returncode in (-9, 137):
            reply = Killed(argv, p.returncode, p.stdout, p.stderr)
            self.killed_calls += 1
        else:
            reply = Reply(argv, p.returncode, p.stdout, p.stderr)
            reply.killed = False
            if reply.contract_errors:
                raise DriverError("%r under %s broke the contract: %s" % (
                    argv[1:2], " ".join(wrapper[-1:]), "; ".join(reply.contract_errors)))
        self.history.append(reply)
        return reply


def breakable(driver):
    driver.__class__ = BreakableDriver
    return driver


class Stats:
    """What the tier did, for the summary line the release note quotes."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rows = collections.OrderedDict()

    def add(self, key, **counts):
        with self.lock:
            row = self.rows.setdefault(key, collections.Counter())
            row.update(counts)

    def report(self):
        if not self.rows:
            return []
        total = collections.Counter()
        lines = ["crash tier (CRASH_SAMPLES=%s CRASH_MAX_INTERESTING=%s CRASH_ERROR_POINTS=%s):" % (
            os.environ.get("CRASH_SAMPLES", "8"), os.environ.get("CRASH_MAX_INTERESTING", "14"),
            os.environ.get("CRASH_ERROR_POINTS", "10"))]
        for key, c in self.rows.items():
            total.update(c)
            lines.append("  %-40s syscalls %4d  points %3d  hit %3d  replays %3d  failures %3d  leaks %d" % (
                key, c["syscalls"], c["points"], c["hit"], c["replays"], c["failures"], c["leaks"]))
        lines.append("  %-40s points %d, hit %d, replays %d, failures answered %d, leaks %d" % (
            "total", total["points"], total["hit"], total["replays"], total["failures"], total["leaks"]))
        return lines


STATS = Stats()


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def fs_uuid(device):
    return subprocess.run(["blkid", "-p", "-s", "UUID", "-o", "value", device], capture_output=True, text=True,
                          timeout=60).stdout.strip()


def held_locks():
    """(major:minor, inode) of every file someone holds a lock on."""
    out = set()
    with open("/proc/locks") as f:
        for line in f:
            parts = line.split()
            if "->" in parts:
                parts.remove("->")
            try:
                out.add(int(parts[5].rsplit(":", 1)[1]))
            except (IndexError, ValueError):
                pass
    return out


def processes_under(prefix):
    """Processes (other than us) whose command line names a path under prefix."""
    found = []
    for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
        pid = int(cmdline.split("/")[2])
        if pid == os.getpid():
            continue
        try:
            with open(cmdline, "rb") as f:
                args = f.read().decode(errors="replace")
        except OSError:
            continue
        if prefix in args:
            found.append("%d: %s" % (pid, args.replace("\0", " ")))
    return found


def tree(root, ignore=()):
    """Every path under root, relative; the dirs in ignore (the fake cloud's
    own storage) left out."""
    out = set()
    for d, dirs, files in os.walk(root):
        rel = os.path.relpath(d, root)
        dirs[:] = [x for x in dirs if os.path.normpath(os.path.join(rel, x)) not in ignore]
        for name in dirs + files:
            out.add(os.path.normpath(os.path.join(rel, name)))
    return out


class Volume:
    """One volume on one node: the kubelet steps, and what its state must be.

    root: the test's directory (leaks are looked for there only); images:
    where the volume's image files live (loop devices backed there must be
    gone after detach; None: the disk is the cloud's); run_dir: the driver's
    locks; ignore: dirs under root that are not the node's (the fake cloud's
    disk images); steps: the lifecycle (a cloud disk may stay attached
    between lifecycles: the node-side steps only).
    """

    def __init__(self, kubelet, spec, opts, fs_type, root, images, run_dir, ignore=(), steps=STEPS):
        self.kubelet, self.spec, self.opts, self.fs_type = kubelet, spec, opts, fs_type
        self.steps = steps
        self.root, self.images, self.run_dir, self.ignore = root, images, run_dir, set(ignore)
        self.driver = kubelet.driver
        self.hint = ""
        self.device = None
        self.data_sha = None      # the data file written in the first lifecycle
        self.uuid = None          # the file system's UUID once made
        self.baseline = None      # tree() after an unbroken lifecycle

    # -- kubelet's steps -----------------------------------------------------
    def step(self, name):
        k, s, o, t = self.kubelet, self.spec, self.opts, self.fs_type
        if name == "attach":
            r = k.attach(s, o, t)
            if r.status == "Success":
                self.hint = r.json.get("device", "")
        elif name == "waitforattach":
            r = k.wait_for_attach(s, o, self.hint, t)
            if r.status == "Success":
                self.device = r.json["device"]
        elif name == "mountdevice":
            r = k.mount_device(s, o, self.device, t)
        elif name == "mount":
            r = k.set_up_pod(POD, s, o, t)
        elif name == "unmount":
            r = k.tear_down_pod(POD["uid"], s)
        elif name == "unmountdevice":
            r = k.unmount_device(s)
        else:
            r = k.detach(s)
        return r

    @staticmethod
    def ok(r):
        return r is None or r.status == "Success"

    def global_path(self):
        return self.kubelet.global_path(self.spec)

    def pod_path(self):
        return self.kubelet.pod_dir(POD["uid"], self.spec)

    def mounts(self):
        return mounts_under(self.root)

    # -- one lifecycle -------------------------------------------------------
    def lifecycle(self, broken=None, wrapper=None, mode="kill", stats=None):
        """attach .. detach with step `broken` run under wrapper; returns
        (hit, replays): whether the break happened, and the calls it took to
        recover. Every other check is an assertion."""
        hit, replays = False, 0
        for step in self.steps:
            if step != broken:
                r = self.step(step)
                assert self.ok(r), "%s (unbroken) after %s: %r" % (step, self.where(broken, wrapper), r)
            elif mode == "kill":
                hit, replays = self._killed(step, wrapper)
            else:
                hit, replays = self._failed(step, wrapper, stats)
            if step == "mount":
                self.check_in_use(broken, wrapper)
        self.check_clean(broken, wrapper)
        return hit, replays

    def where(self, broken, wrapper):
        return "%s under %s" % (broken, wrapper[-1] if len(wrapper) == 1 else describe(wrapper)) if broken \
            else "an unbroken lifecycle"

    def _killed(self, step, wrapper):
        self.driver.arm(wrapper)
        r = self.step(step)
        hit = not self.ok(r)      # the driver killed, or answering Failure for its killed child
        replays = 0
        while not self.ok(r):
            assert replays < REPLAYS, "%s: still failing after %d replays: %r" % (
                self.where(step, wrapper), replays, r)
            r = self.step(step)
            replays += 1
        return hit, replays

    def _failed(self, step, wrapper, stats):
        before = sorted(self.mounts())
        self.driver.arm(wrapper)
        r = self.step(step)
        if r is not None and r.status == "Failure":
            assert r.message.strip() and r.message != "killed", "%s: a Failure without a message: %r" % (
                self.where(step, wrapper), r)
            after = sorted(self.mounts())
            # A set-up call that fails mounts nothing; a teardown call may
            # have done part of its work (kubelet's retry, and the end-state
            # check, see to the rest) but never mounts.
            changed = after != before if step in ("mountdevice", "mount") else not set(after) <= set(before)
            assert not changed, "%s: a failed call changed the mounts:\nbefore %s\nafter  %s" % (
                self.where(step, wrapper), before, after)
            if stats is not None:
                stats["failures"] += 1
            r = self.step(step)
            assert self.ok(r), "%s: the next clean call failed: %r" % (self.where(step, wrapper), r)
            return True, 1
        return r is not None, 0

    # -- the checks ----------------------------------------------------------
    def check_in_use(self, broken, wrapper):
        """Mounted once, at the global path and in the pod, with its data."""
        g, p = self.global_path(), self.pod_path()
        mounts = self.mounts()
        where = self.where(broken, wrapper)
        assert mounts.count(g) == 1 and mounts.count(p) == 1, "%s: mounts %s" % (where, mounts)
        uuid = fs_uuid(self.device)
        assert uuid, "%s: no file system on %s" % (where, self.device)
        if self.uuid is None:
            self.uuid = uuid
        assert uuid == self.uuid, "%s: %s was formatted again (UUID %s, was %s)" % (
            where, self.device, uuid, self.uuid)
        data = os.path.join(p, DATA_FILE)
        if self.data_sha is None:
            with open(data, "wb") as f:
                f.write(os.urandom(256 << 10))
                os.fsync(f.fileno())
            self.data_sha = sha(data)
        else:
            assert os.path.exists(data), "%s: the data is gone" % where
            assert sha(data) == self.data_sha, "%s: the data changed" % where

    def leaks(self):
        out = []
        out += ["mount %s" % m for m in self.mounts()]
        if self.images:
            out += ["loop device %s" % d for d in integration.loop_devices_backed_under(self.images)]
        held = held_locks()
        for d, _, files in os.walk(self.run_dir):
            for name in files:
                path = os.path.join(d, name)
                try:
                    if os.stat(path).st_ino in held:
                        out.append("lock held on %s" % path)
                except OSError:
                    pass
        out += ["process %s" % p for p in processes_under(self.root)]
        now = self.files()
        if self.baseline is not None:
            out += ["file %s (not there after an unbroken run)" % f for f in sorted(now - self.baseline)]
            out += ["file %s missing (there after an unbroken run)" % f for f in sorted(self.baseline - now)]
        return out

    def files(self):
        """tree() without the lock files: a lock is named after what it
        locks (a new image is a new inode, a new name); held ones are leaks."""
        run = os.path.relpath(self.run_dir, self.root)
        return {f for f in tree(self.root, self.ignore) if not (f.startswith(run + "/") and f.endswith(".lock"))}

    def check_clean(self, broken, wrapper):
        leaks = self.leaks()
        assert not leaks, "%s: left behind:\n  %s" % (self.where(broken, wrapper), "\n  ".join(leaks))
        if self.baseline is None:
            self.baseline = self.files()


# -- breaking one call at many steps -------------------------------------------
MAX_REPORTED = 5        # failing points reported per test; the rest are counted


def record_step(vol, call, make_fresh=None):
    """One unbroken lifecycle with `call` run under strace -f: its Trace."""
    import tempfile
    import strace_points
    if make_fresh:
        make_fresh(vol)
    with tempfile.NamedTemporaryFile(prefix="flexvol-crash-trace-") as out:
        _record_lifecycle(vol, call, [strace_points.STRACE, "-f", "-qq", "-o", out.name])
        with open(out.name) as f:
            trace = strace_points.Trace(f.read())
    if make_fresh:
        _second_lifecycle(vol)
    assert trace.driver is not None and trace.steps(), "strace recorded nothing for %s" % call
    return trace


def _record_lifecycle(vol, call, wrapper):
    for step in vol.steps:
        if step == call:
            vol.driver.arm(wrapper)
        r = vol.step(step)
        assert vol.ok(r), "%s under strace: %r" % (step, r)
        if step == "mount":
            vol.check_in_use(None, None)
    vol.check_clean(None, None)


def _second_lifecycle(vol):
    """An unbroken lifecycle after a first one on a fresh volume: the data the
    first one wrote is there, on the file system it made."""
    for step in vol.steps:
        r = vol.step(step)
        assert vol.ok(r), "%s (second lifecycle): %r" % (step, r)
        if step == "mount":
            vol.check_in_use("the lifecycle after", ["the broken one"])
    vol.check_clean("the lifecycle after", ["the broken one"])


def run_points(vol, key, call, wrappers, mode, syscalls, make_fresh=None, recover=None):
    """vol's lifecycle once per wrapper, `call` broken by it. make_fresh(vol)
    before each makes the volume new (blank), and then a second unbroken
    lifecycle checks what the first one left. Failing points are collected
    (MAX_REPORTED shown) and asserted at the end; recover(vol) cleans up
    after one so the next starts from a known state."""
    stats = collections.Counter(syscalls=syscalls, points=len(wrappers))
    failures = []
    for w in wrappers:
        if make_fresh:
            make_fresh(vol)
        try:
            hit, replays = vol.lifecycle(call, w, mode, stats)
            if make_fresh:
                _second_lifecycle(vol)
        except (AssertionError, subprocess.TimeoutExpired) as e:
            failures.append("%s %s: %s" % (key, describe(w), "\n    ".join(str(e).splitlines()[:8])))
            if "left behind" in str(e):
                stats["leaks"] += 1
            if recover:
                recover(vol)
            continue
        stats["hit"] += int(hit)
        stats["replays"] += replays
    STATS.add(key, **stats)
    assert not failures, "%d of %d points failed:\n%s" % (len(failures), len(wrappers),
                                                         "\n".join(failures[:MAX_REPORTED]))
    return stats


def describe(wrapper):
    return ("strace -f " if "-f" in wrapper else "strace ") + wrapper[-1]


def recover_node(vol):
    """After a failing point: unmount (and, for loop, free) everything under
    the test's dir and let kubelet forget, so the next point starts from a
    detached volume (or, for a cloud disk that stays attached, an unmounted one)."""
    import shutil
    vol.driver.armed = None
    for m in sorted(vol.mounts(), key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True)
    if vol.images:
        for dev in integration.loop_devices_backed_under(vol.images):
            subprocess.run(["losetup", "-d", dev], capture_output=True)
    if "detach" in vol.steps:
        try:
            vol.step("detach")
        except (AssertionError, subprocess.TimeoutExpired):
            pass
    shutil.rmtree(vol.kubelet.root, ignore_errors=True)
