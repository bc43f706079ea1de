"""Small hand-made run dirs at the edges: empty, all failed, crashed with a
torn last batch, no manifest. Analysis never crashes and the verdict is
the sensible one."""

from __future__ import annotations

import json

import pytest

from harness.analysis import analyse
from harness.errors import EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_PASS, BadInput
from harness.model.outcome import Outcome
from harness.model.requests import request_files
from tests.analysis.builders import RunBuilder, rollout


def _steady(b: RunBuilder, outcome: Outcome = Outcome.OK, *, until: float = 6.0, pod: str = "api-a1") -> None:
    b.phases(0, 2, 4, until)
    b.start_pod(pod, -1, endpoint_delay=0)
    for i in range(int(until * 50)):
        b.request(i / 50, outcome, route_pod=pod, pod=pod if outcome is Outcome.OK else None)


def test_empty_run_is_inconclusive(tmp_path):
    b = RunBuilder(tmp_path / "run")
    b.phases(0, 2, 4, 6)
    a = analyse(b.write())
    v = a.summary["verdict"]
    assert v["status"] == "inconclusive" and v["exit_code"] == EXIT_INCONCLUSIVE
    assert any("no requests" in r for r in v["reasons"])
    assert a.summary["total"] == 0 and a.findings == []


def test_run_dir_with_nothing_but_a_manifest(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    (d / "manifest.json").write_text(json.dumps({"status": "crashed"}))
    s = analyse(d).summary
    assert s["verdict"]["exit_code"] == EXIT_INCONCLUSIVE
    assert any("default gate" in n for n in s["notes"])


def test_all_requests_failed_is_inconclusive_because_the_baseline_failed(tmp_path):
    b = RunBuilder(tmp_path / "run")
    _steady(b, Outcome.REFUSED)
    s = analyse(b.write()).summary
    assert s["service_failed"] == s["total"] == 300
    assert s["verdict"]["status"] == "inconclusive"
    assert any("already failing before the disruption" in r for r in s["verdict"]["reasons"])
    # never hidden: the failures are still listed, and none is pinned on the wrong thing
    assert s["findings"][-1]["rule"] == "unexplained"
    assert s["findings"][-1]["failures"] == 300


def test_failures_only_in_the_rollout_fail_the_gate(tmp_path):
    b = RunBuilder(tmp_path / "run")
    _steady(b)
    for k in range(5):
        b.request(2.5 + k * 0.01, Outcome.RESET, route_pod="api-a1")
    s = analyse(b.write()).summary
    assert s["verdict"]["status"] == "fail" and s["verdict"]["exit_code"] == EXIT_FAIL
    assert s["gate"]["values"]["failed_requests"] == 5
    assert s["disruption_seconds"] == pytest.approx(0.1)


def test_clean_run_passes(tmp_path):
    b = RunBuilder(tmp_path / "run")
    _steady(b)
    s = analyse(b.write()).summary
    assert s["verdict"]["exit_code"] == EXIT_PASS
    assert s["availability"] == 1.0 and s["findings"] == []


def test_crashed_run_with_a_truncated_last_batch(tmp_path):
    b = RunBuilder(tmp_path / "run", status="crashed", rollout_completed=False)
    _steady(b)
    d = b.write()
    f = request_files(d)[0]
    data = f.read_bytes()
    f.write_bytes(data[: len(data) - 100])  # the process died mid-write
    s = analyse(d).summary
    assert s["records_complete"] is False
    assert s["verdict"]["status"] == "inconclusive"
    assert any("did not complete" in r for r in s["verdict"]["reasons"])
    assert any("torn" in n for n in s["notes"])


def test_interrupted_run_is_never_a_pass(tmp_path):
    b = RunBuilder(tmp_path / "run", status="interrupted")
    _steady(b)
    assert analyse(b.write()).summary["verdict"]["exit_code"] == EXIT_INCONCLUSIVE


def test_rollout_that_did_not_complete_is_inconclusive(tmp_path):
    b = RunBuilder(tmp_path / "run", rollout_completed=False)
    _steady(b)
    v = analyse(b.write()).summary["verdict"]
    assert v["exit_code"] == EXIT_INCONCLUSIVE and "rollout did not complete" in v["reasons"][0]


def test_engine_that_fell_behind_is_inconclusive(tmp_path):
    b = RunBuilder(tmp_path / "run")
    _steady(b)
    for i in range(10):
        b.request(3 + i * 0.001, Outcome.DROPPED, sent=False)
    v = analyse(b.write()).summary["verdict"]
    assert v["status"] == "inconclusive"
    assert "fell behind" in v["reasons"][0] and "dropped_ratio" in v["reasons"][0]


def test_no_phase_events_judges_the_whole_run(tmp_path):
    b = RunBuilder(tmp_path / "run")
    b.start_pod("api-a1", -1, endpoint_delay=0)
    for i in range(50):
        b.request(i / 50, route_pod="api-a1")
    s = analyse(b.write()).summary
    assert s["rollout_window"]["total"] == 50
    assert any("no run phases" in n for n in s["notes"])


def test_missing_manifest_is_bad_input(tmp_path):
    d = rollout(tmp_path / "run", "best-practice")
    (d / "manifest.json").unlink()
    with pytest.raises(BadInput, match="manifest.json"):
        analyse(d)


@pytest.mark.parametrize("content", ["{not json", "[1, 2]"], ids=["torn-json", "not-an-object"])
def test_unreadable_manifest_is_bad_input(tmp_path, content):
    d = tmp_path / "run"
    d.mkdir()
    (d / "manifest.json").write_text(content)
    with pytest.raises(BadInput, match="manifest"):
        analyse(d)


def test_invalid_scenario_in_manifest_is_bad_input(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    (d / "manifest.json").write_text(json.dumps({"scenario": {"name": "x", "deployment": {"replicas": -1}}}))
    with pytest.raises(BadInput, match="deployment.replicas"):
        analyse(d)


def test_not_a_directory_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="not a directory"):
        analyse(tmp_path / "nope")
