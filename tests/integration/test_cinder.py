"""The cinder driver against a fake OpenStack (tests/fakes/openstack.py) whose
attached volumes appear as real loop devices with by-id links and sysfs
serials under a temporary tree (HostLoopNode): the kubelet sequence, the
attach/detach controller's calls, idempotency, parallelism, failover, and
every cloud fault the issue lists."""
import json
import os
import signal
import shutil
import subprocess
import threading
import time

import pytest

from syslog_capture import Syslog
from cinder_helpers import CinderCloud, TlsProxy, opts
from cloud_common import (CAP_SYS_RESOURCE, POD_A, POD_B, attach_and_mount, cloud_fixtures, each_call_twice, fs_size,
                          fs_type_of, has_cap, mounts_under, requests, tear_down)
from conftest import valgrind_wrapper
from kubelet import go_json

# make_cloud(**kw), a CinderCloud per call, and cloud, one with the defaults; each
# driver call under valgrind when FLEXVOL_VALGRIND=1.
make_cloud, cloud = cloud_fixtures(CinderCloud, valgrind_wrapper)


def test_init(cloud):
    caps = cloud.kubelet.init().json["capabilities"]
    assert caps == {"attach": True, "selinuxRelabel": True, "supportsMetrics": True, "fsGroup": True,
                    "requiresFSResize": True}


@pytest.mark.parametrize("fs_type", ["ext4", "xfs"])
def test_full_lifecycle_and_data_survives_reattach(cloud, fs_type):
    k = cloud.kubelet
    vid = cloud.volume()
    o = opts(vid)
    dev = attach_and_mount(cloud, "pv-a", o, [POD_A], fs_type)
    assert dev == os.path.join(cloud.device_dir, "virtio-" + vid[:20])
    st = cloud.state(vid)
    assert st["status"] == "in-use" and list(st["attachments"]) == [cloud.servers["node-1"]]
    assert st["metadata"]["flexvol-pv-name"] == "pv-a", "attach records the PV on the volume"
    assert fs_type_of(k.global_path("pv-a")) == fs_type
    with open(os.path.join(k.pod_dir(POD_A["uid"], "pv-a"), "data"), "w") as f:
        f.write("persistent " + fs_type)
    tear_down(cloud, "pv-a", [POD_A])
    st = cloud.state(vid)
    assert st["status"] == "available" and not st["attachments"]
    assert mounts_under(cloud.tmp) == []
    assert not os.path.exists(dev), "the disk left the node"

    attach_and_mount(cloud, "pv-a", o, [POD_B], fs_type)
    with open(os.path.join(k.pod_dir(POD_B["uid"], "pv-a"), "data")) as f:
        assert f.read() == "persistent " + fs_type
    tear_down(cloud, "pv-a", [POD_B])
    assert cloud.state(vid)["status"] == "available"


def test_second_attach_to_another_server_is_refused(cloud):
    vid = cloud.volume()
    assert cloud.kubelet.attach("pv-x", opts(vid)).status == "Success"
    r = cloud.kubelets["node-2"].attach("pv-x", opts(vid))
    assert r.status == "Failure"
    assert cloud.servers["node-1"] in r.message and "node-1" in r.message, r.message
    assert "not multiattach" in r.message
    st = cloud.state(vid)
    assert list(st["attachments"]) == [cloud.servers["node-1"]], "node-2 got nothing, node-1 kept it"
    assert cloud.kubelets["node-2"].is_attached("pv-x", opts(vid)).json["attached"] is False
    assert cloud.kubelet.detach("pv-x").status == "Success"
    assert cloud.kubelets["node-2"].attach("pv-x", opts(vid)).status == "Success", "free again: node-2 may"
    assert cloud.kubelets["node-2"].detach("pv-x").status == "Success"


def test_every_call_repeated_is_harmless(cloud):
    k, d = cloud.kubelet, cloud.driver
    vid = cloud.volume()
    o = opts(vid)
    j = go_json(k.options("pv-r", o))
    devs = {k.attach("pv-r", o).json["device"] for _ in range(2)}
    assert len(devs) == 1
    assert len(cloud.fake.request_log(method="POST", path="/os-volume_attachments$")) == 1, \
        "the second attach finds the volume attached and asks Nova nothing"
    hint = devs.pop()
    waits = {d.call("waitforattach", hint, j).json["device"] for _ in range(2)}
    assert len(waits) == 1
    dev = waits.pop()
    each_call_twice(k, "pv-r", o, dev, POD_A["uid"], lambda: mounts_under(cloud.tmp))
    assert k.is_attached("pv-r", o).json["attached"] is False
    assert mounts_under(cloud.tmp) == [] and cloud.state(vid)["status"] == "available"
    assert len(cloud.fake.request_log(method="DELETE")) == 1


