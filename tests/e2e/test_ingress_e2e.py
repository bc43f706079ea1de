"""Traffic through the ingress proxy on the project's real cluster: Traefik
as an ingress controller (built locally, like the sample app's image) in
front of the run's Service, traffic entering by its NodePort.

- best-practice drops nothing, every request in the proxy's access log;
- no-prestop gives the proxy's own answers (502 while a deleted pod's IP
  still refuses, 504 once its IP is gone and the dial hangs to the proxy's
  1 s dialTimeout), each traced to its deleted pod by the access log, and a
  no-prestop finding naming the ingress as the slowest hop.

The ingress's propagation delay (deletion -> the proxy stops routing to the
pod) is recorded beside the EndpointSlice's in reports/e2e-figures.jsonl
(docs/ingress.md quotes them). The runs are shared with the parity test
(tests/e2e/test_kubernetes_e2e.py), which runs them locally too."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


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


TERMINATING = ("terminating", "draining", "killed", "gone")


def test_ingress_no_prestop_gives_the_proxys_answers_traced_to_deleted_pods(run_scenario):
    run = run_scenario("ingress-no-prestop")
    record(run, "ingress-no-prestop")
    s = run.summary
    assert s["verdict"]["status"] == "fail", (s["verdict"], run.stderr[-2000:])
    # the client talks to the proxy: it sees the proxy's answers, no refused connection, no read timeout
    assert set(s["outcomes"]) - {"ok"} <= {"http_502", "http_504"}, s["outcomes"]
    assert s["failed"] > 0 and s["ingress"]["not_logged"] == 0, s["ingress"]
    att = s["attribution"]
    assert att["by_evidence"].get("ingress-log", 0) >= 0.95 * s["failed"], att
    on_deleted = sum(n for phases in att["by_pod_phase"].values() for ph, n in phases.items() if ph in TERMINATING)
    assert on_deleted >= 0.95 * s["failed"], att["by_pod_phase"]
    top = s["findings"][0]
    assert top["rule"] == "no-prestop", [f["rule"] for f in s["findings"]]
    assert top["evidence"]["slowest_hop"] == "ingress" and "ingress" in top["fix"], top
    assert len(hop_lags_ms(run)["ingress"]) == 4

