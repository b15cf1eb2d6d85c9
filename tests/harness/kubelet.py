"""Plays kubelet and kube-controller-manager against a FlexVolume driver.

Every call goes through the same argv, option JSON and pre-/post-checks that
kubelet 1.2x uses (pkg/volume/flexvolume), and every reply is held to the
contract: exactly one JSON object on stdout, nothing on stderr, an exit code
that matches the status.
"""
import json
import os
import subprocess

STATUSES = ("Success", "Failure", "Not supported")


class DriverError(AssertionError):
    pass


def go_json(options):
    """json.Marshal(map[string]string): sorted keys, compact, <>& escaped."""
    text = json.dumps(options, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class Reply:
    def __init__(self, argv, rc, stdout, stderr):
        self.argv, self.rc, self.stdout, self.stderr = argv, rc, stdout, stderr
        self.json = None
        self.contract_errors = []
        self._check()

    def _check(self):
        if self.stderr:
            self.contract_errors.append("stderr is not empty: %r" % self.stderr)
        try:
            # Go's json.Unmarshal over the combined output: one value, whitespace around it only.
            self.json = json.loads(self.stdout)
        except ValueError as e:
            self.contract_errors.append("stdout is not one JSON value (%s): %r" % (e, self.stdout))
            return
        if not isinstance(self.json, dict):
            self.contract_errors.append("reply is not an object: %r" % self.stdout)
            return
        if self.json.get("status") not in STATUSES:
            self.contract_errors.append("bad status: %r" % self.stdout)
        if self.status == "Success" and self.rc != 0:
            self.contract_errors.append("Success with exit code %d" % self.rc)
        if self.status == "Not supported" and self.rc != 0:
            self.contract_errors.append("Not supported with exit code %d" % self.rc)
        carries_secrets = any("kubernetes.io/secret/" in a for a in self.argv)
        if self.status == "Failure" and self.rc != (0 if carries_secrets else 1):
            self.contract_errors.append("Failure with exit code %d (secrets: %s)" % (self.rc, carries_secrets))

    @property
    def status(self):
        return self.json.get("status") if isinstance(self.json, dict) else None

    @property
    def message(self):
        return self.json.get("message", "")

    def __repr__(self):
        return "<%s -> rc=%d %s>" % (" ".join(self.argv[1:2]), self.rc, self.stdout.strip())


class Driver:
    """Runs the driver binary the way kubelet's driver-call.go does."""

    def __init__(self, path, env=None, wrapper=()):
        self.path = path
        self.env = dict(os.environ if env is None else env)
        self.wrapper = list(wrapper)
        self.history = []

    def call(self, *args, timeout=600, stdin_text=None):
        """stdin_text: what the call reads on stdin (the "-" options form; an
        operator's call by hand, never kubelet's). None: /dev/null."""
        argv = [self.path] + [str(a) for a in args]
        stdin = subprocess.DEVNULL if stdin_text is None else None
        p = subprocess.run(self.wrapper + argv, stdin=stdin, input=stdin_text, capture_output=True,
                           env=self.env, timeout=timeout, text=True)
        reply = Reply(argv, p.returncode, p.stdout, p.stderr)
        self.history.append(reply)
        if reply.contract_errors:
            raise DriverError("%r broke the contract: %s" % (argv[1:2], "; ".join(reply.contract_errors)))
        return reply

    def start(self, *args):
        """Starts a call without waiting (for concurrency and signal tests)."""
        argv = [self.path] + [str(a) for a in args]
        return argv, subprocess.Popen(self.wrapper + argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, env=self.env, text=True)

    @staticmethod
    def finish(started, timeout=600):
        argv, proc = started
        out, err = proc.communicate(timeout=timeout)
        reply = Reply(argv, proc.returncode, out, err)
        if reply.contract_errors:
            raise DriverError("%r broke the contract: %s" % (argv[1:2], "; ".join(reply.contract_errors)))
        return reply


def is_likely_not_mount_point(path):
    """mount-utils IsLikelyNotMountPoint: st_dev of path against its parent."""
    st = os.stat(path)
    parent = os.stat(os.path.dirname(os.path.abspath(path).rstrip("/")) or "/")
    return st.st_dev == parent.st_dev


class Kubelet:
    """One node's kubelet plus the controller-manager's attach/detach controller."""

    def __init__(self, driver, root_dir, vendor="flexvol", name=None, node="node-1"):
        self.driver = driver
        self.root = root_dir
        self.vendor = vendor
        self.name = name or os.path.basename(driver.path)
        self.node = node

    # --- paths (pkg/volume/flexvolume plugin.go, volume.go) ---
    def global_path(self, spec_name):
        return os.path.join(self.root, "plugins/kubernetes.io/flexvolume", self.vendor, self.name, "mounts",
                            spec_name)

    def pod_dir(self, pod_uid, spec_name):
        return os.path.join(self.root, "pods", pod_uid, "volumes", "%s~%s" % (self.vendor, self.name), spec_name)

    # --- options (driver-call.go NewOptionsForDriver) ---
    @staticmethod
    def options(spec_name, user_options, fs_type="", read_only=False, pod=None, secrets=None, fs_group=None):
        o = {"kubernetes.io/fsType": fs_type, "kubernetes.io/readwrite": "ro" if read_only else "rw",
             "kubernetes.io/pvOrVolumeName": spec_name}
        if pod is not None:
            o.update({"kubernetes.io/pod.name": pod["name"], "kubernetes.io/pod.namespace": pod["namespace"],
                      "kubernetes.io/pod.uid": pod["uid"],
                      "kubernetes.io/serviceAccount.name": pod.get("serviceAccount", "default")})
        if fs_group is not None:
            o["kubernetes.io/mounterArgs.FsGroup"] = str(fs_group)
        import base64
        for k, v in (secrets or {}).items():
            o["kubernetes.io/secret/" + k] = base64.b64encode(v.encode() if isinstance(v, str) else v).decode()
        o.update(user_options)  # user options last: they override kubernetes.io/* keys
        return o

    def init(self):
        return self.driver.call("init")

    # --- controller-manager: attach/detach controller ---
    def attach(self, spec_name, user_options, fs_type="", read_only=False, node=None):
        opts = go_json(self.options(spec_name, user_options, fs_type, read_only))
        return self.driver.call("attach", opts, node or self.node)

    def is_attached(self, spec_name, user_options, fs_type="", read_only=False, node=None):
        opts = go_json(self.options(spec_name, user_options, fs_type, read_only))
        return self.driver.call("isattached", opts, node or self.node)

    def detach(self, spec_name, node=None):
        return self.driver.call("detach", spec_name, node or self.node)

    # --- kubelet: MountVolume for an attachable plugin ---
    def wait_for_attach(self, spec_name, user_options, device="", fs_type="", read_only=False):
        opts = go_json(self.options(spec_name, user_options, fs_type, read_only))
        return self.driver.call("waitforattach", device, opts)

    def mount_device(self, spec_name, user_options, device, fs_type="", read_only=False):
        path = self.global_path(spec_name)
        # prepareForMount: mkdir 0750 when missing; an existing mount point skips the driver.
        if not os.path.exists(path):
            os.makedirs(path, 0o750)
        elif not is_likely_not_mount_point(path):
            return None
        opts = go_json(self.options(spec_name, user_options, fs_type, read_only))
        return self.driver.call("mountdevice", path, device, opts)

    def set_up_pod(self, pod, spec_name, user_options, fs_type="", read_only=False, secrets=None, fs_group=None):
        path = self.pod_dir(pod["uid"], spec_name)
        if not os.path.exists(path):
            os.makedirs(path, 0o750)
        elif not is_likely_not_mount_point(path):
            return None
        opts = go_json(self.options(spec_name, user_options, fs_type, read_only, pod, secrets, fs_group))
        reply = self.driver.call("mount", path, opts)
        if reply.status == "Failure":
            _rmdir_quiet(path)  # mounter.go: os.Remove(dir) after a failed mount
        return reply

    def mount_volume(self, pod, spec_name, user_options, device="", fs_type="", read_only=False):
        """The whole node-side sequence: waitforattach, mountdevice, mount."""
        w = self.wait_for_attach(spec_name, user_options, device, fs_type, read_only)
        if w.status != "Success":
            return w
        dev = w.json.get("device", device)
        m = self.mount_device(spec_name, user_options, dev, fs_type, read_only)
        if m is not None and m.status != "Success":
            return m
        return self.set_up_pod(pod, spec_name, user_options, fs_type, read_only)

    # --- kubelet: UnmountVolume / UnmountDevice ---
    def tear_down_pod(self, pod_uid, spec_name):
        path = self.pod_dir(pod_uid, spec_name)
        if not os.path.exists(path):
            return None
        reply = self.driver.call("unmount", path)
        if reply.status == "Success" and os.path.exists(path):
            os.rmdir(path)  # EBUSY here means the driver left the mount behind
        return reply

    def unmount_device(self, spec_name):
        path = self.global_path(spec_name)
        if not os.path.exists(path):
            return None
        if is_likely_not_mount_point(path):
            os.rmdir(path)
            return None
        reply = self.driver.call("unmountdevice", path)
        if reply.status == "Success" and os.path.exists(path):
            os.rmdir(path)
        return reply


def _rmdir_quiet(path):
    try:
        os.rmdir(path)
    except OSError:
        pass


def lock_file_name(key):
    """The lock file of a key, as flexvol/lock.c names it: the key with safe
    characters kept and the others %XX-escaped, up to 200 bytes; longer keys
    as "~<sha256 hex>~<escaped tail of at most 80 bytes>"."""
    import hashlib
    raw = key.encode() if isinstance(key, str) else key

    def esc(data, at_start):
        out = []
        for i, b in enumerate(data):
            c = chr(b)
            plain = c.isascii() and (c.isalnum() or c in "-_" or (c == "." and not (at_start and i == 0)))
            out.append(c if plain else "%%%02X" % b)
        return "".join(out)

    plain = esc(raw, True)
    if len(plain) <= 200:
        return plain + ".lock"
    start = len(raw)
    while start > 0 and len(esc(raw[start - 1:], start - 1 == 0)) <= 80:
        start -= 1
    return "~%s~%s.lock" % (hashlib.sha256(raw).hexdigest(), esc(raw[start:], start == 0))


def lock_path(run_dir, driver, kubelet_path):
    """The lock file the core takes for a call on kubelet_path (mountdevice,
    unmountdevice, mount, unmount, expandfs)."""
    key = "/" + "/".join(c for c in kubelet_path.split("/") if c not in ("", "."))
    return os.path.join(run_dir, "locks", driver, lock_file_name(key))