def test_five_volumes_in_parallel(cloud):
    k, d = cloud.kubelet, cloud.driver
    vids = [cloud.volume() for _ in range(5)]
    specs = ["pv-par-%d" % i for i in range(5)]
    t0 = time.monotonic()
    started = [d.start("attach", go_json(k.options(s, opts(v))), "node-1") for s, v in zip(specs, vids)]
    replies = [d.finish(s) for s in started]
    took = time.monotonic() - t0
    assert [r.status for r in replies] == ["Success"] * 5, replies
    assert {cloud.state(v)["status"] for v in vids} == {"in-use"}
    assert cloud.auths() == 1, "parallel callers wait for one authentication and share its token"
    print("five parallel attaches: %.2f s" % took)
    started = [d.start("waitforattach", "", go_json(k.options(s, opts(v)))) for s, v in zip(specs, vids)]
    devs = [d.finish(s).json["device"] for s in started]
    assert len(set(devs)) == 5
    for i, (s, v) in enumerate(zip(specs, vids)):
        m = k.mount_device(s, opts(v), devs[i])
        assert m.status == "Success"
    for s, v in zip(specs, vids):
        assert k.unmount_device(s).status == "Success"
    started = [d.start("detach", s, "node-1") for s in specs]
    assert [d.finish(s).status for s in started] == ["Success"] * 5
    assert {cloud.state(v)["status"] for v in vids} == {"available"}


def test_detach_after_the_controllers_state_is_wiped(cloud):
    """A controller-manager restart or failover: no run dir, another host."""
    k = cloud.kubelet
    vid = cloud.volume()
    attach_and_mount(cloud, "pv-f", opts(vid), [POD_A])
    k.tear_down_pod(POD_A["uid"], "pv-f")
    k.unmount_device("pv-f")
    shutil.rmtree(cloud.run_dir)
    r = k.detach("pv-f")
    assert r.status == "Success", r
    st = cloud.state(vid)
    assert st["status"] == "available" and not st["attachments"]
    # Nothing recorded anywhere for an unknown PV: nothing to do.
    assert k.detach("pv-never-attached").status == "Success"


def test_a_stale_local_record_does_not_mislead_detach(cloud):
    k = cloud.kubelet
    v1, v2 = cloud.volume(), cloud.volume()
    assert k.attach("pv-s", opts(v1)).status == "Success"
    assert k.detach("pv-s").status == "Success"
    # The PV name is reused for another volume; this controller's record of
    # pv-s is rewritten by the new attach, but point it at the old one anyway.
    assert k.attach("pv-s", opts(v2)).status == "Success"
    rec = os.path.join(cloud.run_dir, "cinder", "pv", "pv-s")
    with open(rec, "w") as f:
        f.write(v1)
    assert k.detach("pv-s").status == "Success"
    assert cloud.state(v2)["status"] == "available"


def test_ten_calls_in_one_token_lifetime_authenticate_once(cloud):
    k = cloud.kubelet
    vid = cloud.volume()
    o = opts(vid)
    assert k.attach("pv-t", o).status == "Success"
    for _ in range(8):
        assert k.is_attached("pv-t", o).json["attached"] is True
    assert k.detach("pv-t").status == "Success"
    assert cloud.auths() == 1, cloud.fake.request_log(service="keystone")
    calls = len(cloud.fake.request_log())
    print("10 driver calls: %d API requests, %d Keystone auth" % (calls, cloud.auths()))
    tok = [f for f in os.listdir(os.path.join(cloud.run_dir, "tokens", "cinder")) if f.endswith(".json")]
    assert len(tok) == 1
    st = os.stat(os.path.join(cloud.run_dir, "tokens", "cinder", tok[0]))
    assert st.st_mode & 0o777 == 0o600 and st.st_uid == 0


def test_expired_token_is_replaced_once(cloud):
    k = cloud.kubelet
    vid = cloud.volume()
    assert k.is_attached("pv-e", opts(vid)).json["attached"] is False
    cloud.fake.expire_tokens()   # the cached token is now refused with 401
    assert k.attach("pv-e", opts(vid)).status == "Success"
    assert cloud.auths() == 2
    unauthorized = [e for e in cloud.fake.request_log() if e["status"] == 401]
    assert len(unauthorized) == 1, unauthorized
    assert k.detach("pv-e").status == "Success"
    assert cloud.auths() == 2


def test_short_token_lifetime_is_refreshed_before_expiry(make_cloud):
    cloud = make_cloud(token_lifetime=8)   # refreshed when under a quarter (2 s) remains
    vid = cloud.volume()
    k = cloud.kubelet
    assert k.is_attached("pv-l", opts(vid)).status == "Success"
    assert k.is_attached("pv-l", opts(vid)).status == "Success"
    assert cloud.auths() == 1
    time.sleep(6.5)
    assert k.is_attached("pv-l", opts(vid)).status == "Success"
    assert cloud.auths() == 2
    assert not [e for e in cloud.fake.request_log() if e["status"] == 401], "renewed before the cloud refused it"


# --- cloud faults: each ends in success after retries or in a bounded, clear Failure ---

