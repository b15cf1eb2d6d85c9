"""Shared machinery for the loopback cloud fakes (openstack.py, gce.py).

What lives here, so the two fakes share it instead of copying it:

* HTTP plumbing: a ThreadingHTTPServer on 127.0.0.1 started in a background
  thread, a small Request/Response model, regex routing, JSON helpers.
* BaseFake: start/stop, the request log, fault injection, token store,
  background scheduler for asynchronous state changes, and the admin API under
  /_fake/... (seed, state, requests, faults, config).
* Node backends ("the disk appears on the node"): NodeBackend, HostLoopNode
  (real loop devices plus fake /dev/disk/by-id and /sys trees) and VMNode.
* A CLI runner used by both fakes (`--port-file F`).
* A tiny HTTP client (`call`) for tests that talk to the fakes.

Only the Python standard library is used here.
"""

import argparse
import base64
import collections
import datetime
import heapq
import http
import http.server
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid

ADMIN_PREFIX = "/_fake/"
GIB = 1 << 30

# Passed as `node=` when seeding a server/instance: use the fake's default node
# backend. A string (not an object() sentinel) so that it compares equal even
# if this module gets imported twice under different names.
DEFAULT_NODE = "default"


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

def new_uuid():
    return str(uuid.uuid4())


def new_hex(n=32):
    return secrets.token_hex(n // 2)


def iso_utc(ts, fmt="%Y-%m-%dT%H:%M:%S.%fZ"):
    """Format an epoch timestamp in UTC (default: Keystone's expires_at form)."""
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime(fmt)


def b64url_decode(text):
    text = text + "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(text.encode("ascii"))


def b64url_encode(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# Query parameters whose values must never reach the request log.
_SECRET_QUERY_KEYS = {"access_token", "assertion", "password", "secret", "key", "token"}


def redact_path(raw_path):
    """Path+query as received, with secret-looking query values replaced."""
    split = urllib.parse.urlsplit(raw_path)
    if not split.query:
        return raw_path
    pairs = urllib.parse.parse_qsl(split.query, keep_blank_values=True)
    clean = [(k, "REDACTED" if k.lower() in _SECRET_QUERY_KEYS else v) for k, v in pairs]
    return split.path + "?" + urllib.parse.urlencode(clean)


# --------------------------------------------------------------------------
# Request / Response model
# --------------------------------------------------------------------------

class ApiError(Exception):
    """Raised by route handlers; each fake renders it in its cloud's error shape.

    `reason` is a cloud-specific hint (a GCE error reason, ...); `headers` are
    added to the error response (e.g. Retry-After).
    """

    def __init__(self, status, message, reason=None, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason
        self.headers = headers or {}


class Request:
    def __init__(self, method, raw_path, headers, body):
        self.method = method
        self.raw_path = raw_path
        split = urllib.parse.urlsplit(raw_path)
        self.path = urllib.parse.unquote(split.path)
        self.query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        self.headers = headers          # case-insensitive (email.message.Message)
        self.body = body
        self.service = None             # set by the router, e.g. "nova"
        self.log = {}                   # extra request-log fields (never secrets)
        self.response_headers = {}      # merged into whatever response is sent

    def arg(self, name, default=None):
        values = self.query.get(name)
        return values[0] if values else default

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def json(self):
        """The body as JSON; ApiError(400) when it is not valid JSON."""
        try:
            return json.loads(self.body.decode("utf-8") or "null")
        except (UnicodeDecodeError, ValueError) as exc:
            raise ApiError(400, f"Malformed request body: {exc}", reason="parseError")

    def form(self):
        return dict(urllib.parse.parse_qsl(self.body.decode("utf-8", "replace"),
                                           keep_blank_values=True))


class Response:
    def __init__(self, status, body=b"", headers=None):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


def json_response(status, obj, headers=None):
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    return Response(status, json.dumps(obj).encode("utf-8"), h)


def text_response(status, text, content_type="text/plain", headers=None):
    h = {"Content-Type": content_type}
    h.update(headers or {})
    return Response(status, text.encode("utf-8"), h)


class Route:
    def __init__(self, method, pattern, handler, service):
        self.method = method
        self.regex = re.compile(pattern)
        self.handler = handler
        self.service = service


# --------------------------------------------------------------------------
# Request log
# --------------------------------------------------------------------------

class RequestLog:
    """Method, path, status and timestamp of every API request (admin excluded).

    Bodies are never stored; handlers may add non-secret fields through
    `req.log` (e.g. {"auth": {"method": "password", "ok": True}}).
    """

    def __init__(self, maxlen=20000):
        self._lock = threading.Lock()
        self._entries = collections.deque(maxlen=maxlen)
        self._seq = itertools.count(1)

    def add(self, req, status, started, duration):
        entry = {"seq": next(self._seq), "time": started, "method": req.method,
                 "path": redact_path(req.raw_path), "status": status,
                 "service": req.service, "duration": round(duration, 4)}
        entry.update(req.log)
        with self._lock:
            self._entries.append(entry)

    def entries(self, since=0, method=None, path=None, service=None):
        """Entries with seq > since; `path` is a regex searched in the path."""
        with self._lock:
            items = list(self._entries)
        rx = re.compile(path) if path else None
        return [dict(e) for e in items
                if e["seq"] > since
                and (method is None or e["method"] == method)
                and (service is None or e["service"] == service)
                and (rx is None or rx.search(e["path"]))]

    def clear(self):
        with self._lock:
            self._entries.clear()


# --------------------------------------------------------------------------
# Fault injection
# --------------------------------------------------------------------------

class Fault:
    """One armed fault. `count` is the number of uses left (None = forever)."""

    _ids = itertools.count(1)

    def __init__(self, spec):
        self.spec = dict(spec)
        self.id = str(next(self._ids))
        self.kind = spec["kind"]
        self.count = spec.get("count")
        self.match = re.compile(spec.get("match") or "")
        self.method = spec.get("method")
        self.target = spec.get("target")
        self.phase = spec.get("phase", "before")

    def get(self, key, default=None):
        return self.spec.get(key, default)

    def to_json(self):
        out = dict(self.spec)
        out.update(id=self.id, remaining=self.count)
        return out


class FaultInjector:
    """Armed faults, consumed first-match-first in arming order.

    Request-level kinds (handled generically by BaseFake for every API path):
      status  {"status": 500, "message"?, "reason"?, "retry_after"?}
      delay   {"seconds": 2.0}     slow response
      hang    {}                   no answer until released or cleared
    All take "match" (regex searched in the raw path), "method", "count" and
    "phase": "before" (default: fault instead of/before processing) or "after"
    (the request takes effect, then the fault shapes the answer; e.g. a lost
    response after a successful attach).

    Domain kinds (stuck_attaching, operation_error, ...) are declared by each
    fake and consumed with take(kind, target).
    """

    REQUEST_KINDS = ("status", "delay", "hang")

    def __init__(self, domain_kinds=()):
        self.kinds = set(self.REQUEST_KINDS) | set(domain_kinds)
        self._lock = threading.Lock()
        self._faults = []
        self._waiters = set()   # Events of requests currently delayed/hung

    def add(self, spec):
        kind = spec.get("kind")
        if kind not in self.kinds:
            raise ValueError(f"unknown fault kind {kind!r}; known: {sorted(self.kinds)}")
        if kind == "status" and not isinstance(spec.get("status"), int):
            raise ValueError("status fault needs an integer 'status'")
        if spec.get("phase", "before") not in ("before", "after"):
            raise ValueError("phase must be 'before' or 'after'")
        try:
            fault = Fault(spec)
        except re.error as exc:
            raise ValueError(f"bad match regex: {exc}")
        with self._lock:
            self._faults.append(fault)
        return fault

    def _take(self, pred):
        with self._lock:
            for fault in self._faults:
                if pred(fault):
                    if fault.count is not None:
                        fault.count -= 1
                        if fault.count <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def take_request_fault(self, method, raw_path):
        return self._take(lambda f: f.kind in self.REQUEST_KINDS
                          and (f.method is None or f.method == method)
                          and f.match.search(raw_path))

    def take(self, kind, target=None, **attrs):
        """Consume one use of a domain fault aimed at `target` (or at anything).

        Extra `attrs` filter on spec keys the fault sets (a fault without the
        key matches any value), e.g. take("operation_error", disk, operation="attachDisk").
        """
        return self._take(lambda f: f.kind == kind
                          and (f.target is None or f.target == target)
                          and all(f.get(k) in (None, v) for k, v in attrs.items()))

    def active(self, kind, target=None):
        """Like take() but does not consume (for state that persists, e.g. 'stuck')."""
        with self._lock:
            return any(f.kind == kind and (f.target is None or f.target == target)
                       for f in self._faults)

    def list(self):
        with self._lock:
            return [f.to_json() for f in self._faults]

    def remove(self, fault_id):
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if f.id != fault_id]
            return len(self._faults) != before

    def clear(self):
        with self._lock:
            self._faults = []
        self.release()

    def wait(self, seconds=None):
        """Block a request thread for `seconds` (None = until release())."""
        ev = threading.Event()
        with self._lock:
            self._waiters.add(ev)
        try:
            ev.wait(seconds)
        finally:
            with self._lock:
                self._waiters.discard(ev)

    def release(self):
        """Let every currently delayed or hung request continue."""
        with self._lock:
            waiters, self._waiters = self._waiters, set()
        for ev in waiters:
            ev.set()

    def hung_count(self):
        with self._lock:
            return len(self._waiters)


# --------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------

class TokenStore:
    """Bearer tokens with an expiry; lookups of unknown/expired tokens give None."""

    def __init__(self):
        self._lock = threading.Lock()
        self._tokens = {}

    def issue(self, lifetime, prefix="", **info):
        now = time.time()
        token = prefix + secrets.token_urlsafe(32)
        record = dict(info, issued_at=now, expires_at=now + lifetime)
        with self._lock:
            self._tokens[token] = record
        return token, record

    def lookup(self, token):
        with self._lock:
            record = self._tokens.get(token or "")
        if record is None or record["expires_at"] <= time.time():
            return None
        return record

    def issued(self):
        """Every token issued so far, expired ones included (e.g. to check that
        none of them leaks into logs or driver output)."""
        with self._lock:
            return list(self._tokens)

    def expire_all(self):
        now = time.time()
        with self._lock:
            for record in self._tokens.values():
                record["expires_at"] = min(record["expires_at"], now)


# --------------------------------------------------------------------------
# Background scheduler (asynchronous cloud state changes)
# --------------------------------------------------------------------------

class Scheduler:
    """Runs callables after a delay on one background thread.

    Cloud state machines (volume attaching -> in-use, operation PENDING ->
    RUNNING -> DONE) advance here so that they progress even when nobody polls.
    """

    def __init__(self, on_error):
        self._on_error = on_error
        self._cond = threading.Condition()
        self._heap = []
        self._seq = itertools.count()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="fake-scheduler", daemon=True)
        self._thread.start()

    def call_later(self, delay, fn, *args):
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + max(0.0, delay), next(self._seq), fn, args))
            self._cond.notify()

    def _run(self):
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                if self._stopped:
                    return
                _, _, fn, args = heapq.heappop(self._heap)
            try:
                fn(*args)
            except Exception:   # keep the scheduler alive; surface via fake.errors
                self._on_error(traceback.format_exc())

    def stop(self):
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join(timeout=5)


