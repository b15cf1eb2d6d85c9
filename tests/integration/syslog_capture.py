"""A real syslog receiver on /dev/log for the duration of a test.

The drivers log through glibc's syslog(3), which sends datagrams to /dev/log.
When the node already has /dev/log, our socket is bind-mounted over it inside
the test's private mount namespace; otherwise it is created there and removed
afterwards."""
import os
import socket
import subprocess
import tempfile

DEV_LOG = "/dev/log"


class SyslogCapture:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="fv-syslog-")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.created = False
        self.mounted = False

    def __enter__(self):
        if os.path.exists(DEV_LOG):
            path = os.path.join(self.dir, "log")
            self.sock.bind(path)
            subprocess.run(["mount", "--bind", path, DEV_LOG], check=True)
            self.mounted = True
        else:
            self.sock.bind(DEV_LOG)
            self.created = True
        self.sock.setblocking(False)
        return self

    def lines(self):
        out = []
        while True:
            try:
                out.append(self.sock.recv(65536).decode(errors="replace"))
            except BlockingIOError:
                return out

    def __exit__(self, *exc):
        if self.mounted:
            subprocess.run(["umount", DEV_LOG], check=False)
        if self.created:
            os.unlink(DEV_LOG)
        self.sock.close()
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)