def test_500s_are_retried(cloud):
    vid = cloud.volume()
    cloud.fake.add_fault(kind="status", status=500, method="GET", match="/volumes/" + vid, count=3)
    cloud.fake.add_fault(kind="status", status=503, method="POST", match="/os-volume_attachments$", count=2)
    a = cloud.kubelet.attach("pv-500", opts(vid))
    assert a.status == "Success", a
    posts = requests(cloud, "POST", "/os-volume_attachments$")
    assert [e["status"] for e in posts] == [503, 503, 200]
    st = cloud.state(vid)
    assert st["status"] == "in-use" and len(st["attachments"]) == 1, "one attachment, not three"
    assert cloud.kubelet.detach("pv-500").status == "Success"


def test_429_with_retry_after_is_honoured(cloud):
    vid = cloud.volume()
    cloud.fake.add_fault(kind="status", status=429, method="POST", match="/os-volume_attachments$", count=1,
                         retry_after=2)
    a = cloud.kubelet.attach("pv-429", opts(vid))
    assert a.status == "Success", a
    posts = requests(cloud, "POST", "/os-volume_attachments$")
    assert [e["status"] for e in posts] == [429, 200]
    gap = posts[1]["time"] - posts[0]["time"]
    assert 2.0 <= gap < 3.5, "waited %.2f s for a Retry-After of 2 s" % gap
    assert cloud.kubelet.detach("pv-429").status == "Success"


def test_too_long_retry_after_fails_clearly(cloud):
    vid = cloud.volume()
    cloud.fake.add_fault(kind="status", status=429, method="POST", match="/os-volume_attachments$",
                         retry_after=3600)
    t0 = time.monotonic()
    a = cloud.kubelet.attach("pv-429b", opts(vid))
    assert a.status == "Failure" and time.monotonic() - t0 < 5
    assert "HTTP 429" in a.message and "Retry-After 3600" in a.message, a.message
    assert cloud.state(vid)["attachments"] == {}


def test_persistent_500_fails_within_bounds(cloud):
    vid = cloud.volume()
    cloud.fake.add_fault(kind="status", status=500, method="GET", match="/volumes/" + vid)
    t0 = time.monotonic()
    a = cloud.kubelet.attach("pv-500b", opts(vid))
    took = time.monotonic() - t0
    assert a.status == "Failure"
    assert "HTTP 500" in a.message and "after 5 attempts" in a.message, a.message
    assert took < 12, "five attempts with backoff took %.1f s" % took
    assert not requests(cloud, "POST", "/os-volume_attachments$"), "never asked Nova to attach"
    print("persistent 500: Failure after %.1f s" % took)


def test_4xx_is_not_retried(cloud):
    vid = cloud.volume()
    cloud.fake.add_fault(kind="status", status=403, method="POST", match="/os-volume_attachments$", count=1,
                         message="Policy doesn't allow os_compute_api:os-volumes-attachments:create")
    a = cloud.kubelet.attach("pv-403", opts(vid))
    assert a.status == "Failure" and "HTTP 403" in a.message and "Policy" in a.message, a.message
    assert len(requests(cloud, "POST", "/os-volume_attachments$")) == 1
    assert cloud.state(vid)["attachments"] == {}
    assert cloud.kubelet.attach("pv-403", opts(vid)).status == "Success", "the controller's retry works"
    assert cloud.kubelet.detach("pv-403").status == "Success"


def test_409_locked_server_is_retried(cloud):
    vid = cloud.volume()
    cloud.fake.add_fault(kind="status", status=409, method="POST", match="/os-volume_attachments$", count=2)
    assert cloud.kubelet.attach("pv-409", opts(vid)).status == "Success"
    assert [e["status"] for e in requests(cloud, "POST", "/os-volume_attachments$")] == [409, 409, 200]
    assert cloud.kubelet.detach("pv-409").status == "Success"


def test_slow_responses_are_waited_for(make_cloud):
    cloud = make_cloud(flexvol={"http-timeout": "4"})
    vid = cloud.volume()
    cloud.fake.add_fault(kind="delay", seconds=2, method="GET", match="/volumes/" + vid, count=2)
    t0 = time.monotonic()
    assert cloud.kubelet.attach("pv-slow", opts(vid)).status == "Success"
    assert time.monotonic() - t0 >= 4
    delayed = [e for e in requests(cloud) if "fault" in e]
    assert [e["status"] for e in delayed] == [200, 200], "answered late, but answered: no retry"
    assert all(e["duration"] >= 2 for e in delayed)
    assert cloud.kubelet.detach("pv-slow").status == "Success"


def test_a_hung_response_is_cut_off_and_retried(make_cloud):
    cloud = make_cloud(flexvol={"http-timeout": "2"})
    vid = cloud.volume()
    cloud.fake.add_fault(kind="hang", method="GET", match="/volumes/" + vid, count=1)
    t0 = time.monotonic()
    a = cloud.kubelet.attach("pv-hang", opts(vid))
    assert a.status == "Success", a
    assert 2 <= time.monotonic() - t0 < 10
    assert cloud.state(vid)["status"] == "in-use"
    cloud.fake.release_hung()
    assert cloud.kubelet.detach("pv-hang").status == "Success"


