#!/usr/bin/python3
"""Start and stop an NFSv4-only nfs-ganesha server on loopback, in the guest.

For tests that need a real NFS server for the kernel NFS client: the guest
has no IP network, so server and client both use 127.0.0.1.

    ganesha.py start --export DIR --port PORT [--pseudo /export]
        prints "ganesha: listening on 127.0.0.1:PORT, pseudo path /export"
        once the server accepts connections, then returns (the server keeps
        running in the background).
    ganesha.py stop --port PORT

From python (inside the guest): start(export_dir, port) / stop(port);
start(..., squash="Root_Squash") maps root to the anonymous user.
Mount with: mount -t nfs4 -o port=PORT 127.0.0.1:/export MOUNTPOINT

Things that bite (see /work/shared/reference/vm-notes.md):
  - the VFS FSAL needs file handles, which the overlay root of the guest
    cannot give: export a tmpfs or a loop-mounted ext4/xfs;
  - with only lo up, glibc finds no IPv4 address for Bind_addr = 127.0.0.1,
    so the config sets no Bind_addr (ganesha listens on all of lo's
    addresses, which is all the guest has).
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import time

CONFIG = """\
NFS_CORE_PARAM {{
    NFS_Port = {port};
    Protocols = 4;
    Enable_NLM = false;
    Enable_RQUOTA = false;
    Enable_UDP = false;
}}
NFSV4 {{
    Graceless = true;
    RecoveryRoot = "{workdir}/recovery";
    Only_Numeric_Owners = true;
}}
NFS_KRB5 {{
    Active_krb5 = false;
}}
EXPORT {{
    Export_Id = 1;
    Path = "{export_dir}";
    Pseudo = "{pseudo}";
    Protocols = 4;
    Transports = TCP;
    Access_Type = RW;
    Squash = {squash};
    SecType = sys;
    FSAL {{
        Name = VFS;
    }}
}}
"""
START_TIMEOUT = 30  # s; ganesha listens about 1 s after start under TCG
STOP_TIMEOUT = 10


def workdir_for(port):
    """Config, log, pid file and recovery dir of the server on `port`."""
    return f"/tmp/ganesha-{port}"


def write_config(export_dir, port, pseudo, squash="No_Root_Squash"):
    workdir = workdir_for(port)
    os.makedirs(os.path.join(workdir, "recovery"), exist_ok=True)
    path = os.path.join(workdir, "ganesha.conf")
    with open(path, "w") as f:
        f.write(CONFIG.format(port=port, workdir=workdir, squash=squash,
                              export_dir=os.path.abspath(export_dir), pseudo=pseudo))
    return path


def listening(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def log_tail(port, lines=30):
    try:
        with open(os.path.join(workdir_for(port), "ganesha.log"), errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return "(no log)"


def start(export_dir, port, pseudo="/export", squash="No_Root_Squash"):
    """Start ganesha exporting `export_dir`; return its pid once it listens.
    squash: ganesha's Squash setting (Root_Squash maps root to nobody)."""
    if listening(port):
        raise RuntimeError(f"port {port} is already in use")
    workdir = workdir_for(port)
    config = write_config(export_dir, port, pseudo, squash)
    # -F: stay in the foreground, so the pid we get is the server's. Its own
    # session and no inherited stdio: it must outlive this helper and must
    # not hold the pipe the caller reads our output from.
    proc = subprocess.Popen(
        ["ganesha.nfsd", "-F", "-f", config, "-L", f"{workdir}/ganesha.log",
         "-p", f"{workdir}/ganesha.pid", "-N", "NIV_EVENT"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT
    while not listening(port):
        if proc.poll() is not None:
            raise RuntimeError(f"ganesha exited with status {proc.returncode}:\n"
                               + log_tail(port))
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"ganesha not listening on port {port} after "
                               f"{START_TIMEOUT} s:\n" + log_tail(port))
        time.sleep(0.1)
    with open(os.path.join(workdir, "server.pid"), "w") as f:
        f.write(str(proc.pid))
    return proc.pid


def _running(pid):
    """True while `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def stop(port):
    """Stop the server started on `port` (SIGTERM, then SIGKILL)."""
    try:
        with open(os.path.join(workdir_for(port), "server.pid")) as f:
            pid = int(f.read())
    except FileNotFoundError:
        return  # never started, or already stopped
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while _running(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.1)
    os.unlink(os.path.join(workdir_for(port), "server.pid"))


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    p_start = sub.add_parser("start")
    p_start.add_argument("--export", required=True, help="directory to export")
    p_start.add_argument("--port", type=int, required=True)
    p_start.add_argument("--pseudo", default="/export", help="NFSv4 pseudo path")
    p_stop = sub.add_parser("stop")
    p_stop.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        if args.action == "start":
            pid = start(args.export, args.port, args.pseudo)
            print(f"ganesha: listening on 127.0.0.1:{args.port}, "
                  f"pseudo path {args.pseudo} (pid {pid})", flush=True)
        else:
            stop(args.port)
            print(f"ganesha: stopped the server on port {args.port}")
    except (RuntimeError, OSError) as e:
        print(f"ganesha: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
