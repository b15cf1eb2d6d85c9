"""The container runtime's step: a real OCI container started with runc, with
a pod volume dir bind-mounted at /data the way containerd's CRI plugin mounts
a Kubernetes volume (type bind, options rbind + rprivate + rw|ro). Used by
make demo (demo/demo.py) and tests/integration/test_runc.py.

The root file system is a directory with a static busybox and a link per
applet (Debian's busybox-static). runc runs as root with its cgroupfs
driver, its state in a private --root, so it needs no systemd and no
containerd, on cgroup v1 and v2 alike."""
import json
import os
import shutil
import subprocess

BUSYBOX = "/bin/busybox"


def runc_path():
    return shutil.which("runc") or next((p for p in ("/usr/sbin/runc", "/usr/bin/runc") if os.access(p, os.X_OK)),
                                        None)


def why_not():
    """Why runc cannot run a container here, or None when it can."""
    if os.geteuid() != 0:
        return "not root"
    if not runc_path():
        return "runc is not installed (Debian package runc)"
    if not os.access(BUSYBOX, os.X_OK):
        return "no static busybox at %s (Debian package busybox-static)" % BUSYBOX
    return None


def make_rootfs(path):
    """A busybox root file system under path (created)."""
    for d in ("bin", "proc", "sys", "dev", "tmp", "data", "etc"):
        os.makedirs(os.path.join(path, d), exist_ok=True)
    shutil.copy(BUSYBOX, os.path.join(path, "bin", "busybox"))
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for a in applets:
        link = os.path.join(path, "bin", a)
        if a != "busybox" and not os.path.lexists(link):
            os.symlink("busybox", link)
    return path


def cri_volume_mount(host_path, container_path="/data", read_only=False):
    """The OCI mount containerd's CRI plugin makes for a volume (propagation
    PRIVATE, the default): type bind, rbind, rprivate, then ro or rw."""
    return {"destination": container_path, "type": "bind", "source": host_path,
            "options": ["rbind", "rprivate", "ro" if read_only else "rw"]}


class Runc:
    """Runs containers from one rootfs; each run is a fresh bundle."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.state = os.path.join(workdir, "runc-state")
        self.rootfs = make_rootfs(os.path.join(workdir, "rootfs"))
        self.runs = 0
        self.no_pivot = False

    def _bundle(self, name, script, mounts):
        bundle = os.path.join(self.workdir, "bundle-" + name)
        os.makedirs(bundle)
        subprocess.run([runc_path(), "spec", "--bundle", bundle], check=True, capture_output=True)
        with open(os.path.join(bundle, "config.json")) as f:
            spec = json.load(f)
        spec["root"] = {"path": self.rootfs, "readonly": True}
        spec["hostname"] = name
        spec["process"].update(terminal=False, args=["/bin/sh", "-c", script], cwd="/",
                               env=["PATH=/bin", "HOME=/"])
        spec["mounts"] += mounts
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(spec, f, indent=1)
        return bundle

    def run(self, name, script, mounts, timeout=120):
        """Runs `sh -c script` in a new container; the CompletedProcess
        (stdout and stderr of the container's process, its exit status)."""
        self.runs += 1
        cid = "flexvol-%d-%d-%s" % (os.getpid(), self.runs, name)
        bundle = self._bundle("%d-%s" % (self.runs, name), script, mounts)
        argv = [runc_path(), "--root", self.state, "run", "--bundle", bundle]
        out = subprocess.run(argv + (["--no-pivot"] if self.no_pivot else []) + [cid],
                             capture_output=True, text=True, timeout=timeout)
        # pivot_root is refused when / is the initramfs (some minimal VMs): run without it.
        if out.returncode != 0 and "pivot_root" in out.stderr and not self.no_pivot:
            self.no_pivot = True
            subprocess.run([runc_path(), "--root", self.state, "delete", "-f", cid], capture_output=True)
            out = subprocess.run(argv + ["--no-pivot", cid], capture_output=True, text=True, timeout=timeout)
        subprocess.run([runc_path(), "--root", self.state, "delete", "-f", cid], capture_output=True)
        return out
