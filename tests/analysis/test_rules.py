"""One table row per shipped mistake: a synthetic rollout that models it
must yield a top finding naming it, with a fix carrying this run's numbers;
best-practice must yield none."""

from __future__ import annotations

import pytest

from harness.analysis import analyse
from harness.model.events import EventKind
from harness.model.outcome import Outcome
from tests.analysis.builders import RunBuilder, rollout, scenario_dict

CASES = [
    # mistake, expected top rule, words the fix must contain
    ("no-prestop", "no-prestop", ["preStop sleep >= 1.5 s", "still routed to api-a1 1.00 s after its deletion"]),
    ("no-graceful-shutdown", "no-graceful-shutdown", ["SIGTERM", "in flight"]),
    ("short-grace", "short-grace", ["terminationGracePeriodSeconds >= 7 s"]),
    ("no-readiness-probe", "no-readiness-probe", ["readinessProbe", "1.85 s"]),
    ("capacity-dip", "capacity-dip", ["maxSurge: 1", "maxUnavailable: 0"]),
    ("keepalive-cut", "keepalive-cut", ["Connection: close"]),
]


@pytest.mark.parametrize("mistake,rule,fix_words", CASES, ids=[c[0] for c in CASES])
def test_each_mistake_is_the_top_finding(tmp_path, mistake, rule, fix_words):
    a = analyse(rollout(tmp_path / mistake, mistake))
    top = a.findings[0]
    assert top["rule"] == rule, [f["rule"] for f in a.findings]
    others = {f["rule"]: f["failures"] for f in a.findings[1:]}
    # every failure explained: by this rule, or (requests written on a reused connection as the
    # server closed it, no response byte) by the keep-alive close race
    assert others == ({"keepalive-close-race": 2} if mistake == "no-prestop" else {}), others
    assert top["failures"] + sum(others.values()) == a.summary["service_failed"]
    assert a.summary["unexplained"] == 0
    for w in fix_words:
        assert w in top["fix"] or w in top["cause"], (w, top["fix"])
    ev = top["evidence"]
    assert ev["failures"] > 0 and ev["by_outcome"] and ev["by_pod"] and ev["first_s"] is not None
    assert a.summary["verdict"]["status"] == "fail"
    assert a.summary["attribution"]["accuracy"]["accuracy"] == 1.0


def test_best_practice_yields_no_finding(tmp_path):
    a = analyse(rollout(tmp_path / "bp", "best-practice"))
    assert a.findings == []
    assert a.summary["verdict"]["status"] == "pass"
    chains = {c["pod"]: c for c in a.chains}
    assert set(chains) == {"api-a1", "api-a2"}
    c = chains["api-a1"]
    steps = [s["step"] for s in c["steps"]]
    assert steps.index("endpoint_removed") < steps.index("stop_signal") < steps.index("exited")
    assert c["endpoint_lag_s"] == pytest.approx(1.0) and c["killed"] is False
    removed = next(s for s in c["steps"] if s["step"] == "endpoint_removed")
    assert removed["new_connections_after"] == 0  # nothing routed to it after removal


def test_prestop_shorter_than_the_endpoint_lag(tmp_path):
    b = RunBuilder(tmp_path / "run", scenario=scenario_dict("short-prestop", lifecycle={"preStop": {"sleep": {"seconds": 0.5}}}))
    b.phases(0, 2, 6, 8)
    b.start_pod("api-a1", -1, endpoint_delay=0).start_pod("api-a2", -1, endpoint_delay=0)
    b.event(3, "api-a1", EventKind.DELETION_REQUESTED).event(3, "api-a1", EventKind.PRESTOP_STARTED)
    b.event(3.5, "api-a1", EventKind.PRESTOP_FINISHED).event(3.5, "api-a1", EventKind.SIGTERM_SENT)
    b.app(3.501, "api-a1", "listener_closed").app(3.52, "api-a1", "exiting")
    b.event(4.3, "api-a1", EventKind.ENDPOINT_REMOVED)
    for i in range(400):
        t = i / 50
        b.request(t, route_pod="api-a2" if i % 2 or t >= 4.3 else "api-a1")
    for k in range(5):
        b.request(3.6 + k * 0.1, Outcome.REFUSED, route_pod="api-a1", sent=False)
    a = analyse(b.write())
    top = a.findings[0]
    assert top["rule"] == "prestop-too-short"
    assert "from 0.5 s to >= 2 s" in top["fix"]  # lag 1.3 s + 0.5 s margin, rounded up to a half second


