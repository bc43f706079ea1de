"""The rules on tables recorded from real runs of servers not written here
(tests/analysis/recorded/, see recorded.py): what each server did is known
from its documented shutdown, and the ground truth (route_pod) is in the
rows. No server runs here.

- uvicorn-no-prestop: uvicorn (minimal ASGI app), no preStop, httpGet
  readiness. uvicorn closes its listener on SIGTERM, so new connections the
  traffic path still routes to the deleted pod are refused: no-prestop.
  No readiness finding: the refused connections went to stopping pods, and
  the new pods were Ready (their httpGet probe passed) and listening.
- node-close-race / node-sigquit-race: Node's http server, server.close()
  on the stop signal (SIGTERM / SIGQUIT), preStop sleep 2 s. server.close()
  stops the listener and closes idle keep-alive connections (Node >= 19):
  requests written on those connections as they close get no response byte.
  That is the keep-alive close race (not an in-flight cut, not a SIGKILL),
  every one of them retryable by a standard client; the signal named is
  the scenario's.
- sample-abrupt-keepalive: the sample app with KEEPALIVE_CLOSE=abrupt
  resets every open connection when it closes its listener, busy or not
  (its log: 17 requests in flight at those moments, 19 failed). It answers
  nothing on them after: keepalive-cut, not the race, whatever the timing.
- sample-no-graceful-shutdown: the sample app exits at once on SIGTERM
  (code 143): no-graceful-shutdown naming SIGTERM.
- uvicorn-no-prestop-2: a second uvicorn run, where the refusals just after a
  pod's SIGTERM went to the signalled pod (in the first run, to the one
  that had exited): such failures are ambiguous, not guessed.
- uvicorn-no-prestop-3: refusals 50 ms before a signalled pod's recorded
  exit, while a pod that had exited was visible only within the tolerance
  of its endpoint removal: the signalled pod's (it had been pinned on the
  other, 97.3% accuracy, before the fix).
"""

from __future__ import annotations

import pytest

from harness.analysis import analyse
from tests.analysis.recorded import load


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    root = tmp_path_factory.mktemp("recorded")
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = analyse(load(name, root))
        return cache[name]
    return get


def _rules(a):
    return [f["rule"] for f in a.findings]


ALL = ["uvicorn-no-prestop", "uvicorn-no-prestop-2", "uvicorn-no-prestop-3", "node-close-race", "node-sigquit-race",
       "sample-abrupt-keepalive", "sample-no-graceful-shutdown"]


@pytest.mark.parametrize("name", ALL)
def test_attribution_holds_against_the_ground_truth(recorded, name):
    s = recorded(name).summary
    acc = s["attribution"]["accuracy"]
    assert acc["accuracy"] >= 0.99, acc
    assert acc["ambiguous_real_pod_in_candidates"] == acc["ambiguous"]
    assert s["ground_truth"]["findings_contradicted"] == 0, s["ground_truth"]
    assert s["unexplained"] == 0


def test_uvicorn_without_prestop_is_no_prestop_and_no_readiness_finding(recorded):
    a = recorded("uvicorn-no-prestop")
    assert _rules(a) == ["no-prestop"]
    f = a.findings[0]
    assert f["failures"] == a.summary["service_failed"] and "SIGTERM" in f["cause"]
    assert f["evidence"]["ambiguous_between_stopping_pods"] > 0  # said, not guessed
    # refused connections: no client retries them
    assert a.summary["client_view"]["retried_transparently"] == 0


@pytest.mark.parametrize("name,signal", [("node-close-race", "SIGTERM"), ("node-sigquit-race", "SIGQUIT")])
def test_idle_close_at_shutdown_is_the_keepalive_race(recorded, name, signal):
    a = recorded(name)
    assert _rules(a) == ["keepalive-close-race"], [(f["rule"], f["cause"]) for f in a.findings]
    f = a.findings[0]
    assert f"on {signal}" in f["cause"] and "Connection: close" in f["fix"] and "retry" in f["fix"]
    assert "SIGTERM" not in f["cause"] or signal == "SIGTERM"
    assert f["evidence"]["during_termination"] == f["failures"]
    view = a.summary["client_view"]
    assert view["retried_transparently"] == view["failed"] > 0 and view["visible"] == 0
    assert view["sentence"] == f"{view['failed']} failed; {view['failed']} of them would be retried transparently " \
                               "by such clients; 0 visible to any client"


def test_every_chain_reaches_exit_with_the_real_prestop(recorded):
    for name in ("node-close-race", "node-sigquit-race"):
        for c in recorded(name).chains:
            assert c["ended"] and c["steps"][-1]["step"] in ("exited", "endpoint_removed"), c
            assert c["prestop_s"] == pytest.approx(2.0, abs=0.2) and c["prestop_spec"] == "sleep 2 s"


def test_the_gate_is_strict_unless_told_to_count_client_visible_failures(tmp_path):
    import json

    strict = analyse(load("node-close-race", tmp_path / "strict")).summary
    assert strict["gate"]["count_failures"] == "all"
    assert strict["verdict"]["status"] == "fail" and strict["gate"]["values"]["failed_requests"] > 0

    run_dir = load("node-close-race", tmp_path / "lenient")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["scenario"]["gate"]["countFailures"] = "clientVisible"
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    lenient = analyse(run_dir).summary
    # every failure here is retried by a standard client: none is visible, the gate holds
    assert lenient["gate"]["values"]["failed_requests"] == 0 == lenient["client_view"]["visible"]
    assert lenient["verdict"]["status"] in ("pass", "inconclusive")
    assert not any(r["name"] == "maxFailedRequests" and r["status"] == "fail" for r in lenient["gate"]["thresholds"])

    refused = analyse(load("uvicorn-no-prestop", tmp_path / "refused"))
    # refused connections are visible to every client, whatever the gate counts
    assert refused.summary["client_view"]["visible"] == refused.summary["client_view"]["failed"] > 0


def test_a_bad_count_failures_value_is_bad_input(tmp_path):
    from harness.errors import ScenarioError
    from harness.model.scenario import scenario_from_dict

    with pytest.raises(ScenarioError, match="countFailures"):
        scenario_from_dict({"name": "x", "gate": {"countFailures": "some"}}, source="x.yaml")


def test_a_server_that_resets_busy_connections_is_keepalive_cut_not_the_race(recorded):
    a = recorded("sample-abrupt-keepalive")
    assert _rules(a) == ["keepalive-cut"], [(f["rule"], f["cause"]) for f in a.findings]
    assert "in flight" in a.findings[0]["cause"]


def test_an_abrupt_exit_names_the_real_signal(recorded):
    a = recorded("sample-no-graceful-shutdown")
    assert _rules(a)[0] == "no-graceful-shutdown"
    assert "exited on SIGTERM" in a.findings[0]["title"]


def test_refusals_between_an_exited_and_a_signalled_pod_are_ambiguous(recorded):
    for name in ("uvicorn-no-prestop", "uvicorn-no-prestop-2", "uvicorn-no-prestop-3"):
        acc = recorded(name).summary["attribution"]["accuracy"]
        assert acc["ambiguous"] > 0 and acc["ambiguous_real_pod_in_candidates"] == acc["ambiguous"]
        assert acc["accuracy"] == 1.0
