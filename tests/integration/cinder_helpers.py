"""Test-side glue for the cinder driver: a fake OpenStack with real loop
devices as its node (tests/fakes), the driver's configuration, and an https
proxy for testing TLS to Keystone.

The cloud-neutral parts (the cloud's layout, driver and kubelets, the VM node
that can resize, fixtures, pods, mounts) are in cloud_common.py, shared with
the gcepd driver's tests. tests/integration/test_cinder.py and
tests/vm/test_cinder_vm.py both build on this.
"""
import os
import secrets
import socket
import subprocess
import threading

# cloud_common first: it puts the repository on sys.path for tests.fakes.
from cloud_common import CloudBase, NODES, write_private
from tests.fakes import openstack as fake_openstack

PROJECT, USER, DOMAIN = "kube", "k8s-volumes", "Default"


class TlsProxy:
    """https://127.0.0.1:<port> in front of an http backend (the fake speaks
    plain HTTP), with a fresh self-signed certificate for 127.0.0.1: for
    testing ca-file and tls-insecure."""

    def __init__(self, tmp, backend_port, client_ca=None):
        """client_ca: a CA file; the proxy then asks for a client certificate
        signed by it and refuses a handshake without one (mTLS)."""
        import ssl
        self.cert = os.path.join(str(tmp), "tls-cert.pem")
        self.key = os.path.join(str(tmp), "tls-key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", self.key, "-out", self.cert], check=True, capture_output=True)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(self.cert, self.key)
        self.client_certs = []     # the subject CN of each client certificate presented
        if client_ca:
            self.ctx.verify_mode = ssl.CERT_REQUIRED
            self.ctx.load_verify_locations(client_ca)
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
            conn.close()     # the client refused our certificate, or gave none
            return
        peer = tls.getpeercert()
        if peer:
            self.client_certs.append(dict(x[0] for x in peer["subject"]).get("commonName"))
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


class CinderCloud(CloudBase):
    """A fake OpenStack on loopback whose attached volumes become real loop
    devices (HostLoopNode) or disks hot-plugged into a VM (node=VMNode), plus
    the driver configured against it.

    Layout under tmp: by-id/ (the fake udev links), sys/ (the fake sysfs
    serials), images/ (volume images), etc/ (cinder.conf), run/ (driver run
    dir: locks, token cache, PV records), kubelet-<node>/.
    """

    driver_name = "cinder"

    def __init__(self, tmp, transition_delay=0.3, flexvol=None, token_lifetime=3600, app_credential=False,
                 wrapper=(), node=None):
        super().__init__(tmp, node)
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
        self.start_driver(wrapper)

    auth_url = None      # default: the fake's own http URL
    extra_global = ()
    credentials = None   # [Global] credential lines instead of the seeded user's
    extra_sections = ()  # lines after [flexvol] (e.g. "[cinder]", "max-volumes = 1")

    def global_section(self):
        lines = ["[Global]", f'auth-url = "{self.auth_url or self.fake.url + "/v3"}"', *self.extra_global]
        if self.credentials is not None:
            lines += list(self.credentials)
        elif self.app_cred:
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
        lines += list(self.extra_sections)
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


def opts(vid, **extra):
    o = {"volumeID": vid}
    o.update(extra)
    return o


def make_client_cert(tmp, cn="flexvol-node"):
    """(ca, cert, key) files: a fresh CA and a client certificate it signed."""
    tmp = str(tmp)
    ca, ca_key = os.path.join(tmp, "client-ca.pem"), os.path.join(tmp, "client-ca-key.pem")
    cert, key, csr = (os.path.join(tmp, n) for n in ("client.pem", "client-key.pem", "client.csr"))
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=flexvol test client CA",
        "-keyout", ca_key, "-out", ca)
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + cn, "-keyout", key, "-out", csr)
    run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "1", "-out", cert)
    os.chmod(key, 0o600)
    return ca, cert, key
