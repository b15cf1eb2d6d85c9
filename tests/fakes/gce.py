#!/usr/bin/python3
"""Loopback fake of the GCE metadata server, OAuth token endpoint and compute v1.

Speaks the wire format of /work/shared/reference/cloud-apis.md Part B:

  GET  /computeMetadata/v1/...           metadata (needs Metadata-Flavor: Google)
  POST /token                            OAuth JWT-bearer grant (service-account key)
  /compute/v1/projects/{p}/zones/{z}/    instances.get, attachDisk, detachDisk,
                                         disks.get, disks.resize,
                                         operations.list (filter: the subset
                                         below), operations.get, operations/{op}/wait
  /compute/v1/projects/{p}/regions/{r}/  regionDisks.get (regional PDs: "region" and
                                         "replicaZones" instead of "zone"; attachDisk
                                         takes their regions/{r}/disks/{d} source)

Point the driver at: metadata host 127.0.0.1:PORT (GCE_METADATA_HOST),
compute base http://127.0.0.1:PORT/compute/v1/, token_uri http://127.0.0.1:PORT/token.
Run as a CLI: /usr/bin/python3 tests/fakes/gce.py --port-file F [...]

RS256 signatures are verified with python3-cryptography (Debian package,
preinstalled here). Without it, keys are made with the openssl CLI and only
the JWT structure and claims are checked (state()["signature_verification"]).
"""

import functools
import http
import json
import os
import re
import subprocess
import tempfile
import time

try:
    from . import common
except ImportError:             # run as a script: tests/fakes is on sys.path
    import common

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    HAVE_CRYPTO = True
except ImportError:
    HAVE_CRYPTO = False

ApiError = common.ApiError
DEFAULT_NODE = common.DEFAULT_NODE
json_response = common.json_response

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
REAL_TOKEN_URIS = ("https://oauth2.googleapis.com/token", "https://www.googleapis.com/oauth2/v4/token")
COMPUTE = r"/compute/v1/projects/(?P<project>[^/]+)/zones/(?P<zone>[^/]+)"
DEVICE_NAME = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
REGION_COMPUTE = r"/compute/v1/projects/(?P<project>[^/]+)/regions/(?P<region>[^/]+)"
DISK_SOURCE = re.compile(r"(?:^|.*/)(?:projects/(?P<project>[^/]+)/)?(?:zones/(?P<zone>[^/]+)|regions/(?P<region>[^/]+))"
                         r"/disks/(?P<disk>[^/]+)")
PENDING, RUNNING, DONE = "PENDING", "RUNNING", "DONE"
IN_USE = "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE"

# Default `reason` of a synchronous error body per HTTP status.
REASONS = {400: "invalid", 401: "authError", 403: "forbidden", 404: "notFound",
           409: "conflict", 412: "conditionNotMet"}
RATE_REASONS = ("rateLimitExceeded", "userRateLimitExceeded")


