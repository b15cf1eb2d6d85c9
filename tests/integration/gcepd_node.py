#!/usr/bin/python3
"""The kubelet of one node, for the gcepd driver's VM tier: run inside the
guest (tests/vm/test_gcepd_vm.py), it performs the node-side half of the
kubelet sequence with tests/harness/kubelet.py -- waitforattach, mountdevice,
mount; unmount, unmountdevice; expandfs -- against the disks the host's fake
GCE hot-plugged, and prints one JSON object with what happened.

    gcepd_node.py '{"step": "mount", "spec": "pv-a", "pd": "<disk>", ...}'

The same shape as the cinder driver's cinder_node.py. Node-side calls never
talk to the cloud, so the guest's gcepd.conf holds no project, zone or
credentials. setup also installs what GCE's guest environment does on a real
instance (google-guest-configs, 65-gce-disk-naming.rules): a udev rule that
links a disk as /dev/disk/by-id/google-<serial>; the fake's disks are
virtio-blk with the device name as their serial.
"""
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))

from kubelet import Driver, Kubelet, go_json  # noqa: E402

ETC, RUN, ROOT = "/tmp/gcepd-node/etc", "/tmp/gcepd-node/run", "/tmp/gcepd-node/kubelet"
POD = {"name": "app", "namespace": "default", "uid": "0c0c0c0c-cccc-4ccc-8ccc-000000000002"}
RULE = "/etc/udev/rules.d/65-gce-disk-naming.rules"
RULE_TEXT = ('# As GCE guest images do for a persistent disk: its serial is its device name.\n'
             'KERNEL=="vd*[!0-9]", ATTRS{serial}=="?*", SYMLINK+="disk/by-id/google-$attr{serial}"\n')


def write_config(etc, items):
    os.makedirs(etc, exist_ok=True)
    fd = os.open(os.path.join(etc, "gcepd.conf"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("[gcepd]\n" + "".join("%s = %s\n" % kv for kv in items.items()))


def kubelet(args, etc=ETC):
    env = dict(os.environ, FLEXVOL_CONFIG_DIR=etc, FLEXVOL_RUN_DIR=RUN)
    driver = Driver(os.path.join(REPO, args.get("build", "build"), "gcepd"), env)
    return Kubelet(driver, ROOT, node=args.get("node", "node-1"))


def reply(r):
    return None if r is None else {"status": r.status, "message": r.message, "device": r.json.get("device")}


def step_setup(args, out):
    write_config(ETC, args.get("gcepd", {}))
    if args.get("google_links", True):
        os.makedirs(os.path.dirname(RULE), exist_ok=True)
        with open(RULE, "w") as f:
            f.write(RULE_TEXT)
    elif os.path.exists(RULE):
        os.unlink(RULE)
    out["udev_reload"] = subprocess.run(["udevadm", "control", "--reload"], capture_output=True,
                                        text=True).returncode
    out["init"] = kubelet(args).init().json


def step_mount(args, out):
    # "gcepd": a configuration for this step only (a short attach-timeout
    # when the disk is expected to be absent).
    etc = ETC
    if "gcepd" in args:
        etc = ETC + "-step"
        write_config(etc, args["gcepd"])
    k = kubelet(args, etc)
    spec, opts, fs = args["spec"], {"pdName": args["pd"]}, args.get("fs", "ext4")
    t0 = time.monotonic()
    w = k.wait_for_attach(spec, opts, args.get("device", ""), fs)
    out["waitforattach"] = reply(w)
    out["waitforattach_s"] = round(time.monotonic() - t0, 3)
    if w.status != "Success":
        return
    dev = w.json["device"]
    out["realpath"] = os.path.realpath(dev)
    kname = os.path.basename(out["realpath"])
    with open("/sys/block/%s/serial" % kname) as f:
        out["serial"] = f.read().strip()
    out["mountdevice"] = reply(k.mount_device(spec, opts, dev, fs))
    out["mount"] = reply(k.set_up_pod(POD, spec, opts, fs))
    pod_dir = k.pod_dir(POD["uid"], spec)
    data = os.path.join(pod_dir, "data")
    if args.get("write"):
        with open(data, "w") as f:
            f.write(args["write"])
        os.sync()
    out["read"] = open(data).read() if os.path.exists(data) else None
    out["fstype"] = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "-M", k.global_path(spec)],
                                   capture_output=True, text=True).stdout.strip()
    st = os.statvfs(k.global_path(spec))
    out["fs_bytes"] = st.f_blocks * st.f_frsize


def step_unmount(args, out):
    k = kubelet(args)
    out["unmount"] = reply(k.tear_down_pod(POD["uid"], args["spec"]))
    out["unmountdevice"] = reply(k.unmount_device(args["spec"]))


def step_expandfs(args, out):
    k = kubelet(args)
    spec, opts, fs = args["spec"], {"pdName": args["pd"]}, args.get("fs", "ext4")
    g = k.global_path(spec)
    j = go_json(k.options(spec, opts, fs))
    dev = args["device"]
    # The hypervisor told the guest of the new size; wait until the kernel shows it.
    kname = os.path.basename(os.path.realpath(dev))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open("/sys/block/%s/size" % kname) as f:
            if int(f.read()) * 512 >= args["new_size"]:
                break
        time.sleep(0.2)
    results = [reply(k.driver.call("expandfs", j, dev, g, str(args["new_size"]), str(args["old_size"])))
               for _ in range(2)]
    out["expandfs"] = results
    st = os.statvfs(g)
    out["fs_bytes"] = st.f_blocks * st.f_frsize


def main():
    args = json.loads(sys.argv[1])
    out = {"step": args["step"]}
    {"setup": step_setup, "mount": step_mount, "unmount": step_unmount, "expandfs": step_expandfs}[args["step"]](
        args, out)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
