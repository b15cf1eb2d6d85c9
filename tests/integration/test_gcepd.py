"""The gcepd driver against a fake GCE (tests/fakes/gce.py: metadata server,
OAuth token endpoint, compute v1 with zonal operations) whose attached disks
appear as real loop devices with by-id links and sysfs serials under a
temporary tree (HostLoopNode): the kubelet sequence, the attach/detach
controller's calls, idempotency, parallelism, detach without local state,
both credential flows, and every cloud fault the issue lists."""
import os
import shutil
import signal
import subprocess
import time
import urllib.parse

import pytest

from syslog_capture import Syslog
from cloud_common import (CAP_SYS_RESOURCE, POD_A, POD_B, attach_and_mount, cloud_fixtures, each_call_twice, fs_size,
                          fs_type_of, has_cap, mounts_under, requests, tear_down)
from conftest import valgrind_wrapper
from gcepd_helpers import GCECloud, opts
from kubelet import go_json

# make_cloud(**kw), a GCECloud per call, and cloud, one with the defaults; each
# driver call under valgrind when FLEXVOL_VALGRIND=1.
make_cloud, cloud = cloud_fixtures(GCECloud, valgrind_wrapper)


def query(entry, name):
    return urllib.parse.parse_qs(urllib.parse.urlsplit(entry["path"]).query).get(name, [None])[0]


def test_init(cloud):
    caps = cloud.kubelet.init().json["capabilities"]
    assert caps == {"attach": True, "selinuxRelabel": True, "supportsMetrics": True, "fsGroup": True,
                    "requiresFSResize": True}


# --- the kubelet sequence ---

@pytest.mark.parametrize("fs_type", ["ext4", "xfs"])
def test_full_lifecycle_and_data_survives_reattach(cloud, fs_type):
    k = cloud.kubelet
    pd = cloud.disk("pd-life")
    spec = "pvc-0d3c7c3e-5b1a-4d7e-9a43-1f0c2b7e9d11"
    dev = attach_and_mount(cloud, spec, opts(pd), [POD_A], fs_type)
    assert dev == cloud.link(spec), "the PV name is the device name: google-<pv>"
    assert cloud.attached() == {spec: (pd, "READ_WRITE")}
    assert fs_type_of(k.global_path(spec)) == fs_type
    with open(os.path.join(k.pod_dir(POD_A["uid"], spec), "data"), "w") as f:
        f.write("persistent " + fs_type)
    tear_down(cloud, spec, [POD_A])
    assert cloud.attached() == {}
    assert mounts_under(cloud.tmp) == []
    assert not os.path.exists(dev), "the disk left the node"

    attach_and_mount(cloud, spec, opts(pd), [POD_B], fs_type)
    with open(os.path.join(k.pod_dir(POD_B["uid"], spec), "data")) as f:
        assert f.read() == "persistent " + fs_type
    tear_down(cloud, spec, [POD_B])
    assert cloud.attached() == {}


def test_read_only_volume_on_two_nodes(cloud):
    pd = cloud.disk("pd-ro")
    # Formatted once, read-write, on node-1.
    attach_and_mount(cloud, "pv-ro", opts(pd), [])
    tear_down(cloud, "pv-ro", [])
    for n in ("node-1", "node-2"):
        attach_and_mount(cloud, "pv-ro", opts(pd), [POD_A], node=n, read_only=True)
        assert cloud.attached(n) == {"pv-ro": (pd, "READ_ONLY")}
    with pytest.raises(OSError):
        open(os.path.join(cloud.kubelet.pod_dir(POD_A["uid"], "pv-ro"), "x"), "w")
    for n in ("node-1", "node-2"):
        tear_down(cloud, "pv-ro", [POD_A], node=n)
        assert cloud.attached(n) == {}


def test_a_disk_in_use_elsewhere_is_refused_naming_the_instance(cloud):
    pd = cloud.disk("pd-busy")
    assert cloud.kubelet.attach("pv-x", opts(pd)).status == "Success"
    for mode in ("rw", "ro"):
        r = cloud.kubelets["node-2"].attach("pv-x", opts(pd), read_only=mode == "ro")
        assert r.status == "Failure", r
        assert "node-1" in r.message and "detach it there first" in r.message, r.message
    assert cloud.attached("node-1") == {"pv-x": (pd, "READ_WRITE")} and cloud.attached("node-2") == {}
    assert cloud.kubelets["node-2"].is_attached("pv-x", opts(pd)).json["attached"] is False
    assert cloud.kubelet.detach("pv-x").status == "Success"
    assert cloud.kubelets["node-2"].attach("pv-x", opts(pd)).status == "Success", "free again: node-2 may"
    assert cloud.kubelets["node-2"].detach("pv-x").status == "Success"


def test_in_use_reported_by_the_operation_is_refused_too(make_cloud):
    cloud = make_cloud(in_use_error="operation")
    pd = cloud.disk("pd-busy2")
    assert cloud.kubelet.attach("pv-y", opts(pd)).status == "Success"
    r = cloud.kubelets["node-2"].attach("pv-y", opts(pd))
    assert r.status == "Failure" and "node-1" in r.message and "detach it there first" in r.message, r.message
    assert cloud.attached("node-2") == {}
    # Attaching again where it already is asks GCE nothing (it would refuse).
    assert cloud.kubelet.attach("pv-y", opts(pd)).status == "Success"
    assert len(requests(cloud, "POST", "/instances/node-1/attachDisk")) == 1
    assert cloud.kubelet.detach("pv-y").status == "Success"


