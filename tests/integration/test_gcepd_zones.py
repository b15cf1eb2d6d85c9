"""gcepd: the attach limit ([gcepd] max-volumes), regional disks and zones
(issue 13 items 4 and 5), against the fake GCE with real loop devices."""
import os

from cloud_common import POD_A, attach_and_mount, cloud_fixtures, mounts_under, requests, tear_down
from conftest import valgrind_wrapper
from gcepd_helpers import GCECloud, ZONE, opts

make_cloud, cloud = cloud_fixtures(GCECloud, valgrind_wrapper)

ZONES = (ZONE, "us-central1-b", "us-central1-c")
REGION = "us-central1"


def attach_posts(cloud):
    return requests(cloud, "POST", "/attachDisk")


def test_attach_past_max_volumes_fails_naming_the_key(make_cloud):
    cloud = make_cloud(gcepd={"max-volumes": "2"})      # the boot disk and one more
    k = cloud.kubelet
    a, b = cloud.disk("pd-lim-a"), cloud.disk("pd-lim-b")
    assert k.attach("pv-lim-a", opts(a)).status == "Success"
    posts = len(attach_posts(cloud))
    r = k.attach("pv-lim-b", opts(b))
    assert r.status == "Failure", r
    assert "max-volumes" in r.message and "2" in r.message and "pd-lim-b" in r.message, r.message
    assert len(attach_posts(cloud)) == posts, "refused before asking GCE"
    assert "pd-lim-b" not in [d for d, _ in cloud.attached().values()]
    # The disk already attached is no new disk: attach stays idempotent at the limit.
    assert k.attach("pv-lim-a", opts(a)).status == "Success"
    assert k.detach("pv-lim-a").status == "Success"
    assert k.attach("pv-lim-b", opts(b)).status == "Success", "room again after a detach"
    assert k.detach("pv-lim-b").status == "Success"


def test_a_regional_disk_attaches_and_mounts(make_cloud):
    cloud = make_cloud(zones=ZONES)
    cloud.fake.add_disk("pd-regional", size_gb=1, region=REGION, replica_zones=[ZONE, "us-central1-b"])
    o = opts("pd-regional")
    dev = attach_and_mount(cloud, "pv-reg", o, [POD_A], "ext4")
    src = [d["source"] for d in cloud.instance()["disks"] if d["deviceName"] == "pv-reg"]
    assert len(src) == 1 and ("/regions/%s/disks/pd-regional" % REGION) in src[0], src
    assert attach_posts(cloud)[-1]["source"] == "projects/my-project/regions/%s/disks/pd-regional" % REGION
    assert os.path.realpath(dev).startswith("/dev/loop")
    assert cloud.kubelet.is_attached("pv-reg", o).json["attached"] is True
    tear_down(cloud, "pv-reg", [POD_A])
    assert mounts_under(cloud.tmp) == []
    assert "pv-reg" not in cloud.attached()


def test_a_zonal_disk_in_another_zone_is_refused_naming_both(make_cloud):
    cloud = make_cloud(zones=ZONES, gcepd={"zones": ",".join(ZONES)})
    cloud.fake.add_disk("pd-far", size_gb=1, zone="us-central1-c")
    r = cloud.kubelet.attach("pv-far", opts("pd-far"))
    assert r.status == "Failure", r
    assert "us-central1-c" in r.message and ZONE in r.message and "pd-far" in r.message, r.message
    assert attach_posts(cloud) == [], "nothing asked of GCE"


def test_a_missing_disk_names_where_it_was_looked_for(make_cloud):
    cloud = make_cloud(zones=ZONES)
    cloud.fake.add_disk("pd-elsewhere", size_gb=1, zone="us-central1-c")   # zones = auto: not looked at
    r = cloud.kubelet.attach("pv-none", opts("pd-elsewhere"))
    assert r.status == "Failure", r
    assert ZONE in r.message and "region " + REGION in r.message and "does not exist" in r.message, r.message
    assert attach_posts(cloud) == []


def test_bad_zones_setting_is_refused(make_cloud):
    cloud = make_cloud(gcepd={"zones": "us-central1-a,Not_A_Zone"})
    r = cloud.kubelet.attach("pv-z", opts(cloud.disk("pd-z")))
    assert r.status == "Failure" and "zones" in r.message and "Not_A_Zone" in r.message, r
