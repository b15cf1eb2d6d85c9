#!/usr/bin/python3
"""make demo: one real volume through the whole kubelet sequence with the loop
driver, used by a real OCI container (runc, with the pod volume dir mounted at
/data as containerd mounts it), then again by a new pod's container after a
full teardown, and read-only. Runs in a private mount namespace and a
temporary directory, so the node is left as it was."""
import ctypes
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))
from kubelet import Driver, Kubelet  # noqa: E402
sys.path.insert(0, os.path.join(REPO, "demo"))
import oci  # noqa: E402

POD = {"name": "web-0", "namespace": "default", "uid": "5f0c1d2e-0000-4000-8000-00000000demo"}
POD2 = {"name": "web-1", "namespace": "default", "uid": "5f0c1d2e-0000-4000-8000-0000000demo2"}
SPEC = "pv-demo"
OPTIONS = {"image": "demo.img", "size": "128Mi"}


def say(text):
    print("\n\033[1m# %s\033[0m" % text, flush=True)


class ShowingDriver(Driver):
    def call(self, *args, timeout=600):
        shown = [a if len(a) < 60 or not a.startswith("{") else a[:57] + "...}" for a in map(str, args)]
        print("$ loop %s" % " ".join("'%s'" % a if a.startswith("{") else a for a in shown), flush=True)
        reply = super().call(*args, timeout=timeout)
        print("  %s" % reply.stdout.strip(), flush=True)
        return reply


def private_mount_namespace():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x00020000) != 0 or libc.mount(b"none", b"/", None, 0x4000 | 0x40000, None) != 0:
        sys.exit("demo: needs root (unshare of the mount namespace failed)")


def run(argv):
    print("$ %s" % " ".join(argv), flush=True)
    out = subprocess.run(argv, capture_output=True, text=True)
    print("  " + (out.stdout + out.stderr).strip().replace("\n", "\n  "), flush=True)
    return out


def mount_volume(k, pod, read_only=False):
    a = k.attach(SPEC, OPTIONS, read_only=read_only)
    w = k.wait_for_attach(SPEC, OPTIONS, a.json.get("device", ""), read_only=read_only)
    k.mount_device(SPEC, OPTIONS, w.json["device"], read_only=read_only)
    k.set_up_pod(pod, SPEC, OPTIONS, read_only=read_only)
    return w.json["device"]


def unmount_volume(k, pod):
    k.tear_down_pod(pod["uid"], SPEC)
    k.unmount_device(SPEC)
    k.detach(SPEC)


class Containers:
    """The container step: runc when it can run here, else the Python stand-in."""

    def __init__(self, tmp):
        self.why_not = oci.why_not()
        self.runc = None
        if not self.why_not:
            try:
                self.runc = oci.Runc(os.path.join(tmp, "oci"))
                probe = self.runc.run("probe", "true", [])
                if probe.returncode != 0:
                    self.why_not = "runc cannot start a container here: " + probe.stderr.strip()
            except (OSError, subprocess.SubprocessError) as e:
                self.why_not = "runc cannot start a container here: %s" % e
        if self.why_not:
            print("\n!!! %s\n!!! the container step falls back to a Python stand-in (demo/container.py): a\n"
                  "!!! private mount namespace and pivot_root, not a real OCI runtime" % self.why_not, flush=True)

    def run(self, name, pod_dir, script, read_only=False):
        if not self.runc:
            hello = os.path.join(pod_dir, "hello.txt")
            if not read_only and not os.path.exists(hello):
                with open(hello, "w") as f:  # the stand-in only reads: the host writes for it
                    f.write("written by pod web-0\n")
            return run(["unshare", "--mount", "--propagation", "private", "--fork", sys.executable,
                        os.path.join(REPO, "demo", "container.py"), pod_dir])
        mount = oci.cri_volume_mount(pod_dir, "/data", read_only)
        print("$ runc run %s   # /data: bind of %s, options %s" % (name, pod_dir, ",".join(mount["options"])),
              flush=True)
        out = self.runc.run(name, script, [mount])
        text = (out.stdout + out.stderr).strip()
        print("  (container) " + text.replace("\n", "\n  (container) "), flush=True)
        print("  exit status %d" % out.returncode, flush=True)
        return out


def main():
    if os.geteuid() != 0:
        sys.exit("demo: run as root (it makes loop devices and mounts)")
    private_mount_namespace()
    tmp = tempfile.mkdtemp(prefix="flexvol-demo-")
    try:
        etc, images = os.path.join(tmp, "etc"), os.path.join(tmp, "images")
        os.makedirs(etc)
        with open(os.path.join(etc, "loop.conf"), "w") as f:
            f.write("[loop]\nimage-root = %s\n" % images)
        env = dict(os.environ, FLEXVOL_CONFIG_DIR=etc, FLEXVOL_RUN_DIR=os.path.join(tmp, "run"))
        d = ShowingDriver(os.path.join(REPO, os.environ.get("FLEXVOL_BUILD", "build"), "loop"), env)
        k = Kubelet(d, os.path.join(tmp, "var/lib/kubelet"))
        pod_dir = k.pod_dir(POD["uid"], SPEC)

        say("kubelet probes the plugin dir: init declares the capabilities")
        k.init()
        containers = Containers(tmp)
        say("the controller-manager attaches; kubelet waits for the device, formats it because it is blank, "
            "mounts it on the global path, and bind-mounts it into the pod")
        device = mount_volume(k, POD)
        run(["findmnt", "-o", "TARGET,SOURCE,FSTYPE,OPTIONS", "-S", device])
        say("what the driver holds on this node, from the kernel's tables")
        run([d.path, "status", "--kubelet-root", k.root])

        say("the container runtime starts the pod's container with the volume at /data; it writes")
        w = containers.run("web-0", pod_dir, "echo 'written by pod web-0 in a runc container' > /data/hello.txt && "
                           "sync && grep ' /data ' /proc/self/mountinfo && ls -l /data")
        if containers.runc and w.returncode != 0:
            sys.exit("demo: the container could not write its volume")

        say("the pod goes away: unmount, unmountdevice (releases the loop device), detach")
        unmount_volume(k, POD)

        say("a new pod: the same image is attached and mounted again, found formatted (no mkfs this time); "
            "its container reads what the first one wrote")
        mount_volume(k, POD2)
        r = containers.run("web-1", k.pod_dir(POD2["uid"], SPEC), "cat /data/hello.txt")
        if containers.runc and "written by pod web-0" not in r.stdout:
            sys.exit("demo: the new pod's container did not read the data back")
        unmount_volume(k, POD2)

        say("the volume read-only (readOnly: true): a read-only bind for the pod and in the container; "
            "reading works, writing is refused")
        mount_volume(k, POD2, read_only=True)
        ro = containers.run("web-1-ro", k.pod_dir(POD2["uid"], SPEC),
                            "cat /data/hello.txt; echo more > /data/hello.txt && echo WROTE || echo refused",
                            read_only=True)
        if containers.runc and ("refused" not in ro.stdout or "WROTE" in ro.stdout):
            sys.exit("demo: a read-only volume took a write")
        unmount_volume(k, POD2)
        say("done: every mount and loop device the demo made is gone")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