def test_every_call_repeated_is_harmless(cloud):
    k, d = cloud.kubelet, cloud.driver
    pd = cloud.disk("pd-rep")
    o = opts(pd)
    j = go_json(k.options("pv-r", o))
    devs = {k.attach("pv-r", o).json["device"] for _ in range(2)}
    assert devs == {cloud.link("pv-r")}
    assert len(requests(cloud, "POST", "/attachDisk")) == 1, "the second attach finds the disk attached"
    waits = {d.call("waitforattach", cloud.link("pv-r"), j).json["device"] for _ in range(2)}
    assert waits == {cloud.link("pv-r")}
    dev = waits.pop()
    each_call_twice(k, "pv-r", o, dev, POD_A["uid"], lambda: mounts_under(cloud.tmp))
    assert k.is_attached("pv-r", o).json["attached"] is False
    assert mounts_under(cloud.tmp) == [] and cloud.attached() == {}
    assert len(requests(cloud, "POST", "/detachDisk")) == 1


def test_five_volumes_in_parallel(cloud):
    k, d = cloud.kubelet, cloud.driver
    pds = [cloud.disk("pd-par-%d" % i) for i in range(5)]
    specs = ["pv-par-%d" % i for i in range(5)]
    t0 = time.monotonic()
    started = [d.start("attach", go_json(k.options(s, opts(pd))), "node-1") for s, pd in zip(specs, pds)]
    replies = [d.finish(s) for s in started]
    took = time.monotonic() - t0
    assert [r.status for r in replies] == ["Success"] * 5, replies
    assert cloud.attached() == {s: (pd, "READ_WRITE") for s, pd in zip(specs, pds)}
    assert cloud.token_fetches() == 1, "parallel callers wait for one token fetch and share it"
    print("five parallel attaches: %.2f s" % took)
    started = [d.start("waitforattach", "", go_json(k.options(s, opts(pd)))) for s, pd in zip(specs, pds)]
    devs = [d.finish(s).json["device"] for s in started]
    assert devs == [cloud.link(s) for s in specs]
    for s, pd, dev in zip(specs, pds, devs):
        assert k.mount_device(s, opts(pd), dev).status == "Success"
    for s in specs:
        assert k.unmount_device(s).status == "Success"
    started = [d.start("detach", s, "node-1") for s in specs]
    assert [d.finish(s).status for s in started] == ["Success"] * 5
    assert cloud.attached() == {}


def test_detach_with_no_local_state(cloud):
    """A controller-manager restart or failover: no run dir, another host."""
    k = cloud.kubelet
    pd = cloud.disk("pd-f")
    spec = "PV.with.dots"   # not a GCE name: the device name is derived and hashed
    dev = attach_and_mount(cloud, spec, opts(pd), [POD_A])
    name = os.path.basename(dev)[len("google-"):]
    assert name.startswith("pv-with-dots-") and cloud.attached() == {name: (pd, "READ_WRITE")}
    k.tear_down_pod(POD_A["uid"], spec)
    k.unmount_device(spec)
    shutil.rmtree(cloud.run_dir)
    r = k.detach(spec)
    assert r.status == "Success", r
    assert cloud.attached() == {}
    assert k.detach("pv-never-attached").status == "Success", "nothing attached under that name: nothing to do"


def test_ten_calls_in_one_token_lifetime_fetch_one_token(make_cloud):
    cloud = make_cloud(scope=False)   # project and zone from the metadata server too
    k = cloud.kubelet
    pd = cloud.disk("pd-t")
    t0 = time.monotonic()
    assert k.attach("pv-t", opts(pd)).status == "Success"
    attach_ms = (time.monotonic() - t0) * 1000
    for _ in range(8):
        assert k.is_attached("pv-t", opts(pd)).json["attached"] is True
    assert k.detach("pv-t").status == "Success"
    assert cloud.token_fetches() == 1, requests(cloud, path="/token")
    meta = requests(cloud, path="/computeMetadata/")
    assert len(meta) == 3, "project, zone and token once, then cached with the token: %s" % meta
    calls = len(requests(cloud))
    print("10 driver calls: %d API requests, %d token fetch; first attach %.0f ms"
          % (calls, cloud.token_fetches(), attach_ms))
    tokdir = os.path.join(cloud.run_dir, "tokens", "gcepd")
    tok = [f for f in os.listdir(tokdir) if f.endswith(".json")]
    assert len(tok) == 1
    st = os.stat(os.path.join(tokdir, tok[0]))
    assert st.st_mode & 0o777 == 0o600 and st.st_uid == 0


def test_service_account_key_jwt_flow(make_cloud):
    cloud = make_cloud(key=True, scope=False)   # project from the key, zone from the metadata server
    assert cloud.fake.state()["signature_verification"], "the fake checks the RS256 signature"
    pd = cloud.disk("pd-jwt")
    attach_and_mount(cloud, "pv-jwt", opts(pd), [POD_A])
    for _ in range(5):
        assert cloud.kubelet.is_attached("pv-jwt", opts(pd)).json["attached"] is True
    tear_down(cloud, "pv-jwt", [POD_A])
    auths = [e["auth"] for e in requests(cloud) if "auth" in e]
    assert auths == [{"method": "jwt-bearer", "ok": True, "account": cloud.key["client_email"]}], auths
    assert not requests(cloud, path="/project/project-id"), "the project came from the key"


def test_credentials_file_readable_by_others_is_refused(make_cloud):
    cloud = make_cloud(key=True)
    os.chmod(cloud.key_path, 0o644)
    pd = cloud.disk("pd-mode")
    a = cloud.kubelet.attach("pv-mode", opts(pd))
    assert a.status == "Failure" and "0644" in a.message and "root only" in a.message, a.message
    assert cloud.kubelet.init().status == "Success", "init never fails"
    assert not requests(cloud), "nothing was sent"
    os.chmod(cloud.key_path, 0o600)
    assert cloud.kubelet.attach("pv-mode", opts(pd)).status == "Success"
    assert cloud.kubelet.detach("pv-mode").status == "Success"


