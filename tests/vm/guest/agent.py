"""Command agent inside the guest: runs what the host asks, over virtio-serial.

Protocol: one JSON object per line in each direction.
  guest -> host  {"ready": true}                          once, when booted
  host -> guest  {"argv": [...], "cwd": ..., "env": {...}, "timeout": <s>}
  guest -> host  {"rc": <int>, "output": <str>, "timed_out": <bool>}
(rc is negative for a command killed by a signal, as in subprocess.)
init.sh starts the agent early, so that python's slow start-up under TCG
overlaps the rest of the boot, and creates the file named by argv[1] once
the guest is fully up; only then does the agent announce itself.
The agent exits (and init.sh powers the guest off) when the host closes its
end of the port.
"""
import json
import os
import signal
import subprocess
import sys
import time

PORT_NAME = "vm.agent"
BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "TERM": "dumb",
}


def find_port():
    """The /dev node of the virtio-serial port QEMU named PORT_NAME."""
    base = "/sys/class/virtio-ports"
    for dev in os.listdir(base):
        with open(os.path.join(base, dev, "name")) as f:
            if f.read().strip() == PORT_NAME:
                return os.path.join("/dev", dev)
    raise SystemExit(f"agent: no virtio-serial port named {PORT_NAME}")


def wait_for_file(path):
    while not os.path.exists(path):
        time.sleep(0.02)


def run(request):
    """Run one command as asked; return the reply object."""
    env = dict(BASE_ENV, **(request.get("env") or {}))
    try:
        proc = subprocess.Popen(
            request["argv"], cwd=request.get("cwd") or "/", env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as e:
        return {"rc": 127, "output": f"agent: cannot run {request['argv']!r}: {e}\n",
                "timed_out": False}
    try:
        out, _ = proc.communicate(timeout=request.get("timeout"))
        timed_out = False
    except subprocess.TimeoutExpired:
        # Kill the whole session so that children holding the pipe open do
        # not keep communicate() waiting.
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        timed_out = True
    return {"rc": proc.returncode,
            "output": out.decode("utf-8", "replace"), "timed_out": timed_out}


def main(booted_flag):
    port = os.open(find_port(), os.O_RDWR)

    def send(obj):
        data = json.dumps(obj).encode() + b"\n"
        while data:
            data = data[os.write(port, data):]

    wait_for_file(booted_flag)
    send({"ready": True})
    buf = b""
    while True:
        chunk = os.read(port, 65536)
        if not chunk:
            return  # host closed the port
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            send(run(json.loads(line)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
