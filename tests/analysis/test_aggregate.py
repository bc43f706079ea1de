"""Many rollouts, one verdict: pass / fail / flaky / inconclusive, and the figures."""

import pytest

from harness.analysis import aggregate as agg
from harness.errors import EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_PASS


def rollout(status="pass", failed=0, requests=5000):
    return {"status": status, "failed_requests": failed, "window_requests": requests, "run_dir": None,
            "headline": status.upper()}


def test_ten_clean_rollouts_pass_with_the_bounds():
    a = agg.aggregate([rollout() for _ in range(10)])
    assert a["verdict"]["status"] == "pass" and a["verdict"]["exit_code"] == EXIT_PASS
    assert a["rollout_failure"]["k"] == 0 and a["rollout_failure"]["n"] == 10
    assert a["rollout_failure"]["interval"] == [0.0, pytest.approx(0.3085, abs=1e-4)]
    assert a["rollout_failure"]["upper"] == pytest.approx(0.2589, abs=1e-4)
    # 0 failures in 50,000 requests: at most ~3/50,000 per request
    assert a["requests"]["upper"] == pytest.approx(3 / 50000, rel=0.01)
    assert a["requests"]["detection_limit_per_rollout"] == pytest.approx(0.693 / 5000, rel=0.01)
    assert a["requests"]["detection_limit_series"] == pytest.approx(0.693 / 50000, rel=0.01)


def test_some_failed_rollouts_are_flaky_and_fail_the_gate():
    rs = [rollout("fail", 3)] * 2 + [rollout()] * 8
    a = agg.aggregate(rs)
    assert a["verdict"]["status"] == "flaky" and a["verdict"]["exit_code"] == EXIT_FAIL
    assert a["failed_rollouts"] == 2
    assert a["failed_requests"] == {"mean": 0.6, "max": 3, "total": 6, "per_rollout": [3, 3] + [0] * 8}
    assert a["rollout_failure"]["interval"][0] == pytest.approx(0.0252, abs=1e-4)
    assert a["rollout_failure"]["interval"][1] == pytest.approx(0.5561, abs=1e-4)


def test_every_rollout_failing_is_fail():
    a = agg.aggregate([rollout("fail", 7) for _ in range(10)])
    assert a["verdict"]["status"] == "fail"
    assert a["rollout_failure"]["interval"][0] == pytest.approx(0.6915, abs=1e-4)


def test_a_blind_rollout_is_not_counted_and_keeps_a_clean_series_from_passing():
    rs = [rollout()] * 4 + [rollout("inconclusive")]
    a = agg.aggregate(rs)
    assert a["verdict"]["status"] == "inconclusive" and a["verdict"]["exit_code"] == EXIT_INCONCLUSIVE
    assert a["rollouts_conclusive"] == 4 and a["inconclusive_rollouts"] == [5]
    # but a failure seen is a failure, blind rollouts or not
    a = agg.aggregate([rollout("fail", 1)] + rs)
    assert a["verdict"]["status"] == "flaky"
    # failures a blind rollout recorded are shown, not counted
    a = agg.aggregate([rollout()] * 3 + [rollout("inconclusive", 9)])
    assert a["verdict"]["status"] == "inconclusive" and a["inconclusive_rollouts_with_failed_requests"] == [4]
    assert a["rollouts_with_failed_requests"] == 0 and any("recorded failed requests" in r for r in a["verdict"]["reasons"])


def test_nothing_seen_is_inconclusive():
    a = agg.aggregate([rollout("inconclusive")] * 3)
    assert a["verdict"]["status"] == "inconclusive" and "rollout_failure" not in a


def test_gate_on_the_probability_a_rollout_fails():
    clean = [rollout()] * 10
    # 0/10 bounds P(fail) by 0.259: within 0.3, not provable for 0.1 (needs 29 clean rollouts)
    assert agg.aggregate(clean, max_rollout_failure_probability=0.3)["verdict"]["exit_code"] == EXIT_PASS
    v = agg.aggregate(clean, max_rollout_failure_probability=0.1)["verdict"]
    assert v["status"] == "inconclusive" and "29" in v["headline"]
    # 1 failure in 40: upper bound 0.113 -> within 0.2, so flaky but allowed; over 0.1
    rs = [rollout("fail", 1)] + [rollout()] * 39
    v = agg.aggregate(rs, max_rollout_failure_probability=0.2)["verdict"]
    assert v["status"] == "flaky" and v["exit_code"] == EXIT_PASS
    assert agg.aggregate(rs, max_rollout_failure_probability=0.1)["verdict"]["exit_code"] == EXIT_FAIL


def test_headline_reads_a_summary():
    s = {"run_dir": "r/1", "verdict": {"status": "fail", "headline": "FAIL: x"}, "disruption_seconds": 0.4,
         "rollout_window": {"service_failed": 5, "total": 9000, "dropped": 2, "start_s": 5.0, "end_s": 25.5,
                            "latency_ms": {"p99": 40.1}},
         "findings": [{"rule": "no-prestop", "title": "No preStop hook"}], "top_finding": "no-prestop"}
    h = agg.headline(s)
    assert h["failed_requests"] == 5 and h["window_requests"] == 8998 and h["window_seconds"] == 20.5
    assert h["top_finding"] == "no-prestop" and h["top_title"] == "No preStop hook"