# --------------------------------------------------------------------------
# Node backends: "the disk appears on the node"
# --------------------------------------------------------------------------

def _safe_name(text):
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


class NodeBackend:
    """Where attached cloud disks show up.

    The fakes call plug() when an attach completes and unplug() when a detach
    completes. `links` are the /dev/disk/by-id names udev would create on a
    real VM of that cloud; the fake passes them so one backend serves both
    clouds. Images live in `image_dir`, one sparse file per disk, and are kept
    across detach/attach so data survives.
    """

    def __init__(self, image_dir=None):
        self.image_dir = image_dir or tempfile.mkdtemp(prefix="flexvol-images-")
        os.makedirs(self.image_dir, exist_ok=True)

    def image_path(self, disk_id):
        return os.path.join(self.image_dir, _safe_name(disk_id) + ".img")

    def prepare_image(self, disk_id, size_bytes):
        """Create the sparse image (or grow it, never shrink) and return its path."""
        path = self.image_path(disk_id)
        with open(path, "ab") as f:
            if os.fstat(f.fileno()).st_size < size_bytes:
                f.truncate(size_bytes)
        return path

    def plug(self, disk_id: str, serial: str, image_path: str, links=()) -> None:
        raise NotImplementedError

    def unplug(self, disk_id: str, serial: str) -> None:
        raise NotImplementedError

    def resize(self, disk_id, size_bytes):
        """The cloud grew the disk (extend/resize)."""
        self.prepare_image(disk_id, size_bytes)

    def close(self):
        """Release everything this backend holds (tests call it in teardown)."""