def test_a_cloud_that_never_answers_fails_within_bounds(make_cloud):
    cloud = make_cloud(flexvol={"http-timeout": "1", "http-attempts": "3"})
    vid = cloud.volume()
    assert cloud.kubelet.is_attached("pv-dead", opts(vid)).status == "Success"   # token cached
    cloud.fake.add_fault(kind="hang", match="/compute/")
    t0 = time.monotonic()
    a = cloud.kubelet.attach("pv-dead", opts(vid))
    took = time.monotonic() - t0
    assert a.status == "Failure" and "timed out" in a.message and "after 3 attempts" in a.message, a.message
    assert took < 10, took
    cloud.fake.clear_faults()
    assert cloud.state(vid)["attachments"] == {}
    print("hung cloud: Failure after %.1f s" % took)


def test_volume_stuck_in_attaching(make_cloud):
    cloud = make_cloud(flexvol={"attach-timeout": "4"})
    k = cloud.kubelet
    v1, v2 = cloud.volume(), cloud.volume()
    faults = [cloud.fake.add_fault(kind="stuck_attaching", target=v)["id"] for v in (v1, v2)]
    for spec, v in (("pv-stuck1", v1), ("pv-stuck2", v2)):
        t0 = time.monotonic()
        a = k.attach(spec, opts(v))
        took = time.monotonic() - t0
        assert a.status == "Failure" and "still 'attaching'" in a.message, a.message
        assert 4 <= took < 10, took
    # The controller retries: the attach in progress is resumed, not repeated.
    r = k.attach("pv-stuck1", opts(v1))
    assert r.status == "Failure"
    cloud.fake.remove_fault(faults[0])
    assert k.attach("pv-stuck1", opts(v1)).status == "Success"
    assert len(requests(cloud, "POST", "/os-volume_attachments$")) == 2, "one POST per volume"
    assert k.detach("pv-stuck1").status == "Success"
    # The controller gives up instead: detach waits for the cloud, then undoes it.
    d = k.detach("pv-stuck2")
    assert d.status == "Failure" and "attaching" in d.message, d.message
    cloud.fake.remove_fault(faults[1])
    assert k.detach("pv-stuck2").status == "Success"
    for v in (v1, v2):
        st = cloud.state(v)
        assert st["status"] == "available" and st["attachments"] == {}, st


def test_an_attach_that_never_shows_a_device(make_cloud):
    cloud = make_cloud(flexvol={"attach-timeout": "4", "rescan-after": "1"})
    k = cloud.kubelet
    host = os.path.join(cloud.sysfs, "class", "scsi_host", "host0")
    os.makedirs(host)
    open(os.path.join(host, "scan"), "w").close()
    vid = cloud.volume()
    cloud.fake.add_fault(kind="no_device", target=vid, count=1)
    a = k.attach("pv-nodev", opts(vid))
    assert a.status == "Success"
    t0 = time.monotonic()
    w = k.wait_for_attach("pv-nodev", opts(vid), a.json["device"])
    took = time.monotonic() - t0
    assert w.status == "Failure" and "no disk appeared within 4 s" in w.message, w.message
    assert "virtio-" + vid[:20] in w.message and "rescanned" in w.message
    assert 4 <= took < 8, took
    with open(os.path.join(host, "scan")) as f:
        assert f.read() == "- - -", "a SCSI host rescan was asked for"
    assert k.detach("pv-nodev").status == "Success"
    assert cloud.state(vid)["attachments"] == {}
    # The next attach is a healthy one.
    attach_and_mount(cloud, "pv-nodev", opts(vid), [])
    tear_down(cloud, "pv-nodev", [])


def test_bad_credentials_fail_clearly(cloud):
    cloud.password, good = "wrong-" + cloud.password, cloud.password
    cloud.write_config()
    vid = cloud.volume()
    a = cloud.kubelet.attach("pv-cred", opts(vid))
    assert a.status == "Failure" and "Keystone refused the credentials" in a.message and "HTTP 401" in a.message
    assert cloud.password not in a.message and good not in a.message
    assert len(requests(cloud, "POST", "/auth/tokens")) == 1, "a refused password is not retried"


