"""A real syslog receiver on /dev/log for the duration of a test: the drivers
log through glibc's syslog(3), which sends datagrams to /dev/log."""
import os
import socket
import subprocess
import tempfile
import threading
import time

DEV_LOG = "/dev/log"


class Syslog:
    """Receives what the drivers send to /dev/log while the test runs.

    /dev/log missing: our datagram socket is created there and removed
    afterwards. /dev/log present: our socket is bind-mounted over it, which
    only this process's private mount namespace sees (conftest makes one).
    A thread drains the socket at once, because glibc's syslog() blocks the
    sender when the receive queue is full.
    """

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="fv-syslog-")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.created = self.mounted = False
        self._lines = []
        self._lock = threading.Lock()
        self._stop = False
        self._thread = None

    def __enter__(self):
        if os.path.lexists(DEV_LOG):
            path = os.path.join(self.dir, "log")
            self.sock.bind(path)
            subprocess.run(["mount", "--bind", path, DEV_LOG], check=True)
            self.mounted = True
        else:
            self.sock.bind(DEV_LOG)
            self.created = True
        self.sock.settimeout(0.1)
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()
        return self

    def _drain(self):
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self._lines.append(data.decode("utf-8", "replace"))

    def lines(self, tag=None):
        time.sleep(0.2)   # let in-flight datagrams land
        with self._lock:
            return [line for line in self._lines if tag is None or tag in line]

    def text(self, tag=None):
        return "\n".join(self.lines(tag))

    def __exit__(self, *exc):
        self._stop = True
        if self._thread:
            self._thread.join(2)
        if self.mounted:
            subprocess.run(["umount", "-l", DEV_LOG], check=False)
        if self.created:
            try:
                os.unlink(DEV_LOG)
            except FileNotFoundError:
                pass
        self.sock.close()
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)
