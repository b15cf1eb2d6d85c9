"""cinder: the attach limit, the availability-zone check, Keystone trusts,
clouds.yaml and TLS client certificates (issue 13 items 4 and 6), against
the fake OpenStack with real loop devices."""
import os

from cinder_helpers import DOMAIN, PROJECT, USER, TlsProxy, make_client_cert, opts
from cloud_common import POD_A, attach_and_mount, cloud_fixtures, mounts_under, tear_down, write_private
from conftest import valgrind_wrapper
from cinder_helpers import CinderCloud

make_cloud, cloud = cloud_fixtures(CinderCloud, valgrind_wrapper)


def attach_posts(cloud):
    return cloud.fake.request_log(method="POST", path="/os-volume_attachments$")


def test_attach_past_max_volumes_fails_naming_the_key(cloud):
    cloud.extra_sections = ["[cinder]", "max-volumes = 1"]
    cloud.write_config()
    k = cloud.kubelet
    a, b = cloud.volume(), cloud.volume()
    assert k.attach("pv-lim-a", opts(a)).status == "Success"
    r = k.attach("pv-lim-b", opts(b))
    assert r.status == "Failure", r
    assert "[cinder] max-volumes" in r.message and b in r.message, r.message
    assert len(attach_posts(cloud)) == 1, "refused before asking Nova"
    st = cloud.state(b)
    assert st["status"] == "available" and "flexvol-pv-name" not in st["metadata"], "nothing changed"
    assert k.attach("pv-lim-a", opts(a)).status == "Success", "the attached volume is no new one"
    assert k.detach("pv-lim-a").status == "Success"
    assert k.attach("pv-lim-b", opts(b)).status == "Success", "room again after a detach"
    assert k.detach("pv-lim-b").status == "Success"


def test_the_cloud_providers_attach_limit_key_is_read(cloud):
    cloud.extra_sections = ["[BlockStorage]", "node-volume-attach-limit = 1"]
    cloud.write_config()
    a, b = cloud.volume(), cloud.volume()
    assert cloud.kubelet.attach("pv-cpo-a", opts(a)).status == "Success"
    r = cloud.kubelet.attach("pv-cpo-b", opts(b))
    assert r.status == "Failure" and "[BlockStorage] node-volume-attach-limit" in r.message, r
    assert cloud.kubelet.detach("pv-cpo-a").status == "Success"


def test_cross_az_attach_is_refused_unless_ignore_volume_az(cloud):
    vid = cloud.volume(availability_zone="az-2")
    r = cloud.kubelet.attach("pv-az", opts(vid))
    assert r.status == "Failure", r
    assert "az-2" in r.message and "'nova'" in r.message and "ignore-volume-az" in r.message, r.message
    assert attach_posts(cloud) == [] and cloud.state(vid)["status"] == "available"
    cloud.extra_sections = ["[BlockStorage]", "ignore-volume-az = true"]
    cloud.write_config()
    assert cloud.kubelet.attach("pv-az", opts(vid)).status == "Success"
    assert cloud.kubelet.detach("pv-az").status == "Success"


def test_a_volume_in_the_servers_zone_attaches(cloud):
    cloud.fake.update_server(cloud.servers["node-1"], availability_zone="az-1")
    vid = cloud.volume(availability_zone="az-1")
    assert cloud.kubelet.attach("pv-az1", opts(vid)).status == "Success"
    assert cloud.kubelet.detach("pv-az1").status == "Success"


def test_trust_scoped_keystone_config_authenticates(cloud):
    trustee_pw = "trustee-pw-x81"
    trustee = cloud.fake.add_user("k8s-trustee", trustee_pw)       # no role on any project
    trust = cloud.fake.add_trust(USER, trustee["id"], project=PROJECT)
    cloud.credentials = ["trust-id = " + trust["id"], "trustee-id = " + trustee["id"],
                         "trustee-password = " + trustee_pw]
    cloud.write_config()
    vid = cloud.volume()
    attach_and_mount(cloud, "pv-trust", opts(vid), [POD_A])
    tear_down(cloud, "pv-trust", [POD_A])
    auths = cloud.fake.request_log(service="keystone")
    assert auths and all(e["auth"].get("trust") == trust["id"] and e["auth"]["ok"] for e in auths), auths
    assert auths[0]["auth"]["user"] == "k8s-trustee" and auths[0]["auth"]["project"] == PROJECT
    # Another trustee may not use the trust: Keystone's refusal comes back.
    other_pw = "other-pw-x82"
    other = cloud.fake.add_user("not-trustee", other_pw)
    cloud.credentials = ["trust-id = " + trust["id"], "trustee-id = " + other["id"], "trustee-password = " + other_pw]
    cloud.write_config()
    r = cloud.kubelet.attach("pv-trust2", opts(cloud.volume()))
    assert r.status == "Failure" and "Keystone" in r.message and other_pw not in r.message, r