def test_no_secret_reaches_the_log_or_a_reply(make_cloud):
    with Syslog() as log:
        cloud = make_cloud(flexvol={"http-timeout": "2"})
        vid = cloud.volume()
        replies = []
        attach_and_mount(cloud, "pv-sec", opts(vid), [POD_A])
        cloud.fake.expire_tokens()
        cloud.fake.add_fault(kind="status", status=500, count=2)
        cloud.fake.add_fault(kind="hang", count=1)
        replies.append(cloud.kubelet.is_attached("pv-sec", opts(vid)))
        tear_down(cloud, "pv-sec", [POD_A])
        cloud.password = "wrong-" + cloud.password[::-1]
        cloud.write_config()
        replies.append(cloud.kubelet.attach("pv-sec", opts(vid)))
        text = log.text("flexvol-cinder")
    assert "authenticated to Keystone" in text and "re-authenticating" in text, text
    assert "HTTP 500" in text, "the retries are logged"
    leaked = [(s, line) for s in cloud.secrets() for line in text.splitlines() if s in line]
    assert not leaked, "secrets in the log: %r" % leaked
    for r in cloud.driver.history:
        assert not [s for s in cloud.secrets() if s in r.stdout], r
    print("%d log lines, %d tokens issued, none logged" % (len(text.splitlines()), len(cloud.secrets()) - 1))


def test_config_readable_by_others_is_refused(cloud):
    os.chmod(cloud.config_path, 0o644)
    vid = cloud.volume()
    a = cloud.kubelet.attach("pv-mode", opts(vid))
    assert a.status == "Failure" and "0644" in a.message and "root only" in a.message, a.message
    assert cloud.kubelet.init().status == "Success", "init never fails"
    assert not requests(cloud), "nothing was sent"
    os.chmod(cloud.config_path, 0o600)
    assert cloud.kubelet.attach("pv-mode", opts(vid)).status == "Success"
    assert cloud.kubelet.detach("pv-mode").status == "Success"


def test_keystone_over_tls_with_ca_file(cloud, tmp_path):
    proxy = TlsProxy(tmp_path, cloud.fake.port)
    try:
        vid = cloud.volume()
        cloud.auth_url = "https://127.0.0.1:%d/v3" % proxy.port
        cloud.write_config()
        a = cloud.kubelet.attach("pv-tls", opts(vid))
        assert a.status == "Failure" and "Keystone authentication" in a.message, a.message
        assert "certificate" in a.message, "an unknown CA is refused: " + a.message
        assert not cloud.fake.request_log(), "nothing reached the cloud"
        cloud.extra_global = ["ca-file = " + proxy.cert]
        cloud.write_config()
        assert cloud.kubelet.attach("pv-tls", opts(vid)).status == "Success"
        assert cloud.kubelet.detach("pv-tls").status == "Success"
        # tls-insecure skips verification (for labs); a new identity, a new token.
        cloud.extra_global = ["tls-insecure = true"]
        cloud.write_config()
        shutil.rmtree(os.path.join(cloud.run_dir, "tokens"))
        assert cloud.kubelet.attach("pv-tls", opts(vid)).status == "Success"
        assert cloud.kubelet.detach("pv-tls").status == "Success"
        assert cloud.auths() == 2
    finally:
        proxy.close()


def test_application_credential(make_cloud):
    cloud = make_cloud(app_credential=True)
    vid = cloud.volume()
    attach_and_mount(cloud, "pv-ac", opts(vid), [POD_A])
    tear_down(cloud, "pv-ac", [POD_A])
    auths = [e for e in cloud.fake.request_log(service="keystone")]
    assert [e["auth"]["method"] for e in auths] == ["application_credential"]


def test_node_lookup_by_metadata_service(make_cloud):
    cloud = make_cloud()
    cloud.fake.update_server(cloud.servers["node-1"], local=True)
    cloud.configure(node_lookup="metadata", metadata_url=cloud.fake.url)
    vid = cloud.volume()
    # The node name no longer matters: the metadata service says who we are.
    a = cloud.kubelet.attach("pv-md", opts(vid), node="node-1.example.com")
    assert a.status == "Success", a
    assert list(cloud.state(vid)["attachments"]) == [cloud.servers["node-1"]]
    assert not requests(cloud, "GET", r"/servers\?name="), "no name lookup"
    assert cloud.kubelet.detach("pv-md", node="node-1.example.com").status == "Success"


def test_multiattach_volume_on_two_nodes(cloud):
    vid = cloud.volume(multiattach=True)
    for n in ("node-1", "node-2"):
        assert cloud.kubelets[n].attach("pv-multi", opts(vid)).status == "Success"
    assert set(cloud.state(vid)["attachments"]) == set(cloud.servers.values())
    assert cloud.kubelets["node-1"].detach("pv-multi").status == "Success"
    assert list(cloud.state(vid)["attachments"]) == [cloud.servers["node-2"]]
    assert cloud.kubelets["node-2"].detach("pv-multi").status == "Success"
    assert cloud.state(vid)["status"] == "available"


# --- the node side ---

