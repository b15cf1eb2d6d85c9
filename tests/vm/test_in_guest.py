"""The loop driver's integration tests, run inside the guest: real loop
devices, mkfs and mounts under the Debian kernel, not the host's."""
import re

import vm

TEST_FILE = "tests/integration/test_loop.py"
TIMEOUT = 240  # s; the whole tier must stay within 6 minutes


def test_loop_driver_in_guest(guest):
    # A missing file must fail here, never turn into "no tests ran".
    assert (vm.REPO / TEST_FILE).is_file(), f"{TEST_FILE} is missing"
    rc, out = guest.run(["/usr/bin/python3", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                         TEST_FILE], timeout=TIMEOUT)
    assert rc == 0, out
    summary = out.strip().splitlines()[-1]
    assert re.search(r"\b[1-9]\d* passed\b", summary), out
    # The guest has root, loop devices and mkfs: the tests' only skip
    # reasons. A skip here means the VM environment is broken.
    assert "skipped" not in summary, out
