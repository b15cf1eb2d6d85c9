"""Shared by the encryption tests (host: tests/integration/test_crypt_options.py;
guest: tests/vm/guest_tests/crypt_loop.py)."""
import glob
import os

KEY = b"0123456789abcdef-the-node-key-of-this-test\n"
OTHER_KEY = b"fedcba9876543210-another-key-entirely\n"
# Small, fixed argon2id costs: the tests' unlocks stay quick (under TCG too).
CRYPT_CONFIG = {"pbkdf-memory": "16384", "pbkdf-iterations": "4"}


def pod(n):
    return {"name": "p-%d" % n, "namespace": "default", "uid": "00000000-0000-4000-8000-%012d" % n}


def write_crypt_config(node, section="loop", extra=None, key_dir=True):
    """Rewrites the loop node's config with a key-dir and test costs."""
    node.key_dir = os.path.join(node.tmp, "keys")
    os.makedirs(node.key_dir, mode=0o700, exist_ok=True)
    items = {"image-root": node.image_root} if section == "loop" else {}
    if key_dir:
        items["key-dir"] = node.key_dir
    items.update(CRYPT_CONFIG)
    items.update(extra or {})
    with open(os.path.join(node.config_dir, "%s.conf" % section), "w") as f:
        f.write("[%s]\n" % section + "".join("%s = %s\n" % kv for kv in items.items()))


def add_key(node, name, data, mode=0o600, uid=0):
    path = os.path.join(node.key_dir, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chown(path, uid, 0)
    os.chmod(path, mode)
    return path


def mappings():
    """The names of the open dm mappings."""
    names = []
    for p in glob.glob("/sys/block/dm-*/dm/name"):
        try:
            with open(p) as f:
                names.append(f.read().strip())
        except OSError:
            pass
    return names


def dm_crypt_available():
    if os.path.exists("/sys/module/dm_crypt"):
        return True
    release = os.uname().release
    for name in ("modules.dep", "modules.builtin"):
        try:
            with open("/lib/modules/%s/%s" % (release, name)) as f:
                if "dm-crypt.ko" in f.read():
                    return True
        except OSError:
            pass
    return False