def test_waitforattach_wakes_on_the_device_not_on_a_timer(cloud):
    k, d = cloud.kubelet, cloud.driver
    vid = cloud.volume()
    link = os.path.join(cloud.device_dir, "virtio-" + vid[:20])
    started = d.start("waitforattach", "", go_json(k.options("pv-w", opts(vid))))
    stamps = {}

    def watch_link():
        while not os.path.lexists(link):
            time.sleep(0.0005)
        stamps["link"] = time.monotonic()

    def watch_exit():
        started[1].wait()
        stamps["exit"] = time.monotonic()

    threads = [threading.Thread(target=watch_link), threading.Thread(target=watch_exit)]
    for t in threads:
        t.start()
    time.sleep(1.5)   # the driver is waiting by now
    assert k.attach("pv-w", opts(vid)).status == "Success"
    for t in threads:
        t.join(30)
    r = d.finish(started)
    # The link, or the disk itself when the fake's sysfs serial (written
    # before the link, as the kernel comes before udev) woke the driver first.
    assert r.status == "Success", r
    assert r.json["device"] in (link, os.path.realpath(link)), r
    latency = stamps["exit"] - stamps["link"]
    # The safety timer ticks once a second; inotify answers at once (a
    # negative figure: the driver was out before the link was made).
    assert latency < 0.5, "returned %.3f s after the link appeared" % latency
    print("waitforattach returned %.0f ms after the link appeared" % (latency * 1000))
    assert k.detach("pv-w").status == "Success"


def test_waitforattach_stops_on_sigterm(cloud):
    k, d = cloud.kubelet, cloud.driver
    vid = cloud.volume()
    started = d.start("waitforattach", "", go_json(k.options("pv-term", opts(vid))))
    time.sleep(1)
    t0 = time.monotonic()
    started[1].send_signal(signal.SIGTERM)
    r = d.finish(started, timeout=10)
    assert r.status == "Failure" and "SIGTERM" in r.message, r
    assert time.monotonic() - t0 < 1


def test_disk_found_by_sysfs_serial_without_a_link(cloud):
    k = cloud.kubelet
    vid = cloud.volume()
    assert k.attach("pv-ser", opts(vid)).status == "Success"
    link = os.path.join(cloud.device_dir, "virtio-" + vid[:20])
    dev = os.path.realpath(link)
    os.unlink(link)   # udev never made it
    w = k.wait_for_attach("pv-ser", opts(vid), "")
    assert w.status == "Success" and w.json["device"] == dev, w
    m = k.mount_device("pv-ser", opts(vid), dev)
    assert m.status == "Success", m
    assert k.unmount_device("pv-ser").status == "Success"
    assert k.detach("pv-ser").status == "Success"


def test_a_stale_link_or_a_wrong_device_is_never_formatted(cloud):
    k = cloud.kubelet
    va, vb = cloud.volume(), cloud.volume()
    for spec, v in (("pv-A", va), ("pv-B", vb)):
        assert k.attach(spec, opts(v)).status == "Success"
    link_a = os.path.join(cloud.device_dir, "virtio-" + va[:20])
    link_b = os.path.join(cloud.device_dir, "virtio-" + vb[:20])
    dev_a, dev_b = os.path.realpath(link_a), os.path.realpath(link_b)
    # B's link now (wrongly) leads to A's disk, as a stale udev link would.
    os.unlink(link_b)
    os.symlink(dev_a, link_b)
    w = k.wait_for_attach("pv-B", opts(vb), "")
    assert w.status == "Success" and w.json["device"] == dev_b, "the serial decides, not the link"
    m = k.mount_device("pv-B", opts(vb), link_b)
    assert m.status == "Failure" and "is not this volume's disk" in m.message, m
    m = k.mount_device("pv-B", opts(vb), dev_a)
    assert m.status == "Failure", m
    out = subprocess.run(["blkid", "-p", dev_a], capture_output=True, text=True)
    assert out.returncode != 0, "A's disk is still blank: nothing formatted it"
    assert k.mount_device("pv-B", opts(vb), dev_b).status == "Success"
    assert k.unmount_device("pv-B").status == "Success"
    for spec in ("pv-A", "pv-B"):
        assert k.detach(spec).status == "Success"


def test_mountdevice_refuses_a_detached_volume(cloud):
    k = cloud.kubelet
    vid = cloud.volume()
    m = k.mount_device("pv-gone", opts(vid), os.path.join(cloud.device_dir, "virtio-" + vid[:20]))
    assert m.status == "Failure" and "not attached to this node" in m.message, m