def test_a_refused_key_fails_clearly(make_cloud):
    cloud = make_cloud(key=True)
    other = cloud.fake.add_service_account("other@my-project.iam.gserviceaccount.com")
    # A key the fake does not know for this account: the signature does not verify.
    import json
    key = dict(cloud.key, private_key=other["private_key"])
    fd = os.open(cloud.key_path, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "w") as f:
        json.dump(key, f)
    pd = cloud.disk("pd-badkey")
    a = cloud.kubelet.attach("pv-badkey", opts(pd))
    assert a.status == "Failure" and "invalid_grant" in a.message and "HTTP 400" in a.message, a.message
    assert len(requests(cloud, "POST", "/token")) == 1, "a refused key is not retried"
    assert not requests(cloud, path="/compute/")


def test_expired_token_is_replaced_once(cloud):
    k = cloud.kubelet
    pd = cloud.disk("pd-e")
    assert k.is_attached("pv-e", opts(pd)).json["attached"] is False
    cloud.fake.expire_tokens()   # the cached token is now refused with 401
    assert k.attach("pv-e", opts(pd)).status == "Success"
    assert cloud.token_fetches() == 2
    unauthorized = [e for e in requests(cloud) if e["status"] == 401]
    assert len(unauthorized) == 1, unauthorized
    assert k.detach("pv-e").status == "Success"
    assert cloud.token_fetches() == 2


def test_short_token_lifetime_is_refreshed_before_expiry(make_cloud):
    cloud = make_cloud(token_lifetime=8)   # refreshed when under a quarter (2 s) remains
    pd = cloud.disk("pd-l")
    k = cloud.kubelet
    assert k.is_attached("pv-l", opts(pd)).status == "Success"
    assert k.is_attached("pv-l", opts(pd)).status == "Success"
    assert cloud.token_fetches() == 1
    time.sleep(6.5)
    assert k.is_attached("pv-l", opts(pd)).status == "Success"
    assert cloud.token_fetches() == 2
    assert not [e for e in requests(cloud) if e["status"] == 401], "renewed before the cloud refused it"


# --- cloud faults: each ends in success after retries or in a bounded, clear Failure ---

def test_rate_limits_are_retried(cloud):
    pd = cloud.disk("pd-rate")
    cloud.fake.add_fault(kind="status", status=403, reason="rateLimitExceeded", method="GET",
                         match="/instances/node-1$", count=2)
    cloud.fake.add_fault(kind="status", status=429, method="POST", match="/attachDisk", count=1)
    a = cloud.kubelet.attach("pv-rate", opts(pd))
    assert a.status == "Success", a
    gets = requests(cloud, "GET", "/instances/node-1$")
    assert [e["status"] for e in gets][:3] == [403, 403, 200]
    posts = requests(cloud, "POST", "/attachDisk")
    assert [e["status"] for e in posts] == [429, 200]
    assert len({query(e, "requestId") for e in posts}) == 1, "a retried POST carries the same requestId"
    assert cloud.attached() == {"pv-rate": (pd, "READ_WRITE")}
    assert cloud.kubelet.detach("pv-rate").status == "Success"


def test_other_403s_are_final(cloud):
    pd = cloud.disk("pd-403")
    cloud.fake.add_fault(kind="status", status=403, reason="forbidden", method="POST", match="/attachDisk", count=1,
                         message="Required 'compute.instances.attachDisk' permission")
    a = cloud.kubelet.attach("pv-403", opts(pd))
    assert a.status == "Failure" and "HTTP 403" in a.message and "permission" in a.message, a.message
    assert len(requests(cloud, "POST", "/attachDisk")) == 1
    assert cloud.attached() == {}
    assert cloud.kubelet.attach("pv-403", opts(pd)).status == "Success", "the controller's retry works"
    assert cloud.kubelet.detach("pv-403").status == "Success"


def test_5xx_are_retried_and_a_retried_post_is_not_repeated(cloud):
    pd = cloud.disk("pd-500")
    cloud.fake.add_fault(kind="status", status=503, method="GET", match="/instances/node-1$", count=2)
    # The attach takes effect, then its answer is lost: the retry must not attach twice.
    cloud.fake.add_fault(kind="status", status=500, method="POST", match="/attachDisk", count=1, phase="after")
    cloud.fake.add_fault(kind="status", status=502, method="GET", match="/operations/", count=1)
    a = cloud.kubelet.attach("pv-500", opts(pd))
    assert a.status == "Success", a
    posts = requests(cloud, "POST", "/attachDisk")
    assert [e["status"] for e in posts] == [500, 200]
    assert len({query(e, "requestId") for e in posts}) == 1
    assert "replayed_operation" in posts[1], "GCE answered the retry with the first call's operation"
    assert len([o for o in cloud.fake.state()["operations"] if o["operationType"] == "attachDisk"]) == 1
    assert cloud.attached() == {"pv-500": (pd, "READ_WRITE")}
    assert cloud.kubelet.detach("pv-500").status == "Success"