class HostLoopNode(NodeBackend):
    """Disks appear as real loop devices on this host.

    plug(): `losetup --find --show <image>`, then what udev would create on a
    cloud VM: `device_dir/<link>` -> /dev/loopN for each link, and
    `sysfs_root/block/loopN/{serial,size}` so drivers can test their
    /sys/block/*/serial fallback against a configurable sysfs root.
    unplug(): removes links and the sysfs entry, detaches the loop device,
    keeps the image. Needs root and /dev/loop-control.
    """

    def __init__(self, device_dir, sysfs_root, image_dir=None, losetup="losetup"):
        super().__init__(image_dir)
        self.device_dir = device_dir
        self.sysfs_root = sysfs_root
        self.losetup = losetup
        self._lock = threading.Lock()     # losetup --find is racy between callers
        self._plugged = {}                # disk_id -> {"dev", "links", "serial"}
        os.makedirs(device_dir, exist_ok=True)
        os.makedirs(os.path.join(sysfs_root, "block"), exist_ok=True)

    @staticmethod
    def available():
        """(ok, reason): can this host create loop devices?"""
        if not os.path.exists("/dev/loop-control"):
            return False, "/dev/loop-control is missing"
        if os.geteuid() != 0:
            return False, "loop devices need root"
        if shutil.which("losetup") is None:
            return False, "losetup not installed"
        return True, ""

    def _run(self, *args):
        res = subprocess.run([self.losetup, *args], capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"losetup {' '.join(args)} failed: {res.stderr.strip()}")
        return res.stdout.strip()

    def _sysfs_dir(self, dev):
        return os.path.join(self.sysfs_root, "block", os.path.basename(dev))

    def _write_sysfs(self, dev, serial, size_bytes):
        d = self._sysfs_dir(dev)
        os.makedirs(d, exist_ok=True)
        # Real sysfs attributes end in a newline; drivers must strip it.
        with open(os.path.join(d, "serial"), "w") as f:
            f.write(serial + "\n")
        with open(os.path.join(d, "size"), "w") as f:
            f.write(f"{size_bytes // 512}\n")

    def plug(self, disk_id, serial, image_path, links=()):
        with self._lock:
            if disk_id in self._plugged:      # already visible: idempotent
                return
            dev = self._run("--find", "--show", image_path)
            # Record at once so close() detaches it even if the rest fails.
            self._plugged[disk_id] = {"dev": dev, "links": list(links), "serial": serial}
            self._write_sysfs(dev, serial, os.path.getsize(image_path))
            for name in links:
                link = os.path.join(self.device_dir, name)
                if os.path.lexists(link):
                    os.unlink(link)
                os.symlink(dev, link)

    def unplug(self, disk_id, serial=None):
        with self._lock:
            entry = self._plugged.pop(disk_id, None)
            if entry is None:
                return
            for name in entry["links"]:
                link = os.path.join(self.device_dir, name)
                if os.path.islink(link) and os.readlink(link) == entry["dev"]:
                    os.unlink(link)
            shutil.rmtree(self._sysfs_dir(entry["dev"]), ignore_errors=True)
            # A device still mounted/open is only marked autoclear by the
            # kernel; losetup -d still succeeds.
            self._run("-d", entry["dev"])

    def resize(self, disk_id, size_bytes):
        super().resize(disk_id, size_bytes)
        with self._lock:
            entry = self._plugged.get(disk_id)
            if entry:
                self._run("-c", entry["dev"])       # re-read capacity
                self._write_sysfs(entry["dev"], entry["serial"],
                                  os.path.getsize(self.image_path(disk_id)))

    def device_of(self, disk_id):
        """/dev/loopN for a plugged disk, else None (for tests)."""
        with self._lock:
            entry = self._plugged.get(disk_id)
            return entry["dev"] if entry else None

    def close(self):
        for disk_id in list(self._plugged):
            try:
                self.unplug(disk_id)
            except Exception:
                traceback.print_exc()


