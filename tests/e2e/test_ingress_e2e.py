"""Traffic through the ingress proxy on the project's real cluster: Traefik
as an ingress controller (built locally, like the sample app's image) in
front of the run's Service, traffic entering by its NodePort. best-practice
drops nothing; no-prestop gives the proxy's 502s, attributed from its access
log to the terminating pods, with a no-prestop finding that names the
ingress's lag. The ingress's propagation delay (deletion -> the proxy stops
routing to the pod) is recorded beside kube-proxy's (the EndpointSlice
update) in reports/e2e-figures.jsonl (docs/ingress.md quotes them)."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TERMINATING = ("terminating", "draining", "killed", "gone")


def hop_lags_ms(run) -> dict[str, list[float]]:
    """Per hop, deletion -> that hop dropped the pod (ms), per replaced pod."""
    per: dict[str, dict[str, int]] = {}
    for ev in run.events():
        pod, kind = ev["pod"], ev["kind"]
        if kind == "deletion_requested":
            per.setdefault(pod, {}).setdefault("deletion", ev["t_ns"])
        elif kind == "endpoint_removed":
            hop = (ev.get("detail") or {}).get("hop", "endpointslice")
            per.setdefault(pod, {}).setdefault(hop, ev["t_ns"])
    out: dict[str, list[float]] = {"endpointslice": [], "ingress": []}
    for d in per.values():
        for hop in out:
            if "deletion" in d and hop in d:
                out[hop].append(round((d[hop] - d["deletion"]) / 1e6, 1))
    return {k: sorted(v) for k, v in out.items()}


def record(run, name: str) -> None:
    out = ROOT / "reports" / "e2e-figures.jsonl"
    out.parent.mkdir(exist_ok=True)
    s = run.summary
    with open(out, "a") as f:
        f.write(json.dumps({"scenario": name, "run_dir": str(run.dir), "failed": s.get("failed"),
                            "outcomes": {k: v for k, v in (s.get("outcomes") or {}).items() if k != "ok"},
                            "top_finding": s.get("top_finding"), "removal_after_deletion_ms": hop_lags_ms(run),
                            "ingress": s.get("ingress")}) + "\n")


def test_ingress_best_practice_drops_nothing(run_scenario):
    run = run_scenario("ingress-best-practice")
    record(run, "ingress-best-practice")
    assert run.exit_code == 0, run.stderr
    assert run.summary["failed"] == 0 and run.summary["total"] > 0
    lags = hop_lags_ms(run)
    assert len(lags["ingress"]) == 4 and len(lags["endpointslice"]) == 4, lags
    assert (run.dir / "ingress" / "access.log").stat().st_size > 0
    assert run.summary["ingress"]["logged"] > 0.99 * run.summary["total"]


def test_ingress_no_prestop_gives_proxy_502s_traced_to_terminating_pods(run_scenario):
    run = run_scenario("ingress-no-prestop")
    record(run, "ingress-no-prestop")
    s = run.summary
    assert run.exit_code == 1, run.stderr
    assert s["outcomes"].get("http_502", 0) > 0, s["outcomes"]
    assert s["attribution"]["by_evidence"].get("ingress-log", 0) >= 0.9 * s["service_failed"], s["attribution"]
    phases: dict[str, int] = {}
    for per_pod in s["attribution"]["by_pod_phase"].values():
        for phase, n in per_pod.items():
            phases[phase] = phases.get(phase, 0) + n
    assert sum(n for ph, n in phases.items() if ph in TERMINATING) >= 0.9 * s["service_failed"], phases
    top = s["findings"][0]
    assert top["rule"] == "no-prestop" and top["evidence"]["slowest_hop"] == "ingress", top

