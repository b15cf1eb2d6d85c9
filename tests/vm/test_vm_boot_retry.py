"""A QEMU that dies before the guest's first console line (the TCG MSI-X
abort vm.py's pci=nomsi avoids, or any other) is started again once, and
says so; a second such death is an error, not another retry."""
import pytest

import vm


def test_an_early_qemu_death_is_retried_once_and_reported(monkeypatch):
    starts = []

    def dying_qemu(self, assets):
        starts.append(1)
        return ["/bin/sh", "-c", "echo 'msix_table_mmio_write: Assertion failed (simulated)' >&2; exit 134"]

    monkeypatch.setattr(vm.VM, "_qemu_argv", dying_qemu)
    before = len(vm.BOOT_RETRIES)
    with pytest.raises(vm.VMError) as e:
        with vm.VM():
            pass
    assert len(starts) == 2, "one boot, then exactly one more"
    assert "simulated" in str(e.value), "the second death is reported with QEMU's output"
    notes = vm.BOOT_RETRIES[before:]
    assert len(notes) == 1 and "booting again, once" in notes[0] and "simulated" in notes[0]
    del vm.BOOT_RETRIES[before:]      # a simulated death is not one the summary should report