def test_premature_readiness_when_a_probe_exists(tmp_path):
    sc = scenario_dict("premature", readinessProbe={"tcpSocket": {}, "periodSeconds": 1})
    b = RunBuilder(tmp_path / "run", scenario=sc)
    b.phases(0, 1, 5, 6)
    b.start_pod("api-a1", -1, endpoint_delay=0)
    b.start_pod("api-b1", 2, ready_after=0.1, endpoint_delay=0.2, app_ready_after=1.5)
    for i in range(300):
        t = i / 50
        b.request(t, route_pod="api-a1" if (i % 2 or t < 2.3) else "api-b1")
    for k in range(4):
        b.request(2.4 + k * 0.2, Outcome.HTTP_503, pod="api-b1", route_pod="api-b1", latency_ms=1)
    a = analyse(b.write())
    assert a.findings[0]["rule"] == "premature-readiness"
    assert "tcpSocket" in a.findings[0]["fix"]


def test_failures_no_rule_explains_are_listed_not_hidden(tmp_path):
    b = RunBuilder(tmp_path / "run")
    b.phases(0, 2, 4, 6)
    b.start_pod("api-a1", -1, endpoint_delay=0)
    for i in range(300):
        b.request(i / 50, route_pod="api-a1")
    for k in range(3):  # a ready pod answering 500 mid-rollout: no lifecycle step explains it
        b.request(3 + k * 0.1, Outcome.HTTP_5XX, pod="api-a1", route_pod="api-a1", status=500)
    a = analyse(b.write())
    assert [f["rule"] for f in a.findings] == ["unexplained"]
    assert a.findings[0]["failures"] == 3 and a.summary["unexplained"] == 3
    assert a.findings[0]["evidence"]["by_phase"] == {"ready": 3}


