"""The shipped scenarios on a kind cluster, the way users run them
(`make kind-up kind-load`, then the kubernetes platform with kind's context
and NodePort 30080 on 127.0.0.1, as `make kind-demo` and the example
workflow do). Run by ``make kind-e2e``, which creates the cluster and exports
ROLLOUT_HARNESS_KIND_KUBECONFIG; elsewhere they are skipped with that reason.

Expected outcomes (written before the first run on kind, from the same
scenarios on the project's own cluster, docs/kubernetes.md):
- best-practice: exit 0, 0 failed requests, verdict "pass" (PASS);
- no-prestop: exit 1, failed requests, top finding ``no-prestop``, most
  failures on terminating pods (kube-proxy applies endpoint removal up to
  ~1 s after the EndpointSlice update, see test_kubernetes_e2e.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT

pytestmark = [pytest.mark.kind, pytest.mark.slow]

CONTEXT = "kind-rollout-harness"   # kind's context name for the cluster `make kind-up` creates
NODE_PORT = "30080"                 # deploy/kind/kind-config.yaml maps it to 127.0.0.1
IMAGE = "localhost/rollout-harness-sample-app:0.1.0"   # what `make kind-load` loads
TERMINATING = ("terminating", "draining", "killed", "gone")


@pytest.fixture(scope="module")
def kind_kubeconfig() -> Path:
    path = os.environ.get("ROLLOUT_HARNESS_KIND_KUBECONFIG")
    if not path:
        pytest.skip("no kind cluster: these run under `make kind-e2e` "
                    "(ROLLOUT_HARNESS_KIND_KUBECONFIG is not set)")
    from harness.errors import HarnessError
    from harness.platforms.kubernetes.client import load_api

    try:
        load_api(kubeconfig=path, context=CONTEXT).version()
    except HarnessError as exc:   # make kind-e2e created the cluster: not answering is a failure
        pytest.fail(f"kind cluster {CONTEXT} in {path} does not answer: {exc}")
    return Path(path)


def wait_node_port_free(kubeconfig: Path, timeout_s: float = 180.0) -> None:
    """The previous run's namespace is deleted asynchronously; its Service holds
    NodePort 30080 until it is gone, and the next run could not create its own."""
    import time
    from kubernetes import client, config

    api = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig), context=CONTEXT))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        held = [s.metadata.namespace for s in api.list_service_for_all_namespaces().items
                if any(p.node_port == int(NODE_PORT) for p in s.spec.ports or [])]
        if not held:
            return
        time.sleep(2)
    pytest.fail(f"NodePort {NODE_PORT} still held after {timeout_s:.0f} s by a Service in {held}")


def run_on_kind(name: str, kubeconfig: Path, out: Path) -> tuple[int, dict, str]:
    """One scenario through the real command line; an inconclusive run (exit 3,
    usually a loaded machine) is retried once, and its run dir kept aside."""
    wait_node_port_free(kubeconfig)
    cmd = [sys.executable, "-m", "harness", "run", str(ROOT / "scenarios" / f"{name}.yaml"),
           "--platform", "kubernetes", "--out", str(out), "--quiet",
           "--set", f"kubernetes.kubeconfig={kubeconfig}", "--set", f"kubernetes.context={CONTEXT}",
           "--set", f"kubernetes.nodePort={NODE_PORT}", "--set", "kubernetes.imagePullPolicy=IfNotPresent",
           "--set", f"app.image={IMAGE}"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=280)
    if proc.returncode == 3:
        out.rename(out.with_name(out.name + "-inconclusive"))
        wait_node_port_free(kubeconfig)
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=280)
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return proc.returncode, summary, proc.stderr + proc.stdout


@pytest.fixture(scope="module")
def runs_dir() -> Path:
    import time
    return ROOT / "reports" / "kind-e2e" / time.strftime("%Y%m%dT%H%M%S")


def test_best_practice_on_kind_drops_nothing(kind_kubeconfig, runs_dir):
    code, summary, output = run_on_kind("best-practice", kind_kubeconfig, runs_dir / "best-practice")
    assert code == 0, output
    assert summary["total"] > 0 and summary["failed"] == 0, summary
    assert summary["verdict"]["status"] == "pass", summary["verdict"]


def test_no_prestop_on_kind_fails_with_the_no_prestop_finding(kind_kubeconfig, runs_dir):
    code, summary, output = run_on_kind("no-prestop", kind_kubeconfig, runs_dir / "no-prestop")
    assert code == 1, output
    assert summary["verdict"]["status"] == "fail", summary["verdict"]
    assert summary["failed"] > 0 and summary["top_finding"] == "no-prestop", summary
    phases: dict[str, int] = {}
    for per_pod in summary["attribution"]["by_pod_phase"].values():
        for phase, n in per_pod.items():
            phases[phase] = phases.get(phase, 0) + n
    assert sum(n for ph, n in phases.items() if ph in TERMINATING) >= 0.75 * summary["failed"], phases
