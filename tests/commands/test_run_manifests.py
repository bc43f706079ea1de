"""A real rollout of the team's own manifest on the local platform, read
from stdin as `helm template … | rollout-harness run … --manifests -` feeds
it. Expected before running, from the manifest's settings (those of
scenarios/best-practice.yaml: preStop 3 s > propagation 1.2 s, readiness,
maxSurge 1 / maxUnavailable 0, grace 20 s): no failed request, exit 0."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "examples" / "manifests" / "k8s" / "sample-app.yaml"


def run_from_stdin(out: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "harness", "run", "examples/manifests/scenario.yaml", "--manifests", "-",
           "--out", str(out), "--quiet"]
    proc = subprocess.run(cmd, input=MANIFEST.read_text(), capture_output=True, text=True, cwd=ROOT, timeout=280)
    if proc.returncode == 3:  # inconclusive on a busy machine (the run could not see): one more try
        out.rename(out.with_name(out.name + "-inconclusive"))
        proc = subprocess.run(cmd, input=MANIFEST.read_text(), capture_output=True, text=True, cwd=ROOT,
                              timeout=280)
    return proc


def test_the_manifest_on_stdin_rolls_out_locally_without_a_failure(tmp_path):
    out = tmp_path / "run"
    proc = run_from_stdin(out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failed"] == 0 and summary["total"] > 0
    manifest = json.loads((out / "manifest.json").read_text())
    workload = manifest["workload"]
    assert workload["origin"] == "-" and workload["documents"][0] == "<stdin>#1 Deployment/api"
    # what the local platform did not play is listed once, with its line
    assert any(u.endswith("spec.template.spec.containers[0].resources") for u in workload["unmodelled_locally"])
    assert manifest["spec_risks"] == []  # `check` finds no risk in the spec: the run agrees
    html = (out / "index.html").read_text()
    assert "not played locally" in html and "containers[0].resources" in html
    assert "risks in the spec (check)" in html


def test_the_check_and_the_run_agree_on_a_missing_prestop(tmp_path):
    """The two faces of one rule: `check` flags the missing preStop from the
    spec; a run of the same file shows it as evidence. Expected before
    running (as scenarios/no-prestop.yaml): with no preStop and an app that
    stops listening on SIGTERM (DRAIN_SECONDS 0), refused connections during
    each termination, exit 1, top finding no-prestop. (With the app's own 2 s
    drain, longer than the 1.2 s propagation, a run passes: the check names a
    risk the app may cover, and says a run shows which.)"""
    prestop = "          lifecycle:\n            preStop:\n              sleep:\n                seconds: 3\n"
    drain = "            - name: DRAIN_SECONDS\n              value: \"2\"\n"
    text = MANIFEST.read_text()
    assert prestop in text and drain in text
    copy = tmp_path / "no-prestop.yaml"
    copy.write_text(text.replace(prestop, "").replace(drain, drain.replace('"2"', '"0"')))
    check = subprocess.run([sys.executable, "-m", "harness", "check", str(copy), "--format", "json"],
                           capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert check.returncode == 1
    assert [r["check"] for r in json.loads(check.stdout)["risks"]] == ["no-prestop"]
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "harness", "run", "examples/manifests/scenario.yaml", "--manifests", str(copy),
           "--out", str(out), "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=280)
    if proc.returncode == 3:
        out.rename(out.with_name(out.name + "-inconclusive"))
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=280)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["top_finding"] == "no-prestop"
    manifest = json.loads((out / "manifest.json").read_text())
    assert [r["check"] for r in manifest["spec_risks"]] == ["no-prestop"]
    assert summary["outcomes"].get("refused", 0) > 0  # new connections to a pod that stopped listening
