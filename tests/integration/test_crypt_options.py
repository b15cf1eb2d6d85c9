"""Encrypted block volumes on this host, whose kernel has no device-mapper:
option and key handling, refusals, and that the key never reaches argv, the
log or a reply. Every refusal leaves the image as it was and no loop device
behind. The lifecycle itself (dm-crypt) is tests/integration/
test_crypt_lifecycle.py, run in the VM guest by tests/vm/test_crypt_vm.py."""
import hashlib
import os
import struct
import subprocess
import threading

import pytest

from crypt_common import KEY, OTHER_KEY, add_key, write_crypt_config
from syslog_capture import Syslog

MIB = 1 << 20
SIZE = 64 * MIB


@pytest.fixture
def node(loop_node):
    write_crypt_config(loop_node)
    add_key(loop_node, "k1", KEY)
    return loop_node


def image(node, name="vol.img", size=SIZE):
    path = node.image(name)
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def mountdevice(node, opts, spec="pv-enc"):
    """mountdevice alone (waitforattach checks the same options)."""
    return node.kubelet.mount_device(spec, opts, node.image(opts["image"]))


def enc(**extra):
    o = {"image": "vol.img", "encrypted": "true", "encryptionKeyName": "k1"}
    o.update(extra)
    return o


def luks_format(path, key=KEY):
    """A LUKS2 container made the operator's way (cryptsetup), key from a pipe
    of the test's own: libcryptsetup writes headers without device-mapper."""
    subprocess.run(["cryptsetup", "luksFormat", "-q", "--type", "luks2", "--pbkdf", "argon2id", "--pbkdf-memory",
                    "16384", "--pbkdf-force-iterations", "4", "--key-file", "-", path], input=key, check=True,
                   capture_output=True)


def refused(node, opts, expect, path=None):
    path = path or image(node)
    before = digest(path)
    r = mountdevice(node, opts)
    assert r.status == "Failure", r
    for e in expect:
        assert e in r.message, r
    assert digest(path) == before, "the image changed"
    assert node.loop_devices() == []
    assert node.mounts() == []
    return r


@pytest.mark.parametrize("opts,expect", [
    ({"encrypted": "yes"}, "option 'encrypted' must be \"true\" or \"false\""),
    ({"encrypted": "false", "encryptionKeyName": "k1"}, "needs encrypted"),
    ({"encryptionKeyName": "../k1"}, "must be one file name"),
    ({"encryptionKeyName": ".k1"}, "must be one file name"),
    ({"encryptionKeyName": "missing"}, "encryption key 'missing' is not in the key directory"),
], ids=["not-bool", "name-without-encrypted", "dotdot", "hidden", "missing"])
def test_bad_options_are_refused_and_change_nothing(node, opts, expect):
    refused(node, enc(**opts), [expect])


@pytest.mark.parametrize("mode,uid,expect", [
    (0o644, 0, "must be owned by root with mode 0600 or 0400"),
    (0o640, 0, "must be owned by root with mode 0600 or 0400"),
    (0o600, 1000, "must be owned by root with mode 0600 or 0400"),
])
def test_key_file_of_wrong_mode_or_owner_is_refused(node, mode, uid, expect):
    add_key(node, "k1", KEY, mode=mode, uid=uid)
    r = refused(node, enc(), [expect])
    assert "%04o" % mode in r.message


def test_key_file_symlink_short_key_and_open_key_dir_are_refused(node):
    os.symlink(os.path.join(node.key_dir, "k1"), os.path.join(node.key_dir, "link"))
    refused(node, enc(encryptionKeyName="link"), ["a symlink is refused"])
    add_key(node, "short", b"0123456789")
    refused(node, enc(encryptionKeyName="short"), ["must hold 16 to 8192 bytes"])
    os.chmod(node.key_dir, 0o777)
    refused(node, enc(), ["writable by no one else"])


def test_no_key_dir_configured_is_refused(node):
    write_crypt_config(node, key_dir=False)
    refused(node, enc(), ["this node has no key directory", "key-dir"])


def test_key_in_the_options_is_refused_at_mountdevice(node):
    """kubelet passes secrets only to mount: one seen by mountdevice was
    written in the volume's options, in plain text."""
    import base64
    o = enc(**{"kubernetes.io/secret/encryptionKey": base64.b64encode(KEY).decode()})
    refused(node, o, ["reached mountdevice, where kubelet never passes a secret"])


