"""Observation completeness on the real cluster: a preStop longer than
settleSeconds. Before, the run ended while the last old pod was still in
its preStop (its chain stopped at "preStop started", prestop_s null) and
could pass. Now the disruption phase ends only when every old pod has
ended, so every old pod's termination chain reaches its exit, with the
preStop's real duration — in managed mode (preStop sleep from the scenario)
and in target mode (a Deployment made here, preStop exec `sleep 10`, as
users write it; the run reads it from the live spec).

Expected from Kubernetes' documented order (deletion -> preStop -> stop
signal -> grace period): each old pod's end comes >= 10 s after its
deletion, after the settle phase would have ended under the old rule.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from harness.model.events import read_events
from harness.model.scenario import load_scenario
from harness.platforms.kubernetes import manifests
from harness.platforms.kubernetes.client import KubeError, load_api
from tests.e2e.conftest import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PRESTOP_S = 10.0
SETTLE_S = 3
SHORT = ["--set", "disruption.baselineSeconds=3", "--set", f"disruption.settleSeconds={SETTLE_S}",
         "--set", "deployment.replicas=2", "--set", "deployment.terminationGracePeriodSeconds=30"]


def _run(args: list[str], out) -> tuple[int, dict, str]:
    cmd = [sys.executable, "-m", "harness", "run", *args, "--platform", "kubernetes", "--out", str(out), "--quiet"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=280)
    if proc.returncode == 3:  # a busy machine: once more
        out.rename(out.with_name(out.name + "-inconclusive"))
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=280)
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
    return proc.returncode, summary, proc.stderr + proc.stdout


def _assert_chains_reach_exit(summary: dict, out, what: str) -> None:
    assert summary.get("verdict", {}).get("status") != "inconclusive", (what, summary.get("verdict"))
    old = [c for c in summary["chains"]]
    assert len(old) >= 2, (what, [c["pod"] for c in old])
    settle_end = None
    for ev in read_events(out):
        if ev["kind"] == "phase" and ev["detail"].get("phase") == "settle":
            settle_end = ev["t_ns"] / 1e9
    for c in old:
        steps = [s["step"] for s in c["steps"]]
        assert c["ended"] and "exited" in steps, (what, c["pod"], steps)
        assert c["prestop_s"] is not None and c["prestop_s"] == pytest.approx(PRESTOP_S, abs=1.5), (what, c)
        assert c["deletion_to_exit_s"] >= PRESTOP_S - 0.5, (what, c)
        # the settle phase started only after this pod's exit
        exit_s = next(s["t_s"] for s in c["steps"] if s["step"] == "exited")
        assert settle_end is not None and settle_end >= exit_s - 0.5, (what, c["pod"], exit_s, settle_end)


def test_managed_prestop_longer_than_settle_is_observed_to_exit(kubeconfig, tmp_path):
    out = ROOT / "reports" / "e2e" / f"observation-managed-{time.strftime('%Y%m%dT%H%M%S')}"
    code, summary, log = _run([str(ROOT / "scenarios" / "best-practice.yaml"), *SHORT,
                               "--set", f"kubernetes.kubeconfig={kubeconfig}",
                               "--set", "kubernetes.imagePullPolicy=Never",
                               "--set", f"deployment.lifecycle.preStop.sleep.seconds={PRESTOP_S:g}"], out)
    assert summary, log[-3000:]
    _assert_chains_reach_exit(summary, out, "managed")
    assert summary["run_spec"]["prestop"]["kind"] == "sleep"


@pytest.fixture
def target_deployment(kubeconfig):
    """A Deployment + NodePort Service made here (not by the harness), with
    preStop exec `sleep 10`; deleted afterwards."""
    api = load_api(kubeconfig=str(kubeconfig), context=None)
    sc = load_scenario(ROOT / "scenarios" / "best-practice.yaml", [
        "deployment.replicas=2", "deployment.terminationGracePeriodSeconds=30",
        "kubernetes.imagePullPolicy=Never"])
    ns = f"obs-target-{int(time.time()) % 100000}"
    r = manifests.render(sc, namespace=ns, run_id=ns)
    c = r.deployment["spec"]["template"]["spec"]["containers"][0]
    c["lifecycle"] = {"preStop": {"exec": {"command": ["sleep", f"{PRESTOP_S:g}"]}}}
    api.create_namespace(r.namespace)
    try:
        api.create("deployments", ns, r.deployment)
        svc = api.create("services", ns, r.service)
        port = svc["spec"]["ports"][0]["nodePort"]
        yield ns, r.deployment["metadata"]["name"], f"http://127.0.0.1:{port}"
    finally:
        try:
            api.delete_namespace(ns)
        except KubeError:
            pass


def test_target_prestop_exec_longer_than_settle_is_observed_to_exit(kubeconfig, target_deployment, tmp_path):
    ns, name, url = target_deployment
    out = ROOT / "reports" / "e2e" / f"observation-target-{time.strftime('%Y%m%dT%H%M%S')}"
    code, summary, log = _run([str(ROOT / "scenarios" / "best-practice.yaml"),
                               "--set", "disruption.baselineSeconds=3", "--set", f"disruption.settleSeconds={SETTLE_S}",
                               "--set", f"kubernetes.kubeconfig={kubeconfig}", "--set", "kubernetes.mode=target",
                               "--set", f"kubernetes.target.namespace={ns}", "--set", f"kubernetes.target.deployment={name}",
                               "--set", f"kubernetes.target.url={url}"], out)
    assert summary, log[-3000:]
    _assert_chains_reach_exit(summary, out, "target")
    # the values come from the live Deployment, not the scenario's preStop sleep 3 s
    assert summary["run_spec"]["source"] == "live Deployment"
    assert summary["run_spec"]["prestop"] == {"kind": "exec", "seconds": PRESTOP_S, "text": f"exec sleep {PRESTOP_S:g}"}
    assert summary["run_spec"]["grace_s"] == 30
