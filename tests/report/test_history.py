"""The history store: one row per rollout, keyed by configuration; the
P99-with-a-floor baseline; the trend chart."""

import pytest

from harness.report import history as h


def sc(name="best-practice", rate=500):
    return {"name": name, "description": "d", "traffic": {"rate": rate}, "gate": {"maxFailedRequests": 0}}


def rows(*failed, status=None):
    return [{"run_dir": f"/r/{i}-{f}", "status": status or ("fail" if f else "pass"), "failed_requests": f,
             "window_requests": 5000, "disruption_seconds": 0.5 if f else 0.0} for i, f in enumerate(failed)]


def test_rows_are_keyed_by_scenario_platform_and_parameters(tmp_path):
    db = tmp_path / "h.sqlite"
    assert h.record(db, sc(), "local", rows(0, 0, 2), series_id="s1") == 3
    h.record(db, sc(rate=800), "local", rows(9))
    h.record(db, sc(), "kubernetes", rows(7))
    # a new description is the same configuration; a new rate is not
    got = h.history(db, h.key_of(dict(sc(), description="other"), "local"))
    assert [r["failed_requests"] for r in got] == [0, 0, 2]
    assert [r["failed_requests"] for r in h.history(db, h.key_of(sc(rate=800), "local"))] == [9]
    assert [r["failed_requests"] for r in h.history(db, h.key_of(sc(), "kubernetes"))] == [7]


def test_blind_rollouts_and_the_judged_run_stay_out_of_the_baseline(tmp_path):
    db = tmp_path / "h.sqlite"
    h.record(db, sc(), "local", rows(0, 1) + rows(50, status="inconclusive"))
    key = h.key_of(sc(), "local")
    assert [r["failed_requests"] for r in h.history(db, key)] == [0, 1]
    assert len(h.history(db, key, conclusive_only=False)) == 3
    assert [r["failed_requests"] for r in h.history(db, key, exclude_run_dirs={"/r/1-1"})] == [0]


def test_p99_with_a_floor():
    assert h.p99([]) is None
    assert h.p99(list(range(1, 101))) == 99
    assert h.p99([0] * 99 + [40]) == 0
    assert h.p99([0] * 98 + [40, 40]) == 40
    assert h.p99_limit([0, 0, 0], floor=2) == 2
    assert h.p99_limit([5, 6, 9], floor=2) == 9


def test_judge_against_history():
    past = rows(0, 0, 1, 0, 2)
    assert h.judge(rows(2), past, floor=0, min_history=5)["status"] == "pass"
    v = h.judge(rows(0, 3), past, floor=0, min_history=5)
    assert v["status"] == "fail" and v["exit_code"] == 1 and v["limit"] == 2
    assert h.judge(rows(3), past, floor=3, min_history=5)["status"] == "pass"
    v = h.judge(rows(0), past[:2], floor=0, min_history=5)
    assert v["status"] == "inconclusive" and v["exit_code"] == 3
    assert h.judge(rows(0, status="inconclusive"), past, floor=0, min_history=5)["status"] == "inconclusive"


def test_trend_chart_is_a_png(tmp_path):
    png = h.trend_chart(rows(0, 3, 0, 1), tmp_path / "t.png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert h.trend_chart([], tmp_path / "none.png") is None