def test_a_luks_device_for_a_plain_volume_is_refused(node):
    path = image(node)
    luks_format(path)
    refused(node, {"image": "vol.img"}, ["holds a LUKS2 container", "does not set encrypted"], path=path)
    refused(node, {"image": "vol.img", "kubernetes.io/fsType": "ext4"}, ["holds a LUKS2 container"], path=path)


def test_a_file_system_on_an_encrypted_volume_is_refused(node):
    path = image(node)
    subprocess.run(["mkfs.ext4", "-q", "-F", path], check=True)
    refused(node, enc(), ["holds a ext4 file system, not a LUKS container"], path=path)


def test_wrong_key_is_refused(node):
    path = image(node)
    luks_format(path, OTHER_KEY)
    refused(node, enc(), ["the key does not open the LUKS container"], path=path)


def test_right_key_without_dm_crypt_says_so_and_changes_nothing(node):
    """This host's kernel has no device-mapper: the key is checked, then the
    refusal names what is missing; a blank device is not luksFormat'ed."""
    if os.path.exists("/sys/module/dm_crypt"):
        pytest.skip("this kernel has dm-crypt (the lifecycle tests cover it)")
    path = image(node)
    luks_format(path)
    refused(node, enc(), ["cannot open an encrypted volume on this node", "device-mapper"], path=path)
    blank = image(node, "blank.img")
    refused(node, enc(image="blank.img"), ["cannot open an encrypted volume on this node"], path=blank)
    with open(blank, "rb") as f:
        assert f.read().count(0) == SIZE, "the blank image was written to"


def marker(size):
    """The luksFormat marker of flexvol/crypt.c, as a kill after its write leaves it."""
    b = bytearray(4096)
    b[0:16] = b"flexvol-luksfmt\0"
    struct.pack_into("<QQ", b, 16, 1, size)
    b[32:48] = os.urandom(16)
    struct.pack_into("<Q", b, 48, 1)
    return bytes(b)


def test_a_marker_over_data_is_not_taken_for_our_unfinished_format(node):
    """Crash safety: a luksFormat marker vouches only for a device holding
    nothing but what an interrupted luksFormat writes."""
    path = image(node)
    subprocess.run(["mkfs.ext4", "-q", "-F", path, "32M"], check=True)
    with open(path, "r+b") as f:
        f.seek(SIZE - 4096)
        f.write(marker(SIZE))
    refused(node, enc(), ["holds data (a ext4)", "unfinished luksFormat"], path=path)
    # The marker alone makes a device non-blank for a plain volume.
    blank = image(node, "marked.img")
    with open(blank, "r+b") as f:
        f.seek(SIZE - 4096)
        f.write(marker(SIZE))
    refused(node, {"image": "marked.img"}, ["holds data"], path=blank)


def test_the_key_is_never_in_argv_logs_or_replies(node):
    path = image(node)
    luks_format(path, OTHER_KEY)
    seen, stop = [], threading.Event()
    needles = [KEY.strip(), KEY.strip().hex().encode()]

    def scan():
        while not stop.is_set():
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    try:
                        with open("/proc/%s/cmdline" % pid, "rb") as f:
                            cmd = f.read()
                    except OSError:
                        continue
                    if any(n in cmd for n in needles):
                        seen.append(cmd)

    t = threading.Thread(target=scan, daemon=True)
    with Syslog() as log:
        t.start()
        try:
            r = mountdevice(node, enc())
            r2 = mountdevice(node, enc(encryptionKeyName="missing"))
        finally:
            stop.set()
            t.join()
        text = log.text()
    assert r.status == "Failure" and "does not open" in r.message, r
    assert r2.status == "Failure", r2
    assert "flexvol-loop" in text, "the driver's log was not captured"
    for n in needles:
        assert n.decode() not in text
        assert n not in r.stdout.encode() and n not in r2.stdout.encode()
    assert not seen, seen


def test_help_lists_the_encryption_options(node):
    out = subprocess.run([node.driver.path, "--help"], capture_output=True, text=True).stdout
    for word in ("encrypted", "encryptionKeyName", "key-dir", "allow-discards", "docs/encryption.md"):
        assert word in out, out
