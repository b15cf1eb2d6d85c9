"""Disk hot-plug the way a cloud attaches a volume: QMP on the host, a
virtio-blk disk with a serial in the guest, and real udev making
/dev/disk/by-id/virtio-<serial>."""
import subprocess

import pytest

# Cinder volume IDs are longer than virtio-blk's 20-byte serial; the guest
# sees the first 20 characters, as on OpenStack.
SERIAL = "vol-0123456789abcdefXYZ"[:20]
LINK = f"/dev/disk/by-id/virtio-{SERIAL}"
POLL = 10  # s; udev made the link ~3 s after device_add in trials


def sh(guest, script, **kwargs):
    return guest.run(["/bin/sh", "-c", script], **kwargs)


def wait_in_guest(guest, condition):
    """Poll a shell condition in the guest for up to POLL seconds."""
    script = (f"i=0; until {condition}; do i=$((i+1)); "
              f"[ $i -ge {POLL * 5} ] && exit 1; sleep 0.2; done")
    return sh(guest, script, timeout=POLL + 30)[0] == 0


def guest_state(guest):
    """The guest's virtio disks and by-id links, for assertion messages."""
    return sh(guest, "ls -l /dev/vd* /dev/disk/by-id 2>&1; grep -H . /sys/block/vd*/serial")[1]


def disk_with_serial(guest, serial):
    """The /dev/vdX whose virtio serial is `serial`, or None."""
    rc, out = sh(guest, f"grep -lx '{serial}' /sys/block/vd*/serial")
    if rc != 0:
        return None
    (path,) = out.split()
    return "/dev/" + path.split("/")[3]


def make_image(tmp_path, size="64M"):
    image = tmp_path / "volume.img"
    subprocess.run(["truncate", "-s", size, image], check=True)
    return image


def test_attach_then_detach(guest, tmp_path):
    guest.attach_disk(make_image(tmp_path), SERIAL)
    assert wait_in_guest(guest, f"[ -L {LINK} ]"), guest_state(guest)
    dev = disk_with_serial(guest, SERIAL)
    assert dev and dev.startswith("/dev/vd"), guest_state(guest)
    assert guest.run(["test", "-b", dev])[0] == 0, guest_state(guest)
    assert guest.run(["readlink", "-f", LINK]) == (0, dev + "\n")

    guest.detach_disk(SERIAL)
    assert wait_in_guest(guest, f"[ ! -e {LINK} ] && [ ! -e {dev} ]"), guest_state(guest)
    assert disk_with_serial(guest, SERIAL) is None


def test_reattach_under_same_serial(guest, tmp_path):
    """A volume detached and attached again shows up again."""
    image = make_image(tmp_path, "16M")
    for _ in range(2):
        guest.attach_disk(image, SERIAL)
        assert wait_in_guest(guest, f"[ -L {LINK} ]"), guest_state(guest)
        guest.detach_disk(SERIAL)
        assert wait_in_guest(guest, f"[ ! -e {LINK} ]"), guest_state(guest)


def test_resize_is_seen_by_the_guest(guest, tmp_path):
    guest.attach_disk(make_image(tmp_path, "16M"), SERIAL)
    try:
        assert wait_in_guest(guest, f"[ -L {LINK} ]"), guest_state(guest)
        dev = disk_with_serial(guest, SERIAL)
        guest.resize_disk(SERIAL, 32 << 20)
        assert wait_in_guest(guest, f"[ $(blockdev --getsize64 {dev}) = {32 << 20} ]"), \
            guest.run(["blockdev", "--getsize64", dev])[1]
    finally:
        guest.detach_disk(SERIAL)


def test_serial_longer_than_virtio_allows_is_refused(guest, tmp_path):
    with pytest.raises(ValueError):
        guest.attach_disk(make_image(tmp_path), "x" * 21)
