"""Test-side glue for the gcepd driver: a fake GCE (metadata server, OAuth
token endpoint, compute v1; tests/fakes/gce.py) whose attached disks become
real loop devices with by-id links and sysfs serials (HostLoopNode), and the
driver's configuration.

The cloud-neutral parts (the cloud's layout, driver and kubelets, the VM node
that can resize, fixtures, pods, mounts) are in cloud_common.py, shared with
the cinder driver's tests. tests/integration/test_gcepd.py and
tests/vm/test_gcepd_vm.py both build on this.
"""
import os

# cloud_common first: it puts the repository on sys.path for tests.fakes.
from cloud_common import CloudBase, NODES, write_private
from tests.fakes import gce as fake_gce

PROJECT, ZONE = "my-project", "us-central1-a"


class GCECloud(CloudBase):
    """A fake GCE on loopback whose attached disks become real loop devices
    (HostLoopNode) or disks hot-plugged into a VM (node=VMNode), plus the
    gcepd driver configured against it.

    Layout under tmp: by-id/ (the fake udev links), sys/ (the fake sysfs
    serials), images/ (disk images), etc/ (gcepd.conf, the service-account
    key), run/ (driver run dir: locks, token cache), kubelet-<node>/.

    key=True: the driver authenticates with a service-account JSON key (JWT
    bearer flow) instead of the metadata server's token. scope=False: project
    and zone are not configured and come from the metadata server.
    """

    driver_name = "gcepd"

    def __init__(self, tmp, op_delay=0.2, gcepd=None, token_lifetime=3600, key=False, scope=True,
                 in_use_error="sync", wrapper=(), node=None, zones=None):
        super().__init__(tmp, node)
        self.fake = fake_gce.FakeGCE(node=self.node, token_lifetime=token_lifetime, project=PROJECT, zone=ZONE,
                                     zones=zones, op_delay=op_delay, in_use_error=in_use_error).start()
        for n in NODES:
            self.fake.add_instance(n, local=(n == "node-1"))
        self.key_path = os.path.join(self.config_dir, "gcepd-key.json")
        self.key = self.fake.write_service_account_key(self.key_path) if key else None
        self.gcepd = {"metadata-url": self.fake.url, "compute-endpoint": self.fake.url + "/compute/v1",
                      "attach-timeout": "30", "device-dir": self.device_dir, "sysfs-root": self.sysfs,
                      "udevadm": "none", "http-timeout": "5", "rescan-after": "2"}
        if scope:
            self.gcepd.update(project=PROJECT, zone=ZONE)
        if key:
            self.gcepd["credentials-file"] = self.key_path
        self.gcepd.update(gcepd or {})
        self.write_config()
        # The host's own GCE_METADATA_HOST would lead the driver away from the fake.
        self.start_driver(wrapper, unset_env=("GCE_METADATA_HOST",))

    def write_config(self):
        lines = ["[gcepd]"] + ["%s = %s" % (k, v) for k, v in self.gcepd.items() if v is not None]
        write_private(self.config_path, "\n".join(lines) + "\n")

    def configure(self, **gcepd):
        self.gcepd.update({k.replace("_", "-"): (None if v is None else str(v)) for k, v in gcepd.items()})
        self.write_config()

    def disk(self, name, size_gb=1):
        self.fake.add_disk(name, size_gb=size_gb)
        return name

    def instance(self, node="node-1"):
        return self.fake.instance(node)

    def attached(self, node="node-1"):
        """{deviceName: (disk name, mode)} of the node's instance, boot disk left out."""
        out = {}
        for d in self.instance(node)["disks"]:
            if not d.get("boot"):
                out[d["deviceName"]] = (d["source"].rsplit("/", 1)[1], d["mode"])
        return out

    def link(self, device_name):
        return os.path.join(self.device_dir, "google-" + device_name)

    def secrets(self):
        """Every credential: each token the fake issued and, with a key, the
        private key's body lines."""
        out = list(self.fake.tokens.issued())
        if self.key:
            out += [line for line in self.key["private_key"].splitlines() if line and "-----" not in line]
        return out

    def token_fetches(self):
        return self.fake.auth_count(ok=True)


def opts(pd, **extra):
    o = {"pdName": pd}
    o.update(extra)
    return o
