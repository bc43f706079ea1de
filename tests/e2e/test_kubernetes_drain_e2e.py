"""Node drains on a real cluster: the drain scenarios give the same verdict
and top finding as on the local platform, with the drain's facts (evictions,
429s) from the events, and the node is uncordoned afterwards.

On a single-node cluster (the project's own) only the scenarios whose
outcome does not need a second node run: drain-pdb-blocks (every eviction
429 until the timeout) and drain-single-replica (the only pod evicted; its
replacement waits for the uncordon). The others need somewhere for the
replacements to go and are skipped there with that reason; the multi-node
kind cluster runs all four (tests/e2e/test_kind_drain_e2e.py, make kind-e2e)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.analysis import analyse
from harness.model.events import read_events
from tests.e2e.conftest import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SHORTER = ["disruption.baselineSeconds=3", "disruption.settleSeconds=2", "disruption.drain.timeoutSeconds=15"]
#: scenario -> (verdict, top finding), as on the local platform
EXPECTED = {
    "drain-pdb-blocks": ("inconclusive", "pdb-blocks-drain"),
    "drain-single-replica": ("fail", "single-replica"),
    "drain-best-practice": ("pass", None),
    "drain-no-pdb": ("fail", "no-pdb"),
}
NEEDS_NODES = {"drain-pdb-blocks": 1, "drain-single-replica": 1, "drain-best-practice": 2, "drain-no-pdb": 2}


def _nodes(kubeconfig: Path) -> list[dict]:
    from harness.platforms.kubernetes.client import load_api

    api = load_api(kubeconfig=str(kubeconfig), context=None)
    return api._call("GET", "/api/v1/nodes").get("items") or []


def _run(name: str, platform: str, out: Path, kubeconfig: Path) -> tuple[dict, dict]:
    cmd = [sys.executable, "-m", "harness", "run", str(ROOT / "scenarios" / f"{name}.yaml"), "--platform", platform,
           "--out", str(out), "--no-report", "--quiet"]
    for s in SHORTER:
        cmd += ["--set", s]
    if platform == "kubernetes":
        cmd += ["--set", f"kubernetes.kubeconfig={kubeconfig}", "--set", "kubernetes.imagePullPolicy=Never"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert (out / "manifest.json").exists(), proc.stderr[-3000:]
    done = [e["detail"] for e in read_events(out) if e["kind"] == "drain_complete"]
    assert done, f"{name} on {platform}: no drain_complete event: {proc.stderr[-2000:]}"
    return analyse(out).summary, done[-1]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_drain_parity(kubeconfig, tmp_path, name):
    nodes = _nodes(kubeconfig)
    if len(nodes) < NEEDS_NODES[name]:
        pytest.skip(f"{name} needs {NEEDS_NODES[name]} nodes; this cluster has {len(nodes)}")
    want = EXPECTED[name]
    got = {}
    for platform in ("kubernetes", "local"):
        for attempt in (1, 2):
            s, drain = _run(name, platform, ROOT / "reports" / "e2e" / tmp_path.name / f"{name}-{platform}-{attempt}",
                            kubeconfig)
            reasons = " ".join(s["verdict"]["reasons"])
            blind = s["verdict"]["status"] == "inconclusive" and "drain" not in reasons
            if not blind:
                break
        else:
            pytest.fail(f"{name} on {platform}: inconclusive twice: {reasons}")
        got[platform] = (s["verdict"]["status"], s["top_finding"], drain)
        assert (s["verdict"]["status"], s["top_finding"]) == want, (platform, s["verdict"], drain)
    k = got["kubernetes"][2]
    if name == "drain-pdb-blocks":
        assert k["evicted"] == [] and k["evictions_refused"] >= 3
    # the node is schedulable again after the run
    assert not any(n.get("spec", {}).get("unschedulable") for n in _nodes(kubeconfig))
