"""Tests of the loopback cloud fakes themselves, over the real wire (urllib).

Run: /usr/bin/python3 -m pytest tests/fakes -q
Loop-device tests need root and /dev/loop-control; they skip otherwise.
"""

import json
import os
import signal
import subprocess
import time
import types
import urllib.parse

import pytest

from .common import HostLoopNode, RecordingNode, VMNode, call
from .gce import FakeGCE, JWT_GRANT, generate_rsa_key, make_jwt
from .openstack import FakeOpenStack

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"
DELAY = 0.1                     # state-machine step used by these tests
SLOW = 0.5                      # step for tests that must observe every state

PROJECT = "a6944d763bf64ee6a275f1263fae0352"
USER_ID = "fd786d56402c4d1691372e7dee0d00b5"
SERVER1 = "0c92f3f6-c253-4c9b-bd43-e880a8d2eb0a"
SERVER2 = "4b293d31-0000-4c9b-bd43-e880a8d2eb0a"
VOL = "6edbc2f4-1507-44f8-ac0d-eed1d2608d38"
MVOL = "227cc671-f30b-4488-96fd-7d0bf13648d8"


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def wait_until(pred, timeout=5.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def observe(fn, stop, timeout=5.0):
    """Poll fn(); return the sequence of distinct consecutive values until stop(value)."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if not seen or seen[-1] != value:
            seen.append(value)
        if stop(value):
            return seen
        time.sleep(0.01)
    raise AssertionError(f"never reached the final state; saw {seen}")


def password_body(user="k8s-volumes", password="s3cret", project="kube", scope=True):
    body = {"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"name": user, "domain": {"name": "Default"}, "password": password}}}}}
    if scope:
        body["auth"]["scope"] = {"project": {"name": project, "domain": {"name": "Default"}}}
    return body


def endpoint(catalog, stype, region="RegionOne", iface="public"):
    entry = next(c for c in catalog if c["type"] == stype)
    return next(e["url"] for e in entry["endpoints"]
                if e["interface"] == iface and region in (e["region_id"], e["region"]))


class Session:
    """A logged-in client: token plus Nova/Cinder endpoints from the catalog."""

    def __init__(self, fake, region="RegionOne", iface="public", body=None):
        r = call("POST", fake.url + "/v3/auth/tokens", body or password_body())
        assert r.status == 201, r
        self.token = r.headers["X-Subject-Token"]
        self.catalog = r.json()["token"]["catalog"]
        self.nova = endpoint(self.catalog, "compute", region, iface)
        self.cinder = endpoint(self.catalog, "volumev3", region, iface)

    def _call(self, base, method, path, body=None, version=None, timeout=10):
        headers = {"X-Auth-Token": self.token, "Accept": "application/json"}
        if version:
            headers["OpenStack-API-Version"] = version
        return call(method, base + path, body, headers, timeout=timeout)

    def nova_call(self, method, path, body=None, mv=None, **kw):
        return self._call(self.nova, method, path, body, mv and f"compute {mv}", **kw)

    def cinder_call(self, method, path, body=None, mv=None, **kw):
        return self._call(self.cinder, method, path, body, mv and f"volume {mv}", **kw)

    def volume(self, vid=VOL):
        r = self.cinder_call("GET", f"/volumes/{vid}")
        assert r.status == 200, r
        return r.json()["volume"]

    def attach(self, sid=SERVER1, vid=VOL, mv=None):
        return self.nova_call("POST", f"/servers/{sid}/os-volume_attachments",
                              {"volumeAttachment": {"volumeId": vid}}, mv=mv)

    def detach(self, sid=SERVER1, vid=VOL):
        return self.nova_call("DELETE", f"/servers/{sid}/os-volume_attachments/{vid}")

    def wait_status(self, status, vid=VOL):
        return wait_until(lambda: self.volume(vid)["status"] == status, what=f"volume {status}")


def seed_openstack(fake):
    fake.add_project("kube", id=PROJECT)
    fake.add_project("other")
    fake.add_user("k8s-volumes", "s3cret", id=USER_ID, projects=["kube"])
    fake.add_server("node-1", id=SERVER1, local=True)
    fake.add_server("node-10")
    fake.add_server("node-2", id=SERVER2, node=None)
    fake.add_server("foreign", project="other")
    fake.add_volume(id=VOL, size=1, name="pvc-1")
    fake.add_volume(id=MVOL, size=1, multiattach=True)


@pytest.fixture
def node():
    return RecordingNode()


@pytest.fixture
def osf(node):
    fake = FakeOpenStack(transition_delay=DELAY, node=node).start()
    seed_openstack(fake)
    yield fake
    fake.stop()
    assert fake.errors == []


@pytest.fixture
def sess(osf):
    return Session(osf)


# --------------------------------------------------------------------------
# Keystone
# --------------------------------------------------------------------------

def test_password_auth_by_name_gives_header_token_and_catalog(osf):
    before = time.time()
    r = call("POST", osf.url + "/v3/auth/tokens", password_body())
    assert r.status == 201
    token = r.headers["X-Subject-Token"]
    assert token and token not in r.body.decode()          # header only, not the body
    body = r.json()["token"]
    assert body["methods"] == ["password"]
    assert body["project"] == {"id": PROJECT, "name": "kube", "domain": {"id": "default", "name": "Default"}}
    assert body["user"]["id"] == USER_ID
    expires = time.mktime(time.strptime(body["expires_at"], "%Y-%m-%dT%H:%M:%S.%fZ")) - time.timezone
    assert abs(expires - (before + 3600)) < 5
    types_ = {c["type"] for c in body["catalog"]}
    assert {"compute", "volumev3", "block-storage", "identity"} <= types_
    eps = next(c for c in body["catalog"] if c["type"] == "volumev3")["endpoints"]
    assert {(e["region_id"], e["interface"]) for e in eps} == {
        ("RegionOne", "public"), ("RegionOne", "internal"), ("RegionTwo", "public"), ("RegionTwo", "internal")}
    assert all(e["url"].endswith(f"/volume/v3/{PROJECT}") and e["region"] == e["region_id"] for e in eps)


def test_trust_scoped_token(osf):
    osf.add_user("trustee", "t-pw", id="7" * 32)
    trust = osf.add_trust("k8s-volumes", "trustee", project="kube")
    body = {"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"id": "7" * 32, "password": "t-pw"}}}, "scope": {"OS-TRUST:trust": {"id": trust["id"]}}}}
    r = call("POST", osf.url + "/v3/auth/tokens", body)
    assert r.status == 201, r.body
    tok = r.json()["token"]
    assert tok["project"]["id"] == PROJECT and tok["catalog"], "the trust's project, with a catalog"
    assert tok["OS-TRUST:trust"]["id"] == trust["id"] and tok["OS-TRUST:trust"]["trustee_user"]["id"] == "7" * 32
    assert osf.request_log(service="keystone")[-1]["auth"]["trust"] == trust["id"]
    # Only the trustee; only an existing trust; a trust scope alone.
    body["auth"]["identity"]["password"]["user"] = {"id": USER_ID, "password": "s3cret"}
    assert call("POST", osf.url + "/v3/auth/tokens", body).status == 403
    body["auth"]["identity"]["password"]["user"] = {"id": "7" * 32, "password": "t-pw"}
    body["auth"]["scope"] = {"OS-TRUST:trust": {"id": "nope"}}
    assert call("POST", osf.url + "/v3/auth/tokens", body).status == 404
    body["auth"]["scope"] = {"OS-TRUST:trust": {"id": trust["id"]}, "project": {"id": PROJECT}}
    assert call("POST", osf.url + "/v3/auth/tokens", body).status == 400


def test_password_auth_by_ids(osf):
    body = {"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"id": USER_ID, "password": "s3cret"}}}, "scope": {"project": {"id": PROJECT}}}}
    r = call("POST", osf.url + "/v3/auth/tokens", body)
    assert r.status == 201 and r.json()["token"]["project"]["id"] == PROJECT


def test_bad_password_is_401_in_keystone_shape(osf):
    r = call("POST", osf.url + "/v3/auth/tokens", password_body(password="wrong"))
    assert r.status == 401
    assert r.json()["error"]["code"] == 401 and r.json()["error"]["title"] == "Unauthorized"
    assert "X-Subject-Token" not in r.headers


def test_auth_validation_errors_are_400(osf):
    no_user_domain = password_body()
    del no_user_domain["auth"]["identity"]["password"]["user"]["domain"]
    assert call("POST", osf.url + "/v3/auth/tokens", no_user_domain).status == 400
    no_project_domain = password_body()
    del no_project_domain["auth"]["scope"]["project"]["domain"]
    assert call("POST", osf.url + "/v3/auth/tokens", no_project_domain).status == 400
    both = password_body()
    both["auth"]["scope"]["domain"] = {"id": "default"}
    assert call("POST", osf.url + "/v3/auth/tokens", both).status == 400


def test_project_without_role_is_401(osf):
    r = call("POST", osf.url + "/v3/auth/tokens", password_body(project="other"))
    assert r.status == 401


def test_unscoped_token_has_no_catalog_and_cannot_call_nova(osf):
    r = call("POST", osf.url + "/v3/auth/tokens", password_body(scope=False))
    assert r.status == 201
    assert "catalog" not in r.json()["token"] and "project" not in r.json()["token"]
    nova = call("GET", osf.url + "/compute/v2.1/servers",
                headers={"X-Auth-Token": r.headers["X-Subject-Token"]})
    assert nova.status == 403


def test_application_credential_by_id_and_by_name(osf):
    cred = osf.add_application_credential(user="k8s-volumes", name="flex")
    by_id = {"auth": {"identity": {"methods": ["application_credential"],
                                   "application_credential": {"id": cred["id"], "secret": cred["secret"]}}}}
    r = call("POST", osf.url + "/v3/auth/tokens", by_id)
    assert r.status == 201
    tok = r.json()["token"]
    assert tok["project"]["id"] == PROJECT and tok["methods"] == ["application_credential"]
    assert tok["application_credential"]["id"] == cred["id"] and tok["catalog"]
    assert Session(osf, body=by_id).volume()["id"] == VOL        # token works on Cinder

    by_name = {"auth": {"identity": {"methods": ["application_credential"], "application_credential": {
        "name": "flex", "secret": cred["secret"],
        "user": {"name": "k8s-volumes", "domain": {"name": "Default"}}}}}}
    assert call("POST", osf.url + "/v3/auth/tokens", by_name).status == 201


def test_application_credential_rejects_scope_and_bad_secret(osf):
    cred = osf.add_application_credential(user=USER_ID)
    body = {"auth": {"identity": {"methods": ["application_credential"],
                                  "application_credential": {"id": cred["id"], "secret": cred["secret"]}},
                     "scope": {"project": {"id": PROJECT}}}}
    assert call("POST", osf.url + "/v3/auth/tokens", body).status == 400
    del body["auth"]["scope"]
    body["auth"]["identity"]["application_credential"]["secret"] = "nope"
    assert call("POST", osf.url + "/v3/auth/tokens", body).status == 401


def test_catalog_endpoints_all_work_and_log_which_was_used(osf):
    s = Session(osf, region="RegionTwo", iface="internal")
    assert "/RegionTwo/internal/" in s.cinder
    assert s.volume()["id"] == VOL
    last = osf.request_log(service="cinder")[-1]
    assert last["endpoint"] == "RegionTwo/internal"


def test_legacy_catalog_entries_are_not_served(osf, sess):
    v2 = endpoint(sess.catalog, "volumev2")
    r = call("GET", f"{v2}/volumes/{VOL}", headers={"X-Auth-Token": sess.token})
    assert r.status == 404


def test_compute_url_with_project_id(node):
    with FakeOpenStack(node=node, compute_url_has_project=True) as fake:
        seed_openstack(fake)
        s = Session(fake)
        assert s.nova.endswith(f"/compute/v2.1/{PROJECT}")
        assert s.nova_call("GET", f"/servers/{SERVER1}").status == 200


def test_api_without_or_with_unknown_token_is_401(osf, sess):
    for headers in ({}, {"X-Auth-Token": "gAAAAAbogus"}):
        r = call("GET", f"{sess.cinder}/volumes/{VOL}", headers=headers)
        assert r.status == 401
        assert r.json()["error"]["code"] == 401
        assert r.headers["WWW-Authenticate"].startswith("Keystone uri=")


def test_token_expires_after_lifetime(osf):
    osf.configure(token_lifetime=1.0)
    s = Session(osf)
    assert s.cinder_call("GET", f"/volumes/{VOL}").status == 200
    time.sleep(1.2)
    assert s.cinder_call("GET", f"/volumes/{VOL}").status == 401
    assert Session(osf).cinder_call("GET", f"/volumes/{VOL}").status == 200   # re-auth works


def test_expire_tokens_now(osf, sess):
    assert sess.cinder_call("GET", f"/volumes/{VOL}").status == 200
    r = call("POST", osf.url + "/_fake/faults", {"kind": "expire_tokens"})
    assert r.status == 201 and r.json()["applied"]
    assert sess.cinder_call("GET", f"/volumes/{VOL}").status == 401


def test_url_project_must_match_token(osf, sess):
    other = sess.cinder.replace(PROJECT, "f" * 32)
    r = call("GET", f"{other}/volumes/{VOL}", headers={"X-Auth-Token": sess.token})
    assert r.status == 400 and "badRequest" in r.json()


# --------------------------------------------------------------------------
# Nova
# --------------------------------------------------------------------------

def test_server_lookup_by_name_is_a_regex_search(osf, sess):
    def names(pattern):
        r = sess.nova_call("GET", "/servers?name=" + urllib.parse.quote(pattern))
        assert r.status == 200
        return sorted(s["name"] for s in r.json()["servers"])
    assert names("^node-1$") == ["node-1"]
    assert names("node-1") == ["node-1", "node-10"]          # unanchored = search
    assert names("^node-[12]$") == ["node-1", "node-2"]
    assert names("foreign") == []                            # other project
    assert sess.nova_call("GET", "/servers?name=" + urllib.parse.quote("(")).status == 400


def test_show_server_and_unknown_server(osf, sess):
    r = sess.nova_call("GET", f"/servers/{SERVER1}")
    assert r.status == 200 and r.json()["server"]["name"] == "node-1"
    r = sess.nova_call("GET", "/servers/0000")
    assert r.status == 404 and r.json()["itemNotFound"]["code"] == 404


def test_attach_detach_status_transitions_and_records(osf, sess, node):
    osf.configure(transition_delay=SLOW)
    r = sess.attach()
    assert r.status == 200
    va = r.json()["volumeAttachment"]
    assert va == {"device": "/dev/vdb", "id": VOL, "serverId": SERVER1, "volumeId": VOL}
    statuses = observe(lambda: sess.volume()["status"], lambda s: s == "in-use")
    assert statuses == ["reserved", "attaching", "in-use"]
    vol = sess.volume()
    [att] = vol["attachments"]
    assert att["server_id"] == SERVER1 and att["device"] == "/dev/vdb" and att["volume_id"] == VOL
    assert len(att["attachment_id"]) == 36
    assert node.plugged[VOL] == {"serial": VOL[:20], "links": [f"virtio-{VOL[:20]}"],
                                 "image": node.image_path(VOL)}
    listing = sess.nova_call("GET", f"/servers/{SERVER1}/os-volume_attachments").json()
    assert listing["volumeAttachments"] == [va]
    assert sess.nova_call("GET", f"/servers/{SERVER1}/os-volume_attachments/{VOL}").json() == r.json()
    server = sess.nova_call("GET", f"/servers/{SERVER1}").json()["server"]
    assert server["os-extended-volumes:volumes_attached"] == [{"id": VOL}]

    d = sess.detach()
    assert d.status == 202 and d.body == b""
    statuses = observe(lambda: sess.volume()["status"], lambda s: s == "available")
    assert statuses == ["detaching", "available"]
    assert sess.volume()["attachments"] == []
    assert VOL not in node.plugged
    r = sess.nova_call("GET", f"/servers/{SERVER1}/os-volume_attachments/{VOL}")
    assert r.status == 404 and r.json()["itemNotFound"]["message"] == f"volume_id not found: {VOL}"


def test_microversion_headers_and_shapes(osf, sess):
    r = sess.nova_call("GET", f"/servers/{SERVER1}")
    assert r.headers["OpenStack-API-Version"] == "compute 2.1"
    assert r.headers["X-OpenStack-Nova-API-Version"] == "2.1"
    assert "OpenStack-API-Version" in r.headers["Vary"]
    legacy = call("GET", f"{sess.nova}/servers/{SERVER1}",
                  headers={"X-Auth-Token": sess.token, "X-OpenStack-Nova-API-Version": "2.60"})
    assert legacy.headers["OpenStack-API-Version"] == "compute 2.60"
    assert sess.nova_call("GET", f"/servers/{SERVER1}", mv="bogus").headers["X-OpenStack-Nova-API-Version"] == "2.1"
    assert sess.nova_call("GET", f"/servers/{SERVER1}", mv="2.999").status == 406

    r = sess.attach(mv="2.89")
    assert r.status == 200
    va = r.json()["volumeAttachment"]
    assert "id" not in va and len(va["attachment_id"]) == 36 and "bdm_uuid" in va and "tag" in va
    r = sess.attach(sid="node-10-does-not-exist", vid=MVOL, mv="2.101")
    assert r.status == 404
    r = sess.attach(sid=SERVER2, vid=MVOL, mv="2.101")
    assert r.status == 202                                   # 2.101: attach returns 202
    tagged = sess.nova_call("POST", f"/servers/{SERVER1}/os-volume_attachments",
                            {"volumeAttachment": {"volumeId": MVOL, "tag": "x"}})
    assert tagged.status == 400                              # tag needs >= 2.49
    cinder = sess.cinder_call("GET", f"/volumes/{VOL}", mv="3.42")
    assert cinder.headers["OpenStack-API-Version"] == "volume 3.42"


def test_attach_in_use_volume_elsewhere_is_400_not_409(osf, sess):
    assert sess.attach().status == 200
    sess.wait_status("in-use")
    r = sess.attach(sid=SERVER2)
    assert r.status == 400
    assert r.json()["badRequest"]["message"] == (
        f"Invalid volume: volume '{VOL}' status must be 'available'. Currently in 'in-use'")
    again = sess.attach()
    assert again.status == 400 and "already attached" in again.json()["badRequest"]["message"]


def test_multiattach_needs_260_and_stays_in_use_until_last_detach(osf, sess):
    r = sess.attach(vid=MVOL)
    assert r.status == 400 and "2.60" in r.json()["badRequest"]["message"]
    assert sess.attach(vid=MVOL, mv="2.60").status == 200
    sess.wait_status("in-use", MVOL)
    assert sess.attach(sid=SERVER2, vid=MVOL, mv="2.60").status == 200
    wait_until(lambda: len(sess.volume(MVOL)["attachments"]) == 2, what="two attachments")
    assert sess.volume(MVOL)["status"] == "in-use"
    assert sess.detach(vid=MVOL).status == 202
    wait_until(lambda: [a["server_id"] for a in sess.volume(MVOL)["attachments"]] == [SERVER2],
               what="one attachment left")
    assert sess.volume(MVOL)["status"] == "in-use"


def test_attach_errors(osf, sess):
    r = sess.attach(vid="11111111-2222-3333-4444-555555555555")
    assert r.status == 404 and "itemNotFound" in r.json()
    osf.update_server(SERVER1, locked=True)
    r = sess.attach()
    assert r.status == 409 and r.json()["conflictingRequest"]["message"] == f"Instance {SERVER1} is locked"
    r = sess.nova_call("POST", f"/servers/{SERVER2}/os-volume_attachments", {"volumeAttachment": {}})
    assert r.status == 400


def test_detach_errors(osf, sess):
    assert sess.detach().status == 404                       # not attached
    osf.add_fault(kind="stuck_attaching", target=VOL)
    sess.attach()
    r = sess.detach()                                        # still reserved/attaching
    assert r.status == 400 and "badRequest" in r.json()


# --------------------------------------------------------------------------
# Cinder
# --------------------------------------------------------------------------

def test_volume_show_list_and_404(osf, sess):
    vol = sess.volume()
    assert vol["size"] == 1 and vol["multiattach"] is False and vol["status"] == "available"
    assert vol["name"] == "pvc-1" and vol["attachments"] == []
    detail = sess.cinder_call("GET", "/volumes/detail").json()["volumes"]
    assert {v["id"] for v in detail} == {VOL, MVOL}
    assert sess.volume(MVOL)["multiattach"] is True
    r = sess.cinder_call("GET", "/volumes/nope")
    assert r.status == 404 and r.json()["itemNotFound"]["code"] == 404


def test_metadata_round_trip(osf, sess):
    base = f"/volumes/{VOL}/metadata"
    r = sess.cinder_call("POST", base, {"metadata": {"a": "1", "b": "2"}})
    assert r.status == 200 and r.json() == {"metadata": {"a": "1", "b": "2"}}
    r = sess.cinder_call("POST", base, {"metadata": {"b": "3"}})
    assert r.json() == {"metadata": {"a": "1", "b": "3"}}      # merge
    assert sess.cinder_call("GET", base + "/a").json() == {"meta": {"a": "1"}}
    assert sess.cinder_call("PUT", base + "/c", {"meta": {"c": "x"}}).json() == {"meta": {"c": "x"}}
    assert sess.cinder_call("PUT", base + "/c", {"meta": {"d": "x"}}).status == 400
    assert sess.cinder_call("DELETE", base + "/a").status == 200
    assert sess.cinder_call("DELETE", base + "/a").status == 404
    assert sess.cinder_call("GET", base + "/a").status == 404
    assert sess.volume()["metadata"] == {"b": "3", "c": "x"}
    r = sess.cinder_call("PUT", base, {"metadata": {"only": "this"}})
    assert r.json() == {"metadata": {"only": "this"}} and sess.volume()["metadata"] == {"only": "this"}
    assert sess.cinder_call("POST", base, {"metadata": {"n": 5}}).status == 400


def test_extend_available_and_in_use(osf, sess, node):
    osf.configure(transition_delay=SLOW)
    act = f"/volumes/{VOL}/action"
    assert sess.cinder_call("POST", act, {"os-extend": {"new_size": 1}}).status == 400
    assert sess.cinder_call("POST", act, {"os-bogus": {}}).status == 400
    assert sess.cinder_call("POST", act, {"os-extend": {"new_size": 2}}).status == 202
    assert observe(lambda: sess.volume()["status"], lambda s: s == "available") == ["extending", "available"]
    assert sess.volume()["size"] == 2

    sess.attach()
    sess.wait_status("in-use")
    r = sess.cinder_call("POST", act, {"os-extend": {"new_size": 3}})
    assert r.status == 400                                   # online extend needs 3.42
    assert sess.cinder_call("POST", act, {"os-extend": {"new_size": 3}}, mv="3.42").status == 202
    wait_until(lambda: sess.volume()["size"] == 3, what="size 3")
    assert sess.volume()["status"] == "in-use"
    wait_until(lambda: os.path.getsize(node.image_path(VOL)) == 3 << 30, what="image grown")


def test_meta_data_json_describes_local_server(osf):
    r = call("GET", osf.url + "/openstack/latest/meta_data.json")
    assert r.status == 200
    assert r.json()["uuid"] == SERVER1 and r.json()["name"] == "node-1"


# --------------------------------------------------------------------------
# Faults (generic machinery, exercised through OpenStack and GCE)
# --------------------------------------------------------------------------

def test_status_fault_count_and_match(osf, sess):
    f = osf.add_fault(kind="status", status=500, count=2, match=r"/volumes/")
    assert sess.nova_call("GET", f"/servers/{SERVER1}").status == 200       # no match
    for _ in range(2):
        r = sess.cinder_call("GET", f"/volumes/{VOL}")
        assert r.status == 500 and r.json()["computeFault"]["code"] == 500
    assert sess.cinder_call("GET", f"/volumes/{VOL}").status == 200
    assert osf.list_faults() == []
    assert [e["fault"] for e in osf.request_log() if "fault" in e] == [f["id"], f["id"]]


def test_rate_limit_faults_carry_retry_after(osf, sess):
    osf.add_fault(kind="status", status=429, retry_after=7, count=1)
    r = sess.cinder_call("GET", f"/volumes/{VOL}")
    assert r.status == 429 and r.headers["Retry-After"] == "7"
    assert r.json()["overLimit"]["retryAfter"] == "7"
    osf.add_fault(kind="status", status=413, retry_after=3, count=1, method="POST")
    assert sess.cinder_call("GET", f"/volumes/{VOL}").status == 200          # method filter
    r = sess.attach()
    assert r.status == 413 and r.headers["Retry-After"] == "3"


def test_401_fault_for_next_calls(osf, sess):
    osf.add_fault(kind="status", status=401, count=1)
    r = sess.cinder_call("GET", f"/volumes/{VOL}")
    assert r.status == 401 and r.json()["error"]["title"] == "Unauthorized"
    assert sess.cinder_call("GET", f"/volumes/{VOL}").status == 200


def test_injected_errors_take_the_shape_of_the_service_hit(osf, sess, gce):
    osf.add_fault(kind="status", status=503, match="/auth/tokens", count=1)
    r = call("POST", osf.url + "/v3/auth/tokens", password_body())
    assert r.status == 503 and r.json()["error"]["title"] == "Service Unavailable"   # Keystone
    gce.add_fault(kind="status", status=500, match="computeMetadata", count=1)
    r = call("GET", gce.url + "/computeMetadata/v1/project/project-id", headers={"Metadata-Flavor": "Google"})
    assert r.status == 500 and r.headers["Metadata-Flavor"] == "Google" and b"{" not in r.body
    gce.add_fault(kind="status", status=503, match="^/token", count=1)
    r = call("POST", gce.url + "/token", form={"grant_type": JWT_GRANT, "assertion": "x"})
    assert r.status == 503 and set(r.json()) == {"error", "error_description"}


def test_delay_fault(osf, sess):
    osf.add_fault(kind="delay", seconds=0.5, count=1)
    t = time.monotonic()
    assert sess.cinder_call("GET", f"/volumes/{VOL}").status == 200
    assert time.monotonic() - t >= 0.5
    assert osf.list_faults() == []                           # count=1 consumed


def test_hang_fault_until_cleared(osf, sess):
    osf.add_fault(kind="hang", match="/volumes/")
    with pytest.raises(OSError):          # socket timeout: no answer at all
        sess.cinder_call("GET", f"/volumes/{VOL}", timeout=0.5)
    assert osf.faults.hung_count() == 1
    r = call("DELETE", osf.url + "/_fake/faults")
    assert r.status == 200
    wait_until(lambda: osf.faults.hung_count() == 0, what="hung request released")
    assert sess.cinder_call("GET", f"/volumes/{VOL}", timeout=2).status == 200


def test_fault_after_phase_applies_the_request(osf, sess):
    """A lost answer: the attach takes effect but the client sees a 503."""
    osf.add_fault(kind="status", status=503, phase="after", count=1, method="POST")
    r = sess.attach()
    assert r.status == 503 and "serviceUnavailable" in r.json()
    sess.wait_status("in-use")


def test_stuck_attaching_until_fault_removed(osf, sess, node):
    f = osf.add_fault(kind="stuck_attaching", target=VOL)
    sess.attach()
    sess.wait_status("attaching")
    time.sleep(DELAY * 4)
    assert sess.volume()["status"] == "attaching" and sess.volume()["attachments"] == []
    assert node.calls == []
    osf.remove_fault(f["id"])
    sess.wait_status("in-use")
    assert VOL in node.plugged


def test_no_device_fault_skips_plug(osf, sess, node):
    osf.add_fault(kind="no_device", target=VOL, count=1)
    sess.attach()
    sess.wait_status("in-use")
    assert node.calls == []
    sess.detach()
    sess.wait_status("available")
    assert node.calls == []                   # nothing to unplug either
    sess.attach()
    sess.wait_status("in-use")
    assert VOL in node.plugged                # count=1: next attach is normal


def test_request_log_counts_auths_and_keeps_no_secrets(osf):
    Session(osf)
    Session(osf)
    call("POST", osf.url + "/v3/auth/tokens", password_body(password="wrong-s3cret"))
    assert osf.auth_count() == 3 and osf.auth_count(ok=True) == 2
    r = call("GET", osf.url + "/_fake/requests?path=/auth/tokens")
    entries = r.json()["requests"]
    assert [e["status"] for e in entries] == [201, 201, 401]
    assert all({"method", "path", "status", "time"} <= set(e) for e in entries)
    assert "s3cret" not in json.dumps(entries)
    assert len(osf.tokens.issued()) == 2
    assert not any(t in json.dumps(osf.request_log()) for t in osf.tokens.issued())
    assert all(not e["path"].startswith("/_fake") for e in osf.request_log())


def test_admin_http_api(osf):
    base = osf.url + "/_fake"
    r = call("POST", base + "/seed", {"servers": [{"name": "n9", "node": False}],
                                      "volumes": [{"size": 5, "multiattach": True}]})
    assert r.status == 201
    vid = r.json()["volumes"][0]["id"]
    assert call("PATCH", f"{base}/volumes/{vid}", {"status": "error"}).json()["status"] == "error"
    assert Session(osf).volume(vid)["status"] == "error"
    assert call("PATCH", f"{base}/volumes/{vid}", {"bogus": 1}).status == 400
    assert call("POST", base + "/volumes", {"size": 1, "nonsense": True}).status == 400
    assert call("POST", base + "/faults", {"kind": "nope"}).status == 400
    f = call("POST", base + "/faults", {"kind": "status", "status": 500}).json()
    assert call("GET", base + "/faults").json()["faults"][0]["id"] == f["id"]
    assert call("DELETE", f"{base}/faults/{f['id']}").status == 200
    assert call("DELETE", f"{base}/faults/{f['id']}").status == 404
    assert call("POST", base + "/config", {"transition_delay": 0.05}).json()["transition_delay"] == 0.05
    state = call("GET", base + "/state").json()
    assert any(s["name"] == "n9" for s in state["servers"])
    assert "password" not in json.dumps(state["users"])
    assert call("DELETE", base + "/requests").status == 200 and osf.request_log() == []


# --------------------------------------------------------------------------
# GCE
# --------------------------------------------------------------------------

ZONE = "us-central1-a"
COMPUTE = f"/compute/v1/projects/my-project/zones/{ZONE}"


@pytest.fixture
def gce(node):
    fake = FakeGCE(op_delay=DELAY, node=node).start()
    fake.add_instance("gke-node-1", local=True)
    fake.add_instance("gke-node-2", node=None)
    fake.add_disk("pvc-1", size_gb=5)
    fake.add_disk("pvc-2", size_gb=5)
    yield fake
    fake.stop()
    assert fake.errors == []


class GceClient:
    def __init__(self, fake, token=None):
        self.fake = fake
        if token is None:
            r = call("GET", fake.url + "/computeMetadata/v1/instance/service-accounts/default/token",
                     headers={"Metadata-Flavor": "Google"})
            token = r.json()["access_token"]
        self.headers = {"Authorization": f"Bearer {token}"}

    def __call__(self, method, path, body=None, **kw):
        return call(method, self.fake.url + COMPUTE + path, body, self.headers, **kw)

    def attach(self, disk="pvc-1", instance="gke-node-1", request_id=None, device=None, mode="READ_WRITE"):
        q = f"?requestId={request_id}" if request_id else ""
        body = {"source": f"projects/my-project/zones/{ZONE}/disks/{disk}",
                "deviceName": device or disk, "mode": mode, "type": "PERSISTENT",
                "kind": "compute#attachedDisk"}
        return self("POST", f"/instances/{instance}/attachDisk{q}", body)

    def op(self, name):
        return self("GET", f"/operations/{name}").json()

    def wait_done(self, name):
        return wait_until(lambda: (lambda o: o if o["status"] == "DONE" else None)(self.op(name)),
                          what=f"operation {name} DONE")


@pytest.fixture
def gc(gce):
    return GceClient(gce)


def test_metadata_requires_flavor_header(gce):
    r = call("GET", gce.url + "/computeMetadata/v1/project/project-id")
    assert r.status == 403 and r.headers["Metadata-Flavor"] == "Google"


def test_metadata_values_and_token(gce):
    def md(path):
        r = call("GET", gce.url + "/computeMetadata/v1/" + path, headers={"Metadata-Flavor": "Google"})
        assert r.status == 200 and r.headers["Metadata-Flavor"] == "Google"
        return r
    assert md("project/project-id").body == b"my-project"
    assert md("instance/zone").body == b"projects/123456789012/zones/us-central1-a"
    assert md("instance/name").body == b"gke-node-1"
    tok = md("instance/service-accounts/default/token").json()
    assert tok["token_type"] == "Bearer" and tok["expires_in"] == 3600 and tok["access_token"]
    assert gce.auth_count(ok=True) == 1
    assert call("GET", gce.url + "/computeMetadata/v1/nope", headers={"Metadata-Flavor": "Google"}).status == 404


def test_jwt_bearer_flow(gce, tmp_path):
    path = tmp_path / "key.json"
    key = gce.write_service_account_key(str(path))
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    on_disk = json.loads(path.read_text())
    assert on_disk["type"] == "service_account" and on_disk["token_uri"] == gce.url + "/token"
    assert on_disk["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    r = call("POST", on_disk["token_uri"], form={"grant_type": JWT_GRANT, "assertion": make_jwt(key)})
    assert r.status == 200
    tok = r.json()
    assert tok["token_type"] == "Bearer" and tok["expires_in"] == 3600
    assert GceClient(gce, tok["access_token"])("GET", "/instances/gke-node-1").status == 200
    log = gce.request_log(service="oauth")
    assert log[-1]["auth"] == {"method": "jwt-bearer", "ok": True, "account": key["client_email"]}
    assert "assertion" not in json.dumps(log)


def test_jwt_rejections(gce):
    key = gce.add_service_account()
    other_private, _ = generate_rsa_key()

    def token(assertion, grant=JWT_GRANT):
        return call("POST", gce.url + "/token", form={"grant_type": grant, "assertion": assertion})

    forged = make_jwt(dict(key, private_key=other_private))
    r = token(forged)
    assert r.status == 400 and r.json() == {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
    assert token(make_jwt(key, now=time.time() - 7200)).json()["error"] == "invalid_grant"   # expired
    assert token(make_jwt(key, lifetime=7200)).status == 400                                 # > 1 h
    assert token(make_jwt(key, aud="https://example.com/token")).status == 400
    assert token(make_jwt(dict(key, client_email="who@x.iam.gserviceaccount.com"))).status == 400
    assert token(make_jwt(key, scope="")).json()["error"] == "invalid_scope"
    assert token("not.a.jwt").status == 400
    assert token(make_jwt(key), grant="client_credentials").json()["error"] == "unsupported_grant_type"
    assert token(make_jwt(key, aud="https://oauth2.googleapis.com/token")).status == 200
    assert gce.auth_count(ok=False) == 8 and gce.auth_count(ok=True) == 1


def test_compute_requires_valid_bearer(gce, gc):
    r = GceClient(gce, token="ya29.bogus")("GET", "/instances/gke-node-1")
    assert r.status == 401
    err = r.json()["error"]
    assert err["code"] == 401 and err["errors"][0]["reason"] == "authError"
    assert gc("GET", "/instances/gke-node-1").status == 200
    gce.add_fault(kind="expire_tokens")
    assert gc("GET", "/instances/gke-node-1").status == 401


def test_instance_and_disk_shapes(gce, gc):
    inst = gc("GET", "/instances/gke-node-1").json()
    assert inst["kind"] == "compute#instance" and inst["name"] == "gke-node-1"
    [boot] = inst["disks"]
    assert boot["boot"] is True and boot["deviceName"] == "persistent-disk-0"
    disk = gc("GET", "/disks/pvc-1").json()
    assert disk["sizeGb"] == "5" and disk["kind"] == "compute#disk" and "users" not in disk
    r = gc("GET", "/disks/nope")
    assert r.status == 404
    assert r.json()["error"]["errors"][0]["reason"] == "notFound"
    assert "disks/nope' was not found" in r.json()["error"]["message"]
    assert gc("GET", "/instances/nope").status == 404
    assert call("GET", gce.url + "/compute/v1/projects/my-project/zones/mars-1/disks/pvc-1",
                headers=gc.headers).status == 400


def test_regional_disks(gce, gc):
    gce.zones = (ZONE, "us-central1-b")
    gce.add_disk("pd-r", size_gb=3, region="us-central1", replica_zones=[ZONE, "us-central1-b"])
    base = gce.url + "/compute/v1/projects/my-project/regions/us-central1/disks/"
    d = call("GET", base + "pd-r", headers=gc.headers).json()
    assert d["region"].endswith("/projects/my-project/regions/us-central1") and "zone" not in d
    assert [z.rsplit("/", 1)[1] for z in d["replicaZones"]] == [ZONE, "us-central1-b"]
    assert d["selfLink"].endswith("/regions/us-central1/disks/pd-r") and d["sizeGb"] == "3"
    assert call("GET", base + "nope", headers=gc.headers).status == 404
    assert gc("GET", "/disks/pd-r").status == 404, "not a zonal disk"
    body = {"source": "projects/my-project/regions/us-central1/disks/pd-r", "deviceName": "pd-r",
            "mode": "READ_WRITE", "type": "PERSISTENT"}
    op = gc("POST", "/instances/gke-node-1/attachDisk", body).json()
    assert "error" not in gc.wait_done(op["name"])
    [att] = [x for x in gc("GET", "/instances/gke-node-1").json()["disks"] if x["deviceName"] == "pd-r"]
    assert att["source"].endswith("/projects/my-project/regions/us-central1/disks/pd-r")
    users = call("GET", base + "pd-r", headers=gc.headers).json()["users"]
    assert [u.rsplit("/", 1)[1] for u in users] == ["gke-node-1"]
    gce.add_disk("pd-r2", size_gb=1, region="us-central1", replica_zones=["us-central1-b", "us-central1-c"])
    body["source"], body["deviceName"] = body["source"].replace("pd-r", "pd-r2"), "pd-r2"
    r = gc("POST", "/instances/gke-node-1/attachDisk", body)
    assert r.status == 400 and "no replica" in r.json()["error"]["message"]


def test_seeded_and_hidden_attachments(gce, gc):
    """seed_attachment (a mirror of another fake's state) and set_listed (an
    attach whose operation is not DONE yet) as instances.get shows them."""
    gce.seed_attachment("gke-node-1", "pvc-1", "pv-a", "READ_ONLY")
    gce.seed_attachment("gke-node-1", "pd-new", "pv-b")

    def listed():
        return {d["deviceName"]: (d["source"].rsplit("/", 1)[1], d["mode"])
                for d in gc("GET", "/instances/gke-node-1").json()["disks"] if not d["boot"]}
    assert listed() == {"pv-a": ("pvc-1", "READ_ONLY"), "pv-b": ("pd-new", "READ_WRITE")}
    assert gc("GET", "/disks/pd-new").status == 200, "a seeded disk that did not exist is made"
    gce.set_listed("gke-node-1", "pv-a", False)
    assert listed() == {"pv-b": ("pd-new", "READ_WRITE")}
    gce.set_listed("gke-node-1", "pv-a", True)
    assert set(listed()) == {"pv-a", "pv-b"}


def test_attach_operation_progression_and_effect(gce, gc, node):
    gce.configure(op_delay=SLOW)
    r = gc.attach()
    assert r.status == 200
    op = r.json()
    assert op["kind"] == "compute#operation" and op["operationType"] == "attachDisk"
    assert op["status"] == "PENDING" and op["targetLink"].endswith("/instances/gke-node-1")

    def snapshot():
        # Instance first: the effect is committed together with DONE, so an
        # attached disk seen here implies DONE in the next read.
        attached = any(d["deviceName"] == "pvc-1" for d in gc("GET", "/instances/gke-node-1").json()["disks"])
        return gc.op(op["name"])["status"], attached
    seen = observe(snapshot, lambda s: s == ("DONE", True))
    statuses = [s for i, (s, _) in enumerate(seen) if i == 0 or seen[i - 1][0] != s]
    assert statuses == ["PENDING", "RUNNING", "DONE"]
    assert all(not attached for status, attached in seen if status != "DONE")
    done = gc.op(op["name"])
    assert "error" not in done and done["progress"] == 100 and done["endTime"]
    assert gc("GET", "/disks/pvc-1").json()["users"][0].endswith("/instances/gke-node-1")
    assert node.plugged["gce-us-central1-a-pvc-1"]["links"] == [
        "google-pvc-1", "scsi-0Google_PersistentDisk_pvc-1"]
    assert node.plugged["gce-us-central1-a-pvc-1"]["serial"] == "pvc-1"
    assert gc("GET", "/operations/operation-nope").status == 404


def test_operation_wait(gce, gc):
    name = gc.attach().json()["name"]
    t = time.monotonic()
    r = gc("POST", f"/operations/{name}/wait")
    assert r.status == 200 and r.json()["status"] == "DONE"
    assert time.monotonic() - t < 2
    gce.configure(op_wait_max=0.05)
    gce.add_fault(kind="slow_operation", seconds=1.0, count=1)
    slow = gc.attach(disk="pvc-2").json()["name"]
    assert gc("POST", f"/operations/{slow}/wait").json()["status"] != "DONE"   # returned early


def test_operations_list_filter_and_pages(gce, gc):
    import urllib.parse
    gce.configure(op_delay=SLOW)
    inst_id = gc("GET", "/instances/gke-node-1").json()["id"]
    running = gc.attach().json()["name"]
    other = gc.attach(disk="pvc-2", instance="gke-node-2").json()["name"]

    def names(flt, **q):
        q = dict(q, filter=flt)
        r = gc("GET", "/operations?" + urllib.parse.urlencode(q))
        assert r.status == 200, r.body
        body = r.json()
        assert body["kind"] == "compute#operationList"
        return [o["name"] for o in body.get("items", [])], body.get("nextPageToken")
    flt = '(operationType = "attachDisk") (status != "DONE") (targetId = %s)' % inst_id
    assert names(flt) == ([running], None)
    assert sorted(names('(operationType = "attachDisk")')[0]) == sorted([running, other])
    assert names('(operationType = "detachDisk")') == ([], None)      # no "items" at all
    first, token = names("", maxResults=1)
    assert len(first) == 1 and token
    assert names("", maxResults=1, pageToken=token)[0] != first
    gc.wait_done(running)
    assert names(flt) == ([], None), "a DONE operation is filtered out"
    bad = gc("GET", "/operations?" + urllib.parse.urlencode({"filter": "status = DONE AND"}))
    assert bad.status == 400 and "filter" in bad.json()["error"]["message"]


def test_request_id_idempotency(gce, gc, node):
    rid = "5a2c8d4e-0d9a-4c51-9a47-3a0f7f0b9e11"
    first = gc.attach(request_id=rid).json()
    second = gc.attach(request_id=rid).json()
    assert second["name"] == first["name"]
    gc.wait_done(first["name"])
    third = gc.attach(request_id=rid)                 # retry after success: same op, no error
    assert third.status == 200 and third.json()["name"] == first["name"] and "error" not in third.json()
    assert [c[0] for c in node.calls] == ["plug"]
    assert len([d for d in gce.instance("gke-node-1")["disks"] if d["deviceName"] == "pvc-1"]) == 1
    assert gce.request_log(path="attachDisk")[-1]["replayed_operation"] == first["name"]
    other = gc.attach()                               # no requestId: a new request
    assert other.status == 400
    assert gc.attach(request_id="not-a-uuid").status == 400


def test_attach_already_attached_sync_error(gce, gc):
    gc.wait_done(gc.attach().json()["name"])
    for inst in ("gke-node-1", "gke-node-2"):
        r = gc.attach(instance=inst)
        assert r.status == 400
        err = r.json()["error"]
        assert err["errors"][0]["reason"] == "resourceInUseByAnotherResource"
        assert "is already being used by 'projects/my-project/zones/us-central1-a/instances/gke-node-1'" in err["message"]


def test_attach_already_attached_operation_error_mode(gce, gc):
    gce.configure(in_use_error="operation")
    gc.wait_done(gc.attach().json()["name"])
    r = gc.attach(instance="gke-node-2")
    assert r.status == 200
    op = gc.wait_done(r.json()["name"])
    assert op["error"]["errors"][0]["code"] == "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE"
    assert op["httpErrorStatusCode"] == 400 and op["httpErrorMessage"] == "BAD REQUEST"
    assert all(d["deviceName"] != "pvc-1" for d in gce.instance("gke-node-2")["disks"])


def test_racing_attaches_second_operation_fails(gce, gc):
    gce.configure(op_delay=SLOW)
    a = gc.attach().json()["name"]
    b = gc.attach(instance="gke-node-2").json()["name"]   # both accepted while pending
    assert "error" not in gc.wait_done(a)
    assert gc.wait_done(b)["error"]["errors"][0]["code"] == "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE"


def test_read_only_disks_can_be_shared(gce, gc):
    gc.wait_done(gc.attach(mode="READ_ONLY").json()["name"])
    op = gc.wait_done(gc.attach(instance="gke-node-2", mode="READ_ONLY").json()["name"])
    assert "error" not in op and len(gce.disk("pvc-1")["users"]) == 2


def test_attach_validation(gce, gc):
    assert gc.attach(disk="nope").status == 404
    assert gc.attach(instance="nope").status == 404
    assert gc.attach(device="Bad_Name").status == 400
    r = gc("POST", "/instances/gke-node-1/attachDisk", {"deviceName": "x"})
    assert r.status == 400 and r.json()["error"]["errors"][0]["reason"] == "required"
    default_name = gc("POST", "/instances/gke-node-1/attachDisk",
                      {"source": f"zones/{ZONE}/disks/pvc-2"}).json()
    gc.wait_done(default_name["name"])
    assert any(d["deviceName"] == "persistent-disk-1" for d in gce.instance("gke-node-1")["disks"])


def test_detach_operation(gce, gc, node):
    gc.wait_done(gc.attach().json()["name"])
    r = gc("POST", "/instances/gke-node-1/detachDisk?deviceName=pvc-1")
    assert r.status == 200 and r.json()["operationType"] == "detachDisk"
    gc.wait_done(r.json()["name"])
    assert [d["deviceName"] for d in gce.instance("gke-node-1")["disks"]] == ["persistent-disk-0"]
    assert "users" not in gce.disk("pvc-1") and node.plugged == {}
    r = gc("POST", "/instances/gke-node-1/detachDisk?deviceName=pvc-1")
    assert r.status == 400 and "No attached disk found with device name 'pvc-1'" in r.json()["error"]["message"]
    assert gc("POST", "/instances/gke-node-1/detachDisk").status == 400


def test_resize_operation(gce, gc):
    gce.configure(op_delay=SLOW)
    assert gc("POST", "/disks/pvc-1/resize", {"sizeGb": "5"}).status == 400
    r = gc("POST", "/disks/pvc-1/resize", {"sizeGb": "8"})
    assert r.status == 200 and r.json()["operationType"] == "resizeDisk"
    assert gc("GET", "/disks/pvc-1").json()["sizeGb"] == "5"       # not before DONE
    gc.wait_done(r.json()["name"])
    assert gc("GET", "/disks/pvc-1").json()["sizeGb"] == "8"


def test_operation_error_fault(gce, gc, node):
    gce.add_fault(kind="operation_error", target="pvc-1", operation="attachDisk",
                  code="QUOTA_EXCEEDED", message="boom", http_status=403, count=1)
    op = gc.wait_done(gc.attach().json()["name"])
    assert op["error"] == {"errors": [{"code": "QUOTA_EXCEEDED", "message": "boom"}]}
    assert op["httpErrorStatusCode"] == 403
    assert "users" not in gce.disk("pvc-1") and node.calls == []
    assert "error" not in gc.wait_done(gc.attach().json()["name"])  # count used up


def test_slow_operation_fault(gce, gc):
    gce.add_fault(kind="slow_operation", seconds=1.5, count=1)
    name = gc.attach().json()["name"]
    time.sleep(DELAY * 4)                  # a normal operation would be DONE by now
    assert gc.op(name)["status"] == "PENDING"
    wait_until(lambda: gc.op(name)["status"] == "DONE", timeout=6)


def test_no_device_fault_gce(gce, gc, node):
    gce.add_fault(kind="no_device", target="pvc-1")
    gc.wait_done(gc.attach().json()["name"])
    assert any(d["deviceName"] == "pvc-1" for d in gce.instance("gke-node-1")["disks"])
    assert node.calls == []


def test_gce_rate_limit_bodies(gce, gc):
    gce.add_fault(kind="status", status=403, reason="rateLimitExceeded", count=1)
    r = gc("GET", "/disks/pvc-1")
    assert r.status == 403
    assert r.json() == {"error": {"code": 403, "message": "Rate Limit Exceeded", "errors": [
        {"message": "Rate Limit Exceeded", "domain": "usageLimits", "reason": "rateLimitExceeded"}]}}
    gce.add_fault(kind="status", status=429, count=1, retry_after=2)
    r = gc("GET", "/disks/pvc-1")
    assert r.status == 429 and r.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert r.headers["Retry-After"] == "2"
    gce.add_fault(kind="status", status=503, count=1, match="attachDisk")
    assert gc.attach().status == 503
    assert gc("GET", "/disks/pvc-1").status == 200


# --------------------------------------------------------------------------
# Node backends
# --------------------------------------------------------------------------

def _losetup_backing(image_dir):
    """Loop devices whose backing file lives under image_dir."""
    out = subprocess.run(["losetup", "-a", "-O", "NAME,BACK-FILE", "-n", "-l"],
                         capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if image_dir in line]


@pytest.fixture
def loop_node(tmp_path):
    ok, why = HostLoopNode.available()
    if not ok:
        pytest.skip(why)
    n = HostLoopNode(str(tmp_path / "by-id"), str(tmp_path / "sys"), str(tmp_path / "images"))
    yield n
    n.close()
    # Belt and braces: never leak a loop device, whatever the test did.
    leaked = _losetup_backing(n.image_dir)
    for dev in leaked:
        subprocess.run(["losetup", "-d", dev])
    assert not leaked


def test_host_loop_node_plug_unplug_keeps_data(loop_node, tmp_path):
    image = loop_node.prepare_image("vol-a", 8 << 20)
    assert os.path.getsize(image) == 8 << 20 and os.stat(image).st_blocks == 0   # sparse
    loop_node.plug("vol-a", "vol-a-serial", image, links=["virtio-vol-a", "scsi-x"])
    dev = loop_node.device_of("vol-a")
    assert dev.startswith("/dev/loop") and _losetup_backing(loop_node.image_dir) == [dev]
    for name in ("virtio-vol-a", "scsi-x"):
        assert os.readlink(tmp_path / "by-id" / name) == dev
    sysdir = tmp_path / "sys" / "block" / os.path.basename(dev)
    assert (sysdir / "serial").read_text() == "vol-a-serial\n"
    assert (sysdir / "size").read_text() == f"{(8 << 20) // 512}\n"
    with open(tmp_path / "by-id" / "virtio-vol-a", "r+b") as f:      # through the link
        f.write(b"flexvol-data")
    loop_node.unplug("vol-a", "vol-a-serial")
    assert not os.path.lexists(tmp_path / "by-id" / "virtio-vol-a") and not sysdir.exists()
    assert _losetup_backing(loop_node.image_dir) == []
    loop_node.plug("vol-a", "vol-a-serial", loop_node.prepare_image("vol-a", 8 << 20), links=["v"])
    with open(tmp_path / "by-id" / "v", "rb") as f:
        assert f.read(12) == b"flexvol-data"


def test_host_loop_node_resize(loop_node, tmp_path):
    loop_node.plug("vol-b", "s", loop_node.prepare_image("vol-b", 4 << 20), links=["b"])
    loop_node.resize("vol-b", 6 << 20)
    dev = os.path.basename(loop_node.device_of("vol-b"))
    assert (tmp_path / "sys" / "block" / dev / "size").read_text() == f"{(6 << 20) // 512}\n"
    with open(f"/sys/block/{dev}/size") as f:                   # the real kernel view
        assert int(f.read()) == (6 << 20) // 512


def test_openstack_attach_makes_virtio_link_on_host(loop_node, tmp_path):
    with FakeOpenStack(transition_delay=DELAY, node=loop_node) as fake:
        seed_openstack(fake)
        s = Session(fake)
        link = tmp_path / "by-id" / f"virtio-{VOL[:20]}"
        s.attach()
        s.wait_status("in-use")
        assert os.readlink(link).startswith("/dev/loop")
        assert os.path.getsize(loop_node.image_path(VOL)) == 1 << 30
        s.detach()
        s.wait_status("available")
        assert not os.path.lexists(link)
        assert fake.errors == []


def test_gce_attach_makes_google_links_on_host(loop_node, tmp_path):
    with FakeGCE(op_delay=DELAY, node=loop_node) as fake:
        fake.add_instance("gke-node-1", local=True)
        fake.add_disk("pvc-9", size_gb=1)
        gc = GceClient(fake)
        gc.wait_done(gc.attach(disk="pvc-9").json()["name"])
        for name in ("google-pvc-9", "scsi-0Google_PersistentDisk_pvc-9"):
            assert os.readlink(tmp_path / "by-id" / name).startswith("/dev/loop")
        r = gc("POST", "/instances/gke-node-1/detachDisk?deviceName=pvc-9")
        gc.wait_done(r.json()["name"])
        assert not os.path.lexists(tmp_path / "by-id" / "google-pvc-9")
        assert fake.errors == []


def test_vm_node_forwards_to_vm(tmp_path):
    calls = []
    vm = types.SimpleNamespace(attach_disk=lambda image, serial: calls.append(("attach", image, serial)),
                               detach_disk=lambda serial: calls.append(("detach", serial)))
    n = VMNode(vm, str(tmp_path))
    image = n.prepare_image("vol-c", 1 << 20)
    n.plug("vol-c", "serial-c", image, links=["ignored"])
    n.unplug("vol-c", None)
    assert calls == [("attach", image, "serial-c"), ("detach", "serial-c")]


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------

def _run_cli(script, tmp_path, *args):
    port_file = tmp_path / f"{script}.port"
    proc = subprocess.Popen([PY, os.path.join(HERE, script), "--port-file", str(port_file), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(port_file.exists, timeout=10, what="port file")
    except AssertionError:
        proc.kill()
        raise AssertionError(proc.communicate()[1])
    return proc, f"http://127.0.0.1:{int(port_file.read_text())}"


def _stop_cli(proc):
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err


def test_openstack_cli(tmp_path):
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({
        "projects": [{"name": "kube", "id": PROJECT}],
        "users": [{"name": "k8s-volumes", "password": "s3cret", "projects": ["kube"]}],
        "volumes": [{"id": VOL, "size": 1}]}))
    proc, url = _run_cli("openstack.py", tmp_path, "--seed", str(seed), "--transition-delay", "0.05")
    try:
        fake = types.SimpleNamespace(url=url)
        assert Session(fake).volume()["id"] == VOL          # seeded before the port file
        assert call("GET", url + "/_fake/state").json()["config"]["transition_delay"] == 0.05
    finally:
        _stop_cli(proc)


def test_gce_cli(tmp_path):
    key_path = tmp_path / "sa.json"
    proc, url = _run_cli("gce.py", tmp_path, "--sa-key-out", str(key_path), "--zone", "europe-west1-b")
    try:
        key = json.loads(key_path.read_text())
        assert key["token_uri"] == url + "/token"
        r = call("POST", key["token_uri"], form={"grant_type": JWT_GRANT, "assertion": make_jwt(key)})
        assert r.status == 200 and r.json()["access_token"]
        assert call("GET", url + "/_fake/state").json()["zones"] == ["europe-west1-b"]
    finally:
        _stop_cli(proc)
