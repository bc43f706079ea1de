"""The run's real values in findings and chains: on a cluster the preStop's
end is inferred (the kubelet reports neither it nor the stop signal), and in
target mode the workload facts come from the live Deployment recorded in the
manifest, not from the scenario's defaults."""

from __future__ import annotations

import pytest

from harness.analysis import analyse
from harness.model.events import EventKind, SourceKind
from harness.model.outcome import Outcome
from tests.analysis.builders import RunBuilder, scenario_dict

LIVE = {"container": "web", "termination_grace_period_seconds": 45.0,
        "prestop": {"kind": "exec", "seconds": 10.0, "command": ["sleep", "10"], "text": "exec sleep 10"},
        "stop_signal": None, "readiness_probe": {"kind": "httpGet", "path": "/healthz", "port": 80}}


def _cluster_run(tmp_path, *, app_log: bool, live: dict | None = LIVE):
    """A kubernetes-like run: Killing -> preStop started; the app's log (or
    nothing) says when SIGTERM came; the container exits; 2 refusals on the
    deleted pod after its stop, while still routed."""
    b = RunBuilder(tmp_path / "run", scenario=scenario_dict("t", lifecycle={"preStop": {"sleep": {"seconds": 3}}}))
    b.phases(0, 2, 20, 22)
    b.start_pod("web-a", -1, endpoint_delay=0).start_pod("web-b", -1, endpoint_delay=0)
    b.event(3, "web-a", EventKind.DELETION_REQUESTED, SourceKind.KUBE_WATCH)
    b.event(3.05, "web-a", EventKind.PRESTOP_STARTED, SourceKind.KUBE_WATCH)
    if app_log:
        b.event(13.1, "web-a", EventKind.APP_SHUTDOWN_STARTED, SourceKind.APP_LOG, event="sigterm_received")
    b.event(3.5, "web-a", EventKind.ENDPOINT_REMOVED, SourceKind.KUBE_WATCH)
    b.event(13.3, "web-a", EventKind.APP_EXITED, SourceKind.KUBE_WATCH, exit_code=143)
    b.event(13.4, "web-a", EventKind.POD_DELETED, SourceKind.KUBE_WATCH)
    for i in range(1000):
        b.request(i / 50, route_pod="web-b", pod="web-b")
    if live is not None:
        b.manifest_extra["kubernetes"] = {"mode": "target", "workload": live}
    return analyse(b.write())


def test_the_prestop_end_comes_from_the_apps_shutdown_log(tmp_path):
    a = _cluster_run(tmp_path, app_log=True)
    c = a.chains[0]
    assert c["prestop_s"] == pytest.approx(10.05) and c["prestop_end_inferred_from"] == "the app's shutdown log line"
    assert c["prestop_spec"] == "exec sleep 10" and c["ended"]


def test_without_an_app_log_the_prestop_duration_comes_from_the_live_spec(tmp_path):
    a = _cluster_run(tmp_path, app_log=False)
    c = a.chains[0]
    assert c["prestop_s"] == pytest.approx(10.0) and "spec" in c["prestop_end_inferred_from"]
    spec = a.summary["run_spec"]
    assert spec["source"] == "live Deployment" and spec["grace_s"] == 45.0
    assert spec["prestop"]["text"] == "exec sleep 10" and spec["readiness"] == "httpGet /healthz"


def test_without_the_live_spec_the_scenarios_values_are_used(tmp_path):
    a = _cluster_run(tmp_path, app_log=False, live=None)
    c = a.chains[0]
    assert c["prestop_s"] == pytest.approx(3.0) and a.summary["run_spec"]["source"] == "scenario"


def test_findings_quote_the_live_prestop_and_grace(tmp_path):
    b = RunBuilder(tmp_path / "run", scenario=scenario_dict("t"))
    b.phases(0, 2, 8, 10)
    b.start_pod("web-a", -1, endpoint_delay=0).start_pod("web-b", -1, endpoint_delay=0)
    b.event(3, "web-a", EventKind.DELETION_REQUESTED).event(3, "web-a", EventKind.PRESTOP_STARTED)
    b.event(3.2, "web-a", EventKind.PRESTOP_FINISHED).event(3.2, "web-a", EventKind.SIGTERM_SENT, signal="SIGQUIT")
    b.app(3.201, "web-a", "listener_closed").app(3.3, "web-a", "exiting")
    b.event(3.31, "web-a", EventKind.APP_EXITED, exit_code=0)
    b.event(4.5, "web-a", EventKind.ENDPOINT_REMOVED)
    for i in range(500):
        b.request(i / 50, route_pod="web-b", pod="web-b")
    for k in range(10):
        b.request(3.3 + k * 0.1, Outcome.REFUSED, route_pod="web-a", sent=False)
    b.manifest_extra["kubernetes"] = {"mode": "target", "workload": {
        **LIVE, "prestop": {"kind": "exec", "seconds": 0.2, "command": ["sleep", "0.2"], "text": "exec sleep 0.2"}}}
    a = analyse(b.write())
    f = a.findings[0]
    assert f["rule"] == "prestop-too-short"
    assert "exec sleep 0.2" in f["cause"] and "Make the preStop exec hook (exec sleep 0.2) last >=" in f["fix"]
    assert "(45 s)" in f["fix"]  # the live grace period, not the scenario's default 30 s
