"""Test-side glue for the cinder driver: a fake OpenStack with real loop
devices as its node (tests/fakes), the driver's configuration, a kubelet per
node, and a syslog receiver.

Nothing here is specific to one test: tests/integration/test_cinder.py and
tests/vm/test_cinder_vm.py both build on it.
"""
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
HARNESS = os.path.join(REPO, "tests", "harness")
if HARNESS not in sys.path:
    sys.path.insert(0, HARNESS)

from tests.fakes import common as fake_common  # noqa: E402
from tests.fakes import openstack as fake_openstack  # noqa: E402
from kubelet import Driver, Kubelet, go_json  # noqa: E402

PROJECT, USER, DOMAIN = "kube", "k8s-volumes", "Default"
NODES = ("node-1", "node-2")


class ResizableVMNode(fake_common.VMNode):
    """VMNode (tests/fakes/common.py) plus what an online extend needs: the
    hypervisor telling the guest the disk's new size (QMP block_resize), as
    Nova does for an in-use volume. VMNode.resize only grows the image file,
    which the guest never notices."""

    def resize(self, disk_id, size_bytes):
        super().resize(disk_id, size_bytes)
        serial = self._serials.get(disk_id)
        if serial is not None:
            node_name, _ = self.vm._disks[serial]
            self.vm.qmp.command("block_resize", **{"node-name": node_name, "size": size_bytes})


class TlsProxy:
    """https://127.0.0.1:<port> in front of an http backend (the fake speaks
    plain HTTP), with a fresh self-signed certificate for 127.0.0.1: for
    testing ca-file and tls-insecure."""

    def __init__(self, tmp, backend_port):
        import ssl
        self.cert = os.path.join(str(tmp), "tls-cert.pem")
        self.key = os.path.join(str(tmp), "tls-key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", self.key, "-out", self.cert], check=True, capture_output=True)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(self.cert, self.key)
        self.backend = backend_port
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            tls = self.ctx.wrap_socket(conn, server_side=True)
        except OSError:
            conn.close()     # the client refused our certificate
            return
        back = socket.create_connection(("127.0.0.1", self.backend))

        def pump(src, dst):
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        threading.Thread(target=pump, args=(back, tls), daemon=True).start()
        pump(tls, back)

    def close(self):
        self._stop = True
        self.sock.close()


def write_private(path, text, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)


class CinderCloud:
    """A fake OpenStack on loopback whose attached volumes become real loop
    devices (HostLoopNode) or disks hot-plugged into a VM (node=VMNode), plus
    the driver configured against it.

    Layout under tmp: by-id/ (the fake udev links), sys/ (the fake sysfs
    serials), images/ (volume images), etc/ (cinder.conf), run/ (driver run
    dir: locks, token cache, PV records), kubelet/.
    """

    def __init__(self, tmp, transition_delay=0.3, flexvol=None, token_lifetime=3600, app_credential=False,
                 wrapper=(), node=None):
        self.tmp = str(tmp)
        self.device_dir = os.path.join(self.tmp, "by-id")
        self.sysfs = os.path.join(self.tmp, "sys")
        self.config_dir = os.path.join(self.tmp, "etc")
        self.run_dir = os.path.join(self.tmp, "run")
        os.makedirs(self.config_dir)
        # Where attached volumes appear: loop devices here, or a VM (node=).
        self.node = node or fake_common.HostLoopNode(self.device_dir, self.sysfs, os.path.join(self.tmp, "images"))
        self.fake = fake_openstack.FakeOpenStack(node=self.node, token_lifetime=token_lifetime,
                                                 transition_delay=transition_delay).start()
        self.password = "pw-" + secrets.token_urlsafe(18)
        self.fake.add_project(PROJECT)
        self.fake.add_user(USER, self.password, projects=[PROJECT])
        self.servers = {n: self.fake.add_server(n)["id"] for n in NODES}
        self.app_cred = self.fake.add_application_credential(USER) if app_credential else None
        self.flexvol = {"attach-timeout": "30", "device-dir": self.device_dir, "sysfs-root": self.sysfs,
                        "udevadm": "none", "http-timeout": "5", "rescan-after": "2"}
        self.flexvol.update(flexvol or {})
        self.write_config()
        env = dict(os.environ, FLEXVOL_CONFIG_DIR=self.config_dir, FLEXVOL_RUN_DIR=self.run_dir)
        build = os.path.join(REPO, os.environ.get("FLEXVOL_BUILD", "build"))
        self.driver = Driver(os.path.join(build, "cinder"), env, wrapper)
        self.kubelets = {n: Kubelet(self.driver, os.path.join(self.tmp, "kubelet-" + n), node=n) for n in NODES}
        self.kubelet = self.kubelets["node-1"]

    @property
    def config_path(self):
        return os.path.join(self.config_dir, "cinder.conf")

    auth_url = None      # default: the fake's own http URL
    extra_global = ()

    def global_section(self):
        lines = ["[Global]", f'auth-url = "{self.auth_url or self.fake.url + "/v3"}"', *self.extra_global]
        if self.app_cred:
            lines += [f"application-credential-id = {self.app_cred['id']}",
                      f"application-credential-secret = {self.app_cred['secret']}"]
        else:
            lines += [f"username = {USER}", f"password = {self.password}", f"tenant-name = {PROJECT}",
                      f"domain-name = {DOMAIN}"]
        lines += ["region = RegionOne"]
        return lines

    def write_config(self, mode=0o600):
        lines = self.global_section() + ["", "[flexvol]"]
        lines += [f"{k} = {v}" for k, v in self.flexvol.items()]
        write_private(self.config_path, "\n".join(lines) + "\n", mode)

    def configure(self, **flexvol):
        self.flexvol.update({k.replace("_", "-"): str(v) for k, v in flexvol.items()})
        self.write_config()

    def volume(self, size=1, **kw):
        return self.fake.add_volume(size=size, project=PROJECT, **kw)["id"]

    def state(self, vid):
        return self.fake.volume(vid)

    def secrets(self):
        """Every credential the driver holds: the password (or app secret) and
        every token the fake issued."""
        out = [self.password]
        if self.app_cred:
            out.append(self.app_cred["secret"])
        with self.fake.tokens._lock:
            out += list(self.fake.tokens._tokens)
        return out

    def auths(self):
        return self.fake.auth_count(ok=True)

    def close(self):
        self.fake.stop()
        self.node.close()


def opts(vid, **extra):
    o = {"volumeID": vid}
    o.update(extra)
    return o


def pod(n):
    return {"name": "p-%d" % n, "namespace": "default", "uid": "00000000-0000-4000-8000-%012d" % n}


def cleanup_mounts(prefix):
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f if line.split()[4].startswith(prefix + "/")]
    for m in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True)


def mounts_under(prefix):
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(prefix + "/")]
