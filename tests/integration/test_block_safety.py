"""The block core never formats a device that holds data, finishes a format
that it started and that was interrupted, and checks ext4 before a read-write
mount: real loop devices, real mkfs killed for real (strace's syscall
injection kills it at its N-th write)."""
import hashlib
import os
import re
import shutil
import struct
import subprocess

import pytest

from conftest import Driver, driver_path
from kubelet import go_json
from syslog_capture import Syslog

MIB = 1 << 20
RECORD_MAGIC = b"flexvol-format\0\0"


def run(*argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw)


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MIB), b""):
            h.update(chunk)
    return h.hexdigest()


def blkid_type(dev):
    p = subprocess.run(["blkid", "-p", "-s", "TYPE", "-o", "value", dev], capture_output=True, text=True)
    return p.stdout.strip()


def read_dev(dev, off, n):
    fd = os.open(dev, os.O_RDONLY)
    try:
        return os.pread(fd, n, off)
    finally:
        os.close(fd)


def about(lines, *names):
    """The log lines naming a device or path of this test (other tests'
    drivers may log meanwhile)."""
    patterns = [re.compile(re.escape(n) + r"\b") for n in names]
    return "\n".join(line for line in lines if any(p.search(line) for p in patterns))


def source_of(path):
    """The device mounted on path (the loop device, whatever waitforattach answered)."""
    return subprocess.run(["findmnt", "-n", "-o", "SOURCE", "-M", path], capture_output=True,
                          text=True).stdout.strip()


def record_offset(size):
    return (size - MIB) & ~4095


def forge_record(path, fstype, size=None):
    """Writes a format record as docs/design.md lays it out."""
    real = os.path.getsize(path)
    size = real if size is None else size
    rec = bytearray(4096)
    rec[0:16] = RECORD_MAGIC
    struct.pack_into("<Q", rec, 16, 1)
    rec[24:24 + len(fstype)] = fstype.encode()
    struct.pack_into("<QQ", rec, 40, size, record_offset(size))
    rec[56:72] = os.urandom(16)
    struct.pack_into("<Q", rec, 72, 1700000000)
    with open(path, "r+b") as f:
        f.seek(record_offset(real))
        f.write(rec)


def make_ext4_with_data(path, size, offset=0, fs_kib=None, fstype="ext4"):
    src = os.path.join(os.path.dirname(path), "src-" + os.path.basename(path))
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(src, "precious.txt"), "w") as f:
        f.write("customer data\n" * 1000)
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.truncate(size)
    argv = ["mkfs." + fstype, "-q", "-F", "-d", src]
    if offset:
        argv += ["-E", "offset=%d" % offset]
    argv += [path]
    if fs_kib:
        argv.append("%dk" % fs_kib)
    run(*argv)
    shutil.rmtree(src)


def zero(path, off, n):
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(b"\0" * n)


def attach(node, spec, opts, fs_type=""):
    w = node.kubelet.wait_for_attach(spec, opts, "", fs_type)
    assert w.status == "Success", w
    return w.json["device"]


def mount_device(node, spec, opts, dev, fs_type="", driver=None):
    k = node.kubelet
    path = k.global_path(spec)
    os.makedirs(path, 0o750, exist_ok=True)
    return (driver or node.driver).call("mountdevice", path, dev, go_json(k.options(spec, opts, fs_type)))


def killing_driver(node, nth_write):
    """The loop driver under strace, which SIGKILLs any process of the call
    (in practice mkfs: the driver itself writes twice) at its nth pwrite64."""
    if not shutil.which("strace"):
        pytest.skip("strace is not installed")
    wrapper = ("strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=pwrite64",
               "-e", "inject=pwrite64:signal=KILL:when=%d" % nth_write)
    env = dict(node.driver.env)
    if env.get("ASAN_OPTIONS"):
        # LeakSanitizer needs ptrace, which strace holds.
        env["ASAN_OPTIONS"] += ":detect_leaks=0"
    return Driver(driver_path("loop"), env, wrapper)


# --- the blank rule ---------------------------------------------------------

def refused_untouched(node, spec, image, size, expect, fs_type=""):
    opts = {"image": image}
    path = node.image(image)
    before = sha(path)
    dev = attach(node, spec, opts, fs_type)
    r = mount_device(node, spec, opts, dev, fs_type)
    assert r.status == "Failure", r
    assert "refusing to format" in r.message and re.search(expect, r.message), r.message
    assert node.mounts() == []
    assert sha(path) == before
    return r


def test_gpt_disk_with_wiped_first_mib_is_refused(loop_node):
    """The primary GPT and protective MBR are gone; the backup GPT header in
    the last sector and the ext4 partition at 1 MiB are not."""
    path = loop_node.image("gpt.img")
    with open(path, "wb") as f:
        f.truncate(64 * MIB)
    run("sfdisk", "-q", path, input="label: gpt\nstart=2048, size=100000, type=linux\n")
    make_ext4_with_data(path, 64 * MIB, offset=MIB, fs_kib=50000)
    zero(path, 0, MIB)
    assert read_dev(path, 64 * MIB - 512, 8) == b"EFI PART"
    refused_untouched(loop_node, "pv-gpt", "gpt.img", 64 * MIB, r"gpt partition table")


