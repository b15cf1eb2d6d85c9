"""Boot a stock Debian 12 kernel under QEMU (TCG) and run commands inside it.

The guest's root file system is this machine's / shared read-only over 9p
with a tmpfs overlay on top, so the guest sees the repo (at the same path),
python3, nfs-ganesha and every installed tool. Kernel modules come from the
Debian linux-image package unpacked under build/vm/ (never installed on the
host); udevd comes from the unpacked Debian udev package.

Host <-> guest: no IP network. Commands and results travel as JSON lines over
a virtio-serial port (guest/agent.py); disks are hot-plugged through QMP.

Two things to know when writing tests: the guest's /tmp is its own tmpfs
(the host's /tmp, and so pytest's tmp_path, is not visible in it), and the
guest caches the host's files (9p cache=loose), so a host file changed while
a guest runs may look stale in it; boot after writing such files.

    with VM() as guest:
        rc, out = guest.run(["uname", "-r"])

See README.md in this directory.
"""
import ctypes
import fcntl
import functools
import hashlib
import json
import lzma
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
GUEST_DIR = HERE / "guest"
CACHE = REPO / "build" / "vm"

# Everything the host needs to build and boot the guest, and everything the
# guest uses from the host root (mount.nfs, ganesha, mkfs.*, ip, unshare).
# The udev binary we unpack links against the lib* ones.
HOST_PACKAGES = (
    "qemu-system-x86", "busybox-static", "cpio", "kmod", "iproute2",
    "util-linux", "mount", "e2fsprogs", "xfsprogs", "nfs-common", "nfs-ganesha",
    "nfs-ganesha-vfs", "python3-pytest",
    "libacl1", "libblkid1", "libcap2", "libselinux1",
)
KERNEL_META_PACKAGE = "linux-image-amd64"
# Loaded by the initramfs: just what mounting the 9p + overlay root and
# talking to the host over virtio-serial needs. Everything else is loaded
# later from the unpacked package, through the 9p root.
INITRAMFS_MODULES = ("virtio_pci", "virtio_console", "9pnet_virtio", "9p", "overlay")
AGENT_PORT = "vm.agent"       # must match guest/agent.py
BOOT_TIMEOUT = 120            # s; boots take 6-15 s here, allow a loaded CI host
SHUTDOWN_TIMEOUT = 20         # s from closing the agent port to QEMU exiting
REPLY_GRACE = 30              # s beyond a command's own timeout
CONSOLE_TAIL_LINES = 60
VIRTIO_SERIAL_MAX = 20        # bytes; virtio-blk serials are truncated past this


# One note per boot that was started again after QEMU died before the
# guest's first console line (tests/vm/conftest.py prints them).
BOOT_RETRIES = []


class VMError(Exception):
    """The guest failed, hung or could not be set up."""


# --------------------------------------------------------------------------
# Host setup: packages, kernel, udev, initramfs (all cached under build/vm)
# --------------------------------------------------------------------------

def _check(argv, **kwargs):
    """Run a setup command; raise VMError with its output if it fails."""
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, **kwargs)
    if proc.returncode != 0:
        raise VMError(f"VM setup: {' '.join(map(str, argv))} exited "
                      f"{proc.returncode}:\n{proc.stdout[-4000:]}")
    return proc.stdout


def _apt(*args, cwd=None):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # APT::Sandbox::User=root: apt-get download writes into our cache dir,
    # which the _apt user may not be able to enter.
    return _check(["apt-get", "-q", "-o", "APT::Sandbox::User=root", *args],
                  env=env, cwd=cwd)


