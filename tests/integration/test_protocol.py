"""The kubelet contract at the protocol level, held for every built driver:
argv handling, Not supported, reply shape, exit codes, secrets, logging."""
import base64
import glob
import os
import re
import subprocess

import pytest

from cloud_common import needs_loop
from conftest import BUILD, REPO, LoopNode, cleanup_tree, valgrind_wrapper
from kubelet import Driver, go_json
from syslog_capture import Syslog

CALLS = ["getvolumename", "attach", "detach", "waitforattach", "isattached", "mountdevice", "unmountdevice",
         "mount", "unmount", "expandvolume", "expandfs"]
ARGC = {"getvolumename": 1, "attach": 2, "detach": 2, "waitforattach": 2, "isattached": 2, "mountdevice": 3,
        "unmountdevice": 1, "mount": 2, "unmount": 1, "expandvolume": 4, "expandfs": 5}
CAPS = {"attach", "selinuxRelabel", "supportsMetrics", "fsGroup", "requiresFSResize"}


def built_drivers():
    """Every provider in the tree whose binary is built."""
    names = [os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(REPO, "providers/*/provider.mk"))]
    return sorted(n for n in names if os.access(os.path.join(BUILD, n), os.X_OK))


DRIVERS = built_drivers()


@pytest.fixture
def env(tmp_path):
    os.makedirs(tmp_path / "etc")
    return dict(os.environ, FLEXVOL_CONFIG_DIR=str(tmp_path / "etc"), FLEXVOL_RUN_DIR=str(tmp_path / "run"))


def driver(name, env, tmp_path):
    return Driver(os.path.join(BUILD, name), env, valgrind_wrapper(tmp_path))


def test_drivers_were_found():
    assert "loop" in DRIVERS, DRIVERS


@pytest.mark.parametrize("name", DRIVERS)
def test_init_states_every_capability(name, env, tmp_path):
    r = driver(name, env, tmp_path).call("init")
    assert r.status == "Success" and r.rc == 0
    caps = r.json["capabilities"]
    assert set(caps) == CAPS and all(isinstance(v, bool) for v in caps.values()), caps
    assert not os.path.exists(env["FLEXVOL_RUN_DIR"]), "init must have no side effects"


@pytest.mark.parametrize("name", DRIVERS)
def test_init_with_a_broken_config_still_succeeds(name, env, tmp_path):
    with open(os.path.join(env["FLEXVOL_CONFIG_DIR"], name + ".conf"), "w") as f:
        f.write("[%s]\nno equals sign here\n" % name)
    assert driver(name, env, tmp_path).call("init").status == "Success"


@pytest.mark.parametrize("name", DRIVERS)
@pytest.mark.parametrize("call", ["frobnicate", "waitfordetach", "getdevicename", "", "INIT"])
def test_unknown_calls_are_not_supported(name, call, env, tmp_path):
    r = driver(name, env, tmp_path).call(call, "x")
    assert r.json == {"status": "Not supported"} and r.rc == 0


@pytest.mark.parametrize("name", DRIVERS)
def test_calls_answer_consistently(name, env, tmp_path):
    """Each call is either always Not supported (kubelet caches that for every
    volume) or checks its argument count."""
    d = driver(name, env, tmp_path)
    for call in CALLS:
        short = d.call(call)
        if short.status == "Not supported":
            assert d.call(call, *(["{}"] * ARGC[call])).status == "Not supported", call
            continue
        assert short.status == "Failure" and "argument" in short.message, (call, short)
        too_many = d.call(call, *(["x"] * (ARGC[call] + 1)))
        assert too_many.status == "Failure" and "argument" in too_many.message, (call, too_many)


def test_no_call_at_all_fails(env, tmp_path):
    r = driver("loop", env, tmp_path).call()
    assert r.status == "Failure" and "no call" in r.message


def test_init_takes_no_arguments(env, tmp_path):
    assert driver("loop", env, tmp_path).call("init", "x").status == "Failure"