def test_partition_at_1mib_with_wiped_table_is_refused(loop_node):
    """An MBR disk (no backup table anywhere) whose first MiB was zeroed:
    only the ext4 superblock at 1 MiB + 1 KiB is left."""
    path = loop_node.image("mbr.img")
    with open(path, "wb") as f:
        f.truncate(64 * MIB)
    run("sfdisk", "-q", path, input="label: dos\nstart=2048, size=100000, type=83\n")
    make_ext4_with_data(path, 64 * MIB, offset=MIB, fs_kib=50000)
    zero(path, 0, MIB)
    refused_untouched(loop_node, "pv-mbr", "mbr.img", 64 * MIB, r"ext4 file system at byte 1048576")


def test_data_in_the_last_mib_is_refused(loop_node):
    path = loop_node.image("tail.img")
    with open(path, "wb") as f:
        f.truncate(64 * MIB)
        f.seek(64 * MIB - 3000)
        f.write(os.urandom(100))
    refused_untouched(loop_node, "pv-tail", "tail.img", 64 * MIB, r"last MiB is not zero")


def test_blank_device_is_formatted_and_leaves_no_record(loop_node):
    opts = {"image": "blank.img", "size": "64Mi"}
    dev = attach(loop_node, "pv-blank", opts)
    r = mount_device(loop_node, "pv-blank", opts, dev)
    assert r.status == "Success", r
    assert blkid_type(dev) == "ext4"
    # The record slot (the reserved last MiB) is zero again, and the file
    # system ends where it starts.
    assert read_dev(dev, record_offset(64 * MIB), 4096) == b"\0" * 4096
    out = run("dumpe2fs", "-h", dev).stdout
    blocks = int(re.search(r"Block count:\s+(\d+)", out).group(1))
    bsize = int(re.search(r"Block size:\s+(\d+)", out).group(1))
    assert blocks * bsize == record_offset(64 * MIB)


# --- the format protocol ----------------------------------------------------

def test_mkfs_ext4_killed_midway_is_formatted_again(loop_node):
    node, spec = loop_node, "pv-ext4-kill"
    opts = {"image": "killed.img", "size": "256Mi"}
    dev = attach(node, spec, opts)
    # mke2fs writes the primary superblock last: killed at its 40th write,
    # the device shows no file system but is no longer zero.
    r = mount_device(node, spec, opts, dev, driver=killing_driver(node, 40))
    assert r.status == "Failure" and "mkfs.ext4" in r.message and "signal 9" in r.message, r
    assert blkid_type(dev) == ""
    assert read_dev(dev, 4096, 4096) != b"\0" * 4096
    assert node.mounts() == []
    with Syslog() as log:
        r = mount_device(node, spec, opts, dev)
        lines = log.lines()
    assert r.status == "Success", r
    text = about(lines, source_of(node.kubelet.global_path(spec)))
    assert "unfinished ext4 format" in text, text
    assert blkid_type(dev) == "ext4"
    gpath = node.kubelet.global_path(spec)
    with open(os.path.join(gpath, "f"), "w") as f:
        f.write("works")
    assert read_dev(dev, record_offset(256 * MIB), 16) == b"\0" * 16


def test_mkfs_xfs_killed_after_its_first_superblock_is_formatted_again(loop_node):
    node, spec = loop_node, "pv-xfs-kill"
    opts = {"image": "killed-xfs.img", "size": "320Mi"}
    dev = attach(node, spec, opts, "xfs")
    # mkfs.xfs writes a superblock saying "mkfs in progress" (sb_inprogress)
    # as its 3rd write and clears that flag as its last.
    r = mount_device(node, spec, opts, dev, "xfs", driver=killing_driver(node, 5))
    assert r.status == "Failure" and "mkfs.xfs" in r.message, r
    assert blkid_type(dev) == "xfs"
    assert read_dev(dev, 126, 1) == b"\1"
    r = mount_device(node, spec, opts, dev, "xfs")
    assert r.status == "Success", r
    assert read_dev(dev, 126, 1) == b"\0"
    assert subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "-M", node.kubelet.global_path(spec)],
                          capture_output=True, text=True).stdout.strip() == "xfs"