@pytest.mark.parametrize("fs_type", ["ext4", "xfs"])
def test_expand_volume_and_file_system(cloud, fs_type):
    if fs_type == "ext4" and not has_cap(CAP_SYS_RESOURCE):
        pytest.skip("online ext4 growth needs CAP_SYS_RESOURCE, which this container lacks "
                    "(tests/vm/test_cinder_vm.py covers it)")
    k, d = cloud.kubelet, cloud.driver
    vid = cloud.volume(size=1)
    o = opts(vid)
    dev = attach_and_mount(cloud, "pv-grow", o, [POD_A], fs_type)
    g = k.global_path("pv-grow")
    before = fs_size(g)
    j = go_json(k.options("pv-grow", o, fs_type))
    r = d.call("expandvolume", j, "flexvol/cinder/mounts/pv-grow", str(2 << 30), str(1 << 30))
    assert r.status == "Success", r
    assert cloud.state(vid)["size"] == 2
    assert d.call("expandvolume", j, "flexvol/cinder/mounts/pv-grow", str(2 << 30), str(1 << 30)).status == "Success"
    assert len(requests(cloud, "POST", "/action$")) == 1, "already big enough: no second extend"
    r = d.call("expandfs", j, dev, g, str(2 << 30), str(1 << 30))
    assert r.status == "Success", r
    after = fs_size(g)
    assert after > before * 1.8, (before, after)
    assert d.call("expandfs", j, dev, g, str(2 << 30), str(1 << 30)).status == "Success", "idempotent"
    tear_down(cloud, "pv-grow", [POD_A])


# --- hostile volume specs (issue 11) ---

def test_mount_binds_only_the_volume_the_options_name(cloud):
    """A victim's PV is mounted on node-1. A pod author's inline volume is
    named like the PV, with a volumeID of their own: kubelet skips
    mountdevice (mounts/pv-victim is already a mount point) and asks the
    driver to bind that global path. The file system there is not on the disk
    whose serial is the options' volumeID: refused, attached or not."""
    k = cloud.kubelet
    victim, own = cloud.volume(), cloud.volume()
    attach_and_mount(cloud, "pv-victim", opts(victim), [POD_A])
    with open(os.path.join(k.pod_dir(POD_A["uid"], "pv-victim"), "secret"), "w") as f:
        f.write("victim's data")
    p = k.pod_dir(POD_B["uid"], "pv-victim")
    r = k.set_up_pod(POD_B, "pv-victim", opts(own))
    assert r.status == "Failure" and "volume %s is not attached to this node" % own in r.message, r
    # Attached (the attach/detach controller attaches the inline volume by its volumeID).
    assert k.attach("pv-victim", opts(own)).status == "Success"
    r = k.set_up_pod(POD_B, "pv-victim", opts(own))
    assert r.status == "Failure" and "another volume's mount, refused" in r.message, r
    assert not os.path.ismount(p) and not os.path.exists(os.path.join(p, "secret"))
    # A second pod of the PV itself mounts it.
    r = k.set_up_pod(POD_B, "pv-victim", opts(victim))
    assert r.status == "Success", r
    with open(os.path.join(p, "secret")) as f:
        assert f.read() == "victim's data"
    d = k.driver
    m = d.call("mountdevice", k.global_path("other"), "",
               go_json(dict(k.options("other", opts(own)), **{"kubernetes.io/pvOrVolumeName": "pv-victim"})))
    assert m.status == "Failure" and "may not override" in m.message, m
    for pod in (POD_A, POD_B):
        assert k.tear_down_pod(pod["uid"], "pv-victim").status == "Success"
    assert k.unmount_device("pv-victim").status == "Success"
    # Both volumes now record the PV name: one detach each (this controller's
    # record, the attacker's volume, first).
    for _ in range(2):
        assert k.detach("pv-victim").status == "Success"
    assert [cloud.state(v)["status"] for v in (victim, own)] == ["available"] * 2


