"""Attribution from evidence, case by case: what the response said, what
the connection carried, what the endpoints and the pods' states imply —
and never the ground truth it is measured against."""

from __future__ import annotations

import pandas as pd
import pytest

from harness.analysis import analyse
from harness.analysis.attribution import attribute
from harness.analysis.podlife import pod_lives
from harness.model.events import EventKind
from harness.model.outcome import Outcome
from tests.analysis.builders import RunBuilder, rollout


def _two_pods(tmp_path) -> RunBuilder:
    """api-a1 is deleted at 2 s and stops at once; the traffic path drops it
    at 3 s. api-a2 serves throughout; api-b1 is starting from 2.5 s."""
    b = RunBuilder(tmp_path / "run")
    b.phases(0, 1, 4, 5)
    b.start_pod("api-a1", -1, endpoint_delay=0).start_pod("api-a2", -1, endpoint_delay=0)
    b.event(2, "api-a1", EventKind.DELETION_REQUESTED).event(2, "api-a1", EventKind.SIGTERM_SENT)
    b.app(2.001, "api-a1", "listener_closed").app(2.01, "api-a1", "exiting")
    b.event(3, "api-a1", EventKind.ENDPOINT_REMOVED)
    b.event(2.5, "api-b1", EventKind.CONTAINER_STARTED).event(2.5, "api-b1", EventKind.READY)
    b.event(2.5, "api-b1", EventKind.ENDPOINT_ADDED).app(3.5, "api-b1", "ready")
    for i in range(250):
        b.request(i / 50, route_pod="api-a2")
    return b


def _failures(b: RunBuilder) -> pd.DataFrame:
    return analyse(b.write()).attributed


def test_answered_failure_keeps_its_pod(tmp_path):
    b = _two_pods(tmp_path)
    b.request(1.5, Outcome.HTTP_503, pod="api-a2", route_pod="api-a2", status=503)
    att = _failures(b)
    row = att.iloc[0]
    assert (row["pod"], row["how"], row["phase"]) == ("api-a2", "answered", "ready")


def test_keep_alive_connection_carries_its_pod(tmp_path):
    b = _two_pods(tmp_path)
    conn = b.new_conn()
    b.request(1.0, route_pod="api-a1", conn_id=conn)
    b.request(1.9, route_pod="api-a1", conn_id=conn, reused=True)
    b.request(2.0005, Outcome.CLOSED, route_pod="api-a1", conn_id=conn, reused=True)
    row = _failures(b).iloc[0]
    assert (row["pod"], row["how"], row["phase"]) == ("api-a1", "connection", "terminating")


def test_refused_new_connection_goes_to_the_visible_pod_that_stopped_listening(tmp_path):
    b = _two_pods(tmp_path)
    b.request(2.2, Outcome.REFUSED, route_pod="api-a1", sent=False)
    row = _failures(b).iloc[0]
    # a1 and a2 (and b1 later) are visible; only a1 had closed its listener
    assert (row["pod"], row["how"], row["phase"], row["ambiguous"]) == ("api-a1", "endpoints", "terminating", False)


def test_refused_on_a_pod_in_the_endpoints_before_it_listens(tmp_path):
    b = _two_pods(tmp_path)
    b.event(2.5, "api-b1", EventKind.APP_LOG, "app-log", event="listening")  # listens at once...
    b.request(3.2, Outcome.REFUSED, route_pod="api-b1", sent=False)          # ...but is not warm until 3.5
    row = _failures(b).iloc[0]
    assert row["pod"] == "api-b1" and row["phase"] == "starting"


def test_cut_in_flight_goes_to_the_pod_that_exited_meanwhile(tmp_path):
    b = _two_pods(tmp_path)
    b.request(1.8, Outcome.RESET, route_pod="api-a1", latency_ms=212)  # sent 1.8, cut at 2.012
    row = _failures(b).iloc[0]
    assert row["pod"] == "api-a1" and row["how"] == "endpoints"


def test_no_pod_in_the_endpoints(tmp_path):
    b = RunBuilder(tmp_path / "run")
    b.phases(0, 1, 2, 3)
    b.request(1.5, Outcome.REFUSED, sent=False)
    att = analyse(b.write()).attributed
    assert att.iloc[0]["pod"] is None and att.iloc[0]["phase"] == "no-endpoint"


