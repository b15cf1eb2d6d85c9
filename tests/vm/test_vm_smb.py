"""The smb driver against a real kernel cifs client and Samba's smbd.

This machine's kernel has no cifs, so the scenarios in
guest_tests/smb_scenarios.py (a name pytest does not collect on the host)
run inside one guest, with pytest, against the driver built on the host.
"""
import os
import re

import vm

BUILD = os.environ.get("FLEXVOL_BUILD", "build")
SCENARIOS = "tests/vm/guest_tests/smb_scenarios.py"
TIMEOUT = 300  # s


def test_smb_scenarios_in_guest(guest):
    assert (vm.REPO / SCENARIOS).is_file(), f"{SCENARIOS} is missing"
    driver = vm.REPO / BUILD / "smb"
    assert os.access(driver, os.X_OK), f"{driver} is not built (run make first)"
    rc, out = guest.run(["/usr/bin/python3", "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfEs",
                         "--durations=10", SCENARIOS],
                        timeout=TIMEOUT, env={"FLEXVOL_BUILD": BUILD})
    print(out)
    assert rc == 0, out
    summary = out.strip().splitlines()[-1]
    assert re.search(r"\b[1-9]\d* passed\b", summary), out
    # The guest has root, smbd and the cifs client: a skip means a broken VM.
    assert "skipped" not in summary, out
