#!/usr/bin/python3
"""The kubelet of one node, for the cinder driver's VM tier: run inside the
guest (tests/vm/test_cinder_vm.py), it performs the node-side half of the
kubelet sequence with tests/harness/kubelet.py -- waitforattach, mountdevice,
mount; unmount, unmountdevice; expandfs -- against the disks the host's fake
OpenStack hot-plugged, and prints one JSON object with what happened.

    cinder_node.py '{"step": "mount", "spec": "pv-a", "volume": "<id>", ...}'

Node-side calls never talk to the cloud, so the guest's cinder.conf holds no
credentials, only [flexvol].
"""
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))

from kubelet import Driver, Kubelet, go_json  # noqa: E402

ETC, RUN, ROOT = "/tmp/cinder-node/etc", "/tmp/cinder-node/run", "/tmp/cinder-node/kubelet"
POD = {"name": "app", "namespace": "default", "uid": "0c0c0c0c-cccc-4ccc-8ccc-000000000001"}


def write_config(etc, items):
    os.makedirs(etc, exist_ok=True)
    fd = os.open(os.path.join(etc, "cinder.conf"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("[flexvol]\n" + "".join("%s = %s\n" % kv for kv in items.items()))


def kubelet(args, etc=ETC):
    env = dict(os.environ, FLEXVOL_CONFIG_DIR=etc, FLEXVOL_RUN_DIR=RUN)
    driver = Driver(os.path.join(REPO, args.get("build", "build"), "cinder"), env)
    return Kubelet(driver, ROOT, node=args.get("node", "node-1"))


def reply(r):
    return None if r is None else {"status": r.status, "message": r.message, "device": r.json.get("device")}


def step_setup(args, out):
    write_config(ETC, args.get("flexvol", {}))
    out["init"] = kubelet(args).init().json


def step_mount(args, out):
    # "flexvol": a configuration for this step only (a short attach-timeout
    # when the disk is expected to be absent).
    etc = ETC
    if "flexvol" in args:
        etc = ETC + "-step"
        write_config(etc, args["flexvol"])
    k = kubelet(args, etc)
    spec, opts, fs = args["spec"], {"volumeID": args["volume"]}, args.get("fs", "ext4")
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
    spec, opts, fs = args["spec"], {"volumeID": args["volume"]}, args.get("fs", "ext4")
    g = k.global_path(spec)
    j = go_json(k.options(spec, opts, fs))
    dev = "/dev/disk/by-id/virtio-" + args["volume"][:20]
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