def test_persistent_5xx_fails_within_bounds(cloud):
    pd = cloud.disk("pd-500b")
    cloud.fake.add_fault(kind="status", status=500, method="GET", match="/instances/node-1$")
    t0 = time.monotonic()
    a = cloud.kubelet.attach("pv-500b", opts(pd))
    took = time.monotonic() - t0
    assert a.status == "Failure"
    assert "HTTP 500" in a.message and "after 5 attempts" in a.message, a.message
    assert took < 12, "five attempts with backoff took %.1f s" % took
    assert not requests(cloud, "POST"), "never asked GCE to attach"
    print("persistent 500: Failure after %.1f s" % took)


def test_operation_error_is_surfaced_and_nothing_is_left(cloud):
    pd = cloud.disk("pd-operr")
    cloud.fake.add_fault(kind="operation_error", target=pd, operation="attachDisk", count=1,
                         code="QUOTA_EXCEEDED", message="Quota 'DISKS_ATTACHED' exceeded.")
    a = cloud.kubelet.attach("pv-operr", opts(pd))
    assert a.status == "Failure" and "QUOTA_EXCEEDED" in a.message and "DISKS_ATTACHED" in a.message, a.message
    assert cloud.attached() == {}
    assert cloud.kubelet.is_attached("pv-operr", opts(pd)).json["attached"] is False
    assert cloud.kubelet.detach("pv-operr").status == "Success"
    assert cloud.kubelet.attach("pv-operr", opts(pd)).status == "Success", "the next attach is a healthy one"
    cloud.fake.add_fault(kind="operation_error", target=pd, operation="detachDisk", count=1,
                         code="INTERNAL_ERROR", message="Internal error.", http_status=500)
    d = cloud.kubelet.detach("pv-operr")
    assert d.status == "Failure" and "INTERNAL_ERROR" in d.message and "Internal error" in d.message, d.message
    assert cloud.attached() == {"pv-operr": (pd, "READ_WRITE")}, "a failed detach changed nothing"
    assert cloud.kubelet.detach("pv-operr").status == "Success", "the controller's retry works"
    assert cloud.attached() == {}


def test_a_slow_operation_is_waited_for(cloud):
    pd = cloud.disk("pd-slow")
    cloud.fake.add_fault(kind="slow_operation", target=pd, seconds=1.5, count=1)
    t0 = time.monotonic()
    a = cloud.kubelet.attach("pv-slow", opts(pd))
    assert a.status == "Success", a
    assert 3 <= time.monotonic() - t0 < 6
    assert cloud.kubelet.detach("pv-slow").status == "Success"


def test_an_operation_slower_than_the_timeout(make_cloud):
    cloud = make_cloud(gcepd={"attach-timeout": "3"})
    k = cloud.kubelet
    pd = cloud.disk("pd-slower")
    cloud.fake.add_fault(kind="slow_operation", target=pd, seconds=2, count=1)   # DONE after 4 s
    t0 = time.monotonic()
    a = k.attach("pv-slower", opts(pd))
    took = time.monotonic() - t0
    assert a.status == "Failure" and "is still RUNNING after 3 s" in a.message and "operation-" in a.message, a.message
    assert 3 <= took < 5, took
    # The controller retries while GCE is still at it. Whichever attach GCE
    # completes first wins; the other ends "in use by" this very instance,
    # which means attached: the disk is attached once.
    r = k.attach("pv-slower", opts(pd))
    assert r.status == "Success", r
    assert cloud.attached() == {"pv-slower": (pd, "READ_WRITE")}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(o["status"] != "DONE" for o in cloud.fake.state()["operations"]):
        time.sleep(0.1)
    ops = [o for o in cloud.fake.state()["operations"] if o["operationType"] == "attachDisk"]
    assert len([o for o in ops if "error" not in o]) == 1, "one attach took effect, the other was refused: %s" % ops
    assert cloud.attached() == {"pv-slower": (pd, "READ_WRITE")}, "attached once"
    assert k.detach("pv-slower").status == "Success"


def test_a_detach_waits_for_an_attach_still_running(make_cloud):
    """The attach timed out but GCE is still at it; the controller gives up
    on the volume and detaches. A detach that only looked at the instance
    would find nothing, and GCE would attach the disk a moment later, for
    good: it must wait for the unfinished attach and then detach."""
    cloud = make_cloud(gcepd={"attach-timeout": "3"})
    k = cloud.kubelet
    pd = cloud.disk("pd-late")
    # DONE after 8 s: well after the attach gave up, even on a loaded machine.
    cloud.fake.add_fault(kind="slow_operation", target=pd, seconds=4, count=1)
    a = k.attach("pv-late", opts(pd))
    assert a.status == "Failure" and "is still PENDING after 3 s" in a.message, a
    assert cloud.attached() == {}, "GCE has not finished the attach yet"
    cloud.configure(attach_timeout=30)     # the detach's own deadline: room for a loaded machine
    with Syslog() as log:
        d = k.detach("pv-late")
        text = log.text("flexvol-gcepd")
    assert d.status == "Success", d
    assert "1 unfinished attach operation" in text, text
    assert all(o["status"] == "DONE" for o in cloud.fake.state()["operations"]), "the attach was waited for"
    types = [o["operationType"] for o in cloud.fake.state()["operations"] if "error" not in o]
    assert types == ["attachDisk", "detachDisk"], types
    assert cloud.attached() == {}, "the late attach was undone"
    # With nothing running, a detach of nothing lists once and is done.
    calls = cloud.fake.op_list_calls
    assert k.detach("pv-late").status == "Success"
    assert cloud.fake.op_list_calls == calls + 1