def test_clouds_yaml_config_authenticates(cloud, tmp_path):
    clouds = os.path.join(str(tmp_path), "clouds.yaml")
    write_private(clouds, "\n".join([
        "clouds:",
        "  other:",
        "    auth: {auth_url: 'http://127.0.0.1:1/v3', username: nobody, password: x}",
        "  mycloud:",
        "    auth:",
        f"      auth_url: \"{cloud.fake.url}/v3\"",
        f"      username: {USER}",
        f"      password: \"{cloud.password}\"",
        f"      project_name: {PROJECT}",
        f"      user_domain_name: {DOMAIN}",
        f"      project_domain_name: {DOMAIN}",
        "    region_name: RegionOne",
        "    interface: internal",
        "    identity_api_version: 3", ""]))
    cloud.auth_url = None
    cloud.credentials = ["use-clouds = true", "clouds-file = " + clouds, "cloud = mycloud"]
    cloud.write_config()
    # auth-url comes from clouds.yaml too: drop the one global_section writes.
    with open(cloud.config_path) as f:
        text = "".join(line for line in f if not line.startswith("auth-url") and not line.startswith("region"))
    write_private(cloud.config_path, text)
    vid = cloud.volume()
    assert cloud.kubelet.attach("pv-clouds", opts(vid)).status == "Success"
    assert cloud.kubelet.detach("pv-clouds").status == "Success"
    auths = cloud.fake.request_log(service="keystone")
    assert auths and auths[0]["auth"]["user"] == USER and auths[0]["auth"]["project"] == PROJECT
    used = {e.get("endpoint") for e in cloud.fake.request_log(service="nova")}
    assert used == {"RegionOne/internal"}, "region_name and interface come from clouds.yaml: %s" % used
    # A clouds.yaml others may read is refused (it holds the password).
    os.chmod(clouds, 0o644)
    r = cloud.kubelet.attach("pv-clouds", opts(vid))
    assert r.status == "Failure" and "clouds.yaml" in r.message and "0644" in r.message, r
    os.chmod(clouds, 0o600)
    cloud.credentials = ["use-clouds = true", "clouds-file = " + clouds, "cloud = nosuch"]
    cloud.write_config()
    r = cloud.kubelet.attach("pv-clouds", opts(vid))
    assert r.status == "Failure" and "nosuch" in r.message, r


def test_client_certificates_are_used_when_configured(cloud, tmp_path):
    ca, cert, key = make_client_cert(tmp_path)
    proxy = TlsProxy(tmp_path, cloud.fake.port, client_ca=ca)
    try:
        vid = cloud.volume()
        cloud.auth_url = "https://127.0.0.1:%d/v3" % proxy.port
        cloud.extra_global = ["ca-file = " + proxy.cert]
        cloud.write_config()
        r = cloud.kubelet.attach("pv-mtls", opts(vid))
        assert r.status == "Failure" and "Keystone authentication" in r.message, r
        assert not cloud.fake.request_log(service="keystone"), "no certificate, no Keystone"
        cloud.extra_global = ["ca-file = " + proxy.cert, "cert-file = " + cert, "key-file = " + key]
        cloud.write_config()
        assert cloud.kubelet.attach("pv-mtls", opts(vid)).status == "Success"
        assert "flexvol-node" in proxy.client_certs
        assert cloud.kubelet.detach("pv-mtls").status == "Success"
        cloud.extra_global = ["ca-file = " + proxy.cert, "cert-file = " + cert]
        cloud.write_config()
        r = cloud.kubelet.attach("pv-mtls", opts(vid))
        assert r.status == "Failure" and "key-file" in r.message, r
    finally:
        proxy.close()