def gce_time(ts):
    return common.iso_utc(ts, "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "-00:00"


def region_of(zone):
    """us-central1-a -> us-central1"""
    return zone.rsplit("-", 1)[0]


def regional(region):
    """The key under which a regional disk is stored (zonal disks: their zone)."""
    return f"regions/{region}"


def numeric_id():
    return str(int.from_bytes(os.urandom(8), "big") >> 1)


# --------------------------------------------------------------------------
# RSA / JWT helpers (also used by tests to play the driver's part)
# --------------------------------------------------------------------------

def _openssl(args, data=None):
    return subprocess.run(["openssl", *args], input=data, capture_output=True, check=True).stdout


def generate_rsa_key():
    """(private PEM, public PEM) of a fresh 2048-bit RSA key."""
    if HAVE_CRYPTO:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
        return private.decode(), public.decode()
    private = _openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
    return private.decode(), _openssl(["pkey", "-pubout"], private).decode()


def rs256_sign(private_pem, data):
    if HAVE_CRYPTO:
        key = serialization.load_pem_private_key(private_pem.encode(), password=None)
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as f:
        f.write(private_pem)
        f.flush()
        return _openssl(["dgst", "-sha256", "-sign", f.name], data)


def rs256_verify(public_pem, data, signature):
    """True if valid. Without python3-cryptography: True (structure-only mode)."""
    if not HAVE_CRYPTO:
        return True
    key = serialization.load_pem_public_key(public_pem.encode())
    try:
        key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        return True
    except InvalidSignature:
        return False


def make_jwt(key, scope="https://www.googleapis.com/auth/compute", lifetime=3600, now=None, **claims):
    """A signed JWT-bearer assertion for a service-account key dict, as a driver builds it."""
    now = int(time.time() if now is None else now)
    header = {"alg": "RS256", "typ": "JWT", "kid": key["private_key_id"]}
    body = {"iss": key["client_email"], "scope": scope, "aud": key["token_uri"],
            "iat": now, "exp": now + lifetime}
    body.update(claims)
    signing_input = ".".join(common.b64url_encode(json.dumps(p).encode()) for p in (header, body))
    sig = rs256_sign(key["private_key"], signing_input.encode())
    return signing_input + "." + common.b64url_encode(sig)


class OperationFailed(Exception):
    """Raised while completing an operation: it ends DONE with this error."""

    def __init__(self, code, message, http_status=400):
        super().__init__(message)
        self.code, self.message, self.http_status = code, message, http_status


# --------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------

class FakeGCE(common.BaseFake):
    """Metadata server + OAuth token endpoint + compute v1 on one loopback port.

    op_delay: seconds an operation spends in PENDING and again in RUNNING.
    op_wait_max: longest an operations/{op}/wait call blocks (real: ~2 min).
    in_use_error: "sync" = attaching a disk that is already attached gives a
      synchronous 400 resourceInUseByAnotherResource; "operation" = it gives an
      Operation that ends DONE with RESOURCE_IN_USE_BY_ANOTHER_RESOURCE (both
      happen on real GCE; see reference B2 and C1). Conflicts that arise
      between request and completion always end as operation errors.
    node: default NodeBackend for instances seeded with node="default".
    """

    name = "gce"
    domain_fault_kinds = ("operation_error", "slow_operation", "no_device")
    config_keys = ("token_lifetime", "op_delay", "op_wait_max", "in_use_error")

    def __init__(self, host="127.0.0.1", port=0, node=None, token_lifetime=3600,
                 project="my-project", numeric_project="123456789012",
                 zone="us-central1-a", zones=None, op_delay=0.5, op_wait_max=10.0,
                 in_use_error="sync", verbose=False):
        super().__init__(host, port, node, token_lifetime, verbose)
        self.project, self.numeric_project = project, numeric_project
        self.zone = zone
        self.zones = tuple(zones or (zone,))
        self.op_delay, self.op_wait_max = op_delay, op_wait_max
        self.in_use_error = in_use_error
        self.instances, self.disks = {}, {}       # keyed by (zone, name)
        self.operations, self._op_work = {}, {}   # name -> Operation JSON / pending work
        self.op_list_calls = 0
        self.request_ids = {}                     # requestId -> operation name
        self.service_accounts = {}                # email -> {"public_key", "key_id"}
        self._add_api_routes()

    # ------------------------------------------------------------------
    # Routing and error shapes
    # ------------------------------------------------------------------

    def _add_api_routes(self):
        self.add_route("GET", r"/computeMetadata/v1/(?P<mpath>.*)", self._metadata, "metadata")
        self.add_route("POST", r"/token", self._oauth_token, "oauth")
        inst = COMPUTE + r"/instances/(?P<name>[^/]+)"
        disk = COMPUTE + r"/disks/(?P<name>[^/]+)"
        op = COMPUTE + r"/operations/(?P<name>[^/]+)"
        api = [("GET", inst, self._get_instance),
               ("POST", inst + "/attachDisk", self._attach_disk),
               ("POST", inst + "/detachDisk", self._detach_disk),
               ("GET", disk, self._get_disk),
               ("POST", disk + "/resize", self._resize_disk),
               ("GET", COMPUTE + r"/operations", self._list_operations),
               ("GET", op, self._get_operation),
               ("POST", op + "/wait", self._wait_operation)]
        for method, pattern, fn in api:
            self.add_route(method, pattern, self._api(fn), "compute")
        self.add_route("GET", REGION_COMPUTE + r"/disks/(?P<name>[^/]+)", self._api_regional(self._get_region_disk),
                       "compute")

    def default_fault_message(self, status, reason):
        if reason in RATE_REASONS:
            return "Rate Limit Exceeded"
        return super().default_fault_message(status, reason)

    def error_response(self, req, err):
        if req.service == "metadata":
            return common.text_response(err.status, err.message, "text/html",
                                        {"Metadata-Flavor": "Google"})
        if req.service == "oauth":
            return json_response(err.status, {"error": err.reason or "invalid_request",
                                              "error_description": err.message})
        if err.status == 429:
            # Quota errors of this form carry "status" instead of errors[].
            body = {"error": {"code": 429, "message": err.message, "status": "RESOURCE_EXHAUSTED"}}
            return json_response(429, body)
        reason = err.reason or REASONS.get(err.status, "backendError")
        detail = {"message": err.message, "domain": "usageLimits" if reason in RATE_REASONS else "global",
                  "reason": reason}
        headers = {}
        if err.status == 401:
            detail.update(location="Authorization", locationType="header")
            headers["WWW-Authenticate"] = 'Bearer realm="https://accounts.google.com/"'
        body = {"error": {"code": err.status, "message": err.message, "errors": [detail]}}
        return json_response(err.status, body, headers)

    def _api(self, fn):
        """Bearer token check, then project/zone check, then the handler."""
        def handler(req, project, zone, **kw):
            auth = req.header("Authorization") or ""
            tok = self.tokens.lookup(auth[7:] if auth.startswith("Bearer ") else None)
            if tok is None:
                raise ApiError(401, "Request had invalid authentication credentials. Expected OAuth 2 "
                                    "access token, login cookie or other valid authentication credential.",
                               reason="authError")
            if project != self.project:
                raise ApiError(404, f"The resource 'projects/{project}' was not found")
            if zone not in self.zones:
                raise ApiError(400, f"Invalid value for field 'zone': '{zone}'. Unknown zone.")
            return fn(req, tok, zone, **kw)
        return handler

    def _api_regional(self, fn):
        """The same checks for regions/{r}/...: a region of a known zone."""
        def handler(req, project, region, **kw):
            def zonal(req, tok, zone, **kw2):
                if region not in {region_of(z) for z in self.zones}:
                    raise ApiError(400, f"Invalid value for field 'region': '{region}'. Unknown region.")
                return fn(req, tok, region, **kw2)
            return self._api(zonal)(req, project, self.zones[0], **kw)
        return handler

    # ------------------------------------------------------------------
    # Links and views
    # ------------------------------------------------------------------

    @property
    def link_base(self):
        """selfLinks point at the fake itself, so a driver may follow them."""
        return f"{self.url}/compute/v1/"

    def _path(self, zone, kind=None, name=None):
        """zone: a zone, or regional(r) for a regional resource."""
        if zone.startswith("regions/"):
            path = f"projects/{self.project}/{zone}"
            return f"{path}/{kind}/{name}" if kind else path
        path = f"projects/{self.project}/zones/{zone}"
        return f"{path}/{kind}/{name}" if kind else path

    def _link(self, zone, kind=None, name=None):
        return self.link_base + self._path(zone, kind, name)

    def _instance_view(self, inst):
        disks = [{"kind": "compute#attachedDisk", "type": "PERSISTENT", "mode": "READ_WRITE",
                  "index": 0, "boot": True, "autoDelete": True, "deviceName": "persistent-disk-0",
                  "interface": "SCSI", "source": self._link(inst["zone"], "disks", inst["boot_disk"])}]
        disks += [{"kind": "compute#attachedDisk", "type": "PERSISTENT", "mode": a["mode"],
                   "index": a["index"], "boot": False, "autoDelete": False,
                   "deviceName": a["device"], "interface": "SCSI",
                   "source": self._link(a.get("disk_loc", inst["zone"]), "disks", a["disk"])}
                  for a in inst["attached"] if not a["pending"]]
        return {"kind": "compute#instance", "id": inst["id"], "name": inst["name"],
                "status": "RUNNING", "zone": self._link(inst["zone"]),
                "machineType": self._link(inst["zone"], "machineTypes", "e2-medium"),
                "selfLink": self._link(inst["zone"], "instances", inst["name"]), "disks": disks}

    def _disk_view(self, disk):
        view = {"kind": "compute#disk", "id": disk["id"], "name": disk["name"],
                "zone": self._link(disk["zone"]), "sizeGb": str(disk["size_gb"]),  # int64 as string
                "status": "READY", "type": self._link(disk["zone"], "diskTypes", disk["type"]),
                "selfLink": self._link(disk["zone"], "disks", disk["name"])}
        if disk["zone"].startswith("regions/"):
            # A regional disk (compute v1 regionDisks): region and replicaZones, no zone.
            del view["zone"]
            view["region"] = self._link(disk["zone"])
            view["replicaZones"] = [self._link(z) for z in disk["replica_zones"]]
        users = [self._link(inst["zone"], "instances", inst["name"])
                 for inst, att in self._users(disk) if att is None or not att["pending"]]
        if users:                      # the API omits empty lists
            view["users"] = users
        return view

    # ------------------------------------------------------------------
    # Seeding (Python API and POST /_fake/<kind>)
    # ------------------------------------------------------------------

    def seeders(self):
        return {"instances": self.add_instance, "disks": self.add_disk,
                "service_accounts": self.add_service_account}

    def add_disk(self, name, size_gb=10, zone=None, id=None, type="pd-standard", region=None,
                 replica_zones=None):
        """region: a regional disk (replicated in replica_zones, default the
        region's first two known zones), stored under regional(region)."""
        with self.lock:
            zone = regional(region) if region else (zone or self.zone)
            disk = {"name": name, "id": id or numeric_id(), "zone": zone,
                    "size_gb": int(size_gb), "type": type}
            if region:
                disk["replica_zones"] = list(replica_zones or
                                             [z for z in self.zones if region_of(z) == region][:2])
            self.disks[(zone, name)] = disk
            return self._disk_view(disk)

    def add_instance(self, name, zone=None, id=None, local=False, node=DEFAULT_NODE,
                     service_account=None):
        """node: DEFAULT_NODE, a NodeBackend, or None/False. local: the
        instance the metadata server describes (the node the driver runs on)."""
        with self.lock:
            zone = zone or self.zone
            self.add_disk(name, 10, zone)                     # its boot disk
            inst = {"name": name, "id": id or numeric_id(), "zone": zone, "local": bool(local),
                    "node": node or None, "boot_disk": name, "attached": [],
                    "service_account": service_account or
                    f"{self.numeric_project}-compute@developer.gserviceaccount.com"}
            self.instances[(zone, name)] = inst
            return self._instance_view(inst)

    def add_service_account(self, email=None, public_key_pem=None, key_id=None):
        """Register a service account for the JWT flow. Without a public key a
        key pair is generated and the full JSON key (as Google hands it out,
        token_uri pointing at this fake) is returned. Call after start()."""
        email = email or f"flexvol-test@{self.project}.iam.gserviceaccount.com"
        key_id = key_id or common.new_hex(40)
        private_pem = None
        if public_key_pem is None:
            private_pem, public_key_pem = generate_rsa_key()
        with self.lock:
            self.service_accounts[email] = {"public_key": public_key_pem, "key_id": key_id}
        if private_pem is None:
            return {"client_email": email, "private_key_id": key_id}
        return {"type": "service_account", "project_id": self.project,
                "private_key_id": key_id, "private_key": private_pem, "client_email": email,
                "client_id": numeric_id(), "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": f"{self.url}/token",
                "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
                "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/" + email}

    def write_service_account_key(self, path, email=None):
        """Generate + register a service account and write its JSON key file (0600)."""
        key = self.add_service_account(email)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(key, f, indent=2)
        return key

    def state(self):
        with self.lock:
            return {"project": self.project, "zones": list(self.zones),
                    "instances": [self._instance_view(i) for i in self.instances.values()],
                    "disks": [self._disk_view(d) for d in self.disks.values()],
                    "operations": list(self.operations.values()),
                    "service_accounts": sorted(self.service_accounts),
                    "signature_verification": HAVE_CRYPTO,
                    "config": {k: getattr(self, k) for k in self.config_keys}}

    def instance(self, name, zone=None):
        with self.lock:
            return self._instance_view(self.instances[(zone or self.zone, name)])

    def seed_attachment(self, instance, disk, device, mode="READ_WRITE", zone=None):
        """Record disk as attached to instance under device, with no node-side
        effect: a copy of another fake's state (tests/vm: the guest's mirror
        of the host's cloud, which the node's calls ask)."""
        with self.lock:
            zone = zone or self.zone
            if (zone, disk) not in self.disks:
                self.add_disk(disk, 1, zone)
            inst = self.instances[(zone, instance)]
            inst["attached"].append({"disk": disk, "device": device, "mode": mode, "index": len(inst["attached"]) + 1,
                                     "node": None, "disk_id": f"gce-{zone}-{disk}", "pending": False})

    def set_listed(self, instance, device, listed, zone=None):
        """Test hook: hide (listed=False) or show again the attachment of
        instance under device in the instance's disks[], the device staying
        on the node, as while GCE's attach operation is not DONE yet."""
        with self.lock:
            inst = self.instances[(zone or self.zone, instance)]
            for a in inst["attached"]:
                if a["device"] == device:
                    a["pending"] = not listed

    def disk(self, name, zone=None, region=None):
        with self.lock:
            return self._disk_view(self.disks[(regional(region) if region else zone or self.zone, name)])

    def operation(self, name):
        with self.lock:
            return dict(self.operations[name])

    # ------------------------------------------------------------------
    # Metadata server and OAuth
    # ------------------------------------------------------------------

    def _local_instance(self):
        inst = next((i for i in self.instances.values() if i["local"]), None)
        if inst is None:
            raise ApiError(404, "Not Found (no instance is marked local)")
        return inst

    def _metadata(self, req, mpath):
        req.response_headers["Metadata-Flavor"] = "Google"
        if req.header("Metadata-Flavor") != "Google":
            raise ApiError(403, "Missing required header: Metadata-Flavor: Google")
        with self.lock:
            if mpath == "project/project-id":
                return self._meta_text(self.project)
            if mpath == "project/numeric-project-id":
                return self._meta_text(self.numeric_project)
            inst = self._local_instance()
            sa = inst["service_account"]
            values = {"instance/zone": f"projects/{self.numeric_project}/zones/{inst['zone']}",
                      "instance/name": inst["name"], "instance/id": inst["id"],
                      "instance/hostname": f"{inst['name']}.c.{self.project}.internal",
                      "instance/service-accounts/default/email": sa}
            if mpath in values:
                return self._meta_text(values[mpath])
        if mpath == "instance/service-accounts/default/token":
            req.log["auth"] = {"method": "metadata", "ok": True, "account": sa}
            return self._token_response(sa)
        raise ApiError(404, "Not Found")

    @staticmethod
    def _meta_text(value):
        return common.text_response(200, value, "application/text")

    def _token_response(self, email):
        token, rec = self.tokens.issue(self.token_lifetime, prefix="ya29.fake-", email=email)
        return json_response(200, {"access_token": token, "expires_in": int(self.token_lifetime),
                                   "token_type": "Bearer"})

    def _oauth_token(self, req):
        form = req.form()
        req.log["auth"] = {"method": "jwt-bearer", "ok": False}   # never the assertion
        if form.get("grant_type") != JWT_GRANT:
            raise ApiError(400, f"Invalid grant_type: {form.get('grant_type', '')}",
                           reason="unsupported_grant_type")
        email = self._verify_assertion(form.get("assertion", ""))
        req.log["auth"] = {"method": "jwt-bearer", "ok": True, "account": email}
        return self._token_response(email)

    def _verify_assertion(self, assertion):
        """Check a JWT-bearer assertion; returns the service-account email."""
        def invalid(msg, reason="invalid_grant"):
            return ApiError(400, msg, reason=reason)
        parts = assertion.split(".")
        try:
            header, claims = (json.loads(common.b64url_decode(p)) for p in parts[:2])
            signature = common.b64url_decode(parts[2])
        except (ValueError, IndexError):
            raise invalid("Invalid JWT: not a compact JWS (header.claims.signature)")
        if len(parts) != 3 or not isinstance(claims, dict) or header.get("alg") != "RS256":
            raise invalid("Invalid JWT: alg must be RS256")
        with self.lock:
            account = self.service_accounts.get(claims.get("iss"))
        if account is None:
            raise invalid("Invalid grant: account not found")
        if not rs256_verify(account["public_key"], f"{parts[0]}.{parts[1]}".encode(), signature):
            raise invalid("Invalid JWT Signature.")
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not (isinstance(iat, int) and isinstance(exp, int)
                and iat <= now + 60 and exp > now and 0 < exp - iat <= 3600):
            raise invalid("Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                          "reasonable timeframe. Check your iat and exp values in the JWT claim.")
        if claims.get("aud") not in (f"{self.url}/token",) + REAL_TOKEN_URIS:
            raise invalid(f"Invalid JWT: Failed audience check. The right audience is {self.url}/token")
        if not claims.get("scope"):
            raise invalid("Invalid OAuth scope or ID token audience provided.", "invalid_scope")
        return claims["iss"]

    # ------------------------------------------------------------------
    # Compute: instances and disks
    # ------------------------------------------------------------------

    def _instance(self, zone, name):
        inst = self.instances.get((zone, name))
        if inst is None:
            raise ApiError(404, f"The resource '{self._path(zone, 'instances', name)}' was not found")
        return inst

    def _disk(self, zone, name):
        disk = self.disks.get((zone, name))
        if disk is None:
            raise ApiError(404, f"The resource '{self._path(zone, 'disks', name)}' was not found")
        return disk

    def _get_instance(self, req, tok, zone, name):
        with self.lock:
            return json_response(200, self._instance_view(self._instance(zone, name)))

    def _get_disk(self, req, tok, zone, name):
        with self.lock:
            return json_response(200, self._disk_view(self._disk(zone, name)))

    def _get_region_disk(self, req, tok, region, name):
        with self.lock:
            return json_response(200, self._disk_view(self._disk(regional(region), name)))

    def _request_id(self, req):
        """requestId must be a non-zero UUID; returns it or None."""
        rid = req.arg("requestId")
        if rid is not None and (not UUID.fullmatch(rid) or set(rid) <= set("0-")):
            raise ApiError(400, f"Invalid value for field 'requestId': '{rid}'. The request ID must "
                                "be a valid UUID with the exception that zero UUID is not supported.")
        return rid

    def _replay(self, req, rid):
        """Same requestId as an earlier call: that call's operation, no new effect."""
        name = self.request_ids.get(rid) if rid else None
        if name is None:
            return None
        req.log["replayed_operation"] = name
        return json_response(200, dict(self.operations[name]))

    def _users(self, disk):
        """(instance, attachment) pairs using `disk`; attachment None for a boot
        disk. Includes attachments still pending inside an operation."""
        out = []
        for inst in self.instances.values():
            if inst["zone"] != disk["zone"] and inst["zone"] not in disk.get("replica_zones", ()):
                continue
            if inst["boot_disk"] == disk["name"] and inst["zone"] == disk["zone"]:
                out.append((inst, None))
            out += [(inst, a) for a in inst["attached"]
                    if a["disk"] == disk["name"] and a.get("disk_loc", inst["zone"]) == disk["zone"]]
        return out

    def _in_use_by(self, disk, mode):
        """The instance path using `disk`, if attaching it in `mode` would conflict.
        Several READ_ONLY attachments may share a disk."""
        for inst, att in self._users(disk):
            if mode != "READ_ONLY" or att is None or att["mode"] != "READ_ONLY":
                return self._path(inst["zone"], "instances", inst["name"])
        return None

    def _attach_conflict(self, inst, disk, device, mode):
        """(code, message) that would make this attach fail now, or None."""
        user = self._in_use_by(disk, mode)
        if user:
            return IN_USE, (f"The disk resource '{self._path(disk['zone'], 'disks', disk['name'])}' "
                            f"is already being used by '{user}'")
        if any(a["device"] == device for a in inst["attached"]):
            return "INVALID_USAGE", f"Device name '{device}' is already in use on this instance."
        return None

    def _attach_disk(self, req, tok, zone, name):
        body = req.json()
        if not isinstance(body, dict):
            raise ApiError(400, "Invalid JSON payload received.", reason="parseError")
        rid = self._request_id(req)
        with self.lock:
            replay = self._replay(req, rid)
            if replay:
                return replay
            inst = self._instance(zone, name)
            source = body.get("source")
            if not source or not isinstance(source, str):
                raise ApiError(400, "Required field 'resource.source' not specified", reason="required")
            req.log["source"] = source
            # Full URL, "projects/P/{zones/Z|regions/R}/disks/D" or "zones/Z/disks/D".
            m = DISK_SOURCE.fullmatch(source)
            if not m or (m["project"] or self.project) != self.project:
                raise ApiError(400, f"Invalid value for field 'resource.source': '{source}'. "
                                    "The URL is malformed.")
            disk = self._disk(m["zone"] or regional(m["region"]), m["disk"])
            if m["zone"] and m["zone"] != zone:
                raise ApiError(400, f"Invalid value for field 'resource.source': '{source}'. "
                                    "Disk must be in the same zone as the instance.")
            if m["region"] and zone not in disk["replica_zones"]:
                raise ApiError(400, f"Invalid value for field 'resource.source': '{source}'. "
                                    "The regional disk has no replica in the instance's zone.")
            mode = body.get("mode", "READ_WRITE")
            if mode not in ("READ_WRITE", "READ_ONLY"):
                raise ApiError(400, f"Invalid value for field 'resource.mode': '{mode}'.")
            index = 1 + max([a["index"] for a in inst["attached"]], default=0)
            device = body.get("deviceName") or f"persistent-disk-{index}"
            if not DEVICE_NAME.fullmatch(device):
                raise ApiError(400, f"Invalid value for field 'resource.deviceName': '{device}'. "
                                    "Must be a match of regex '[a-z]([-a-z0-9]{0,61}[a-z0-9])?'")
            conflict = self._attach_conflict(inst, disk, device, mode)
            if conflict and self.in_use_error == "sync":
                raise ApiError(400, conflict[1], reason="resourceInUseByAnotherResource"
                               if conflict[0] == IN_USE else "invalid")
            work = functools.partial(self._prepare_attach, (zone, name), disk, device, mode, index)
            op = self._start_operation("attachDisk", zone, "instances", inst, rid, work, disk["name"])
            return json_response(200, op)

    def _detach_disk(self, req, tok, zone, name):
        rid = self._request_id(req)
        with self.lock:
            replay = self._replay(req, rid)
            if replay:
                return replay
            inst = self._instance(zone, name)
            device = req.arg("deviceName")
            if not device:
                raise ApiError(400, "Required field 'deviceName' not specified", reason="required")
            att = next((a for a in inst["attached"] if a["device"] == device and not a["pending"]), None)
            if att is None:
                raise ApiError(400, f"No attached disk found with device name '{device}'")
            work = functools.partial(self._prepare_detach, (zone, name), device)
            op = self._start_operation("detachDisk", zone, "instances", inst, rid, work, att["disk"])
            return json_response(200, op)

    def _resize_disk(self, req, tok, zone, name):
        body = req.json()
        rid = self._request_id(req)
        with self.lock:
            replay = self._replay(req, rid)
            if replay:
                return replay
            disk = self._disk(zone, name)
            try:
                size = int(body["sizeGb"])
            except (TypeError, KeyError, ValueError):
                raise ApiError(400, "Required field 'sizeGb' not specified", reason="required")
            if size <= disk["size_gb"]:
                raise ApiError(400, f"Invalid value for field 'sizeGb': '{size}'. Requested disk size "
                                    f"cannot be smaller than or equal to the current size "
                                    f"'{disk['size_gb']}' GB.")
            work = functools.partial(self._prepare_resize, (zone, name), size)
            op = self._start_operation("resizeDisk", zone, "disks", disk, rid, work, name)
            return json_response(200, op)

    # -- what operations do when they complete ----------------------------
    # prepare (under self.lock) validates and reserves, or raises
    # OperationFailed; it returns (node_side, commit). node_side (plug/unplug/
    # resize, may be None) runs WITHOUT the lock; commit runs under the lock
    # together with DONE, so the effect becomes visible exactly when the
    # operation is DONE and the device is already there.

    def _prepare_attach(self, inst_key, disk, device, mode, index):
        inst = self.instances[inst_key]
        conflict = self._attach_conflict(inst, disk, device, mode)
        if conflict:
            raise OperationFailed(*conflict)
        node = self.node_for(inst["node"])
        disk_id = f"gce-{disk['zone'].replace('/', '-')}-{disk['name']}"
        if node is not None and self.faults.take("no_device", disk["name"]):
            node = None                          # attach succeeds, no device shows up
        # Reserved now (pending) so a racing attach of the same disk fails.
        att = {"disk": disk["name"], "disk_loc": disk["zone"], "device": device, "mode": mode,
               "index": index, "node": node, "disk_id": disk_id, "pending": True}
        inst["attached"].append(att)
        node_side = None
        if node is not None:
            links = [f"google-{device}", f"scsi-0Google_PersistentDisk_{device}"]
            node_side = functools.partial(self.plug_disk, node, disk_id, device,
                                          disk["size_gb"] * common.GIB, links)
        return node_side, functools.partial(att.update, pending=False)

    def _prepare_detach(self, inst_key, device):
        inst = self.instances[inst_key]
        att = next((a for a in inst["attached"] if a["device"] == device and not a["pending"]), None)
        if att is None:
            raise OperationFailed("INVALID_USAGE", f"No attached disk found with device name '{device}'")

        def commit():
            if att in inst["attached"]:          # a racing detach may have won
                inst["attached"].remove(att)
        node_side = None
        if att["node"] is not None:
            node_side = functools.partial(self.unplug_disk, att["node"], att["disk_id"], device)
        return node_side, commit

    def _prepare_resize(self, disk_key, size):
        disk = self.disks[disk_key]
        plugged = [a for _, a in self._users(disk) if a is not None and a["node"] is not None]

        def node_side():
            for a in plugged:
                self.resize_disk(a["node"], a["disk_id"], size * common.GIB)
        return (node_side if plugged else None), functools.partial(disk.update, size_gb=size)

    # ------------------------------------------------------------------
    # Zonal operations: PENDING -> RUNNING -> DONE
    # ------------------------------------------------------------------

    def _start_operation(self, op_type, zone, kind, target, rid, work, fault_target):
        """Create a PENDING operation; `work` runs when it completes.

        Faults aimed at `fault_target` (the disk name): slow_operation sets the
        time per step; operation_error makes it end DONE with that error and
        no effect."""
        slow = self.faults.take("slow_operation", fault_target, operation=op_type)
        step = float(slow.get("seconds", 5.0)) if slow else self.op_delay
        failure = self.faults.take("operation_error", fault_target, operation=op_type)
        now = time.time()
        name = f"operation-{int(now * 1000)}-{common.new_hex(12)}-{common.new_hex(8)}-{common.new_hex(8)}"
        op = {"kind": "compute#operation", "id": numeric_id(), "name": name,
              "zone": self._link(zone), "operationType": op_type,
              "targetLink": self._link(zone, kind, target["name"]), "targetId": target["id"],
              "status": PENDING, "progress": 0, "insertTime": gce_time(now),
              "selfLink": self._link(zone, "operations", name),
              "user": f"{self.project}@fake.iam.gserviceaccount.com"}
        self.operations[name] = op
        self._op_work[name] = (work, failure)
        if rid:
            self.request_ids[rid] = name
        self.scheduler.call_later(step, self._run_operation, name, step)
        return dict(op)

    def _run_operation(self, name, step):
        with self.lock:
            self.operations[name].update(status=RUNNING, startTime=gce_time(time.time()))
            self.changed.notify_all()
        self.scheduler.call_later(step, self._finish_operation, name)

    def _finish_operation(self, name):
        node_side = commit = None
        with self.lock:
            op = self.operations[name]
            work, failure = self._op_work.pop(name)
            try:
                if failure is not None:
                    raise OperationFailed(failure.get("code", "INTERNAL_ERROR"),
                                          failure.get("message", "Injected operation error"),
                                          int(failure.get("http_status", 400)))
                node_side, commit = work()
            except OperationFailed as exc:
                op.update(error={"errors": [{"code": exc.code, "message": exc.message}]},
                          httpErrorStatusCode=exc.http_status,
                          httpErrorMessage=http.HTTPStatus(exc.http_status).phrase.upper())
        if node_side is not None:
            node_side()
        with self.lock:
            if commit is not None:
                commit()
            op.update(status=DONE, progress=100, endTime=gce_time(time.time()))
            self.changed.notify_all()

    def _operation(self, zone, name):
        op = self.operations.get(name)
        if op is None or op["zone"] != self._link(zone):
            raise ApiError(404, f"The resource '{self._path(zone, 'operations', name)}' was not found")
        return op

    def _list_operations(self, req, tok, zone):
        """zoneOperations.list. filter: AIP-160 comparisons `field = value` or
        `field != value` (value quoted or bare), each in parentheses, ANDed;
        anything else is a 400, as GCE answers an expression it cannot parse.
        maxResults (default 500) and pageToken page through the answer."""
        terms = parse_filter(req.arg("filter") or "")
        try:
            size = int(req.arg("maxResults") or 500)
            start = int(req.arg("pageToken") or 0)
        except ValueError:
            raise ApiError(400, "Invalid value for maxResults or pageToken")
        with self.lock:
            self.op_list_calls += 1
            ops = [dict(op) for op in self.operations.values()
                   if op["zone"] == self._link(zone) and all(t(op) for t in terms)]
        body = {"kind": "compute#operationList", "id": f"projects/{self.project}/zones/{zone}/operations",
                "selfLink": self._link(zone, "operations")}
        if ops[start:start + size]:
            body["items"] = ops[start:start + size]       # GCE leaves out an empty items
        if start + size < len(ops):
            body["nextPageToken"] = str(start + size)
        return json_response(200, body)

    def _get_operation(self, req, tok, zone, name):
        with self.lock:
            return json_response(200, dict(self._operation(zone, name)))

    def _wait_operation(self, req, tok, zone, name):
        """Blocks until DONE or op_wait_max seconds; may return early (callers loop)."""
        deadline = time.monotonic() + float(self.op_wait_max)
        with self.changed:
            op = self._operation(zone, name)
            while op["status"] != DONE and deadline > time.monotonic():
                self.changed.wait(deadline - time.monotonic())
            return json_response(200, dict(op))


FILTER_TERM = re.compile(r'\s*\(\s*([A-Za-z][A-Za-z0-9_.]*)\s*(=|!=)\s*("(?:[^"\\]|\\.)*"|[^()\s"]+)\s*\)\s*')


def parse_filter(text):
    """The comparisons of a filter, as predicates on a resource."""
    terms, pos = [], 0
    while pos < len(text):
        m = FILTER_TERM.match(text, pos)
        if m is None:
            raise ApiError(400, f"Invalid value for field 'filter': '{text}'. Invalid list filter expression.")
        field, op, value = m.groups()
        if value.startswith('"'):
            value = json.loads(value)

        def term(res, field=field, op=op, value=value):
            got = res
            for part in field.split("."):
                got = got.get(part) if isinstance(got, dict) else None
            equal = got is not None and str(got) == value
            return equal if op == "=" else not equal
        terms.append(term)
        pos = m.end()
    return terms


def main(argv=None):
    ap = common.cli_parser("Fake GCE (metadata, OAuth, compute v1) on loopback")
    ap.add_argument("--project", default="my-project")
    ap.add_argument("--numeric-project", default="123456789012")
    ap.add_argument("--zone", default="us-central1-a")
    ap.add_argument("--op-delay", type=float, default=0.5)
    ap.add_argument("--op-wait-max", type=float, default=10.0)
    ap.add_argument("--in-use-error", choices=("sync", "operation"), default="sync")
    ap.add_argument("--sa-key-out", help="write a generated service-account JSON key here (0600)")
    args = ap.parse_args(argv)
    fake = FakeGCE(host=args.host, port=args.port, node=common.cli_node(args),
                   token_lifetime=args.token_lifetime, project=args.project,
                   numeric_project=args.numeric_project, zone=args.zone,
                   op_delay=args.op_delay, op_wait_max=args.op_wait_max,
                   in_use_error=args.in_use_error, verbose=args.verbose)

    def before_ready(f):
        if args.sa_key_out:
            f.write_service_account_key(args.sa_key_out)

    common.run_cli(fake, args, before_ready)


if __name__ == "__main__":
    main()
