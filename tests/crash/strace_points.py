"""Where to break a driver call: record its syscalls once with strace, then
name each step as (syscall, k), "the k-th <syscall> of that process".

strace counts injections per syscall and per process (`when=k` is the k-th
call of *that* syscall, not the k-th syscall overall; checked with strace 6.1),
so (name, k) is how one exact step of a recorded call is hit again:

    strace -qq -o /dev/null -e inject=<name>:signal=KILL:when=<k> driver ...    the driver, its k-th <name>
    strace -f -qq ... the same, where the driver makes fewer than k <name>       a child (mkfs), not the driver
    strace -qq -o /dev/null -e inject=<name>:error=EIO:when=<k> driver ...      that syscall fails

How many steps each test breaks: CRASH_SAMPLES (default 8) evenly spread
steps per call, every commit point (ALWAYS: writes, mounts, binds, renames,
child starts...), plus other steps that change something (INTERESTING) up to
CRASH_MAX_INTERESTING (default 14, evenly spread when over); for errors,
CRASH_ERROR_POINTS (default 10) (step, errno) pairs per call. CRASH_SAMPLES=100000
CRASH_MAX_INTERESTING=100000 CRASH_ERROR_POINTS=100000 breaks every step of
every call.
"""
import os
import re
import shutil
import subprocess
import tempfile

STRACE = shutil.which("strace")

# Syscalls that change the node or the driver's own state: every one of the
# driver's own is a kill point (up to CRASH_MAX_INTERESTING) and an error point.
INTERESTING = frozenset((
    "write", "pwrite64", "writev", "ioctl", "mount", "umount2", "execve", "flock", "rename", "renameat",
    "renameat2", "link", "linkat", "ftruncate", "fallocate", "unlink", "unlinkat", "mkdir", "mkdirat", "rmdir",
    "fsync", "fdatasync", "clone", "clone3", "vfork", "fork", "wait4", "waitid", "kill", "openat2", "symlink",
    "symlinkat", "fchmod", "fchmodat", "fchown", "fchownat", "open_tree", "move_mount",
    "fsopen", "fsmount", "fsconfig", "mount_setattr", "pidfd_open",
))
# The errors each kind of syscall may meet on a node, injected one at a time.
ERRORS = {
    "write": ("EIO", "ENOSPC"), "pwrite64": ("EIO", "ENOSPC"), "writev": ("EIO", "ENOSPC"),
    "ftruncate": ("EIO", "ENOSPC"), "fallocate": ("EIO", "ENOSPC"), "fsync": ("EIO",), "fdatasync": ("EIO",),
    "ioctl": ("EIO", "EBUSY"), "mount": ("EIO", "EBUSY"), "umount2": ("EIO", "EBUSY"),
    "open_tree": ("EIO",), "mount_setattr": ("EIO", "ENOSYS"), "move_mount": ("EBUSY", "EIO"),
    "mkdir": ("ENOSPC", "EIO"), "mkdirat": ("ENOSPC", "EIO"), "rename": ("EIO",), "renameat2": ("EIO",),
    "linkat": ("EIO",), "unlink": ("EIO",), "unlinkat": ("EIO",), "openat2": ("EIO",),
    "flock": ("EINTR",), "wait4": ("EINTR",), "waitid": ("EINTR",), "poll": ("EINTR",), "ppoll": ("EINTR",),
    "read": ("EIO", "EINTR"), "execve": ("EIO",), "clone": ("EAGAIN",), "clone3": ("EAGAIN",),
    "sendto": ("EIO",), "connect": ("ECONNREFUSED",),
}
# Of those, the ones always taken, however many: they are few per call and
# each is a commit point (a mount made, a device bound, a file renamed, a
# child started). ioctls that only ask (LOOP_GET_STATUS64 over every loop
# device, BLKGETSIZE64...) are sampled with the rest.
ALWAYS = frozenset((
    "write", "pwrite64", "writev", "mount", "umount2", "execve", "flock", "rename", "renameat", "renameat2",
    "link", "linkat", "ftruncate", "fallocate", "unlink", "unlinkat", "rmdir", "fsync", "fdatasync", "clone",
    "clone3", "vfork", "fork", "kill", "symlink", "symlinkat", "open_tree", "move_mount", "fsmount",
    "mount_setattr",
))


def always(step):
    name, _, args = step
    return name in ALWAYS or (name == "ioctl" and "GET" not in args.split(",", 2)[1])


# What the dynamic loader does before main(): breaking it there is the same as
# never starting, so only a few of those steps are taken.
LOADER = frozenset(("execve", "brk", "mmap", "access", "openat", "read", "pread64", "newfstatat", "fstat", "close",
                    "arch_prctl", "set_tid_address", "set_robust_list", "rseq", "mprotect", "prlimit64", "munmap"))

_LINE = re.compile(r"^(\d+)\s+(\w+)\((.*)")


def env_int(name, default):
    return int(os.environ.get(name, default))