def test_attach_and_detach_lock_the_volume_not_the_name(make_cloud):
    """attach/detach serialise on the volume itself (disk:<volumeID>), held
    for at most the call's deadline."""
    import fcntl
    cloud = make_cloud(flexvol={"attach-timeout": "2"})
    k = cloud.kubelet
    vid = cloud.volume()
    assert k.attach("pv-one", opts(vid)).status == "Success"
    assert k.detach("pv-one").status == "Success"
    lockdir = os.path.join(cloud.run_dir, "locks", "cinder")
    names = [n for n in os.listdir(lockdir) if vid in n]
    assert len(names) == 1 and "pv-one" not in names[0], os.listdir(lockdir)
    posts = len(requests(cloud, "POST", "/os-volume_attachments"))
    fd = os.open(os.path.join(lockdir, names[0]), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        t0 = time.monotonic()
        a = k.attach("pv-other-name", opts(vid))
        took = time.monotonic() - t0
        assert a.status == "Failure" and "busy with another attach or detach" in a.message, a
        assert took < 10, took
        assert len(requests(cloud, "POST", "/os-volume_attachments")) == posts, "nothing posted while locked"
    finally:
        os.close(fd)
    assert k.attach("pv-other-name", opts(vid)).status == "Success"
    assert k.detach("pv-other-name").status == "Success"


def vfat_config_drive(cloud, uuid):
    """A disk labelled config-2 holding openstack/latest/meta_data.json with
    this uuid, as a loop device, and a by-label link to it (udev's); skips
    where the kernel cannot mount vfat (tests/vm/test_cinder_vm.py runs this
    in the guest)."""
    img = os.path.join(cloud.tmp, "config-2.img")
    with open(img, "wb") as f:
        f.truncate(4 << 20)
    subprocess.run(["busybox", "mkdosfs", "-n", "config-2", img], check=True, capture_output=True)
    loop = subprocess.run(["losetup", "-f", "--show", img], check=True, capture_output=True,
                          text=True).stdout.strip()
    cloud.cleanups.append(lambda: subprocess.run(["losetup", "-d", loop], capture_output=True))
    mnt = os.path.join(cloud.tmp, "cd-mnt")
    os.makedirs(mnt)
    if subprocess.run(["mount", "-t", "vfat", loop, mnt], capture_output=True).returncode != 0:
        pytest.skip("this kernel cannot mount vfat (the VM tier runs this test)")
    try:
        os.makedirs(os.path.join(mnt, "openstack", "latest"))
        with open(os.path.join(mnt, "openstack", "latest", "meta_data.json"), "w") as f:
            json.dump({"uuid": uuid, "name": "whoever"}, f)
    finally:
        subprocess.run(["umount", mnt], check=True)
    link = os.path.join(cloud.tmp, "by-label", "config-2")
    os.makedirs(os.path.dirname(link))
    os.symlink(loop, link)
    return loop, link


def test_config_drive_must_be_a_cd_rom(make_cloud):
    """node-lookup = config-drive: a tenant's volume can carry the label
    config-2 with a forged meta_data.json (here: "this machine is node-2").
    Only a CD-ROM, which a Cinder volume never is, is trusted."""
    cloud = make_cloud()
    loop, link = vfat_config_drive(cloud, cloud.servers["node-2"])
    cloud.configure(node_lookup="config-drive", config_drive=link)
    vid = cloud.volume()
    a = cloud.kubelet.attach("pv-cd", opts(vid), node="node-1")
    assert a.status == "Failure" and "not a CD-ROM" in a.message and "node-lookup = metadata" in a.message, a
    assert not cloud.state(vid)["attachments"]
    assert not requests(cloud, "POST"), "nothing was attached anywhere"
    # The same drive as a CD-ROM (SCSI peripheral type 5 in sysfs): trusted.
    kname = os.path.basename(loop)
    os.makedirs(os.path.join(cloud.sysfs, "block", kname, "device"), exist_ok=True)
    with open(os.path.join(cloud.sysfs, "block", kname, "device", "type"), "w") as f:
        f.write("5\n")
    a = cloud.kubelet.attach("pv-cd", opts(vid), node="node-1")
    assert a.status == "Success", a
    assert list(cloud.state(vid)["attachments"]) == [cloud.servers["node-2"]], "a CD-ROM's word is taken"
    assert cloud.kubelet.detach("pv-cd", node="node-1").status == "Success"


def test_allow_inline_false_refuses_names_an_inline_volume_can_have(make_cloud):
    """allow-inline = false (see test_gcepd.py's test of the same name)."""
    cloud = make_cloud(flexvol={"allow-inline": "false"})
    k, d = cloud.kubelet, cloud.driver
    vid = cloud.volume()
    a = k.attach("data", opts(vid))
    assert a.status == "Failure" and "allow-inline is false" in a.message, a
    assert not requests(cloud, "POST"), "nothing was attached"
    spec = "db.pv-policy"
    dev = attach_and_mount(cloud, spec, opts(vid), [POD_A])
    g = k.global_path("data")
    os.makedirs(g, 0o750)
    m = d.call("mountdevice", g, dev, go_json(k.options("data", opts(vid))))
    assert m.status == "Failure" and "allow-inline is false" in m.message, m
    r = k.set_up_pod(POD_B, "data", opts(vid))
    assert r.status == "Failure" and "allow-inline is false" in r.message, r
    tear_down(cloud, spec, [POD_A])
    assert "allow-inline" in subprocess.run([d.path, "--help"], capture_output=True, text=True).stdout


def test_a_volume_in_use_is_not_attached_under_a_second_name(cloud):
    """detach finds a volume by the PV name recorded on it. An inline volume
    naming a PV's volumeID under its own name, on the node where the PV's
    volume is attached, would record its name on the volume (the attach
    itself is a no-op: already attached), and its pod's end would detach the
    victim's volume from under the victim's running pod."""
    k = cloud.kubelet
    victim = cloud.volume()
    attach_and_mount(cloud, "pv-victim", opts(victim), [POD_A])
    a = k.attach("data", opts(victim))
    assert a.status == "Failure" and "as volume 'pv-victim', not 'data'" in a.message, a
    assert cloud.state(victim)["metadata"]["flexvol-pv-name"] == "pv-victim"
    assert k.detach("data").status == "Success"
    assert cloud.state(victim)["status"] == "in-use", "the victim's volume is still attached"
    tear_down(cloud, "pv-victim", [POD_A])
    assert cloud.state(victim)["status"] == "available"
    # Free again: any name may have it.
    assert k.attach("data", opts(victim)).status == "Success"
    assert k.detach("data").status == "Success"
