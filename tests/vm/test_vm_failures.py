"""A guest that fails to boot, panics or hangs is reported as a failure with
its console log, and never left running. Each test needs a guest of its own."""
import pytest

import vm


def test_failed_boot_is_reported_with_the_console():
    with pytest.raises(vm.VMError, match="guest stopped during boot") as e:
        with vm.VM(extra_modules=["no_such_module"]):
            pass
    assert "FAILED: cannot load kernel modules" in str(e.value)


def test_panic_is_reported_with_the_console():
    with vm.VM() as guest:
        with pytest.raises(vm.VMError, match="guest stopped while running") as e:
            guest.run(["/bin/sh", "-c", "echo c > /proc/sysrq-trigger"])
        assert "Kernel panic" in str(e.value)
        assert guest.proc.poll() is not None


def test_hung_guest_is_killed(monkeypatch):
    monkeypatch.setattr(vm, "REPLY_GRACE", 3)
    with vm.VM() as guest:
        with pytest.raises(vm.VMError, match="did not answer") as e:
            # Freeze the agent: the guest stops answering altogether.
            guest.run(["/bin/sh", "-c", "kill -STOP $PPID"], timeout=2)
        assert "console" in str(e.value)
        assert guest.proc.poll() is not None
