"""The nfs driver against a real kernel NFS client and nfs-ganesha.

This machine's kernel has no NFS client, so the scenarios in
guest_tests/nfs_scenarios.py (a name pytest does not collect on the host)
run inside the guest, with pytest, against the drivers built on the host:
the guest sees the repo at the same path.
"""
import os
import re

import vm

BUILD = os.environ.get("FLEXVOL_BUILD", "build")
SCENARIOS = "tests/vm/guest_tests/nfs_scenarios.py"
TIMEOUT = 600  # s; about 2 minutes under TCG on an idle 2-core machine


def test_nfs_scenarios_in_guest(guest):
    # A missing file or driver must fail here, never turn into "no tests ran".
    assert (vm.REPO / SCENARIOS).is_file(), f"{SCENARIOS} is missing"
    driver = vm.REPO / BUILD / "nfs"
    assert os.access(driver, os.X_OK), f"{driver} is not built (run make first)"
    rc, out = guest.run(["/usr/bin/python3", "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfEs",
                         "--durations=10", SCENARIOS],
                        timeout=TIMEOUT, env={"FLEXVOL_BUILD": BUILD})
    print(out)
    assert rc == 0, out
    summary = out.strip().splitlines()[-1]
    assert re.search(r"\b[1-9]\d* passed\b", summary), out
    # The guest has root, ganesha and the NFS client: a skip means a broken VM.
    assert "skipped" not in summary, out