def test_ground_truth_is_never_an_input(tmp_path):
    b = _two_pods(tmp_path)
    b.request(2.2, Outcome.REFUSED, route_pod="api-a1", sent=False)
    b.request(2.4, Outcome.REFUSED, route_pod="api-a1", sent=False)
    d = b.write()
    a = analyse(d)
    req = a.run.requests
    mask = req.index.isin(a.attributed.index)
    scrambled = req.assign(route_pod="somewhere-else")
    again = attribute(scrambled, pod_lives(a.run.events), mask)
    assert list(again["pod"]) == list(a.attributed["pod"])
    assert a.summary["attribution"]["accuracy"]["accuracy"] == 1.0


@pytest.mark.parametrize("mistake", ["no-prestop", "short-grace"])
def test_accuracy_is_reported_by_evidence(tmp_path, mistake):
    acc = analyse(rollout(tmp_path / mistake, mistake)).summary["attribution"]["accuracy"]
    assert acc["failures_with_ground_truth"] == sum(v["failures"] for v in acc["by_evidence"].values())
    assert acc["correct"] == acc["failures_with_ground_truth"]


def test_connect_timeout_goes_to_the_pod_whose_process_is_gone(tmp_path):
    # a cluster drops SYNs to a pod whose network is gone: a timeout, not a refusal
    b = _two_pods(tmp_path)
    b.request(2.3, Outcome.CONNECT_TIMEOUT, route_pod="api-a1", latency_ms=1000)
    row = _failures(b).iloc[0]
    assert (row["pod"], row["how"], row["phase"]) == ("api-a1", "endpoints", "terminating")


def test_two_pods_in_the_same_state_are_ambiguous_not_a_guess(tmp_path):
    # both pods stopped listening at nearly the same moment: the evidence cannot separate them
    b = _two_pods(tmp_path)
    b.event(2, "api-a2", EventKind.DELETION_REQUESTED).event(2, "api-a2", EventKind.SIGTERM_SENT)
    b.app(2.001, "api-a2", "listener_closed").app(2.01, "api-a2", "exiting")
    b.event(3, "api-a2", EventKind.ENDPOINT_REMOVED)
    b.request(2.2, Outcome.REFUSED, route_pod="api-a2", sent=False)
    row = _failures(b).iloc[0]
    assert row["pod"] is None and row["how"] == "ambiguous" and row["ambiguous"]
    assert set(row["candidates"].split(" | ")) == {"api-a1", "api-a2"}
    # both candidates were terminating: the phase still holds
    assert row["phase"] == "terminating"


def test_an_exited_pod_and_one_just_signalled_are_ambiguous(tmp_path):
    # api-a1 had exited; api-a2, an app that logs nothing, had just got its stop signal.
    # uvicorn closes its listener at its next loop tick (~0.1 s): real runs saw refusals
    # in that first 0.1 s go to the exited pod in one run and to the signalled one in
    # another. The evidence cannot separate them: ambiguous, both named.
    b = _two_pods(tmp_path)
    b.event(2.3, "api-a2", EventKind.DELETION_REQUESTED).event(2.3, "api-a2", EventKind.SIGTERM_SENT)
    b.event(2.7, "api-a2", EventKind.APP_EXITED, exit_code=143)
    b.request(2.35, Outcome.REFUSED, route_pod="api-a1", sent=False)
    row = _failures(b).iloc[0]
    assert (row["pod"], row["how"], row["ambiguous"]) == (None, "ambiguous", True)
    assert set(row["candidates"].split(" | ")) == {"api-a1", "api-a2"}


@pytest.mark.parametrize("uncertainty_ms,expected", [(0, None), (40, "api-a1")], ids=["own-clock", "generators-40ms"])
def test_generators_clock_uncertainty_widens_the_tolerance(tmp_path, uncertainty_ms, expected):
    """A refusal stamped 80 ms before api-a1 closed its listener: with the
    harness's own clock (50 ms tolerance) the two are not simultaneous; with
    generator clocks known to +-40 ms (manifest generators.clock_uncertainty_ns)
    they may be, and api-a1's refusal is the evidence."""
    b = _two_pods(tmp_path)
    b.manifest_extra["generators"] = {"clock_uncertainty_ns": uncertainty_ms * 1_000_000}
    b.request(1.921, Outcome.REFUSED, route_pod="api-a1", sent=False)
    row = _failures(b).iloc[0]
    got = row["pod"] if row["how"] == "endpoints" and not row["ambiguous"] else None
    assert got == expected, row.to_dict()
