"""Kernel NFSv4 client against nfs-ganesha, both inside the guest, over the
guest's loopback (guest/ganesha.py is the reusable server helper)."""
import pytest

import vm

GANESHA = str(vm.GUEST_DIR / "ganesha.py")
PORT = 20490
EXPORT = "/tmp/nfs-export"   # a tmpfs: ganesha's VFS FSAL cannot export the overlay root
MOUNT = "/tmp/nfs-mnt"


def sh(guest, script, **kwargs):
    return guest.run(["/bin/sh", "-c", script], **kwargs)


@pytest.fixture(scope="module")
def nfs_server(guest):
    rc, out = sh(guest, f"mkdir -p {EXPORT} {MOUNT} && mount -t tmpfs tmpfs {EXPORT}")
    assert rc == 0, out
    rc, out = guest.run(["/usr/bin/python3", GANESHA, "start", "--export", EXPORT,
                         "--port", str(PORT), "--pseudo", "/export"], timeout=60)
    assert rc == 0 and "listening" in out, out
    yield
    rc, out = guest.run(["/usr/bin/python3", GANESHA, "stop", "--port", str(PORT)])
    assert rc == 0, out


def test_mount_write_read_back_umount(guest, nfs_server):
    rc, out = guest.run(["mount", "-t", "nfs4", "-o", f"port={PORT}",
                         "127.0.0.1:/export", MOUNT], timeout=60)
    assert rc == 0, out
    try:
        rc, out = guest.run(["findmnt", "-n", "-o", "FSTYPE,SOURCE", MOUNT])
        assert out.split() == ["nfs4", "127.0.0.1:/export"], out
        rc, out = sh(guest, f"echo 'written over nfs' > {MOUNT}/hello && sync")
        assert rc == 0, out
        # Read it back on the server side, straight from the exported dir.
        assert guest.run(["cat", f"{EXPORT}/hello"]) == (0, "written over nfs\n")
    finally:
        rc, out = guest.run(["umount", MOUNT])
    assert rc == 0, out
    assert guest.run(["mountpoint", "-q", MOUNT])[0] != 0


def test_server_side_changes_are_seen_by_the_client(guest, nfs_server):
    rc, out = sh(guest, f"echo from-server > {EXPORT}/server-file && "
                        f"mount -t nfs4 -o port={PORT} 127.0.0.1:/export {MOUNT} && "
                        f"cat {MOUNT}/server-file; umount {MOUNT}", timeout=60)
    assert (rc, out) == (0, "from-server\n")


def test_helper_refuses_a_busy_port(guest, nfs_server):
    rc, out = guest.run(["/usr/bin/python3", GANESHA, "start", "--export", EXPORT,
                         "--port", str(PORT)])
    assert rc == 1 and "already in use" in out, out
