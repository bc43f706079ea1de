"""The kind setup's small parts that decide whether the host is left as found
and whether privileged nodes start: the runc wrapper (runc-caps) and the host
snapshot comparison (host-snapshot.sh). The whole flow runs in make kind-e2e."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "deploy" / "kind" / "scripts"


@pytest.fixture(scope="module")
def runc_caps():
    loader = importlib.machinery.SourceFileLoader("runc_caps", str(SCRIPTS / "runc-caps"))
    spec = importlib.util.spec_from_loader("runc_caps", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


ALL = ["CAP_CHOWN", "CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_SYS_RESOURCE", "CAP_BPF"]


def test_create_drops_capabilities_outside_the_bounding_set(runc_caps, tmp_path):
    spec = {"ociVersion": "1.0.2", "process": {"args": ["/sbin/init"], "capabilities": {
        k: list(ALL) for k in ("bounding", "effective", "inheritable", "permitted")}}}
    (tmp_path / "config.json").write_text(json.dumps(spec))
    allowed = set(ALL) - {"CAP_SYS_RESOURCE"}
    runc_caps.rewrite(str(tmp_path / "config.json"), False, allowed)
    caps = json.loads((tmp_path / "config.json").read_text())["process"]["capabilities"]
    assert all(v == ["CAP_CHOWN", "CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_BPF"] for v in caps.values())
    assert json.loads((tmp_path / "config.json").read_text())["process"]["args"] == ["/sbin/init"]


def test_exec_process_file_is_filtered_too(runc_caps, tmp_path):
    process = {"args": ["sh"], "capabilities": {"bounding": list(ALL), "effective": list(ALL)}}
    path = tmp_path / "process.json"
    path.write_text(json.dumps(process))
    runc_caps.rewrite(str(path), True, {"CAP_CHOWN"})
    assert json.loads(path.read_text())["capabilities"] == {"bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"]}


def test_a_spec_within_the_bounding_set_is_left_alone(runc_caps, tmp_path):
    path = tmp_path / "config.json"
    text = json.dumps({"process": {"capabilities": {"bounding": ["CAP_CHOWN"]}}}, indent=3)
    path.write_text(text)
    runc_caps.rewrite(str(path), False, {"CAP_CHOWN", "CAP_KILL"})
    assert path.read_text() == text   # not rewritten at all


def test_bundle_and_process_options_are_found(runc_caps):
    argv = ["runc", "--root", "/r", "create", "--bundle", "/b", "--pid-file", "/p", "id"]
    assert runc_caps.option(argv, "--bundle", "-b") == "/b"
    assert runc_caps.option(["runc", "exec", "--process=/x.json", "id"], "--process", "-p") == "/x.json"
    assert runc_caps.option(["runc", "start", "id"], "--bundle", "-b") is None


def test_bounding_set_is_read_from_this_process(runc_caps):
    caps = runc_caps.bounding_set()
    assert caps and all(c.startswith("CAP_") for c in caps)
    assert len(runc_caps.NAMES) == 41   # CAP_CHOWN (0) .. CAP_CHECKPOINT_RESTORE (40)


def _snapshot(dir_: Path, **items: str) -> None:
    dir_.mkdir()
    for name in ("sysctl", "iptables", "ip6tables", "nft", "mounts", "links", "routes", "netns", "paths"):
        (dir_ / name).write_text(items.get(name, "same\n"))


def test_host_compare_passes_when_nothing_changed(tmp_path):
    _snapshot(tmp_path / "a"); _snapshot(tmp_path / "b")
    proc = subprocess.run(["bash", str(SCRIPTS / "host-snapshot.sh"), "compare", tmp_path / "a", tmp_path / "b"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "host as found" in proc.stderr


def test_host_compare_fails_and_names_what_changed(tmp_path):
    _snapshot(tmp_path / "a")
    _snapshot(tmp_path / "b", links="same\ndocker0\n", sysctl="net.ipv4.ip_forward = 1\n")
    proc = subprocess.run(["bash", str(SCRIPTS / "host-snapshot.sh"), "compare", tmp_path / "a", tmp_path / "b"],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "host changed (links)" in proc.stdout and "+docker0" in proc.stdout
    assert "host changed (sysctl)" in proc.stdout and "host changed (iptables)" not in proc.stdout
