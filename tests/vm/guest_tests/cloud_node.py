#!/usr/bin/python3
"""The kubelet of one node, for the cloud drivers' VM tier (cinder, gcepd):
run inside the guest by tests/vm/test_cinder_vm.py and test_gcepd_vm.py, it
performs the node-side half of the kubelet sequence with
tests/harness/kubelet.py -- waitforattach, mountdevice, mount; unmount,
unmountdevice; expandfs -- against the disks the host's fake cloud
hot-plugged, and prints one JSON object with what happened.

    cloud_node.py '{"driver": "gcepd", "step": "mount", "spec": "pv-a",
                    "options": {"pdName": "pd-a"}, "device": "...", ...}'

Steps:
  setup     writes the driver's configuration ("config": the keys of its
            section) and udev rules ("udev_rules": {path: text, or null to
            remove}), then runs init
  mount     waitforattach, mountdevice, mount into a pod; "write" puts a
            file in the volume; "config" applies to this step only (a short
            attach-timeout where the disk is expected to be absent)
  unmount   unmount and unmountdevice
  expandfs  waits for the kernel to see "new_size", then expandfs twice

cinder's node-side calls never talk to the cloud, and its configuration
holds no credentials. gcepd's ask the compute API which disk the instance
has attached under a device name: there is no network between host and
guest, so "gce" ({"project", "zone", "attached": {deviceName: [disk, mode]}},
the host fake's state at that moment) makes this script start a mirror of
the host's fake GCE on the guest's loopback, the metadata server included,
and point the step's configuration at it. The host's tests call
run_in(guest, driver=..., step=..., ...).
"""
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))

from kubelet import Driver, Kubelet, go_json  # noqa: E402

# The configuration section each driver reads its node-side keys from.
SECTIONS = {"cinder": "flexvol", "gcepd": "gcepd"}
POD = {"name": "app", "namespace": "default", "uid": "0c0c0c0c-cccc-4ccc-8ccc-000000000001"}


def base(args):
    return "/tmp/%s-node" % args["driver"]


def write_config(args, etc, items):
    os.makedirs(etc, exist_ok=True)
    fd = os.open(os.path.join(etc, args["driver"] + ".conf"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("[%s]\n" % SECTIONS[args["driver"]] + "".join("%s = %s\n" % kv for kv in items.items()))


def kubelet(args, etc=None):
    etc = etc or base(args) + "/etc"
    env = dict(os.environ, FLEXVOL_CONFIG_DIR=etc, FLEXVOL_RUN_DIR=base(args) + "/run")
    driver = Driver(os.path.join(REPO, args.get("build", "build"), args["driver"]), env)
    return Kubelet(driver, base(args) + "/kubelet", node=args.get("node", "node-1"))


def reply(r):
    return None if r is None else {"status": r.status, "message": r.message, "device": r.json.get("device")}


def fs_bytes(path):
    st = os.statvfs(path)
    return st.f_blocks * st.f_frsize


def step_setup(args, out):
    write_config(args, base(args) + "/etc", args.get("config", {}))
    rules = args.get("udev_rules", {})
    for path, text in rules.items():
        if text is None:
            if os.path.exists(path):
                os.unlink(path)
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    if rules:
        out["udev_reload"] = subprocess.run(["udevadm", "control", "--reload"], capture_output=True,
                                            text=True).returncode
    out["init"] = kubelet(args).init().json


def gce_mirror(args):
    """A fake GCE on the guest's loopback holding the host fake's attachments
    of node-1 (see the module's doc); the configuration keys that lead the
    driver to it."""
    sys.path.insert(0, REPO)
    from tests.fakes import gce as fake_gce
    g = args["gce"]
    fake = fake_gce.FakeGCE(project=g["project"], zone=g["zone"]).start()
    fake.add_instance("node-1", local=True, node=None)
    for device, (disk, mode) in g["attached"].items():
        fake.seed_attachment("node-1", disk, device, mode)
    return {"metadata-url": fake.url, "compute-endpoint": fake.url + "/compute/v1", "project": g["project"],
            "zone": g["zone"], "http-timeout": 10}


def step_kubelet(args):
    """The kubelet for a step: the setup's configuration, or the step's own
    ("config", plus the GCE mirror's keys with "gce")."""
    if "config" not in args and "gce" not in args:
        return kubelet(args)
    config = dict(args.get("config", {}))
    if "gce" in args:
        config.update(gce_mirror(args))
    etc = base(args) + "/etc-step"
    write_config(args, etc, config)
    return kubelet(args, etc)


def step_mount(args, out):
    k = step_kubelet(args)
    spec, opts, fs = args["spec"], args["options"], args.get("fs", "ext4")
    t0 = time.monotonic()
    w = k.wait_for_attach(spec, opts, args.get("device", ""), fs)
    out["waitforattach"] = reply(w)
    out["waitforattach_s"] = round(time.monotonic() - t0, 3)
    if w.status != "Success":
        return
    dev = w.json["device"]
    out["realpath"] = os.path.realpath(dev)
    with open("/sys/block/%s/serial" % os.path.basename(out["realpath"])) as f:
        out["serial"] = f.read().strip()
    out["mountdevice"] = reply(k.mount_device(spec, opts, dev, fs))
    out["mount"] = reply(k.set_up_pod(POD, spec, opts, fs))
    data = os.path.join(k.pod_dir(POD["uid"], spec), "data")
    if args.get("write"):
        with open(data, "w") as f:
            f.write(args["write"])
        os.sync()
    out["read"] = open(data).read() if os.path.exists(data) else None
    out["fstype"] = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "-M", k.global_path(spec)],
                                   capture_output=True, text=True).stdout.strip()
    out["fs_bytes"] = fs_bytes(k.global_path(spec))


def step_unmount(args, out):
    k = kubelet(args)
    out["unmount"] = reply(k.tear_down_pod(POD["uid"], args["spec"]))
    out["unmountdevice"] = reply(k.unmount_device(args["spec"]))


def step_expandfs(args, out):
    k = step_kubelet(args)
    spec, fs, dev = args["spec"], args.get("fs", "ext4"), args["device"]
    g = k.global_path(spec)
    j = go_json(k.options(spec, args["options"], fs))
    # The hypervisor told the guest of the new size; wait until the kernel shows it.
    kname = os.path.basename(os.path.realpath(dev))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open("/sys/block/%s/size" % kname) as f:
            if int(f.read()) * 512 >= args["new_size"]:
                break
        time.sleep(0.2)
    out["expandfs"] = [reply(k.driver.call("expandfs", j, dev, g, str(args["new_size"]), str(args["old_size"])))
                       for _ in range(2)]
    out["fs_bytes"] = fs_bytes(g)


def run_in(guest, **args):
    """The host's side: one step in the guest (a vm.VM); its JSON summary."""
    args.setdefault("build", os.environ.get("FLEXVOL_BUILD", "build"))
    rc, out = guest.run(["/usr/bin/python3", os.path.abspath(__file__), json.dumps(args)], timeout=240)
    assert rc == 0, out
    return json.loads(out.strip().splitlines()[-1])


def main():
    args = json.loads(sys.argv[1])
    out = {"step": args["step"]}
    {"setup": step_setup, "mount": step_mount, "unmount": step_unmount, "expandfs": step_expandfs}[args["step"]](
        args, out)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
