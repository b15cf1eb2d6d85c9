#!/usr/bin/python3
"""An encrypted cinder volume on a hot-plugged disk, node side: run inside
the guest by tests/vm/test_crypt_vm.py, it plays kubelet's waitforattach,
mountdevice, mount (and back) with tests/harness/kubelet.py and prints one
JSON object.

    crypt_disk.py '{"step": "write"|"read", "volume": "<uuid>", "data": "...", "key": "k1"}'

write: mounts (the blank disk is luksFormat'ed and formatted), writes data
into the pod's volume, unmounts; reports whether data shows in plain text on
the raw disk. read: mounts, reads it back, unmounts. The node's key is made
here (the same bytes in every guest: a fresh guest stands for the node
after a reboot, or another node with the key)."""
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))

from kubelet import Driver, Kubelet  # noqa: E402

BASE = "/tmp/crypt-node"
KEYS = {"k1": b"the key of the crypt_disk test, 0123456789\n", "k2": b"another key, not the volume's one\n"}
POD = {"name": "app", "namespace": "default", "uid": "0c0c0c0c-cccc-4ccc-8ccc-0000000000c1"}


def node():
    os.makedirs(BASE + "/keys", mode=0o700, exist_ok=True)
    for name, data in KEYS.items():
        fd = os.open(BASE + "/keys/" + name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    os.makedirs(BASE + "/etc", exist_ok=True)
    fd = os.open(BASE + "/etc/cinder.conf", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("[flexvol]\ndevice-dir = /dev/disk/by-id\nattach-timeout = 60\n"
                "[cinder]\nkey-dir = %s/keys\npbkdf-memory = 16384\npbkdf-iterations = 4\n" % BASE)
    env = dict(os.environ, FLEXVOL_CONFIG_DIR=BASE + "/etc", FLEXVOL_RUN_DIR=BASE + "/run")
    return Kubelet(Driver(os.path.join(REPO, "build", "cinder"), env), BASE + "/kubelet")


def main():
    args = json.loads(sys.argv[1])
    k, spec = node(), "pv-crypt"
    opts = {"volumeID": args["volume"], "encrypted": "true", "encryptionKeyName": args.get("key", "k1")}
    out = {}
    w = k.wait_for_attach(spec, opts, "", "ext4")
    out["waitforattach"] = w.status
    dev = w.json.get("device")
    m = k.mount_device(spec, opts, dev, "ext4") if w.status == "Success" else None
    out["mountdevice"] = m.status if m else None
    out["message"] = m.message if m else w.message
    if m and m.status == "Success":
        out["mount"] = k.set_up_pod(POD, spec, opts, "ext4").status
        path = os.path.join(k.pod_dir(POD["uid"], spec), "data")
        if args["step"] == "write":
            with open(path, "w") as f:
                f.write(args["data"])
        out["read"] = open(path).read() if os.path.exists(path) else None
        out["unmount"] = k.tear_down_pod(POD["uid"], spec).status
        out["unmountdevice"] = k.unmount_device(spec).status
        out["mappings"] = os.listdir("/dev/mapper")
    if dev and args["step"] == "write":
        with open(os.path.realpath(dev), "rb") as f:
            raw = f.read()
        out["plain_text_on_disk"] = args["data"].encode() in raw
        out["luks_header"] = raw[:4] == b"LUKS"
    print(json.dumps(out))


if __name__ == "__main__":
    main()