def test_loop_leaves_getvolumename_to_kubelet(env, tmp_path):
    # Recommended by upstream: kubelet ignores the answer anyway and caches Not supported.
    assert driver("loop", env, tmp_path).call("getvolumename", "{}").status == "Not supported"


def test_options_are_unescaped_fully(env, tmp_path):
    d = driver("loop", env, tmp_path)
    r = d.call("attach", '{"image":"\\u002e\\u002e/x"}', "node")
    assert r.status == "Failure" and "'../x'" in r.message, r
    r = d.call("attach", '{"image":"a\\ud83d\\ude00\\u0026.img"}', "node")
    assert r.status == "Success", r


def test_duplicate_option_keys_are_refused(env, tmp_path):
    r = driver("loop", env, tmp_path).call("attach", '{"image":"a.img","image":"b.img"}', "node")
    assert r.status == "Failure" and "JSON" in r.message


def test_failure_with_secrets_exits_zero_and_hides_them(env, tmp_path):
    """kubelet logs the whole argv when a driver exits non-zero."""
    secret = "hunter2-Sup3r"
    opts = {"image": "../bad", "kubernetes.io/secret/password": base64.b64encode(secret.encode()).decode()}
    r = driver("loop", env, tmp_path).call("mount", "/var/lib/kubelet/pods/u/volumes/flexvol~loop/v",
                                           go_json(opts))
    assert r.status == "Failure" and r.rc == 0
    assert secret not in r.stdout and opts["kubernetes.io/secret/password"] not in r.stdout
    # Unparseable options carrying secrets: still exit 0.
    r = driver("loop", env, tmp_path).call("mount", "/x", '{"kubernetes.io/secret/a":"c2VjcmV0",')
    assert r.status == "Failure" and r.rc == 0 and "c2VjcmV0" not in r.stdout


def test_bad_secret_encoding_is_named_not_echoed(env, tmp_path):
    r = driver("loop", env, tmp_path).call("mount", "/x", '{"kubernetes.io/secret/token":"%%%not-base64"}')
    assert r.status == "Failure" and "kubernetes.io/secret/token" in r.message and "%%%" not in r.message


def test_broken_config_fails_calls_with_its_line(env, tmp_path):
    with open(os.path.join(env["FLEXVOL_CONFIG_DIR"], "loop.conf"), "w") as f:
        f.write("[loop]\nimage-root /srv\n")
    r = driver("loop", env, tmp_path).call("attach", '{"image":"a.img"}', "node")
    assert r.status == "Failure" and "loop.conf" in r.message and "line 2" in r.message, r


def test_help_and_version_describe_the_driver(env, tmp_path):
    d = driver("loop", env, tmp_path)
    h = subprocess.run([d.path, "--help"], capture_output=True, text=True)
    assert h.returncode == 0 and h.stderr == ""
    for word in ["waitforattach <device> <json>", "image-root", "size", "FLEXVOL_CONFIG_DIR", "FLEXVOL_RUN_DIR",
                 "syslog"]:
        assert word in h.stdout, word
    v = subprocess.run([d.path, "--version"], capture_output=True, text=True)
    assert v.returncode == 0 and v.stdout.startswith("loop (flexvol) ")


def test_each_call_logs_one_line_with_outcome_and_duration(tmp_path):
    needs_loop()
    node = LoopNode(tmp_path, valgrind_wrapper(tmp_path))
    secret = "pa55-w0rd-xyz"
    opts = node.kubelet.options("pv-log", {"image": "log.img", "size": "64Mi"}, secrets={"key": secret})
    with Syslog() as log:
        node.driver.call("attach", go_json(opts), "node-7")
        node.driver.call("waitforattach", "", go_json({**opts, "image": "../nope"}))
        node.driver.call("frobnicate")
        lines = log.lines("flexvol-loop")
    joined = "\n".join(lines)
    assert secret not in joined and base64.b64encode(secret.encode()).decode() not in joined
    calls = [l for l in lines if re.search(r"-> (Success|Failure|Not supported)", l)]
    assert len(calls) == 3, lines
    assert all(l.startswith("<") and "flexvol-loop[" in l for l in calls), calls
    assert re.search(r"attach node-7 -> Success \(\d+ ms\)", calls[0]), calls[0]
    assert re.search(r"waitforattach\s+-> Failure \(\d+ ms\): .*'\.\./nope'", calls[1]), calls[1]
    # LOG_DAEMON (3 << 3) | LOG_INFO (6) = <30>; failures at LOG_ERR = <27>
    assert calls[0].startswith("<30>") and calls[1].startswith("<27>")


