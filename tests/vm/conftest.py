"""Fixtures for the VM tier: one guest per test module (a boot costs ~10 s
under TCG, so tests in a module share it)."""
import pytest

import vm

_ready_times = []


@pytest.fixture(scope="module")
def guest():
    """A booted guest. Setup or boot problems raise vm.VMError, which pytest
    reports as an error: the tier never skips for want of QEMU or a kernel."""
    with vm.VM() as g:
        _ready_times.append(g.ready_seconds)
        yield g


def pytest_terminal_summary(terminalreporter):
    for note in vm.BOOT_RETRIES:
        terminalreporter.write_line(note.splitlines()[0])
    if _ready_times:
        times = ", ".join(f"{t:.1f}" for t in _ready_times)
        terminalreporter.write_line(f"VM tier: guest ready after {times} s "
                                    f"(QEMU start to agent ready, per boot)")
