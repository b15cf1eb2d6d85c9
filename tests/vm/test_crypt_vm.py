"""Encrypted block volumes on a kernel with dm-crypt: the guest runs
tests/integration/test_crypt_lifecycle.py (loop volumes through the kubelet
sequence: data not in plain text on the image, remount with the same key,
wrong key and swapped disk refused, xfs inside, a formatting mountdevice
killed at sampled steps then replayed). The host's kernel has no
device-mapper, so there every one of those tests skips; here none may."""
import re

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