def ensure_host_packages():
    """Install what is missing; a single dpkg-query when all is present."""
    if os.geteuid() != 0:
        raise VMError("VM setup: the VM tier must run as root "
                      "(apt-get install, 9p export of /)")
    status = subprocess.run(
        ["dpkg-query", "-W", "-f", "${db:Status-Abbrev} ${Package}\n", *HOST_PACKAGES],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    installed = {line.split()[-1] for line in status.splitlines() if line.startswith("ii")}
    missing = [p for p in HOST_PACKAGES if p not in installed]
    if missing:
        _apt("update")
        _apt("install", "-y", "--no-install-recommends", *missing)


def _kernel_package_name():
    """linux-image-6.1.0-<N>-amd64, the one linux-image-amd64 depends on."""
    for attempt in range(2):
        out = subprocess.run(["apt-cache", "depends", KERNEL_META_PACKAGE],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True).stdout
        for line in out.splitlines():
            dep = line.strip().removeprefix("Depends: ")
            if dep.startswith("linux-image-") and dep != KERNEL_META_PACKAGE:
                return dep
        if attempt == 0:
            _apt("update")  # a fresh machine has no package lists yet
    raise VMError(f"VM setup: apt-cache names no kernel for {KERNEL_META_PACKAGE}")


def _download(package, cwd):
    try:
        _apt("download", package, cwd=cwd)
    except VMError:
        # Package lists older than the mirror name files it no longer has.
        _apt("update")
        _apt("download", package, cwd=cwd)


def _unpack_package(package, dest, after_unpack=None):
    """apt-get download + dpkg -x `package` into `dest`, once.

    Works in a scratch dir and renames at the end, so an interrupted run
    never leaves a half-unpacked cache behind.
    """
    if dest.is_dir():
        return dest
    work = dest.with_name(dest.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    (work / "root").mkdir(parents=True)
    _download(package, work)
    (deb,) = work.glob("*.deb")
    _check(["dpkg", "-x", deb, work / "root"])
    if after_unpack:
        after_unpack(work / "root")
    (work / "root").rename(dest)
    shutil.rmtree(work)
    return dest


class Kernel:
    """An unpacked linux-image package: lib/modules/<version> and the
    kernel image, decompressed (see prepare_kernel)."""

    def __init__(self, root):
        self.root = root
        (moddir,) = (root / "lib" / "modules").iterdir()
        self.version = moddir.name
        self.vmlinux = root / "boot" / f"vmlinux-{self.version}"

    def module_files(self, modules):
        """The .ko files `modules` need, dependencies first, no duplicates."""
        files = []
        for module in modules:
            out = _check(["modprobe", "-d", self.root, "-S", self.version,
                          "--show-depends", module])
            for line in out.splitlines():
                words = line.split()
                if words and words[0] == "insmod" and words[1] not in files:
                    files.append(words[1])
        return [Path(f) for f in files]


def _decompress_kernel(vmlinuz, vmlinux):
    """Extract the ELF kernel from Debian's xz-compressed bzImage.

    QEMU boots an ELF kernel with a PVH entry note (Debian's has one)
    directly, skipping the in-guest xz decompression, which takes about
    4 s under TCG.
    """
    data = vmlinuz.read_bytes()
    start = data.find(b"\xfd7zXZ\x00")
    if start < 0:
        raise VMError(f"VM setup: no xz stream in {vmlinuz}")
    elf = lzma.LZMADecompressor().decompress(data[start:])
    if not elf.startswith(b"\x7fELF"):
        raise VMError(f"VM setup: {vmlinuz} does not hold an ELF kernel")
    vmlinux.write_bytes(elf)


def prepare_kernel(root):
    """Make an unpacked linux-image package bootable and its modules usable."""
    (version,) = os.listdir(root / "lib" / "modules")
    # The .deb ships no modules.dep; modprobe (host and guest) needs it.
    _check(["depmod", "-b", root, version])
    _decompress_kernel(root / "boot" / f"vmlinuz-{version}",
                       root / "boot" / f"vmlinux-{version}")


def ensure_kernel():
    name = _kernel_package_name()
    dest = CACHE / name
    if not dest.is_dir():
        # Only the current kernel is kept: each one is 470 MB unpacked.
        for old in CACHE.glob("linux-image-*"):
            shutil.rmtree(old)
    return Kernel(_unpack_package(name, dest, prepare_kernel))


def ensure_udev():
    return _unpack_package("udev", CACHE / "udev")


def ensure_initramfs(kernel):
    """busybox-static + INITRAMFS_MODULES + guest/initramfs-init.sh as /init.

    Named after a hash of its inputs, so editing the init script or changing
    the kernel rebuilds it and nothing else does.
    """
    busybox = Path("/bin/busybox")
    init = GUEST_DIR / "initramfs-init.sh"
    kos = kernel.module_files(INITRAMFS_MODULES)
    digest = hashlib.sha256()
    for f in (busybox, init, *kos):
        digest.update(str(f).encode() + f.read_bytes())
    image = CACHE / f"initramfs-{kernel.version}-{digest.hexdigest()[:12]}.cpio"
    if image.exists():
        return image
    for old in CACHE.glob("initramfs-*.cpio"):
        old.unlink()
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        tree = Path(tmp)
        for d in ("bin", "dev", "proc", "sys", "modules"):
            (tree / d).mkdir()
        shutil.copy2(busybox, tree / "bin" / "busybox")
        shutil.copy2(init, tree / "init")
        for ko in kos:
            shutil.copy2(ko, tree / "modules" / ko.name)
        (tree / "modules.list").write_text("".join(ko.name + "\n" for ko in kos))
        # Uncompressed: decompressing costs more under TCG than the few MB
        # of extra reading.
        listing = subprocess.run(["find", "."], cwd=tree, check=True,
                                 stdout=subprocess.PIPE).stdout
        with open(str(image) + ".tmp", "wb") as out:
            subprocess.run(["cpio", "-o", "-H", "newc", "-R", "0:0", "--quiet"],
                           cwd=tree, input=listing, stdout=out, check=True)
    os.rename(str(image) + ".tmp", image)
    return image


class Assets:
    """Everything a boot needs, prepared (and cached) under build/vm."""

    def __init__(self):
        CACHE.mkdir(parents=True, exist_ok=True)
        # Two pytest runs may prepare the cache at once.
        with open(CACHE / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            ensure_host_packages()
            self.kernel = ensure_kernel()
            self.udev = ensure_udev()
            self.initramfs = ensure_initramfs(self.kernel)


@functools.lru_cache(maxsize=None)
def prepare():
    """Set up the host for the VM tier; raise VMError with the cause if not.

    Done once per process (apt-cache alone takes most of a second); a failure is
    not remembered, so every boot that follows fails loudly on its own.
    """
    try:
        return Assets()
    except VMError:
        raise
    except Exception as e:  # a missing file, a broken .deb, ...
        raise VMError(f"VM setup failed: {e!r}") from e


# --------------------------------------------------------------------------
# Host <-> guest channels
# --------------------------------------------------------------------------

class LineSocket:
    """A unix socket carrying one JSON object per line."""

    def __init__(self, path, deadline, alive):
        """Connect to QEMU's server socket at `path`; it appears shortly
        after QEMU starts, unless QEMU dies first (`alive()` false)."""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        while True:
            try:
                self.sock.connect(str(path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if not alive() or time.monotonic() > deadline:
                    raise VMError(f"QEMU did not open {path}")
                time.sleep(0.05)
        self.buf = b""

    def send(self, obj):
        self.sock.sendall(json.dumps(obj).encode() + b"\n")

    def recv(self, deadline):
        """The next object, or None at EOF or once `deadline` passes."""
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 16)
            except socket.timeout:
                return None
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def close(self):
        self.sock.close()


class QMP:
    """Minimal QMP client: synchronous commands, events kept for waiting."""

    def __init__(self, path, deadline, alive):
        self.chan = LineSocket(path, deadline, alive)
        self.events = []
        self.chan.recv(deadline)  # greeting
        self.command("qmp_capabilities")

    def _next(self, deadline):
        msg = self.chan.recv(deadline)
        if msg is None:
            raise VMError("QMP: no answer from QEMU")
        return msg

    def command(self, name, timeout=30, **arguments):
        self.chan.send({"execute": name, "arguments": arguments})
        deadline = time.monotonic() + timeout
        while True:
            msg = self._next(deadline)
            if "event" in msg:
                self.events.append(msg)
            elif "error" in msg:
                raise VMError(f"QMP {name} {arguments}: {msg['error']['desc']}")
            else:
                return msg["return"]

    def wait_event(self, name, timeout, **data):
        """Wait for event `name` whose data includes `data`; consume it."""
        deadline = time.monotonic() + timeout
        while True:
            for ev in self.events:
                if ev["event"] == name and data.items() <= ev.get("data", {}).items():
                    self.events.remove(ev)
                    return ev
            msg = self.chan.recv(deadline)
            if msg is None:
                raise VMError(f"QMP: no {name} event {data} within {timeout} s")
            if "event" in msg:
                self.events.append(msg)

    def close(self):
        self.chan.close()


def _die_with_parent():
    """preexec_fn: QEMU gets SIGKILL if the test runner dies, so a crashed
    pytest never leaves a guest burning a core."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


# --------------------------------------------------------------------------
# The VM
# --------------------------------------------------------------------------

class VM:
    """A booted guest; use as a context manager."""

    def __init__(self, extra_modules=(), memory_mb=1024):
        self.extra_modules = tuple(extra_modules)
        self.memory_mb = memory_mb
        self.proc = None
        self.agent = None
        self.qmp = None
        self.ready_seconds = None  # QEMU start -> agent ready
        self._disks = {}           # serial -> (node name, device id)
        self._next_disk = 0
        self._rundir = None
        self._died_before_console = False
        self._qemu_output = ""

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self):
        try:
            self.boot()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def boot(self):
        """Boot; a QEMU that dies before the guest's first console line is
        started again, once, and says so (stderr and BOOT_RETRIES). Any
        other failure, or a second early death, raises VMError."""
        try:
            self._boot_once()
        except VMError as e:
            if not self._died_before_console:
                raise
            note = (f"VM: QEMU exited before the guest's first console line; "
                    f"booting again, once. {str(e).splitlines()[0]}\n"
                    f"{self._qemu_output.strip()[-2000:]}")
            BOOT_RETRIES.append(note)
            print(note, file=sys.__stderr__, flush=True)
            self.close()
            self._boot_once()

    def _boot_once(self):
        self._died_before_console = False
        self._qemu_output = ""
        assets = prepare()
        # Sockets live in a short /tmp path: unix socket paths are limited
        # to 108 bytes and the repo may be checked out anywhere.
        self._rundir = Path(tempfile.mkdtemp(prefix="flexvol-vm-"))
        start = time.monotonic()
        deadline = start + BOOT_TIMEOUT
        with open(self._rundir / "qemu.log", "wb") as qemu_log:
            self.proc = subprocess.Popen(
                self._qemu_argv(assets), stdin=subprocess.DEVNULL,
                stdout=qemu_log, stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent)
        try:
            self.agent = LineSocket(self._rundir / "agent.sock", deadline, self._alive)
            self.qmp = QMP(self._rundir / "qmp.sock", deadline, self._alive)
        except VMError as e:
            self._fail(str(e))
        hello = self.agent.recv(deadline)
        if not (hello and hello.get("ready")):
            self._fail(f"guest not ready within {BOOT_TIMEOUT} s"
                       if time.monotonic() > deadline else "guest stopped during boot")
        self.ready_seconds = time.monotonic() - start

    def _alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _kernel_cmdline(self, assets):
        if any(c.isspace() for c in str(REPO)):
            raise VMError(f"VM setup: the repo path {REPO} has white space, "
                          f"which the kernel command line cannot carry")
        return " ".join([
            "console=ttyS0", "quiet",
            # No MSI/MSI-X: QEMU 7.2's TCG with -smp 2 can abort at boot on a
            # vCPU's write to a virtio device's MSI-X table
            # (hw/pci/msix.c:218 msix_table_mmio_write: Assertion failed;
            # about 1 boot in 7 on a fresh CI host). Legacy INTx interrupts
            # never touch the table; virtio and ACPI hot-plug work the same.
            "pci=nomsi",
            # A panic ends QEMU (with -no-reboot) instead of hanging it.
            "panic=-1",
            # Drivers for emulated PC parts no test uses; probing them costs
            # time under TCG.
            "modprobe.blacklist=floppy,ata_piix,ata_generic,pcspkr",
            # Read by the guest's init scripts (unknown kernel parameters
            # reach init as environment variables).
            f"vm_stage2={GUEST_DIR / 'init.sh'}",
            f"vm_repo={REPO}",
            f"vm_kdir={assets.kernel.root}",
            f"vm_udev={assets.udev}",
            f"vm_modules={','.join(self.extra_modules)}",
        ])

    def _qemu_argv(self, assets):
        run = self._rundir
        return [
            "qemu-system-x86_64", "-accel", "tcg",  # /dev/kvm hangs here
            # "pc": ACPI PCI hot-plug on the root bus, for attach_disk.
            # No PS/2, SMBus or VMware port: less to probe at boot.
            "-machine", "pc,i8042=off,smbus=off,vmport=off",
            # rdrand: the kernel trusts it and has its entropy at once;
            # without it, the first random read (python's start-up) makes
            # the kernel gather jitter entropy, which spins for seconds
            # under TCG. -svm: keeps udev from loading kvm for nothing.
            "-cpu", "qemu64,-svm,+rdrand",
            "-m", str(self.memory_mb), "-smp", "2",
            "-nodefaults", "-no-user-config", "-display", "none",
            "-no-reboot", "-nic", "none",
            "-kernel", str(assets.kernel.vmlinux),
            "-initrd", str(assets.initramfs),
            "-append", self._kernel_cmdline(assets),
            "-serial", f"file:{run / 'console.log'}",
            "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,"
                       "readonly=on,multidevs=remap",
            "-device", "virtio-serial-pci",
            "-chardev", f"socket,id=agent,path={run / 'agent.sock'},server=on,wait=off",
            "-device", f"virtserialport,chardev=agent,name={AGENT_PORT}",
            "-qmp", f"unix:{run / 'qmp.sock'},server=on,wait=off",
        ]

    def close(self):
        """Power the guest off (kill it if it does not go) and clean up."""
        if self.agent:
            self.agent.close()  # the agent sees EOF; init.sh powers off
            self.agent = None
        if self.qmp:
            self.qmp.close()
            self.qmp = None
        if self.proc:
            try:
                self.proc.wait(SHUTDOWN_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self._rundir:
            shutil.rmtree(self._rundir, ignore_errors=True)
            self._rundir = None

    # -- diagnostics -------------------------------------------------------

    def _read_log(self, name):
        if self._rundir is None:
            return ""
        try:
            return (self._rundir / name).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def console_log(self):
        """The guest's serial console so far (init's messages, kernel
        warnings and panics)."""
        return self._read_log("console.log")

    def _fail(self, what):
        """Kill the guest and raise VMError with the console tail."""
        exited = self.proc is not None and self.proc.poll() is not None
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        tail = "\n".join(self.console_log().splitlines()[-CONSOLE_TAIL_LINES:])
        qemu = self._read_log("qemu.log").strip()
        # QEMU itself gone with nothing on the console: the guest never ran
        # (boot() may try once more); a timeout or a guest that printed is not that.
        self._died_before_console = exited and not self.console_log().strip()
        self._qemu_output = qemu
        raise VMError(f"{what}\n--- QEMU output ---\n{qemu}\n"
                      f"--- console (last {CONSOLE_TAIL_LINES} lines) ---\n{tail}")

    # -- commands ------------------------------------------------------------

    def run(self, argv, timeout=300, cwd=REPO, env=None):
        """Run argv (no shell) in the guest as root.

        Returns (returncode, combined stdout+stderr). A command that outlives
        `timeout` is killed and raises VMError, as does a guest that stops
        answering (the guest is then killed).
        """
        if isinstance(argv, str) or not all(isinstance(a, str) for a in argv):
            raise TypeError("argv must be a list of str")
        if not self._alive():
            self._fail(f"cannot run {argv!r}: the guest is not running")
        self.agent.send({"argv": list(argv), "cwd": str(cwd),
                         "env": dict(env or {}), "timeout": timeout})
        deadline = time.monotonic() + timeout + REPLY_GRACE
        reply = self.agent.recv(deadline)
        if reply is None:
            self._fail(f"guest did not answer {argv!r} within {timeout} s"
                       if time.monotonic() > deadline else
                       f"guest stopped while running {argv!r}")
        if reply["timed_out"]:
            raise VMError(f"{argv!r} timed out after {timeout} s in the guest; "
                          f"output so far:\n{reply['output'][-4000:]}")
        return reply["rc"], reply["output"]

    # -- disks -------------------------------------------------------------

    def attach_disk(self, image_path, serial):
        """Hot-plug a raw image as a virtio-blk disk, as a cloud attaches a
        volume: the guest sees /dev/vdX and udev makes
        /dev/disk/by-id/virtio-<serial>."""
        if len(serial.encode()) > VIRTIO_SERIAL_MAX:
            raise ValueError(f"virtio-blk serial {serial!r} is over "
                             f"{VIRTIO_SERIAL_MAX} bytes")
        if serial in self._disks:
            raise ValueError(f"a disk with serial {serial!r} is attached")
        node, dev = f"node{self._next_disk}", f"disk{self._next_disk}"
        self._next_disk += 1
        self.qmp.command("blockdev-add", **{
            "node-name": node, "driver": "raw",
            "file": {"driver": "file", "filename": str(Path(image_path).resolve())}})
        try:
            self.qmp.command("device_add", driver="virtio-blk-pci", id=dev,
                             drive=node, serial=serial)
        except VMError:
            self.qmp.command("blockdev-del", **{"node-name": node})
            raise
        self._disks[serial] = (node, dev)

    def detach_disk(self, serial, timeout=60):
        """Unplug the disk; returns once the guest has let go of it."""
        node, dev = self._disks[serial]
        self.qmp.command("device_del", id=dev)
        # device_del only asks: the guest's ACPI eject handling answers, and
        # only then is the device gone and its image free.
        self.qmp.wait_event("DEVICE_DELETED", timeout, device=dev)
        self.qmp.command("blockdev-del", **{"node-name": node})
        del self._disks[serial]

    def resize_disk(self, serial, size_bytes):
        """Grow an attached disk and tell the guest, as a cloud does when it
        extends an in-use volume (QMP block_resize; grows the image too)."""
        node, _ = self._disks[serial]
        self.qmp.command("block_resize", **{"node-name": node, "size": size_bytes})
