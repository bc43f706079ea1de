"""Traffic through the ingress proxy on the project's real cluster: Traefik
as an ingress controller (built locally, like the sample app's image) in
front of the run's Service, traffic entering by its NodePort.

- best-practice drops nothing, every request in the proxy's access log.
- no-prestop fails (verdict fail, exit 1), and, when the engine kept its
  schedule, only with the proxy's own answers: 502 (the stopped pod's port
  refused the proxy's dial) and 504 (the proxy's 1 s dial timeout to a pod
  IP gone from the node), none
  refused or timed out at the client; each traced by the access log
  (``ingress-log``) to a replaced pod that was terminating or gone; top
  finding no-prestop, naming the ingress as the slowest hop with its
  measured lag (above kube-proxy's). Expected before it was first run
  here, from documented behaviour (docs/ingress.md): it was inconclusive
  in 2 of 3 cluster runs while the harness followed the proxy's log; the
  log is now fetched at the end.
- ingress-keepalive-mismatch fails with the proxy's 502/500 on serving pods of the new
  version, upstream-keepalive (docs/ingress.md).

The ingress's propagation delay (deletion -> the proxy stops routing to the
pod) is recorded beside the EndpointSlice's in reports/e2e-figures.jsonl
(docs/ingress.md quotes them). best-practice's run is shared with the
parity test (tests/e2e/test_kubernetes_e2e.py), which runs it locally too;
no-prestop's local run is make test's (tests/platforms/local/test_ingress_run.py)."""

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


def test_ingress_no_prestop_fails_with_the_proxys_answers_traced_to_the_stopping_pods(run_scenario):
    run = run_scenario("ingress-no-prestop")
    record(run, "ingress-no-prestop")
    s = run.summary
    v = s.get("verdict") or {}
    # inconclusive twice (the fixture retries once) fails here with the verdict's reasons
    assert run.exit_code == 1, (v.get("reasons"), run.stderr[-2000:])
    outcomes = {k: n for k, n in s["outcomes"].items() if k != "ok"}
    proxy = outcomes.get("http_502", 0) + outcomes.get("http_504", 0)
    assert proxy > 0, outcomes
    if not any("fell behind" in r for r in v.get("reasons") or []):
        # the engine kept its schedule: the proxy's answers are the only failures
        assert set(outcomes) <= {"http_502", "http_504"}, outcomes
    # (else a fail on the proxy's answers alone, a lower bound: docs/proof.md)
    assert s["attribution"]["by_evidence"].get("ingress-log", 0) >= proxy, s["attribution"]
    phases: dict[str, int] = {}
    for per_pod in s["attribution"]["by_pod_phase"].values():
        for phase, n in per_pod.items():
            phases[phase] = phases.get(phase, 0) + n
    assert phases.get("terminating", 0) + phases.get("gone", 0) >= 0.9 * proxy, phases
    # every request the proxy answered is in its access log (nothing rotated away)
    answered = sum(n for k, n in s["outcomes"].items() if k == "ok" or k.startswith("http_"))
    assert s["ingress"]["logged"] >= 0.99 * answered, (s["ingress"], s["outcomes"])
    assert s["top_finding"] == "no-prestop"
    ev = s["findings"][0]["evidence"]
    assert ev["slowest_hop"] == "ingress" and ev["hop_lag_s"]["ingress"] > ev["hop_lag_s"]["kube-proxy"], ev
    assert "ingress" in s["findings"][0]["fix"]


def test_ingress_keepalive_mismatch_fails_for_its_reason(run_scenario):
    """The mistake only the ingress reveals (docs/ingress.md, "A keep-alive mismatch that fails
    every run"): the new version closes idle connections after 20 ms, the proxy keeps them 90 s;
    the proxy answers 502/500 on serving pods of the new version, its log names a closed
    connection, and the top finding is upstream-keepalive."""
    from harness.analysis.ingress_rules import CLOSED_CONN

    run = run_scenario("ingress-keepalive-mismatch")
    record(run, "ingress-keepalive-mismatch")
    s = run.summary
    assert run.exit_code == 1 and s["verdict"]["status"] == "fail", (s.get("verdict"), run.stderr[-2000:])
    assert s["phases"]["baseline"]["failed"] == 0, s["phases"]["baseline"]
    # The proxy's answers for a closed connection are the failures; on a busy 2-core node a stray
    # client-side one may come besides (make e2e 19:28: 1 connect_timeout to the proxy's NodePort among
    # 82, unattributed): the mistake must explain >= 95% of them, and every answer the proxy logged.
    proxy = s["outcomes"].get("http_502", 0) + s["outcomes"].get("http_5xx", 0)
    assert proxy >= 0.95 * s["failed"], s["outcomes"]
    errors = s["ingress"]["proxy_errors"]
    assert errors and all(any(w in e for w in CLOSED_CONN) for e in errors), errors
    top = s["findings"][0]
    assert top["rule"] == "upstream-keepalive" and top["failures"] >= 0.95 * s["failed"], (top["rule"], s["findings"])
    deleted = {ev["pod"] for ev in run.events() if ev["kind"] == "deletion_requested"}
    assert len(deleted) == 4 and not set(top["evidence"]["by_pod"]) & deleted, (top["evidence"]["by_pod"], deleted)