class VMNode(NodeBackend):
    """Disks are hot-plugged into a test VM (tests/vm/vm.py).

    The VM object provides attach_disk(image_path, serial) and
    detach_disk(serial); udev inside the guest makes the by-id links, so the
    `links` hint is not used.
    """

    def __init__(self, vm, image_dir=None):
        super().__init__(image_dir)
        self.vm = vm
        self._serials = {}

    def plug(self, disk_id, serial, image_path, links=()):
        self.vm.attach_disk(image_path, serial)
        self._serials[disk_id] = serial

    def unplug(self, disk_id, serial=None):
        serial = self._serials.pop(disk_id, serial)
        if serial is not None:
            self.vm.detach_disk(serial)


class RecordingNode(NodeBackend):
    """Records plug/unplug calls; for tests that need no real devices."""

    def __init__(self, image_dir=None):
        super().__init__(image_dir)
        self.calls = []
        self.plugged = {}

    def plug(self, disk_id, serial, image_path, links=()):
        self.calls.append(("plug", disk_id, serial, list(links)))
        self.plugged[disk_id] = {"serial": serial, "links": list(links), "image": image_path}

    def unplug(self, disk_id, serial=None):
        self.calls.append(("unplug", disk_id, serial))
        self.plugged.pop(disk_id, None)


