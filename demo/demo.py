#!/usr/bin/python3
"""make demo: one real volume through the whole kubelet sequence with the loop
driver, then seen from inside a container's mount namespace, then again after
a full teardown and remount. Runs in a private mount namespace and a temporary
directory, so the node is left as it was."""
import ctypes
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))
from kubelet import Driver, Kubelet  # noqa: E402

POD = {"name": "web-0", "namespace": "default", "uid": "5f0c1d2e-0000-4000-8000-00000000demo"}
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


def mount_volume(k):
    a = k.attach(SPEC, OPTIONS)
    w = k.wait_for_attach(SPEC, OPTIONS, a.json.get("device", ""))
    k.mount_device(SPEC, OPTIONS, w.json["device"])
    k.set_up_pod(POD, SPEC, OPTIONS)
    return w.json["device"]


def unmount_volume(k):
    k.tear_down_pod(POD["uid"], SPEC)
    k.unmount_device(SPEC)
    k.detach(SPEC)


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
        say("the controller-manager attaches; kubelet waits for the device, formats it because it is blank, "
            "mounts it on the global path, and bind-mounts it into the pod")
        device = mount_volume(k)
        run(["findmnt", "-o", "TARGET,SOURCE,FSTYPE,OPTIONS", "-S", device])

        say("the container runtime bind-mounts the pod dir into a new root and pivots into it")
        with open(os.path.join(pod_dir, "hello.txt"), "w") as f:
            f.write("written by pod %s\n" % POD["name"])
        run(["unshare", "--mount", "--propagation", "private", "--fork", sys.executable,
             os.path.join(REPO, "demo", "container.py"), pod_dir])

        say("the pod goes away: unmount, unmountdevice (releases the loop device), detach")
        unmount_volume(k)

        say("a new pod: the same image is attached and mounted again, and found formatted (no mkfs this time)")
        mount_volume(k)
        run(["cat", os.path.join(pod_dir, "hello.txt")])
        unmount_volume(k)
        say("done: every mount and loop device the demo made is gone")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
