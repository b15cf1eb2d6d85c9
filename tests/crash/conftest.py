"""Fixtures for the crash-and-fault tier: the integration tier's nodes and
clouds (tests/integration: LoopNode, CinderCloud, GCECloud), each driver call
made breakable (strace), in a private mount namespace as there."""
import importlib.util
import os
import shutil
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
INTEGRATION = os.path.join(os.path.dirname(HERE), "integration")
for p in (HERE, INTEGRATION):
    if p not in sys.path:
        sys.path.insert(0, p)


def _load(name, path):
    """The integration tier's conftest under a name of its own: both tiers'
    conftest.py would otherwise be one module 'conftest'."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


integration = _load("integration_conftest", os.path.join(INTEGRATION, "conftest.py"))

import lifecycle  # noqa: E402


def pytest_configure(config):
    if os.geteuid() == 0:
        integration._private_mount_namespace()


def needs_strace():
    integration.needs_loop()
    if not shutil.which("strace"):
        pytest.skip("strace is not installed (tools/packages.txt lists it)")


@pytest.fixture
def loop_node(tmp_path):
    needs_strace()
    node = integration.LoopNode(tmp_path)
    lifecycle.breakable(node.driver)
    yield node
    integration.cleanup_tree(node.tmp)


@pytest.fixture
def make_cloud(tmp_path):
    """make_cloud("cinder" | "gcepd"): that driver against its fake cloud."""
    needs_strace()
    from cinder_helpers import CinderCloud
    from gcepd_helpers import GCECloud
    clouds = []

    def make(kind):
        # No time spent in the fakes' transitional states: the tier is about the node.
        if kind == "cinder":
            c = CinderCloud(tmp_path / ("c%d" % len(clouds)), transition_delay=0.0)
        else:
            c = GCECloud(tmp_path / ("c%d" % len(clouds)), op_delay=0.0)
        lifecycle.breakable(c.driver)
        clouds.append(c)
        return c

    yield make
    from cloud_common import cleanup_mounts
    for c in clouds:
        cleanup_mounts(c.tmp)      # the fake detaches its own loop devices
        c.close()
        assert not c.fake.errors, "fake errors:\n" + "\n".join(c.fake.errors)


def pytest_terminal_summary(terminalreporter):
    for line in lifecycle.STATS.report():
        terminalreporter.write_line(line)