# --------------------------------------------------------------------------
# HTTP server
# --------------------------------------------------------------------------

class _Handler(http.server.BaseHTTPRequestHandler):
    # HTTP/1.1 keep-alive, as libcurl expects; every response carries a
    # Content-Length. Expect: 100-continue is answered by the base class.
    protocol_version = "HTTP/1.1"
    server_version = "flexvol-fake/1.0"
    timeout = 300        # idle keep-alive connections do not hold threads forever

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass        # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self):
        fake = self.server.fake
        started = time.time()
        req = Request(self.command, self.path, self.headers, self._read_body())
        resp = fake.handle(req)
        resp.headers.update(req.response_headers)
        # Log before answering: a client that reads the log right after its
        # call must find that call there.
        if not req.path.startswith(ADMIN_PREFIX):
            fake.log.add(req, resp.status, started, time.time() - started)
        try:
            self.send_response(resp.status)
            for key, value in resp.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(resp.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(resp.body)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True    # client gave up (e.g. after a hang)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):
        if self.server.fake.verbose:
            sys.stderr.write(f"[{self.server.fake.name}] {self.address_string()} {fmt % args}\n")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


# --------------------------------------------------------------------------
# BaseFake
# --------------------------------------------------------------------------

class BaseFake:
    """Common behaviour of FakeOpenStack and FakeGCE.

    Subclasses: set `name`, `domain_fault_kinds`, `config_keys`; register
    routes with add_route(); implement error_response(), state() and
    seeders()/updaters() (admin kinds -> methods).
    """

    name = "fake"
    domain_fault_kinds = ()
    config_keys = ("token_lifetime",)

    def __init__(self, host="127.0.0.1", port=0, node=None, token_lifetime=3600,
                 verbose=False):
        self.host = host
        self._want_port = port
        self.node = node                  # default NodeBackend (may be None)
        self.token_lifetime = token_lifetime
        self.verbose = verbose
        self.lock = threading.RLock()     # guards all cloud state
        self.changed = threading.Condition(self.lock)   # notified on state changes
        self.log = RequestLog()
        self.faults = FaultInjector(self.domain_fault_kinds)
        self.tokens = TokenStore()
        self.errors = []                  # tracebacks from background work
        self.scheduler = Scheduler(self._record_error)
        self._routes = []
        self._httpd = None
        self._thread = None
        self._add_admin_routes()

    # -- lifecycle ---------------------------------------------------------

    def start(self):
        self._httpd = _Server((self.host, self._want_port), _Handler)
        self._httpd.fake = self
        # A short poll interval keeps stop() fast (shutdown waits for one poll).
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        name=f"{self.name}-http", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self.faults.release()             # hung requests must not block shutdown
        self.scheduler.stop()
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        return self._httpd.server_address[1]

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    def _record_error(self, text):
        self.errors.append(text)
        if self.verbose:
            sys.stderr.write(text)

    # -- routing -----------------------------------------------------------

    def add_route(self, method, pattern, handler, service):
        """`pattern` is matched against the whole path; named groups become kwargs."""
        self._routes.append(Route(method, pattern, handler, service))

    def route_path(self, req):
        """Hook: the path used for routing (OpenStack strips endpoint prefixes)."""
        return req.path

    def handle(self, req):
        """Serve one request: route it, apply any armed fault, call the handler.

        Routing comes first so that an injected error is rendered in the
        shape of the service it hits (Keystone vs Nova, metadata vs compute).
        The admin API is never faulted."""
        admin = req.path.startswith(ADMIN_PREFIX)
        route, args = self._match(req, req.path if admin else self.route_path(req))
        fault = None if admin else self.faults.take_request_fault(req.method, req.raw_path)
        if fault is None:
            return self._call(req, route, args)
        req.log["fault"] = fault.id
        if fault.phase == "before":
            early = self._apply_fault(req, fault)
            if early is not None:
                return early
        resp = self._call(req, route, args)
        if fault.phase == "after":
            late = self._apply_fault(req, fault)
            if late is not None:
                return late
        return resp

    def _apply_fault(self, req, fault):
        if fault.kind == "delay":
            self.faults.wait(float(fault.get("seconds", 1.0)))
            return None
        if fault.kind == "hang":
            self.faults.wait(fault.get("seconds"))      # None: until released
            return None
        headers = {}
        if fault.get("retry_after") is not None:
            headers["Retry-After"] = str(fault.get("retry_after"))
        status, reason = fault.get("status"), fault.get("reason")
        err = ApiError(status, fault.get("message") or self.default_fault_message(status, reason),
                       reason=reason, headers=headers)
        return self._render_error(req, err)

    def default_fault_message(self, status, reason):
        """Message of an injected status fault that names none."""
        try:
            return f"Injected fault: {http.HTTPStatus(status).phrase}"
        except ValueError:
            return "Injected fault"

    def _match(self, req, path):
        """(route, kwargs), or (None, ApiError 404/405). Sets req.service."""
        req.service = "admin" if path.startswith(ADMIN_PREFIX) else None
        allowed = False
        for route in self._routes:
            m = route.regex.fullmatch(path)
            if m:
                req.service = route.service
                if route.method == req.method:
                    return route, m.groupdict()
                allowed = True
        if allowed:
            return None, ApiError(405, "Method not allowed")
        return None, ApiError(404, f"The resource could not be found: {path}")

    def _call(self, req, route, args):
        if route is None:
            return self._render_error(req, args)
        try:
            return route.handler(req, **args)
        except ApiError as err:
            return self._render_error(req, err)
        except Exception:
            self._record_error(traceback.format_exc())
            return self._render_error(req, ApiError(500, "Internal fake error"))

    def _render_error(self, req, err):
        if req.service == "admin":
            resp = json_response(err.status, {"error": err.message})
        else:
            resp = self.error_response(req, err)
        resp.headers.update(err.headers)
        return resp

    def error_response(self, req, err):
        """Render an ApiError in the cloud's wire shape (per req.service)."""
        raise NotImplementedError

    # -- node plumbing -----------------------------------------------------

    def node_for(self, node_setting):
        """Resolve a server's/instance's node setting to a backend or None."""
        return self.node if node_setting == DEFAULT_NODE else node_setting

    def plug_disk(self, node, disk_id, serial, size_bytes, links):
        """Make a disk appear on `node`. Call WITHOUT self.lock held: a VM
        hot-plug can take seconds and API polls must keep being answered."""
        try:
            node.plug(disk_id, serial, node.prepare_image(disk_id, size_bytes), links=links)
        except Exception:
            self._record_error(traceback.format_exc())

    def unplug_disk(self, node, disk_id, serial):
        try:
            node.unplug(disk_id, serial)
        except Exception:
            self._record_error(traceback.format_exc())

    def resize_disk(self, node, disk_id, size_bytes):
        try:
            node.resize(disk_id, size_bytes)
        except Exception:
            self._record_error(traceback.format_exc())

    # -- public Python API shared by both fakes ----------------------------

    def request_log(self, since=0, method=None, path=None, service=None):
        return self.log.entries(since=since, method=method, path=path, service=service)

    def clear_request_log(self):
        self.log.clear()

    def auth_count(self, ok=None):
        """How many authentications (token issues) the log shows."""
        return sum(1 for e in self.log.entries()
                   if "auth" in e and (ok is None or e["auth"].get("ok") == ok))

    def add_fault(self, spec=None, **kw):
        """Arm a fault (see FaultInjector); returns its JSON with an "id".
        The kind "expire_tokens" is applied at once instead of being armed."""
        spec = dict(spec or {}, **kw)
        if spec.get("kind") == "expire_tokens":
            self.expire_tokens()
            return {"kind": "expire_tokens", "applied": True}
        return self.faults.add(spec).to_json()

    def list_faults(self):
        return self.faults.list()

    def remove_fault(self, fault_id):
        found = self.faults.remove(str(fault_id))
        self.faults_changed()
        return found

    def clear_faults(self):
        self.faults.clear()
        self.faults_changed()

    def release_hung(self):
        self.faults.release()

    def faults_changed(self):
        """Hook: a fault was removed (stuck state machines may resume)."""

    def expire_tokens(self):
        self.tokens.expire_all()

    def configure(self, **knobs):
        for key, value in knobs.items():
            if key not in self.config_keys:
                raise ValueError(f"unknown config key {key!r}; known: {list(self.config_keys)}")
            setattr(self, key, value)
        return {k: getattr(self, k) for k in self.config_keys}

    def seeders(self):
        """{admin kind: method(**record) -> dict} for POST /_fake/<kind>."""
        return {}

    def updaters(self):
        """{admin kind: method(id, **fields) -> dict} for PATCH /_fake/<kind>/<id>."""
        return {}

    def seed(self, data):
        """Bulk seed: {"projects": [{...}], "users": [...], ...} in dict order."""
        seeders = self.seeders()
        created = {}
        for kind, records in data.items():
            if kind not in seeders:
                raise ValueError(f"unknown seed kind {kind!r}; known: {list(seeders)}")
            created[kind] = [seeders[kind](**rec) for rec in records]
        return created

    def state(self):
        raise NotImplementedError

    # -- admin HTTP API ----------------------------------------------------

    def _add_admin_routes(self):
        p = "/_fake"
        routes = [
            ("GET", p + "/state", lambda req: json_response(200, self.state())),
            ("GET", p + "/requests", self._admin_requests),
            ("DELETE", p + "/requests", lambda req: self._ok(self.clear_request_log())),
            ("GET", p + "/faults", lambda req: json_response(200, {"faults": self.list_faults()})),
            ("POST", p + "/faults", lambda req: json_response(201, self.add_fault(self._admin_body(req)))),
            ("DELETE", p + "/faults", lambda req: self._ok(self.clear_faults())),
            ("POST", p + "/faults/release", lambda req: self._ok(self.release_hung())),
            ("DELETE", p + r"/faults/(?P<fid>[^/]+)", self._admin_remove_fault),
            ("POST", p + "/config", lambda req: json_response(200, self.configure(**self._admin_body(req)))),
            ("POST", p + "/seed", lambda req: json_response(201, self.seed(self._admin_body(req)))),
            ("POST", p + r"/(?P<kind>[a-z_]+)", self._admin_create),
            ("PATCH", p + r"/(?P<kind>[a-z_]+)/(?P<rid>[^/]+)", self._admin_update),
        ]
        for method, pattern, handler in routes:
            self.add_route(method, pattern, self._admin_guard(handler), "admin")

    @staticmethod
    def _admin_guard(handler):
        """Admin errors (bad kwargs/values, unknown ids) become 400/404 JSON."""
        def guarded(req, **kw):
            try:
                return handler(req, **kw)
            except KeyError as exc:
                raise ApiError(404, f"not found: {exc}")
            except (TypeError, ValueError) as exc:
                raise ApiError(400, str(exc))
        return guarded

    @staticmethod
    def _ok(_=None):
        return json_response(200, {"ok": True})

    @staticmethod
    def _admin_body(req):
        body = req.json()
        if not isinstance(body, dict):
            raise ValueError("admin body must be a JSON object")
        return body

    def _admin_requests(self, req):
        entries = self.request_log(since=int(req.arg("since", 0)), method=req.arg("method"),
                                   path=req.arg("path"), service=req.arg("service"))
        return json_response(200, {"requests": entries})

    def _admin_remove_fault(self, req, fid):
        if not self.remove_fault(fid):
            raise KeyError(fid)
        return self._ok()

    def _admin_create(self, req, kind):
        seeders = self.seeders()
        if kind not in seeders:
            raise KeyError(kind)
        return json_response(201, seeders[kind](**self._admin_body(req)))

    def _admin_update(self, req, kind, rid):
        updaters = self.updaters()
        if kind not in updaters:
            raise KeyError(kind)
        return json_response(200, updaters[kind](rid, **self._admin_body(req)))


# --------------------------------------------------------------------------
# CLI runner
# --------------------------------------------------------------------------

def cli_parser(description):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    ap.add_argument("--port-file", help="write the listening port here once ready")
    ap.add_argument("--seed", help="JSON file for POST /_fake/seed, applied before the port file is written")
    ap.add_argument("--token-lifetime", type=float, default=3600)
    ap.add_argument("--device-dir", help="enable HostLoopNode: fake /dev/disk/by-id directory")
    ap.add_argument("--sysfs-root", help="HostLoopNode fake sysfs root (default: <device-dir>/../sys)")
    ap.add_argument("--image-dir", help="HostLoopNode image directory (default: a temp dir)")
    ap.add_argument("--verbose", action="store_true")
    return ap


def cli_node(args):
    if not args.device_dir:
        return None
    sysfs = args.sysfs_root or os.path.join(os.path.dirname(os.path.abspath(args.device_dir)), "sys")
    return HostLoopNode(args.device_dir, sysfs, args.image_dir)


def write_port_file(path, port):
    """Atomically, so a watcher never reads a half-written file."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, path)


def run_cli(fake, args, before_ready=None):
    """Start `fake`, seed it, write the port file, serve until SIGTERM/SIGINT."""
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    fake.start()
    try:
        if args.seed:
            with open(args.seed) as f:
                fake.seed(json.load(f))
        if before_ready:
            before_ready(fake)
        if args.port_file:
            write_port_file(args.port_file, fake.port)
        print(f"{fake.name} fake listening on {fake.url}", flush=True)
        done.wait()
    finally:
        fake.stop()
        if fake.node is not None:
            fake.node.close()


# --------------------------------------------------------------------------
# Minimal HTTP client for tests
# --------------------------------------------------------------------------

class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8")) if self.body else None

    def __repr__(self):
        return f"Reply({self.status}, {self.body[:200]!r})"


def call(method, url, body=None, headers=None, timeout=10, form=None):
    """One HTTP request with urllib; HTTP errors are returned, not raised.

    `body` is sent as JSON, `form` as application/x-www-form-urlencoded.
    """
    hdrs = dict(headers or {})
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
    elif body is not None:
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Reply(resp.status, resp.headers, resp.read())
    except urllib.error.HTTPError as err:
        return Reply(err.code, err.headers, err.read())