def test_a_hung_response_is_cut_off_and_retried(make_cloud):
    cloud = make_cloud(gcepd={"http-timeout": "2"})
    pd = cloud.disk("pd-hang")
    cloud.fake.add_fault(kind="hang", method="GET", match="/instances/node-1$", count=1)
    t0 = time.monotonic()
    a = cloud.kubelet.attach("pv-hang", opts(pd))
    assert a.status == "Success", a
    assert 2 <= time.monotonic() - t0 < 10
    cloud.fake.release_hung()
    assert cloud.kubelet.detach("pv-hang").status == "Success"


def test_a_hung_attach_post_is_retried_without_a_second_attach(make_cloud):
    cloud = make_cloud(gcepd={"http-timeout": "2"})
    pd = cloud.disk("pd-hangpost")
    cloud.fake.add_fault(kind="hang", method="POST", match="/attachDisk", count=1)
    a = cloud.kubelet.attach("pv-hangpost", opts(pd))
    assert a.status == "Success", a
    posts = requests(cloud, "POST", "/attachDisk")
    assert len({query(e, "requestId") for e in posts}) == 1
    cloud.fake.release_hung()   # the first POST now reaches the fake: the same request, no new attach
    deadline = time.monotonic() + 5
    while len(requests(cloud, "POST", "/attachDisk")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len([o for o in cloud.fake.state()["operations"] if o["operationType"] == "attachDisk"]) == 1
    assert cloud.attached() == {"pv-hangpost": (pd, "READ_WRITE")}
    assert cloud.kubelet.detach("pv-hangpost").status == "Success"


def test_a_cloud_that_never_answers_fails_within_bounds(make_cloud):
    cloud = make_cloud(gcepd={"http-timeout": "1", "http-attempts": "3"})
    pd = cloud.disk("pd-dead")
    assert cloud.kubelet.is_attached("pv-dead", opts(pd)).status == "Success"   # token cached
    cloud.fake.add_fault(kind="hang", match="/compute/")
    t0 = time.monotonic()
    a = cloud.kubelet.attach("pv-dead", opts(pd))
    took = time.monotonic() - t0
    assert a.status == "Failure" and "timed out" in a.message and "after 3 attempts" in a.message, a.message
    assert took < 8, took
    cloud.fake.clear_faults()
    assert cloud.attached() == {}
    print("hung cloud: Failure after %.1f s" % took)


def test_metadata_server_faults(make_cloud):
    cloud = make_cloud(scope=False)
    pd = cloud.disk("pd-meta")
    cloud.fake.add_fault(kind="status", status=503, match="/computeMetadata/v1/instance/zone", count=2)
    cloud.fake.add_fault(kind="status", status=500, match="/service-accounts/default/token", count=1)
    a = cloud.kubelet.attach("pv-meta", opts(pd))
    assert a.status == "Success", a
    assert [e["status"] for e in requests(cloud, path="/token$")] == [500, 200]
    assert cloud.kubelet.detach("pv-meta").status == "Success"
    # A wrong metadata-url: a clear Failure that says what was looked up there.
    cloud2 = make_cloud(scope=False, gcepd={"metadata-url": cloud.fake.url + "/compute"})
    a = cloud2.kubelet.attach("pv-meta", opts(pd))
    assert a.status == "Failure" and "no [gcepd] project configured" in a.message, a.message


def test_gce_metadata_host_is_honoured(make_cloud):
    cloud = make_cloud(scope=False)
    cloud.configure(metadata_url=None)
    cloud.driver.env["GCE_METADATA_HOST"] = "127.0.0.1:%d" % cloud.fake.port
    pd = cloud.disk("pd-env")
    assert cloud.kubelet.attach("pv-env", opts(pd)).status == "Success"
    assert cloud.kubelet.detach("pv-env").status == "Success"
    assert len(requests(cloud, path="/computeMetadata/")) == 3


# --- options, configuration, names ---

def test_bad_options_and_names(cloud):
    k = cloud.kubelet
    cases = [({}, "'pdName' is required"), (opts("Bad_Name"), "must be a GCE disk name"),
             (opts("pd-ok", pdname="x"), "pdname"), (opts("pd-ok", **{"kubernetes.io/fsType": "btrfs"}), "btrfs")]
    for o, why in cases:
        r = k.attach("pv-bad", o)
        assert r.status == "Failure" and why in r.message, (o, r.message)
    assert not requests(cloud), "nothing was sent"
    r = k.attach("pv-nodisk", opts("pd-missing"))
    assert r.status == "Failure" and "does not exist" in r.message and "pd-missing" in r.message, r.message
    r = k.attach("pv-noinst", opts(cloud.disk("pd-noinst")), node="node-9")
    assert r.status == "Failure" and "no instance 'node-9'" in r.message, r.message
    assert k.detach("pv-noinst", node="node-9").status == "Success", "a deleted instance holds no disks"
    assert k.is_attached("pv-noinst", opts("pd-noinst"), node="node-9").json["attached"] is False


def test_node_named_after_the_instance_hostname(cloud):
    pd = cloud.disk("pd-host")
    node = "node-1.c.my-project.internal"
    assert cloud.kubelet.attach("pv-host", opts(pd), node=node).status == "Success"
    assert cloud.attached("node-1") == {"pv-host": (pd, "READ_WRITE")}
    assert cloud.kubelet.detach("pv-host", node=node).status == "Success"


def test_a_disk_attached_outside_the_driver(cloud):
    pd = cloud.disk("pd-manual")
    # Someone attached it by hand under GCE's default device name.
    from tests.fakes.common import call
    tok = cloud.fake.tokens.issue(3600)[0]
    r = call("POST", cloud.fake.url + "/compute/v1/projects/my-project/zones/us-central1-a/instances/node-1/attachDisk",
             {"source": "zones/us-central1-a/disks/" + pd}, {"Authorization": "Bearer " + tok})
    assert r.status == 200
    deadline = time.monotonic() + 5
    while not cloud.attached() and time.monotonic() < deadline:
        time.sleep(0.05)
    a = cloud.kubelet.attach("pv-manual", opts(pd))
    assert a.status == "Failure" and "attached outside this driver" in a.message, a.message
    assert cloud.kubelet.is_attached("pv-manual", opts(pd)).json["attached"] is False


def test_no_credential_reaches_the_log_or_a_reply(make_cloud):
    with Syslog() as log:
        cloud = make_cloud(key=True, gcepd={"http-timeout": "2"})
        pd = cloud.disk("pd-sec")
        attach_and_mount(cloud, "pv-sec", opts(pd), [POD_A])
        cloud.fake.expire_tokens()
        cloud.fake.add_fault(kind="status", status=500, count=2)
        cloud.fake.add_fault(kind="hang", count=1)
        cloud.fake.add_fault(kind="status", status=403, reason="rateLimitExceeded", count=1)
        assert cloud.kubelet.is_attached("pv-sec", opts(pd)).status == "Success"
        tear_down(cloud, "pv-sec", [POD_A])
        meta = make_cloud(gcepd={"http-timeout": "2"})
        assert meta.kubelet.attach("pv-sec", opts(meta.disk("pd-sec"))).status == "Success"
        meta.fake.expire_tokens()
        assert meta.kubelet.detach("pv-sec").status == "Success"
        text = log.text("flexvol-gcepd")
    assert "got a token" in text and "re-authenticating" in text, text
    assert "HTTP 500" in text and "HTTP 403" in text, "the retries are logged"
    secrets = cloud.secrets() + meta.secrets()
    assert len(secrets) > 10
    leaked = [s for s in secrets if s in text]
    assert not leaked, "credentials in the log"
    assert "eyJ" not in text, "no JWT in the log"
    for c in (cloud, meta):
        for r in c.driver.history:
            assert not [s for s in secrets if s in r.stdout] and "eyJ" not in r.stdout, r
    print("%d log lines, %d tokens issued, none logged" % (len(text.splitlines()), len(cloud.fake.tokens.issued())))


# --- the node side ---

def test_waitforattach_wakes_on_the_device_not_on_a_timer(cloud):
    k, d = cloud.kubelet, cloud.driver
    pd = cloud.disk("pd-w")
    link = cloud.link("pv-w")
    started = d.start("waitforattach", "", go_json(k.options("pv-w", opts(pd))))
    time.sleep(1.5)   # the driver is waiting now
    assert k.attach("pv-w", opts(pd)).status == "Success"
    seen = None
    while started[1].poll() is None:
        if seen is None and os.path.lexists(link):
            seen = time.monotonic()
        time.sleep(0.005)
    done = time.monotonic()
    r = d.finish(started)
    # The link, or the disk itself when the fake's sysfs serial woke the
    # driver before the fake's "udev" made the link.
    assert r.status == "Success" and os.path.realpath(r.json["device"]) == os.path.realpath(link), r
    assert seen is None or done - seen < 0.5, "woke %.3f s after the link appeared" % (done - seen)
    print("waitforattach returned %.0f ms after the link appeared" % ((done - (seen or done)) * 1000))
    assert k.detach("pv-w").status == "Success"


def test_waitforattach_stops_on_sigterm(cloud):
    k, d = cloud.kubelet, cloud.driver
    pd = cloud.disk("pd-term")
    started = d.start("waitforattach", "", go_json(k.options("pv-term", opts(pd))))
    time.sleep(1)
    t0 = time.monotonic()
    started[1].send_signal(signal.SIGTERM)
    r = d.finish(started, timeout=10)
    assert r.status == "Failure" and "SIGTERM" in r.message, r
    assert time.monotonic() - t0 < 1


def test_an_attach_that_never_shows_a_device(make_cloud):
    cloud = make_cloud(gcepd={"attach-timeout": "3", "rescan-after": "1"})
    k = cloud.kubelet
    pd = cloud.disk("pd-nodev")
    cloud.fake.add_fault(kind="no_device", target=pd, count=1)
    a = k.attach("pv-nodev", opts(pd))
    assert a.status == "Success"
    t0 = time.monotonic()
    w = k.wait_for_attach("pv-nodev", opts(pd), a.json["device"])
    took = time.monotonic() - t0
    assert w.status == "Failure" and "no disk appeared within 3 s" in w.message, w.message
    assert "google-pv-nodev" in w.message and "pd-nodev" in w.message
    assert 3 <= took < 5, took
    assert k.detach("pv-nodev").status == "Success"
    attach_and_mount(cloud, "pv-nodev", opts(pd), [])
    tear_down(cloud, "pv-nodev", [])


def test_disk_found_by_sysfs_serial_without_a_link(cloud):
    k = cloud.kubelet
    pd = cloud.disk("pd-ser")
    assert k.attach("pv-ser", opts(pd)).status == "Success"
    dev = os.path.realpath(cloud.link("pv-ser"))
    for name in ("google-pv-ser", "scsi-0Google_PersistentDisk_pv-ser"):
        os.unlink(os.path.join(cloud.device_dir, name))   # udev never made them
    w = k.wait_for_attach("pv-ser", opts(pd), "")
    assert w.status == "Success" and w.json["device"] == dev, w
    assert k.mount_device("pv-ser", opts(pd), dev).status == "Success"
    assert k.unmount_device("pv-ser").status == "Success"
    assert k.detach("pv-ser").status == "Success"


def test_a_stale_link_or_a_wrong_device_is_never_formatted(cloud):
    k = cloud.kubelet
    pa, pb = cloud.disk("pd-a"), cloud.disk("pd-b")
    for spec, pd in (("pv-a", pa), ("pv-b", pb)):
        assert k.attach(spec, opts(pd)).status == "Success"
    dev_a, dev_b = os.path.realpath(cloud.link("pv-a")), os.path.realpath(cloud.link("pv-b"))
    # B's links now (wrongly) lead to A's disk, as stale udev links would.
    for name in ("google-pv-b", "scsi-0Google_PersistentDisk_pv-b"):
        os.unlink(os.path.join(cloud.device_dir, name))
        os.symlink(dev_a, os.path.join(cloud.device_dir, name))
    w = k.wait_for_attach("pv-b", opts(pb), "")
    assert w.status == "Success" and w.json["device"] == dev_b, "the serial decides, not the link"
    m = k.mount_device("pv-b", opts(pb), cloud.link("pv-b"))
    assert m.status == "Failure" and "is not this volume's disk" in m.message, m
    assert k.mount_device("pv-b", opts(pb), dev_a).status == "Failure"
    out = subprocess.run(["blkid", "-p", dev_a], capture_output=True, text=True)
    assert out.returncode != 0, "A's disk is still blank: nothing formatted it"
    assert k.mount_device("pv-b", opts(pb), dev_b).status == "Success"
    assert k.unmount_device("pv-b").status == "Success"
    for spec in ("pv-a", "pv-b"):
        assert k.detach(spec).status == "Success"


def test_mountdevice_refuses_a_detached_disk(cloud):
    pd = cloud.disk("pd-gone")
    m = cloud.kubelet.mount_device("pv-gone", opts(pd), cloud.link("pv-gone"))
    assert m.status == "Failure" and "not attached to this node" in m.message, m


@pytest.mark.parametrize("fs_type", ["ext4", "xfs"])
def test_expand_volume_and_file_system(cloud, fs_type):
    if fs_type == "ext4" and not has_cap(CAP_SYS_RESOURCE):
        pytest.skip("online ext4 growth needs CAP_SYS_RESOURCE, which this container lacks")
    k, d = cloud.kubelet, cloud.driver
    pd = cloud.disk("pd-grow", size_gb=1)
    dev = attach_and_mount(cloud, "pv-grow", opts(pd), [POD_A], fs_type)
    g = k.global_path("pv-grow")
    before = fs_size(g)
    j = go_json(k.options("pv-grow", opts(pd), fs_type))
    r = d.call("expandvolume", j, "flexvol/gcepd/mounts/pv-grow", str(2 << 30), str(1 << 30))
    assert r.status == "Success" and r.json["volumeNewSize"] == 2 << 30, r
    assert cloud.fake.disk(pd)["sizeGb"] == "2"
    r = d.call("expandvolume", j, "flexvol/gcepd/mounts/pv-grow", str(2 << 30), str(1 << 30))
    assert r.status == "Success"
    assert len(requests(cloud, "POST", "/resize")) == 1, "already big enough: no second resize"
    r = d.call("expandfs", j, dev, g, str(2 << 30), str(1 << 30))
    assert r.status == "Success", r
    after = fs_size(g)
    assert after > before * 1.8, (before, after)
    assert d.call("expandfs", j, dev, g, str(2 << 30), str(1 << 30)).status == "Success", "idempotent"
    tear_down(cloud, "pv-grow", [POD_A])


# --- hostile volume specs (issue 11) ---

def spoof(k, spec, o, **override):
    """Options as kubelet builds them for a volume named spec, with a pod's
    own options overriding kubelet's keys (they come last)."""
    return go_json(dict(k.options(spec, o), **override))


def victim_mounted(cloud):
    """A victim's PV mounted on node-1 with a file in it, and a pod author's
    own disk: (victim's device, the attacker's options)."""
    k = cloud.kubelet
    victim = cloud.disk("pd-victim")
    cloud.disk("pd-attacker")
    dev = attach_and_mount(cloud, "pv-victim", opts(victim), [POD_A])
    with open(os.path.join(k.pod_dir(POD_A["uid"], "pv-victim"), "secret"), "w") as f:
        f.write("victim's data")
    return dev, opts("pd-attacker")


# A victim's PV is mounted on node-1. A pod author's inline volume names the
# victim's PV (by its own volume name, or by overriding
# kubernetes.io/pvOrVolumeName, from which the device name derives) with a
# pdName of their own. Every node-side call refuses it: the instance's
# attached-disk list (compute API) says which disk that device name is, and
# kubelet's path says which volume a call is for.

def test_waitforattach_refuses_a_spoofed_volume_name(cloud):
    k, d = cloud.kubelet, cloud.driver
    dev, evil = victim_mounted(cloud)
    for j in (go_json(k.options("pv-victim", evil)),
              spoof(k, "data", evil, **{"kubernetes.io/pvOrVolumeName": "pv-victim"})):
        w = d.call("waitforattach", dev, j)
        assert w.status == "Failure", w
        assert "GCE disk pd-victim, not pd-attacker" in w.message, w.message
    # The attacker's pdName under the victim's device name: attach refuses it too.
    a = k.attach("pv-victim", evil)
    assert a.status == "Failure" and "already has a disk attached as 'pv-victim'" in a.message, a
    tear_down(cloud, "pv-victim", [POD_A])


def test_mountdevice_refuses_an_overridden_volume_name(cloud):
    k, d = cloud.kubelet, cloud.driver
    dev, evil = victim_mounted(cloud)
    g = k.global_path("data")
    os.makedirs(g, 0o750)
    for o in (evil, opts("pd-victim")):
        m = d.call("mountdevice", g, dev, spoof(k, "data", o, **{"kubernetes.io/pvOrVolumeName": "pv-victim"}))
        assert m.status == "Failure" and "may not override" in m.message, m
    assert not os.path.ismount(g)
    tear_down(cloud, "pv-victim", [POD_A])


def test_mount_binds_only_the_disk_the_options_name(cloud):
    """kubelet binds mounts/pv-victim into a pod whose inline volume is named
    pv-victim (mountdevice is skipped: that path is already a mount point)."""
    k = cloud.kubelet
    dev, evil = victim_mounted(cloud)
    r = k.set_up_pod(POD_B, "pv-victim", evil)
    assert r.status == "Failure" and "GCE disk pd-victim, not pd-attacker" in r.message, r
    p = k.pod_dir(POD_B["uid"], "pv-victim")
    assert not os.path.exists(os.path.join(p, "secret")), "the victim's data reached the attacker's pod"
    assert not os.path.ismount(p)
    # The victim's own pods are unharmed: a second pod of the PV mounts it,
    # at the cost of one instances.get.
    before = len(requests(cloud, "GET", "/instances/node-1$"))
    r = k.set_up_pod(POD_B, "pv-victim", opts("pd-victim"))
    assert r.status == "Success", r
    assert len(requests(cloud, "GET", "/instances/node-1$")) == before + 1, "one instances.get per call"
    with open(os.path.join(p, "secret")) as f:
        assert f.read() == "victim's data"
    tear_down(cloud, "pv-victim", [POD_A, POD_B])


def test_waitforattach_waits_for_the_cloud_to_list_the_disk(make_cloud):
    """The disk can appear on the node before GCE's operation is DONE (the
    fake plugs it first, as GCE does): waitforattach then waits for the
    instance to list it instead of handing out an unconfirmed disk."""
    cloud = make_cloud(gcepd={"attach-timeout": "3"})
    k = cloud.kubelet
    pd = cloud.disk("pd-early")
    assert k.attach("pv-early", opts(pd)).status == "Success"
    # As if GCE's operation were not DONE yet: the instance does not list it.
    cloud.fake.set_listed("node-1", "pv-early", False)
    w = k.wait_for_attach("pv-early", opts(pd), cloud.link("pv-early"))
    assert w.status == "Failure" and "lists no disk attached as 'pv-early'" in w.message, w
    assert len(requests(cloud, "GET", "/instances/node-1$")) > 2, "it asked again while waiting"
    cloud.fake.set_listed("node-1", "pv-early", True)
    w = k.wait_for_attach("pv-early", opts(pd), cloud.link("pv-early"))
    assert w.status == "Success", w
    assert k.detach("pv-early").status == "Success"


def test_attach_and_detach_lock_the_disk_not_the_name(make_cloud):
    """attach/detach serialise on the disk itself (disk:<pdName>), held for at
    most the call's deadline: an attach of the disk under any PV name waits
    for the holder, and gives up with a message at attach-timeout."""
    import fcntl
    cloud = make_cloud(gcepd={"attach-timeout": "2"})
    k = cloud.kubelet
    pd = cloud.disk("pd-locked")
    assert k.attach("pv-one", opts(pd)).status == "Success"
    assert k.detach("pv-one").status == "Success"
    lockdir = os.path.join(cloud.run_dir, "locks", "gcepd")
    names = [n for n in os.listdir(lockdir) if "pd-locked" in n]
    assert len(names) == 1 and "pv-one" not in names[0], os.listdir(lockdir)
    fd = os.open(os.path.join(lockdir, names[0]), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        t0 = time.monotonic()
        a = k.attach("pv-other-name", opts(pd))
        took = time.monotonic() - t0
        assert a.status == "Failure" and "busy with another attach or detach" in a.message, a
        assert took < 10, took
        assert len(requests(cloud, "POST", "/attachDisk")) == 1, "nothing posted while the disk was locked"
    finally:
        os.close(fd)
    assert k.attach("pv-other-name", opts(pd)).status == "Success"
    assert k.detach("pv-other-name").status == "Success"


def test_allow_inline_false_refuses_names_an_inline_volume_can_have(make_cloud):
    """allow-inline = false: a pod's inline volume is named with a DNS-1123
    label (the API server accepts nothing else for a pod's volume), a PV may
    have a '.' in its name. Names that could be inline are refused at attach
    (from the options) and, soundly, where kubelet's path names the volume."""
    cloud = make_cloud(gcepd={"allow-inline": "false"})
    k, d = cloud.kubelet, cloud.driver
    pd = cloud.disk("pd-policy")
    a = k.attach("data", opts(pd))
    assert a.status == "Failure" and "allow-inline is false" in a.message and "'.'" in a.message, a
    assert not requests(cloud, "POST"), "nothing was attached"
    spec = "db.pv-policy"
    dev = attach_and_mount(cloud, spec, opts(pd), [POD_A])
    # An inline volume "data" overriding its name to the PV's, to get it attached:
    # the node refuses it where kubelet's path names it.
    j = spoof(k, "data", opts(pd), **{"kubernetes.io/pvOrVolumeName": spec})
    g = k.global_path("data")
    os.makedirs(g, 0o750)
    m = d.call("mountdevice", g, dev, j)
    assert m.status == "Failure", m
    m = d.call("mountdevice", g, dev, go_json(k.options("data", opts(pd))))
    assert m.status == "Failure" and "allow-inline is false" in m.message, m
    assert not os.path.ismount(g)
    tear_down(cloud, spec, [POD_A])
    assert "allow-inline" in subprocess.run([d.path, "--help"], capture_output=True, text=True).stdout
