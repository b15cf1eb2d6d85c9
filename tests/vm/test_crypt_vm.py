"""Encrypted block volumes on a kernel with dm-crypt: the guest runs
tests/integration/test_crypt_lifecycle.py (loop volumes through the kubelet
sequence: data not in plain text on the image, remount with the same key,
wrong key and swapped disk refused, xfs inside, expandfs growing the mapping
then the file system, a formatting mountdevice killed at sampled steps then
replayed). The host's kernel has no
device-mapper, so there every one of those tests skips; here none may."""
import json
import re
import subprocess

import vm

TEST_FILE = "tests/integration/test_crypt_lifecycle.py"
TIMEOUT = 300  # s; about 150 s on a quiet machine (CRYPT_KILL_POINTS=4)


def test_encrypted_loop_volumes_in_guest(guest):
    assert (vm.REPO / TEST_FILE).is_file(), f"{TEST_FILE} is missing"
    rc, out = guest.run(["/usr/bin/python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", TEST_FILE],
                        timeout=TIMEOUT)
    assert rc == 0, out
    summary = out.strip().splitlines()[-1]
    assert re.search(r"\b[1-9]\d* passed\b", summary), out
    assert "skipped" not in summary, out


# A Cinder volume ID; the guest sees the disk as virtio-<first 20 characters>.
VOLUME = "c0ffee00-1234-4abc-8def-0123456789ab"
SCRIPT = "tests/vm/guest_tests/crypt_disk.py"


def in_guest(guest, **args):
    rc, out = guest.run(["/usr/bin/python3", SCRIPT, json.dumps(args)], timeout=180)
    assert rc == 0, out
    return json.loads(out.strip().splitlines()[-1])


def test_encrypted_hot_plugged_disk_read_back_by_a_fresh_guest(guest, tmp_path):
    """cinder on a hot-plugged disk: written through the whole kubelet
    sequence, not in plain text on the disk; a fresh guest (the node after a
    reboot) opens it with the same key and reads the data back; the wrong
    key is refused."""
    image = tmp_path / "disk.img"
    subprocess.run(["truncate", "-s", "128M", image], check=True)
    data = "written in the pod, encrypted on the disk %s" % VOLUME
    guest.attach_disk(image, VOLUME[:20])
    try:
        w = in_guest(guest, step="write", volume=VOLUME, data=data)
    finally:
        guest.detach_disk(VOLUME[:20])
    assert w["mountdevice"] == "Success" and w["mount"] == "Success", w
    assert w["read"] == data and w["unmountdevice"] == "Success", w
    assert not any(m.startswith("flexvol-") for m in w["mappings"]), w
    assert w["luks_header"] and not w["plain_text_on_disk"], w
    with vm.VM() as fresh:
        fresh.attach_disk(image, VOLUME[:20])
        bad = in_guest(fresh, step="read", volume=VOLUME, key="k2")
        assert bad["mountdevice"] == "Failure" and "the key does not open" in bad["message"], bad
        r = in_guest(fresh, step="read", volume=VOLUME)
        assert r["mountdevice"] == "Success" and r["read"] == data, r
        assert r["unmountdevice"] == "Success", r