class Trace:
    """One recorded run: each process's syscalls in order, the driver first."""

    def __init__(self, text):
        self.calls = {}          # pid -> [(name, args)]
        self.exe = {}            # pid -> the program it exec'd
        self.order = []
        for line in text.splitlines():
            m = _LINE.match(line)
            if not m:
                continue          # "<... resumed>", signals, exits: counted where they started
            pid, name, args = int(m.group(1)), m.group(2), m.group(3)
            if pid not in self.calls:
                self.calls[pid] = []
                self.order.append(pid)
            self.calls[pid].append((name, args))
            if name == "execve":
                self.exe[pid] = os.path.basename(args.split('"')[1]) if '"' in args else "?"
        self.driver = self.order[0] if self.order else None

    def steps(self, pid=None):
        """[(name, k, args)]: each syscall of pid (the driver) with its rank among its own kind."""
        seen = {}
        out = []
        for name, args in self.calls.get(self.driver if pid is None else pid, []):
            seen[name] = seen.get(name, 0) + 1
            out.append((name, seen[name], args))
        return out

    def count(self, name, pid=None):
        return sum(1 for n, _ in self.calls.get(self.driver if pid is None else pid, []) if n == name)

    def children(self, exe_prefix):
        return [p for p in self.order[1:] if self.exe.get(p, "").startswith(exe_prefix)]


def record(argv, env, timeout=120):
    """Runs argv once under strace -f; (its Trace, returncode, stdout)."""
    with tempfile.NamedTemporaryFile(prefix="flexvol-crash-trace-") as out:
        p = subprocess.run([STRACE, "-f", "-qq", "-o", out.name] + list(argv), env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout)
        with open(out.name) as f:
            return Trace(f.read()), p.returncode, p.stdout


def _spread(items, n):
    """n items evenly spread over items, first and last included."""
    if n <= 0:
        return []
    if len(items) <= n:
        return list(items)
    if n == 1:
        return [items[len(items) // 2]]
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)]


def main_start(steps):
    """Index of the first step that is not the dynamic loader's."""
    for i, (name, _, args) in enumerate(steps):
        if name not in LOADER or (name == "openat" and ".so" not in args and "ld.so" not in args) or \
           (name == "read" and "ELF" not in args):
            if i > 0:
                return i
    return 0


def kill_points(steps, share=1.0):
    """The (name, k) steps of one call to kill it at: a few in the loader,
    CRASH_SAMPLES spread over the rest, every ALWAYS step, and up to
    CRASH_MAX_INTERESTING other INTERESTING steps; `share` of those numbers
    (never of ALWAYS) for new volumes and for drivers whose node-side code is
    mostly the core's, which the loop driver's tests break step by step."""
    samples = round(env_int("CRASH_SAMPLES", 8) * share)
    max_interesting = round(env_int("CRASH_MAX_INTERESTING", 14) * share)
    start = main_start(steps)
    loader, body = steps[:start], steps[start:]
    picked = _spread(loader, 2 if samples and share >= 1 else 0)
    if samples and samples >= len(body):
        picked += body
    else:
        picked += _spread(body, samples)
    picked += [s for s in body if always(s)]
    picked += _spread([s for s in body if s[0] in INTERESTING and not always(s)], max_interesting)
    return _unique(picked)


def child_kill_points(trace, exe_prefix, n):
    """Steps of the child exec'ing exe_prefix (mkfs) that only it reaches: the
    driver makes fewer of that syscall, so under -f only the child dies there."""
    pids = trace.children(exe_prefix)
    if not pids:
        return []
    steps = [s for s in trace.steps(pids[0]) if s[1] > trace.count(s[0]) and s[0] not in ("exit_group", "execve")]
    writes = [s for s in steps if s[0] in INTERESTING]
    return _unique(_spread(writes, n) + _spread(steps, max(2, n // 4)))


def error_points(steps, share=1.0):
    """(name, k, errno): CRASH_ERROR_POINTS (default 10) spread over every
    (step, errno) pair of the driver's own steps that can fail (ERRORS), but
    never the write of its reply to stdout (that is where the reply goes)."""
    n = round(env_int("CRASH_ERROR_POINTS", 10) * share)
    body = steps[main_start(steps):]
    cand = [(name, k, e) for name, k, args in body if name in ERRORS
            and not (name in ("write", "writev") and args.startswith("1,")) for e in ERRORS[name]]
    return _spread(cand, n)


def _unique(steps):
    seen, out = set(), []
    for name, k, *_ in steps:
        if (name, k) not in seen:
            seen.add((name, k))
            out.append((name, k))
    return out


def kill_wrapper(name, k, children=False):
    return [STRACE] + (["-f"] if children else []) + ["-qq", "-o", "/dev/null", "-e",
                                                     "inject=%s:signal=KILL:when=%d" % (name, k)]


def error_wrapper(name, k, errno):
    return [STRACE, "-qq", "-o", "/dev/null", "-e", "inject=%s:error=%s:when=%d" % (name, errno, k)]
