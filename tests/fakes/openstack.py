#!/usr/bin/python3
"""Loopback fake of OpenStack Keystone v3 + Nova + Cinder v3 (+ meta_data.json).

Speaks the wire format of /work/shared/reference/cloud-apis.md Part A, on one
port. URL layout (every catalog endpoint works; the log records which one):

  POST /v3/auth/tokens                                 Keystone (no prefix)
  /{region}/{interface}/compute/v2.1[/{project}]/...   Nova
  /{region}/{interface}/volume/v3/{project}/...        Cinder (volumev3, block-storage)
  GET /openstack/latest/meta_data.json                 metadata of the `local` server

Nova and Cinder paths also work without the /{region}/{interface} prefix.
Run as a CLI: /usr/bin/python3 tests/fakes/openstack.py --port-file F [...]
"""

import hashlib
import http
import re
import time

try:
    from . import common
except ImportError:             # run as a script: tests/fakes is on sys.path
    import common

ApiError = common.ApiError
DEFAULT_NODE = common.DEFAULT_NODE
json_response = common.json_response

NOVA_MIN, NOVA_MAX = (2, 1), (2, 101)
CINDER_MIN, CINDER_MAX = (3, 0), (3, 71)

# Optional project segment; the lookahead keeps ".../servers" from being read
# as a project id.
NOVA = r"/compute/v2\.1(?:/(?P<project>(?!servers(?:/|$))[^/]+))?"
CINDER = r"/volume/v3(?:/(?P<project>(?!volumes(?:/|$))[^/]+))?"
ENDPOINT_PREFIX = re.compile(r"/(?P<region>[^/]+)/(?P<iface>public|internal|admin)(?P<rest>/.*)")

# Root key of Nova/Cinder fault bodies (nova/api/openstack/wsgi.py Fault).
FAULT_NAMES = {400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound",
               405: "badMethod", 409: "conflictingRequest", 413: "overLimit",
               415: "badMediaType", 429: "overLimit", 501: "notImplemented",
               503: "serviceUnavailable"}
UNAUTHORIZED = "The request you have made requires authentication."

# Volume attachment states (Nova BDM / Cinder attachment) and which of them
# Cinder lists in volume.attachments[].
RESERVED, ATTACHING, ATTACHED, DETACHING = "reserved", "attaching", "attached", "detaching"
LISTED_IN_CINDER = (ATTACHED, DETACHING)


def fmt_version(v):
    return f"{v[0]}.{v[1]}"


def cinder_time(ts):
    return common.iso_utc(ts, "%Y-%m-%dT%H:%M:%S.%f")


def virtio_serial(volume_id):
    """Nova sets the disk serial to the volume ID; virtio-blk keeps 20 bytes."""
    return volume_id[:20]


