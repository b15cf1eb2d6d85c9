"""The guest itself: the Debian kernel, the environment VM.run promises, and
the run() contract (status, output, timeouts)."""
import pytest

import vm

PROMISED_MODULES = ("loop", "ext4", "xfs", "overlay", "nfs", "nfsv4", "virtio_blk")


def sh(guest, script, **kwargs):
    return guest.run(["/bin/sh", "-c", script], **kwargs)


def test_kernel_is_debian_6_1(guest):
    rc, out = guest.run(["uname", "-r"])
    assert rc == 0, out
    assert out.startswith("6.1."), out
    assert out.strip().endswith("-amd64"), out


def test_mounts(guest):
    rc, out = guest.run(["findmnt", "-rn", "-o", "TARGET,FSTYPE"])
    assert rc == 0, out
    mounts = dict(line.split() for line in out.splitlines())
    assert mounts["/"] == "overlay"
    assert mounts["/dev"] == "devtmpfs"
    assert (mounts["/proc"], mounts["/sys"]) == ("proc", "sysfs")
    assert mounts["/run"] == mounts["/tmp"] == "tmpfs"


def test_loopback_up_and_no_other_network(guest):
    rc, out = guest.run(["ip", "-o", "link", "show"])
    assert rc == 0, out
    links = [line.split(":")[1].strip() for line in out.splitlines()]
    assert links == ["lo"], out
    assert "UP" in out


def test_udevd_running(guest):
    rc, out = guest.run(["udevadm", "control", "--ping"])
    assert rc == 0, out


def test_promised_modules_load(guest):
    rc, out = guest.run(["modprobe", "-a", *PROMISED_MODULES])
    assert rc == 0, out
    rc, out = guest.run(["ls", "/sys/module"])
    assert set(PROMISED_MODULES) <= set(out.split()), out


def test_repo_is_read_only_and_tmp_is_writable(guest):
    rc, out = guest.run(["ls", "tests/vm/vm.py"])
    assert rc == 0, out
    rc, out = sh(guest, "echo x > /tmp/probe && cat /tmp/probe")
    assert (rc, out) == (0, "x\n")


def test_status_and_combined_output(guest):
    rc, out = sh(guest, "echo out; echo err >&2; exit 3")
    assert rc == 3
    assert out == "out\nerr\n"


def test_no_shell_unless_asked(guest):
    rc, out = guest.run(["echo", "$HOME", ";", "true"])
    assert (rc, out) == (0, "$HOME ; true\n")


def test_env_and_cwd(guest):
    rc, out = sh(guest, 'echo "$FOO" "$(pwd)"', env={"FOO": "bar"}, cwd="/tmp")
    assert (rc, out) == (0, "bar /tmp\n")


def test_missing_program(guest):
    rc, out = guest.run(["/no/such/program"])
    assert rc == 127
    assert "/no/such/program" in out


def test_timeout_raises_and_guest_survives(guest):
    with pytest.raises(vm.VMError, match="timed out"):
        sh(guest, "echo started; sleep 30", timeout=2)
    assert guest.run(["true"]) == (0, "")


def test_console_log_has_the_boot(guest):
    assert "vm-init:" in guest.console_log()