def test_format_finished_but_record_left_is_mounted_as_is(loop_node):
    """The driver died after mkfs finished and before it cleared its record:
    the file system is used as it is (never formatted again) and the record
    is cleared."""
    path = loop_node.image("done.img")
    with open(path, "wb") as f:
        f.truncate(64 * MIB)
    make_ext4_with_data(path, 64 * MIB, fs_kib=record_offset(64 * MIB) // 1024)
    forge_record(path, "ext4")
    uuid = run("blkid", "-p", "-s", "UUID", "-o", "value", path).stdout.strip()
    opts = {"image": "done.img"}
    dev = attach(loop_node, "pv-done", opts)
    r = mount_device(loop_node, "pv-done", opts, dev)
    assert r.status == "Success", r
    assert run("blkid", "-p", "-s", "UUID", "-o", "value", dev).stdout.strip() == uuid
    with open(os.path.join(loop_node.kubelet.global_path("pv-done"), "precious.txt")) as f:
        assert f.read().startswith("customer data")
    assert read_dev(dev, record_offset(64 * MIB), 4096) == b"\0" * 4096


@pytest.mark.parametrize("case", ["gpt", "other-fs", "tail", "size"])
def test_record_beside_data_is_refused(loop_node, case):
    """A format record never licenses formatting over anything an interrupted
    mkfs of ours could not have written."""
    path = loop_node.image("forged.img")
    with open(path, "wb") as f:
        f.truncate(64 * MIB)
    expect = {"gpt": r"gpt partition table", "other-fs": r"ext2 file system", "tail": r"after the file system",
              "size": r"format record that is not valid"}[case]
    if case == "gpt":
        run("sfdisk", "-q", path, input="label: gpt\nstart=2048, size=100000, type=linux\n")
        make_ext4_with_data(path, 64 * MIB, offset=MIB, fs_kib=50000)
        forge_record(path, "ext4")
    elif case == "other-fs":
        make_ext4_with_data(path, 64 * MIB, fs_kib=50000, fstype="ext2")
        forge_record(path, "ext4")
        # The volume asks for no type: the record says ext4, the device holds ext2.
    elif case == "tail":
        forge_record(path, "ext4")
        with open(path, "r+b") as f:
            f.seek(64 * MIB - 8192)
            f.write(b"log line from someone else\n")
    else:
        forge_record(path, "ext4", size=32 * MIB)
    if case == "other-fs":
        before = sha(path)
        dev = attach(loop_node, "pv-forged", {"image": "forged.img"})
        r = mount_device(loop_node, "pv-forged", {"image": "forged.img"}, dev)
        assert r.status == "Failure" and re.search(expect, r.message), r
        assert sha(path) == before
        return
    refused_untouched(loop_node, "pv-forged", "forged.img", 64 * MIB, expect)


# --- fsck and repair ---------------------------------------------------------

def test_ext4_marked_with_errors_is_checked_before_mount(loop_node):
    path = loop_node.image("errors.img")
    make_ext4_with_data(path, 64 * MIB)
    run("debugfs", "-w", "-R", "ssv state 2", path)   # EXT4_ERROR_FS, not VALID_FS
    assert "with errors" in run("dumpe2fs", "-h", path).stdout
    opts = {"image": "errors.img"}
    dev = attach(loop_node, "pv-err", opts)
    with Syslog() as log:
        r = mount_device(loop_node, "pv-err", opts, dev)
        lines = log.lines()
    assert r.status == "Success", r
    text = about(lines, source_of(loop_node.kubelet.global_path("pv-err")))
    assert "running fsck.ext4 -p" in text and "clean now" in text, text
    state = re.search(r"Filesystem state:\s+(.*)", run("dumpe2fs", "-h", dev).stdout).group(1)
    assert state.strip() == "clean"
    with open(os.path.join(loop_node.kubelet.global_path("pv-err"), "precious.txt")) as f:
        assert f.read().startswith("customer data")


def test_clean_ext4_is_not_checked(loop_node):
    path = loop_node.image("clean.img")
    make_ext4_with_data(path, 64 * MIB)
    opts = {"image": "clean.img"}
    dev = attach(loop_node, "pv-clean", opts)
    gpath = loop_node.kubelet.global_path("pv-clean")
    with Syslog() as log:
        r = mount_device(loop_node, "pv-clean", opts, dev)
        lines = log.lines()
    assert r.status == "Success", r
    text = about(lines, source_of(gpath), gpath)
    assert "fsck" not in text, text
    assert re.search(r"mountdevice %s .*-> Success" % re.escape(gpath), text), text


def test_damaged_xfs_fails_naming_xfs_repair(loop_node):
    path = loop_node.image("bad.xfs")
    with open(path, "wb") as f:
        f.truncate(320 * MIB)
    run("mkfs.xfs", "-q", path)
    run("xfs_db", "-x", "-c", "sb 0", "-c", "write inprogress 1", path)
    opts = {"image": "bad.xfs"}
    dev = attach(loop_node, "pv-badxfs", opts, "xfs")
    r = mount_device(loop_node, "pv-badxfs", opts, dev, "xfs")
    assert r.status == "Failure", r
    assert "Structure needs cleaning" in r.message and "xfs_repair" in r.message, r.message
    assert blkid_type(dev) == "xfs"   # and never formatted


def test_xfs_too_small_for_the_record_is_refused_untouched(loop_node):
    """mkfs.xfs needs 300 MiB and the last MiB is the format record's: a
    300 MiB device is refused before anything is written to it."""
    opts = {"image": "small-xfs.img", "size": "300Mi"}
    dev = attach(loop_node, "pv-small", opts, "xfs")
    r = mount_device(loop_node, "pv-small", opts, dev, "xfs")
    assert r.status == "Failure" and "at least 301 MiB" in r.message, r
    with open(loop_node.image("small-xfs.img"), "rb") as f:
        assert not f.read().strip(b"\0")