def test_capacity_dip_without_failures_is_reported_as_low_severity(tmp_path):
    d = rollout(tmp_path / "dip", "capacity-dip")
    # drop the failures: the dip is still visible in the endpoints, but harmed nobody
    b = RunBuilder(tmp_path / "quiet", scenario=scenario_dict("dip", strategy={"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}))
    b.phases(0, 2, 8, 10)
    b.start_pod("api-a1", -1, endpoint_delay=0).start_pod("api-a2", -1, endpoint_delay=0)
    b.event(3, "api-a1", EventKind.DELETION_REQUESTED).event(3.5, "api-a1", EventKind.ENDPOINT_REMOVED)
    b.event(3.6, "api-a1", EventKind.SIGTERM_SENT).event(3.7, "api-a1", EventKind.APP_EXITED, exit_code=0)
    b.start_pod("api-b1", 5, endpoint_delay=0.5)
    for i in range(500):
        t = i / 50
        b.request(t, route_pod="api-a2")
    a = analyse(b.write())
    assert [f["rule"] for f in a.findings] == ["capacity-dip"]
    assert a.findings[0]["severity"] == "low" and a.findings[0]["failures"] == 0
    assert a.summary["verdict"]["status"] == "pass"  # the gate judges failures, not risk
    assert analyse(d).findings[0]["severity"] == "high"


def test_capacity_dip_is_not_blamed_on_a_strategy_that_allows_none(tmp_path):
    # maxSurge 1 / maxUnavailable 0: pods lost some other way are not a capacity-dip finding
    b = RunBuilder(tmp_path / "run", scenario=scenario_dict("lost"))
    b.phases(0, 2, 8, 10)
    b.start_pod("api-a1", -1, endpoint_delay=0).start_pod("api-a2", -1, endpoint_delay=0)
    b.event(3, "api-a1", EventKind.NOT_READY).event(3.5, "api-a1", EventKind.ENDPOINT_REMOVED)
    for i in range(500):
        b.request(i / 50, route_pod="api-a2")
    b.request(4, Outcome.HTTP_503, pod="api-a2", route_pod="api-a2")
    a = analyse(b.write())
    assert [f["rule"] for f in a.findings] == ["unexplained"]


def _cluster_run_of_two_pods(tmp_path) -> RunBuilder:
    """A kubernetes-platform run without a preStop: two ready pods in the
    endpoints, as the watches saw them."""
    b = RunBuilder(tmp_path / "run", scenario=scenario_dict("k8s-no-prestop"))
    b.phases(0, 2, 6, 8)
    for pod in ("api-a1", "api-a2"):
        b.event(-1, pod, EventKind.READY, "kube-watch").event(-1, pod, EventKind.ENDPOINT_ADDED, "kube-watch")
    return b


def test_cluster_events_allow_for_kube_proxy_lag(tmp_path):
    # kubernetes platform: endpoints come from a watch, kube-proxy applies them later,
    # and there is no ground truth; a refusal 0.5 s after the watched removal is still
    # the terminating pod's, and still the missing preStop's doing
    b = _cluster_run_of_two_pods(tmp_path)
    b.event(3, "api-a1", EventKind.DELETION_REQUESTED, "kube-watch")
    b.event(3.4, "api-a1", EventKind.ENDPOINT_REMOVED, "kube-watch")
    b.app(3.01, "api-a1", "sigterm_received").app(3.02, "api-a1", "listener_closed").app(3.05, "api-a1", "exiting")
    for i in range(400):
        b.request(i / 50, pod="api-a2")
    for t in (3.1, 3.3, 3.9):
        b.request(t, Outcome.REFUSED, sent=False)
    a = analyse(b.write())
    assert list(a.attributed["pod"]) == ["api-a1"] * 3
    assert [f["rule"] for f in a.findings] == ["no-prestop"]
    assert a.summary["attribution"]["accuracy"] is None


def test_no_prestop_when_the_watch_sees_the_removal_before_the_app_stops(tmp_path):
    # A cluster run (make e2e, 2026-11-26): without a preStop the EndpointSlice
    # update reached the watch 20-50 ms BEFORE the app logged its SIGTERM, but
    # kube-proxy applies it up to ~1 s later, so new connections were still
    # refused by the stopped pod. That is still the missing preStop's doing, not
    # "unexplained": the traffic path's removal is the watched one plus the
    # proxy's lag, on the precondition as in the window.
    b = _cluster_run_of_two_pods(tmp_path)
    b.event(3, "api-a1", EventKind.DELETION_REQUESTED, "kube-watch")
    b.event(3.02, "api-a1", EventKind.ENDPOINT_REMOVED, "kube-watch")
    b.app(3.05, "api-a1", "sigterm_received").app(3.06, "api-a1", "listener_closed").app(3.3, "api-a1", "exiting")
    for i in range(400):
        b.request(i / 50, pod="api-a2")
    for t in (3.1, 3.4, 3.8):
        b.request(t, Outcome.REFUSED, sent=False)
    a = analyse(b.write())
    assert list(a.attributed["pod"]) == ["api-a1"] * 3
    assert [f["rule"] for f in a.findings] == ["no-prestop"]
    assert "preStop sleep >=" in a.findings[0]["fix"]


def test_a_deleted_pod_never_seen_to_end_makes_the_run_inconclusive(tmp_path):
    b = RunBuilder(tmp_path / "run")
    b.phases(0, 2, 8, 10)
    b.start_pod("api-a1", -1, endpoint_delay=0).start_pod("api-a2", -1, endpoint_delay=0)
    b.event(3, "api-a1", EventKind.DELETION_REQUESTED).event(3, "api-a1", EventKind.PRESTOP_STARTED)
    b.event(4, "api-a1", EventKind.ENDPOINT_REMOVED)
    for i in range(500):
        b.request(i / 50, route_pod="api-a2")
    v = analyse(b.write()).summary["verdict"]
    assert v["status"] == "inconclusive"
    assert "api-a1" in v["headline"] and "stops at 'removed from endpoints'" in v["headline"], v