# --- options on stdin: "-" for <json> ---

def test_options_on_stdin(tmp_path):
    needs_loop()
    node = LoopNode(tmp_path, valgrind_wrapper(tmp_path))
    try:
        k, d = node.kubelet, node.driver
        opts = {"image": "stdin.img", "size": "64Mi"}
        secret = "0per4tor-s3cret"
        w = k.wait_for_attach("pv-in", opts)
        assert k.mount_device("pv-in", opts, w.json["device"]).status == "Success"
        pod = {"name": "p", "namespace": "default", "uid": "33333333-0000-4000-8000-000000000001"}
        path = k.pod_dir(pod["uid"], "pv-in")
        os.makedirs(path)
        text = go_json(k.options("pv-in", opts, pod=pod, secrets={"token": secret}))
        r = d.call("mount", path, "-", stdin_text=text)
        assert r.status == "Success", r
        assert path in node.mounts()
        assert d.call("unmount", path).status == "Success"
        # The same parser and errors, and a size cap.
        r = d.call("mount", path, "-", stdin_text='{"image": 3}')
        assert r.status == "Failure" and "option 'image' must be a string" in r.message, r
        r = d.call("mount", path, "-", stdin_text="")
        assert r.status == "Failure" and "not valid JSON" in r.message, r
        r = d.call("mount", path, "-", stdin_text="{" + " " * (1 << 20) + "}")
        assert r.status == "Failure" and "larger than 1 MiB" in r.message, r
        r = d.call("mount", path, "-", stdin_text=text[:-1] + "\0}")
        assert r.status == "Failure", r
        assert node.mounts().count(path) == 0
        assert k.unmount_device("pv-in").status == "Success"
    finally:
        cleanup_tree(node.tmp)


def test_help_tells_of_options_on_stdin(env, tmp_path):
    h = subprocess.run([os.path.join(BUILD, "loop"), "--help"], capture_output=True, text=True)
    assert '"-"' in h.stdout and "stdin" in h.stdout


# --- UTF-8: a message cut inside a character still reaches kubelet ---

@pytest.mark.parametrize("char", ["\u00e9", "\u20ac", "\U0001f600"])
@pytest.mark.parametrize("shift", [0, 1, 2, 3])
def test_a_message_cut_inside_a_character_still_reaches_the_reply(env, tmp_path, char, shift):
    """The 1024-byte message buffer: jansson refused the cut string and
    kubelet's event read "reason:" with nothing after it."""
    rel = "x" * shift + char * 700
    r = driver("loop", env, tmp_path).call("unmount", rel)
    assert r.status == "Failure" and r.message.startswith("path 'x" if shift else "path '" + char), r.stdout[:200]
    assert len(r.message.encode()) > 900


def test_a_precision_cut_inside_a_character_still_reaches_the_reply(env, tmp_path):
    """'%.256s' in a provider's message cuts a 3-byte character."""
    with open(os.path.join(env["FLEXVOL_CONFIG_DIR"], "hostpath.conf"), "w") as f:
        f.write("[hostpath]\nallowed-roots = /srv\n")
    d = driver("hostpath", env, tmp_path)
    path = "/var/lib/kubelet/pods/u/volumes/flexvol~hostpath/v"
    r = d.call("mount", path, go_json({"path": "\u20ac" * 200}))
    assert r.status == "Failure" and "must be an absolute path" in r.message, r


def test_bytes_that_are_not_utf8_still_reach_the_reply(env, tmp_path):
    r = driver("loop", env, tmp_path).call("unmount", "relative-\udcff-dir")  # the byte 0xff in argv
    assert r.status == "Failure" and "relative-\ufffd-dir" in r.message, r