class FakeOpenStack(common.BaseFake):
    """Keystone + Nova + Cinder on one loopback port.

    transition_delay: seconds per volume state step (available -> reserved ->
    attaching -> in-use; in-use -> detaching -> available; extending).
    regions: catalog regions (each with public and internal endpoints).
    compute_url_has_project: catalog compute URL ends in /{project_id}.
    node: default NodeBackend for servers seeded with node="default".
    """

    name = "openstack"
    domain_fault_kinds = ("stuck_attaching", "no_device")
    config_keys = ("token_lifetime", "transition_delay")

    def __init__(self, host="127.0.0.1", port=0, node=None, token_lifetime=3600,
                 transition_delay=0.5, regions=("RegionOne", "RegionTwo"),
                 compute_url_has_project=False, verbose=False):
        super().__init__(host, port, node, token_lifetime, verbose)
        self.transition_delay = transition_delay
        self.regions = tuple(regions)
        self.compute_url_has_project = compute_url_has_project
        self.domains = {"default": {"id": "default", "name": "Default"}}
        self.projects, self.users, self.app_creds, self.trusts = {}, {}, {}, {}
        self.servers, self.volumes = {}, {}
        self._parked = set()      # (vid, sid, aid) held by a stuck_attaching fault
        self._add_api_routes()

    # ------------------------------------------------------------------
    # Routing and error shapes
    # ------------------------------------------------------------------

    def _add_api_routes(self):
        self.add_route("POST", r"/v3/auth/tokens", self._auth_tokens, "keystone")
        self.add_route("GET", r"/openstack/latest/meta_data\.json", self._meta_data, "metadata")
        vol = CINDER + r"/volumes/(?P<vid>[^/]+)"
        att = NOVA + r"/servers/(?P<sid>[^/]+)/os-volume_attachments"
        api = [
            ("GET", NOVA + r"/servers", "nova", self._list_servers),
            ("GET", NOVA + r"/servers/detail", "nova", self._list_servers_detail),
            ("GET", NOVA + r"/servers/(?P<sid>[^/]+)", "nova", self._show_server),
            ("GET", att, "nova", self._list_attachments),
            ("POST", att, "nova", self._attach),
            ("GET", att + r"/(?P<vid>[^/]+)", "nova", self._show_attachment),
            ("DELETE", att + r"/(?P<vid>[^/]+)", "nova", self._detach),
            ("GET", CINDER + r"/volumes", "cinder", self._list_volumes),
            ("GET", CINDER + r"/volumes/detail", "cinder", self._list_volumes_detail),
            ("GET", vol, "cinder", self._show_volume),
            ("POST", vol + r"/action", "cinder", self._volume_action),
            ("GET", vol + r"/metadata", "cinder", self._meta_get),
            ("POST", vol + r"/metadata", "cinder", self._meta_merge),
            ("PUT", vol + r"/metadata", "cinder", self._meta_replace),
            ("GET", vol + r"/metadata/(?P<key>[^/]+)", "cinder", self._meta_key_get),
            ("PUT", vol + r"/metadata/(?P<key>[^/]+)", "cinder", self._meta_key_put),
            ("DELETE", vol + r"/metadata/(?P<key>[^/]+)", "cinder", self._meta_key_delete),
        ]
        for method, pattern, service, fn in api:
            self.add_route(method, pattern, self._api(service, fn), service)

    def route_path(self, req):
        """Strip a /{region}/{interface} catalog prefix and log which one was used."""
        m = ENDPOINT_PREFIX.fullmatch(req.path)
        if m and m["region"] in self.regions:
            req.log["endpoint"] = f"{m['region']}/{m['iface']}"
            return m["rest"]
        return req.path

    def error_response(self, req, err):
        if req.service == "keystone" or err.status == 401:
            # Keystone's shape; Nova/Cinder 401s come from keystonemiddleware too.
            body = {"error": {"code": err.status, "title": http.HTTPStatus(err.status).phrase,
                              "message": err.message}}
            headers = {"WWW-Authenticate": f'Keystone uri="{self.url}/v3"'} if err.status == 401 else {}
            return json_response(err.status, body, headers)
        if req.service == "metadata":
            return common.text_response(err.status, err.message)
        fault = {"code": err.status, "message": err.message}
        if err.status in (413, 429) and "Retry-After" in err.headers:
            fault["retryAfter"] = err.headers["Retry-After"]
        return json_response(err.status, {FAULT_NAMES.get(err.status, "computeFault"): fault})

    def _api(self, service, fn):
        """Wrap a Nova/Cinder handler: token check (keystonemiddleware), then
        microversion, then the project id in the URL, as the real stack does."""
        def handler(req, project=None, **kw):
            tok = self.tokens.lookup(req.header("X-Auth-Token"))
            if tok is None:
                raise ApiError(401, UNAUTHORIZED)
            if not tok.get("project_id"):
                raise ApiError(403, "A project-scoped token is required.")
            mv = self._microversion(req, service)
            if project is not None and project != tok["project_id"]:
                raise ApiError(400, f"Malformed request URL: URL's project_id '{project}' doesn't "
                                    f"match Context's project_id '{tok['project_id']}'")
            return fn(req, tok, mv, **kw)
        return handler

    def _microversion(self, req, service):
        """Parse OpenStack-API-Version (and Nova's legacy header); echo it back.

        Absent or unparseable headers mean the minimum version (the reference
        asks the fake to ignore unknown values); a well-formed version outside
        the supported range is refused with 406 like the real services."""
        name, low, high = ("compute", NOVA_MIN, NOVA_MAX) if service == "nova" else \
            ("volume", CINDER_MIN, CINDER_MAX)
        value = None
        for item in (req.header("OpenStack-API-Version") or "").split(","):
            parts = item.split()
            if len(parts) == 2 and parts[0].lower() == name:
                value = parts[1].lower()
        if value is None and name == "compute":
            value = (req.header("X-OpenStack-Nova-API-Version") or "").strip().lower() or None
        version = low
        if value == "latest":
            version = high
        elif value and re.fullmatch(r"\d+\.\d+", value):
            version = tuple(int(x) for x in value.split("."))
            if not low <= version <= high:
                raise ApiError(406, f"Version {value} is not supported by the API. Minimum is "
                                    f"{fmt_version(low)} and maximum is {fmt_version(high)}.")
        req.response_headers["OpenStack-API-Version"] = f"{name} {fmt_version(version)}"
        if name == "compute":
            req.response_headers["X-OpenStack-Nova-API-Version"] = fmt_version(version)
            req.response_headers["Vary"] = "OpenStack-API-Version, X-OpenStack-Nova-API-Version"
        else:
            req.response_headers["Vary"] = "OpenStack-API-Version"
        return version

    # ------------------------------------------------------------------
    # Seeding (Python API and POST /_fake/<kind>)
    # ------------------------------------------------------------------

    def seeders(self):
        return {"domains": self.add_domain, "projects": self.add_project,
                "users": self.add_user, "application_credentials": self.add_application_credential,
                "trusts": self.add_trust,
                "servers": self.add_server, "volumes": self.add_volume}

    def updaters(self):
        return {"servers": self.update_server, "volumes": self.update_volume}

    @staticmethod
    def _find(table, ref, what):
        """Look a record up by id, else by unique name; KeyError if absent."""
        if ref in table:
            return table[ref]
        hits = [r for r in table.values() if r.get("name") == ref]
        if len(hits) != 1:
            raise KeyError(f"{what} {ref!r}")
        return hits[0]

    def add_domain(self, name, id=None):
        with self.lock:
            dom = {"id": id or common.new_hex(), "name": name}
            self.domains[dom["id"]] = dom
            return dict(dom)

    def add_project(self, name, id=None, domain="default"):
        with self.lock:
            dom = self._find(self.domains, domain, "domain")
            proj = {"id": id or common.new_hex(), "name": name, "domain_id": dom["id"]}
            self.projects[proj["id"]] = proj
            return dict(proj)

    def add_user(self, name, password, id=None, domain="default", projects=()):
        """`projects`: ids or names the user has the member role on."""
        with self.lock:
            dom = self._find(self.domains, domain, "domain")
            pids = [self._find(self.projects, p, "project")["id"] for p in projects]
            user = {"id": id or common.new_hex(), "name": name, "domain_id": dom["id"],
                    "password": password, "projects": pids}
            self.users[user["id"]] = user
            return {k: v for k, v in user.items() if k != "password"}

    def add_application_credential(self, user, project=None, name=None, id=None, secret=None):
        """Returns {"id", "name", "secret", ...}; the token is scoped to `project`
        (default: the user's first project)."""
        with self.lock:
            u = self._find(self.users, user, "user")
            pid = self._find(self.projects, project, "project")["id"] if project else u["projects"][0]
            cred = {"id": id or common.new_hex(), "name": name or f"cred-{common.new_hex(8)}",
                    "secret": secret or common.new_hex(24), "user_id": u["id"], "project_id": pid}
            self.app_creds[cred["id"]] = cred
            return dict(cred)

    def add_trust(self, trustor, trustee, project=None, id=None):
        """A Keystone trust (OS-TRUST): trustee may get tokens scoped to it,
        with the trustor's roles on project (default: the trustor's first)."""
        with self.lock:
            tor = self._find(self.users, trustor, "user")
            tee = self._find(self.users, trustee, "user")
            pid = self._find(self.projects, project, "project")["id"] if project else tor["projects"][0]
            trust = {"id": id or common.new_hex(), "trustor_user_id": tor["id"], "trustee_user_id": tee["id"],
                     "project_id": pid, "impersonation": False}
            self.trusts[trust["id"]] = trust
            return dict(trust)

    def _default_project(self, project):
        if project:
            return self._find(self.projects, project, "project")["id"]
        if not self.projects:
            raise ValueError("seed a project first")
        return next(iter(self.projects))

    def add_server(self, name, id=None, project=None, locked=False, node=DEFAULT_NODE,
                   local=False, availability_zone="nova"):
        """node: DEFAULT_NODE (the fake's node), a NodeBackend, or None/False
        (attached disks appear nowhere). local: this is the server whose
        meta_data.json the metadata path serves."""
        with self.lock:
            srv = {"id": id or common.new_uuid(), "name": name,
                   "project_id": self._default_project(project), "locked": bool(locked),
                   "node": node or None, "local": bool(local),
                   "availability_zone": availability_zone, "created": time.time()}
            self.servers[srv["id"]] = srv
            return self._server_admin_view(srv)

    def add_volume(self, size=1, id=None, name=None, project=None, multiattach=False,
                   status="available", volume_type="lvmdriver-1", availability_zone="nova",
                   metadata=None):
        with self.lock:
            vid = id or common.new_uuid()
            vol = {"id": vid, "name": name if name is not None else f"vol-{vid[:8]}",
                   "size": int(size), "project_id": self._default_project(project),
                   "multiattach": bool(multiattach), "status": status,
                   "volume_type": volume_type, "availability_zone": availability_zone,
                   "metadata": dict(metadata or {}), "attachments": {},
                   "created_at": time.time(), "updated_at": time.time()}
            self.volumes[vid] = vol
            return self._volume_admin_view(vol)

    def update_server(self, id, **fields):
        """Change seeded fields, e.g. locked=True (Nova then answers 409)."""
        with self.lock:
            srv = self._find(self.servers, id, "server")
            self._update(srv, fields, ("name", "locked", "local", "availability_zone"))
            return self._server_admin_view(srv)

    def update_volume(self, id, **fields):
        """Force fields, e.g. status="error" or multiattach=True."""
        with self.lock:
            vol = self._find(self.volumes, id, "volume")
            self._update(vol, fields, ("name", "size", "status", "multiattach", "metadata"))
            vol["updated_at"] = time.time()
            return self._volume_admin_view(vol)

    @staticmethod
    def _update(record, fields, allowed):
        bad = set(fields) - set(allowed)
        if bad:
            raise ValueError(f"cannot update {sorted(bad)}; allowed: {list(allowed)}")
        record.update(fields)

    @staticmethod
    def _server_admin_view(srv):
        out = {k: v for k, v in srv.items() if k != "node"}
        out["node"] = None if srv["node"] is None else (
            "default" if srv["node"] == DEFAULT_NODE else type(srv["node"]).__name__)
        return out

    @staticmethod
    def _volume_admin_view(vol):
        out = dict(vol)
        out["attachments"] = {sid: {k: v for k, v in a.items() if k != "node"}
                              for sid, a in vol["attachments"].items()}
        return out

    def state(self):
        with self.lock:
            return {"domains": list(self.domains.values()),
                    "projects": list(self.projects.values()),
                    "users": [{k: v for k, v in u.items() if k != "password"} for u in self.users.values()],
                    "application_credentials": [{k: v for k, v in c.items() if k != "secret"}
                                                for c in self.app_creds.values()],
                    "servers": [self._server_admin_view(s) for s in self.servers.values()],
                    "volumes": [self._volume_admin_view(v) for v in self.volumes.values()],
                    "config": {k: getattr(self, k) for k in self.config_keys}}

    def volume(self, vid):
        """Admin view of one volume (status, attachments, ...), for tests."""
        with self.lock:
            return self._volume_admin_view(self.volumes[vid])

    # ------------------------------------------------------------------
    # Keystone
    # ------------------------------------------------------------------

    def _auth_tokens(self, req):
        body = req.json()
        auth = body.get("auth") if isinstance(body, dict) else None
        identity = auth.get("identity") if isinstance(auth, dict) else None
        methods = identity.get("methods") if isinstance(identity, dict) else None
        if not isinstance(methods, list) or not methods:
            raise ApiError(400, "Expecting to find identity/methods in auth. The server could not "
                                "comply with the request since it is either malformed or otherwise "
                                "incorrect. The client is assumed to be in error.")
        method = methods[0]
        req.log["auth"] = {"method": method, "ok": False}   # never the secret itself
        scope = auth.get("scope")
        with self.lock:
            if method == "application_credential":
                user, project, cred = self._auth_app_cred(identity.get(method), scope)
            elif method == "password":
                user, cred = self._auth_password(identity.get(method)), None
                if isinstance(scope, dict) and "OS-TRUST:trust" in scope:
                    trust, project = self._resolve_trust(scope, user)
                    req.log["trust"] = trust["id"]
                else:
                    # Without a scope the token is unscoped: no project, no catalog.
                    project = self._resolve_scope(scope, user) if scope else None
            else:
                raise ApiError(401, f"Attempted to authenticate with an unsupported method: {method}")
            token, rec = self.tokens.issue(self.token_lifetime, prefix="gAAAAA",
                                           user_id=user["id"], methods=[method],
                                           project_id=project["id"] if project else None)
            req.log["auth"] = {"method": method, "ok": True, "user": user["name"],
                               "project": project["name"] if project else None}
            if "trust" in req.log:
                req.log["auth"]["trust"] = req.log["trust"]
            body = self._token_body(rec, user, project, cred)
            if "trust" in req.log:
                t = self.trusts[req.log["trust"]]
                body["OS-TRUST:trust"] = {"id": t["id"], "impersonation": t["impersonation"],
                                          "trustor_user": {"id": t["trustor_user_id"]},
                                          "trustee_user": {"id": t["trustee_user_id"]}}
            return json_response(201, {"token": body}, {"X-Subject-Token": token})

    def _resolve_domain(self, ref, what):
        """{"id": ...} or {"name": ...}; 400 when missing (Keystone's validation)."""
        if not isinstance(ref, dict) or not (ref.get("id") or ref.get("name")):
            raise ApiError(400, f"Expecting to find domain in {what}. The server could not comply "
                                "with the request since it is either malformed or otherwise "
                                "incorrect. The client is assumed to be in error.")
        try:
            return self._find(self.domains, ref.get("id") or ref.get("name"), "domain")
        except KeyError:
            raise ApiError(401, UNAUTHORIZED)

    def _resolve_user(self, ref):
        """User by id, or by name + domain."""
        if not isinstance(ref, dict):
            raise ApiError(400, "Expecting to find user in password.")
        if ref.get("id"):
            user = self.users.get(ref["id"])
        else:
            dom = self._resolve_domain(ref.get("domain"), "user")
            user = next((u for u in self.users.values()
                         if u["name"] == ref.get("name") and u["domain_id"] == dom["id"]), None)
        if user is None:
            raise ApiError(401, UNAUTHORIZED)
        return user

    def _auth_password(self, body):
        user = self._resolve_user(body.get("user") if isinstance(body, dict) else None)
        if user["password"] != body["user"].get("password"):
            raise ApiError(401, UNAUTHORIZED)
        return user

    def _resolve_scope(self, scope, user):
        """Project scope by id, or by name + project domain; user needs a role."""
        if not isinstance(scope, dict):
            raise ApiError(400, "Invalid scope.")
        if "project" in scope and "domain" in scope:
            raise ApiError(400, "Scoping to both domain and project is not allowed")
        if "project" not in scope:
            raise ApiError(400, "The fake supports only project scope.")
        ref = scope["project"] if isinstance(scope["project"], dict) else {}
        if ref.get("id"):
            project = self.projects.get(ref["id"])
        else:
            dom = self._resolve_domain(ref.get("domain"), "project")
            project = next((p for p in self.projects.values()
                            if p["name"] == ref.get("name") and p["domain_id"] == dom["id"]), None)
        if project is None or project["id"] not in user["projects"]:
            raise ApiError(401, UNAUTHORIZED)
        return project

    def _resolve_trust(self, scope, user):
        """scope {"OS-TRUST:trust": {"id": ...}} alone; only the trustee may use it."""
        if len(scope) != 1:
            raise ApiError(400, "Scoping to both a trust and a project or domain is not allowed")
        ref = scope["OS-TRUST:trust"]
        trust = self.trusts.get(ref.get("id")) if isinstance(ref, dict) else None
        if trust is None:
            raise ApiError(404, f"Could not find trust: {ref.get('id') if isinstance(ref, dict) else ref}.")
        if trust["trustee_user_id"] != user["id"]:
            raise ApiError(403, "User is not a trustee.")
        return trust, self.projects[trust["project_id"]]

    def _auth_app_cred(self, body, scope):
        if scope:
            # Keystone: "You are not allowed to request a scope, as the scope is
            # retrieved from the application credential." (reference Part D: 400)
            raise ApiError(400, "Cannot request a scope when authenticating with an "
                                "application credential")
        if not isinstance(body, dict):
            raise ApiError(400, "Expecting to find application_credential in identity.")
        if body.get("id"):
            cred = self.app_creds.get(body["id"])
        else:
            if "user" not in body:
                raise ApiError(400, "Expecting to find user in application_credential.")
            user = self._resolve_user(body["user"])
            cred = next((c for c in self.app_creds.values()
                         if c["name"] == body.get("name") and c["user_id"] == user["id"]), None)
        if cred is None or cred["secret"] != body.get("secret"):
            raise ApiError(401, UNAUTHORIZED)
        return self.users[cred["user_id"]], self.projects[cred["project_id"]], cred

    def _token_body(self, rec, user, project, cred):
        token = {"methods": rec["methods"],
                 "expires_at": common.iso_utc(rec["expires_at"]),
                 "issued_at": common.iso_utc(rec["issued_at"]),
                 "audit_ids": [common.b64url_encode(common.new_hex(16).encode())[:22]],
                 "user": {"id": user["id"], "name": user["name"],
                          "domain": dict(self.domains[user["domain_id"]])}}
        if project:
            token["project"] = {"id": project["id"], "name": project["name"],
                                "domain": dict(self.domains[project["domain_id"]])}
            token["roles"] = [{"id": "51cc68287d524c759f47c811e6463340", "name": "member"}]
            token["catalog"] = self.catalog(project["id"])
        if cred:
            token["application_credential"] = {"id": cred["id"], "name": cred["name"],
                                               "restricted": True}
        return token

    def catalog(self, project_id):
        """Service catalog. compute, volumev3 and block-storage work; volumev2
        and compute_legacy point at paths the fake does not serve, so a driver
        that picks them fails visibly (the reference says not to use them)."""
        def entry(stype, name, path, interfaces=("public", "internal")):
            eps = [{"id": hashlib.md5(f"{stype}{r}{i}".encode()).hexdigest(), "interface": i,
                    "region_id": r, "region": r, "url": f"{self.url}/{r}/{i}{path}"}
                   for r in self.regions for i in interfaces]
            return {"type": stype, "name": name,
                    "id": hashlib.md5(stype.encode()).hexdigest(), "endpoints": eps}

        compute = "/compute/v2.1" + (f"/{project_id}" if self.compute_url_has_project else "")
        identity = entry("identity", "keystone", "", ("public",))
        for ep in identity["endpoints"]:
            ep["url"] = f"{self.url}/v3"
        return [entry("compute", "nova", compute),
                entry("compute_legacy", "nova_legacy", f"/compute/v2/{project_id}"),
                entry("volumev3", "cinderv3", f"/volume/v3/{project_id}"),
                entry("block-storage", "cinder", f"/volume/v3/{project_id}"),
                entry("volumev2", "cinderv2", f"/volume/v2/{project_id}"),
                identity]

    # ------------------------------------------------------------------
    # Nova
    # ------------------------------------------------------------------

    def _base_url(self, req, marker):
        """The endpoint URL a request was made against (for links)."""
        return self.url + req.path[:req.path.index(marker)]

    def _server(self, sid, tok):
        srv = self.servers.get(sid)
        if srv is None or srv["project_id"] != tok["project_id"]:
            raise ApiError(404, f"Instance {sid} could not be found.")
        return srv

    def _volume(self, vid, tok):
        vol = self.volumes.get(vid)
        if vol is None or vol["project_id"] != tok["project_id"]:
            raise ApiError(404, f"Volume {vid} could not be found.")
        return vol

    def _server_view(self, req, srv, detail):
        view = {"id": srv["id"], "name": srv["name"],
                "links": [{"rel": "self", "href": f"{self._base_url(req, '/servers')}/servers/{srv['id']}"}]}
        if detail:
            view.update({
                "status": "ACTIVE", "tenant_id": srv["project_id"], "metadata": {},
                "created": common.iso_utc(srv["created"], "%Y-%m-%dT%H:%M:%SZ"),
                "OS-EXT-AZ:availability_zone": srv["availability_zone"], "locked": srv["locked"],
                "os-extended-volumes:volumes_attached": [
                    {"id": v["id"]} for v in self.volumes.values() if srv["id"] in v["attachments"]]})
        return view

    def _list_servers(self, req, tok, mv, detail=False):
        """`name` is a regular expression searched in server names (Nova filter)."""
        pattern = req.arg("name")
        try:
            rx = re.compile(pattern) if pattern is not None else None
        except re.error as exc:
            raise ApiError(400, f"Invalid regular expression for name: {exc}")
        with self.lock:
            found = [s for s in self.servers.values()
                     if s["project_id"] == tok["project_id"] and (rx is None or rx.search(s["name"]))]
            return json_response(200, {"servers": [self._server_view(req, s, detail) for s in found]})

    def _list_servers_detail(self, req, tok, mv):
        return self._list_servers(req, tok, mv, detail=True)

    def _show_server(self, req, tok, mv, sid):
        with self.lock:
            return json_response(200, {"server": self._server_view(req, self._server(sid, tok), True)})

    @staticmethod
    def _attachment_view(att, mv):
        """volumeAttachment per microversion (A2 table)."""
        view = {"device": att["device"], "serverId": att["server_id"], "volumeId": att["volume_id"]}
        if mv < (2, 89):
            view["id"] = att["volume_id"]      # the volume ID, not an attachment UUID
        if mv >= (2, 70):
            view["tag"] = att["tag"]
        if mv >= (2, 79):
            view["delete_on_termination"] = att["delete_on_termination"]
        if mv >= (2, 89):
            view["attachment_id"] = att["attachment_id"]
            view["bdm_uuid"] = att["bdm_uuid"]
        return view

    def _server_attachments(self, sid):
        return [v["attachments"][sid] for v in self.volumes.values() if sid in v["attachments"]]

    def _list_attachments(self, req, tok, mv, sid):
        with self.lock:
            self._server(sid, tok)
            atts = self._server_attachments(sid)
            offset = int(req.arg("offset", 0))
            limit = req.arg("limit")
            atts = atts[offset:offset + int(limit) if limit is not None else None]
            return json_response(200, {"volumeAttachments": [self._attachment_view(a, mv) for a in atts]})

    def _show_attachment(self, req, tok, mv, sid, vid):
        with self.lock:
            self._server(sid, tok)
            vol = self.volumes.get(vid)
            if vol is None or sid not in vol["attachments"]:
                raise ApiError(404, f"volume_id not found: {vid}")
            return json_response(200, {"volumeAttachment": self._attachment_view(vol["attachments"][sid], mv)})

    def _next_device(self, sid):
        """Nova's guess of the guest device name (vda is the root disk)."""
        used = {a["device"] for a in self._server_attachments(sid)}
        return next(f"/dev/vd{c}" for c in "bcdefghijklmnopqrstuvwxyz" if f"/dev/vd{c}" not in used)

    @staticmethod
    def _attach_body(req, mv):
        body = req.json()
        va = body.get("volumeAttachment") if isinstance(body, dict) else None
        if not isinstance(va, dict) or not isinstance(va.get("volumeId"), str):
            raise ApiError(400, "Invalid input for field/attribute volumeAttachment. "
                                "Value: None. 'volumeId' is a required property")
        allowed = {"volumeId", "device"}
        if mv >= (2, 49):
            allowed.add("tag")
        if mv >= (2, 79):
            allowed.add("delete_on_termination")
        extra = sorted(set(va) - allowed)
        if extra:
            raise ApiError(400, "Invalid input for field/attribute volumeAttachment. Additional "
                                f"properties are not allowed ({', '.join(map(repr, extra))} "
                                "were unexpected)")
        return va

    def _attach(self, req, tok, mv, sid):
        va = self._attach_body(req, mv)
        vid = va["volumeId"]
        with self.lock:
            self._server(sid, tok)
            vol = self._volume(vid, tok)
            if self.servers[sid]["locked"]:
                raise ApiError(409, f"Instance {sid} is locked")
            if sid in vol["attachments"]:
                raise ApiError(400, f"Invalid volume: volume {vid} already attached")
            if vol["multiattach"] and mv < (2, 60):
                raise ApiError(400, "Multiattach volumes are only supported starting with "
                                    "compute API version 2.60.")
            ok = ("available", "in-use", RESERVED, ATTACHING) if vol["multiattach"] else ("available",)
            if vol["status"] not in ok:
                # Nova's InvalidVolume: 400, not 409 (reference A2).
                raise ApiError(400, f"Invalid volume: volume '{vid}' status must be 'available'. "
                                    f"Currently in '{vol['status']}'")
            att = {"volume_id": vid, "server_id": sid, "state": RESERVED,
                   "device": self._next_device(sid), "attachment_id": common.new_uuid(),
                   "bdm_uuid": common.new_uuid(), "tag": va.get("tag"),
                   "delete_on_termination": bool(va.get("delete_on_termination", False)),
                   "attached_at": None, "node": None}
            vol["attachments"][sid] = att
            if vol["status"] == "available":
                vol["status"] = RESERVED
            self.scheduler.call_later(self.transition_delay, self._begin_attaching,
                                      vid, sid, att["attachment_id"])
            # The attach is asynchronous: this only means "accepted".
            return json_response(202 if mv >= (2, 101) else 200,
                                 {"volumeAttachment": self._attachment_view(att, mv)})

    def _detach(self, req, tok, mv, sid, vid):
        with self.lock:
            self._server(sid, tok)
            vol = self._volume(vid, tok)
            if self.servers[sid]["locked"]:
                raise ApiError(409, f"Instance {sid} is locked")
            att = vol["attachments"].get(sid)
            if att is None:
                raise ApiError(404, f"volume_id not found: {vid}")
            if att["state"] != ATTACHED:
                raise ApiError(400, "Invalid volume: Unable to detach volume. Volume status must be "
                                    "'in-use' and attach_status must be 'attached' to detach.")
            att["state"] = DETACHING
            if not self._others_attached(vol, sid):
                vol["status"] = DETACHING
            self.scheduler.call_later(self.transition_delay, self._finish_detach,
                                      vid, sid, att["attachment_id"])
            return common.Response(202)

    # -- the volume state machine (runs on the scheduler thread) -----------

    def _live_attachment(self, vid, sid, aid, state):
        """The attachment if it is still the same one and in `state`."""
        vol = self.volumes.get(vid)
        att = vol["attachments"].get(sid) if vol else None
        if att is None or att["attachment_id"] != aid or att["state"] != state:
            return None
        return att

    @staticmethod
    def _others_attached(vol, sid):
        return any(a["state"] == ATTACHED for s, a in vol["attachments"].items() if s != sid)

    def _begin_attaching(self, vid, sid, aid):
        with self.lock:
            att = self._live_attachment(vid, sid, aid, RESERVED)
            if att is None:
                return
            att["state"] = ATTACHING
            vol = self.volumes[vid]
            if not self._others_attached(vol, sid):
                vol["status"] = ATTACHING
            self.scheduler.call_later(self.transition_delay, self._finish_attach, vid, sid, aid)

    def _finish_attach(self, vid, sid, aid):
        with self.lock:
            att = self._live_attachment(vid, sid, aid, ATTACHING)
            if att is None:
                return
            if self.faults.active("stuck_attaching", vid):
                self._parked.add((vid, sid, aid))    # resumes when the fault goes
                return
            node = self.node_for(self.servers[sid]["node"])
            if node is not None and self.faults.take("no_device", vid):
                node = None                          # attach "succeeds", no device
            size = self.volumes[vid]["size"] * common.GIB
        if node is not None:
            self.plug_disk(node, vid, virtio_serial(vid), size, [f"virtio-{virtio_serial(vid)}"])
        with self.lock:
            att = self._live_attachment(vid, sid, aid, ATTACHING)
            if att is None:
                return
            att.update(state=ATTACHED, attached_at=time.time(), node=node)
            self.volumes[vid]["status"] = "in-use"
            self.volumes[vid]["updated_at"] = time.time()

    def _finish_detach(self, vid, sid, aid):
        with self.lock:
            att = self._live_attachment(vid, sid, aid, DETACHING)
            if att is None:
                return
            node = att["node"]
        if node is not None:
            self.unplug_disk(node, vid, virtio_serial(vid))
        with self.lock:
            vol = self.volumes[vid]
            del vol["attachments"][sid]
            vol["status"] = "in-use" if self._others_attached(vol, sid) else "available"
            vol["updated_at"] = time.time()

    def faults_changed(self):
        """A removed stuck_attaching fault lets parked attaches complete."""
        with self.lock:
            resume = {p for p in self._parked if not self.faults.active("stuck_attaching", p[0])}
            self._parked -= resume
        for vid, sid, aid in resume:
            self.scheduler.call_later(0, self._finish_attach, vid, sid, aid)

    # ------------------------------------------------------------------
    # Cinder
    # ------------------------------------------------------------------

    def _volume_view(self, req, vol):
        atts = [{"server_id": a["server_id"], "attachment_id": a["attachment_id"],
                 "attached_at": cinder_time(a["attached_at"]), "host_name": None,
                 "volume_id": vol["id"], "device": a["device"], "id": vol["id"]}
                for a in vol["attachments"].values() if a["state"] in LISTED_IN_CINDER]
        return {"id": vol["id"], "name": vol["name"], "status": vol["status"], "size": vol["size"],
                "availability_zone": vol["availability_zone"], "multiattach": vol["multiattach"],
                "bootable": "false", "encrypted": False, "volume_type": vol["volume_type"],
                "description": None, "snapshot_id": None, "source_volid": None,
                "created_at": cinder_time(vol["created_at"]),
                "updated_at": cinder_time(vol["updated_at"]),
                "metadata": dict(vol["metadata"]), "attachments": atts,
                "links": [{"rel": "self",
                           "href": f"{self._base_url(req, '/volumes')}/volumes/{vol['id']}"}]}

    def _project_volumes(self, tok):
        return [v for v in self.volumes.values() if v["project_id"] == tok["project_id"]]

    def _list_volumes(self, req, tok, mv):
        with self.lock:
            return json_response(200, {"volumes": [
                {"id": v["id"], "name": v["name"], "links": self._volume_view(req, v)["links"]}
                for v in self._project_volumes(tok)]})

    def _list_volumes_detail(self, req, tok, mv):
        with self.lock:
            return json_response(200, {"volumes": [self._volume_view(req, v)
                                                   for v in self._project_volumes(tok)]})

    def _show_volume(self, req, tok, mv, vid):
        with self.lock:
            return json_response(200, {"volume": self._volume_view(req, self._volume(vid, tok))})

    def _volume_action(self, req, tok, mv, vid):
        body = req.json()
        if not isinstance(body, dict) or len(body) != 1:
            raise ApiError(400, "Malformed request body")
        action, args = next(iter(body.items()))
        if action != "os-extend":
            raise ApiError(400, f"There is no such action: {action}")
        try:
            new_size = int(args["new_size"])
        except (TypeError, KeyError, ValueError):
            raise ApiError(400, "Invalid input for field/attribute new_size.")
        with self.lock:
            vol = self._volume(vid, tok)
            status = vol["status"]
            if status == "in-use" and mv < (3, 42):
                raise ApiError(400, f"Invalid volume: Volume {vid} status must be available to "
                                    f"extend, but current status is: {status}.")
            if status not in ("available", "in-use"):
                raise ApiError(400, f"Invalid volume: Volume {vid} status must be 'available' or "
                                    f"'in-use' to extend, but current status is: {status}.")
            if new_size <= vol["size"]:
                raise ApiError(400, "Invalid input received: New size for extend must be greater "
                                    f"than current size. (current: {vol['size']}, "
                                    f"extended: {new_size}).")
            vol["status"] = "extending"
            self.scheduler.call_later(self.transition_delay, self._finish_extend,
                                      vid, new_size, status)
            return common.Response(202)

    def _finish_extend(self, vid, new_size, status):
        with self.lock:
            vol = self.volumes[vid]
            vol.update(size=new_size, status=status, updated_at=time.time())
            nodes = [a["node"] for a in vol["attachments"].values() if a["node"] is not None]
        for node in nodes:     # online extend: the attached device grows too
            self.resize_disk(node, vid, new_size * common.GIB)

    # -- metadata ------------------------------------------------------------

    @staticmethod
    def _check_metadata(meta, key="metadata"):
        if not isinstance(meta, dict):
            raise ApiError(400, "Malformed request body")
        for k, v in meta.items():
            if not (isinstance(k, str) and 1 <= len(k) <= 255 and isinstance(v, str) and len(v) <= 255):
                raise ApiError(400, f"Invalid input for field/attribute {key}. Value: {meta}. "
                                    "Keys and values must be strings of at most 255 characters")
        return meta

    def _body_metadata(self, req):
        body = req.json()
        return self._check_metadata(body.get("metadata") if isinstance(body, dict) else None)

    def _meta_get(self, req, tok, mv, vid):
        with self.lock:
            return json_response(200, {"metadata": dict(self._volume(vid, tok)["metadata"])})

    def _meta_merge(self, req, tok, mv, vid):
        """POST: create/update the given keys; returns the full metadata."""
        meta = self._body_metadata(req)
        with self.lock:
            vol = self._volume(vid, tok)
            vol["metadata"].update(meta)
            return json_response(200, {"metadata": dict(vol["metadata"])})

    def _meta_replace(self, req, tok, mv, vid):
        """PUT: replace all metadata."""
        meta = self._body_metadata(req)
        with self.lock:
            vol = self._volume(vid, tok)
            vol["metadata"] = dict(meta)
            return json_response(200, {"metadata": dict(meta)})

    def _meta_key_get(self, req, tok, mv, vid, key):
        with self.lock:
            vol = self._volume(vid, tok)
            if key not in vol["metadata"]:
                raise ApiError(404, f"Volume {vid} has no metadata with key {key}.")
            return json_response(200, {"meta": {key: vol["metadata"][key]}})

    def _meta_key_put(self, req, tok, mv, vid, key):
        body = req.json()
        meta = self._check_metadata(body.get("meta") if isinstance(body, dict) else None, "meta")
        if len(meta) != 1:
            raise ApiError(400, "Request body contains too many items")
        if key not in meta:
            raise ApiError(400, "Request body and URI mismatch")
        with self.lock:
            self._volume(vid, tok)["metadata"][key] = meta[key]
            return json_response(200, {"meta": dict(meta)})

    def _meta_key_delete(self, req, tok, mv, vid, key):
        with self.lock:
            vol = self._volume(vid, tok)
            if vol["metadata"].pop(key, None) is None:
                raise ApiError(404, f"Volume {vid} has no metadata with key {key}.")
            return common.Response(200)

    # ------------------------------------------------------------------
    # Nova metadata service (meta_data.json of the `local` server)
    # ------------------------------------------------------------------

    def _meta_data(self, req):
        with self.lock:
            srv = next((s for s in self.servers.values() if s["local"]), None)
            if srv is None:
                raise ApiError(404, "No server is marked local")
            return json_response(200, {
                "uuid": srv["id"], "name": srv["name"], "hostname": f"{srv['name']}.novalocal",
                "availability_zone": srv["availability_zone"], "project_id": srv["project_id"],
                "launch_index": 0, "meta": {}, "devices": []})


def main(argv=None):
    ap = common.cli_parser("Fake OpenStack (Keystone/Nova/Cinder) on loopback")
    ap.add_argument("--transition-delay", type=float, default=0.5)
    ap.add_argument("--region", action="append", help="catalog region (repeatable)")
    ap.add_argument("--compute-url-has-project", action="store_true")
    args = ap.parse_args(argv)
    fake = FakeOpenStack(host=args.host, port=args.port, node=common.cli_node(args),
                         token_lifetime=args.token_lifetime,
                         transition_delay=args.transition_delay,
                         regions=tuple(args.region or ("RegionOne", "RegionTwo")),
                         compute_url_has_project=args.compute_url_has_project,
                         verbose=args.verbose)
    common.run_cli(fake, args)


if __name__ == "__main__":
    main()
