"""Nothing is left on the cluster: an interrupted run deletes its namespace,
and `rollout-harness cleanup` finds leftovers by label (and only those)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from harness.platforms.kubernetes.client import load_api
from harness.platforms.kubernetes.manifests import MANAGED_BY, MANAGER, RUN_LABEL
from tests.e2e.conftest import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def live_namespaces(api, selector: str) -> list[str]:
    return [n["metadata"]["name"] for n in api.list_namespaces(selector)
            if not n["metadata"].get("deletionTimestamp")]


def wait_for_phase(run_dir, phase: str, proc, deadline_s: float = 150) -> None:
    end = time.monotonic() + deadline_s
    events = run_dir / "events.jsonl"
    while time.monotonic() < end and proc.poll() is None:
        if events.exists() and any(json.loads(line).get("detail", {}).get("phase") == phase
                                   for line in events.read_text().splitlines() if line.strip()):
            return
        time.sleep(0.5)
    pytest.fail(f"the run never reached {phase} (exit {proc.poll()})")


def test_ctrl_c_mid_run_deletes_the_namespace(kubeconfig, tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(ROOT / "scenarios" / "best-practice.yaml"),
         "--platform", "kubernetes", "--out", str(run_dir), "--quiet",
         "--set", f"kubernetes.kubeconfig={kubeconfig}", "--set", "kubernetes.imagePullPolicy=Never",
         "--set", "deployment.replicas=2", "--set", "disruption.baselineSeconds=30"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_phase(run_dir, "baseline", proc)
        manifest = json.loads((run_dir / "manifest.json").read_text())
        namespace = manifest["kubernetes"]["namespace"]
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    api = load_api(kubeconfig=str(kubeconfig), context=None)
    assert namespace not in live_namespaces(api, f"{MANAGED_BY}={MANAGER}"), out
    assert (run_dir / "events.jsonl").exists()


def test_cleanup_deletes_labelled_leftovers_only(kubeconfig):
    api = load_api(kubeconfig=str(kubeconfig), context=None)
    run_id = f"leftover-{int(time.time())}"
    mine = {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": f"rollout-harness-{run_id}", "labels": {MANAGED_BY: MANAGER, RUN_LABEL: run_id}}}
    other = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"not-ours-{run_id}"}}
    api.create_namespace(mine)
    api.create_namespace(other)
    try:
        cmd = [sys.executable, "-m", "harness", "cleanup", "--kubeconfig", str(kubeconfig)]
        dry = subprocess.run(cmd + ["--dry-run"], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert f"would delete namespaces/rollout-harness-{run_id}" in dry.stdout
        assert live_namespaces(api, f"{RUN_LABEL}={run_id}") == [f"rollout-harness-{run_id}"]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert live_namespaces(api, f"{RUN_LABEL}={run_id}") == []
        assert f"not-ours-{run_id}" not in dry.stdout
        assert any(n["metadata"]["name"] == f"not-ours-{run_id}" and not n["metadata"].get("deletionTimestamp")
                   for n in api.list_namespaces(""))
    finally:
        api.delete_namespace(other["metadata"]["name"])
