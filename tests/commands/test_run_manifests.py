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
    html = (out / "index.html").read_text()
    assert "not played locally" in html and "containers[0].resources" in html
