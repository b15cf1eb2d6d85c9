"""loop expandfs inside the guest: ext4's online resize needs
CAP_SYS_RESOURCE, which the host's sandbox may lack; the guest has every
capability, so every case of test_loop_resize.py must run there."""
import re

import vm

TEST_FILE = "tests/integration/test_loop_resize.py"
TIMEOUT = 180


def test_loop_resize_in_guest(guest):
    assert (vm.REPO / TEST_FILE).is_file(), f"{TEST_FILE} is missing"
    rc, out = guest.run(["/usr/bin/python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                         TEST_FILE], timeout=TIMEOUT)
    assert rc == 0, out
    summary = out.strip().splitlines()[-1]
    assert re.search(r"\b[1-9]\d* passed\b", summary), out
    assert "skipped" not in summary, out
