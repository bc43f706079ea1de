"""The verdict is a pure function of the run's facts: a table of them."""

from __future__ import annotations

import pytest

from harness.analysis.verdict import check_thresholds, decide, gate_limits
from harness.model.scenario import Gate

LIMITS = gate_limits(Gate(max_failed_requests=0, max_p99_latency_ms=100))
GOOD = {"failed_requests": 0, "error_ratio": 0.0, "disruption_seconds": 0.0, "p99_latency_ms": 40.0,
        "send_lag_p99_ms": 2.0, "dropped_ratio": 0.0}
ROLLOUT_OK = {"completed": True, "error": None}


def verdict(values=None, *, status="complete", rollout=ROLLOUT_OK, total=1000, window_total=800, baseline=None,
            server_caused=0, unobserved=None):
    rows = check_thresholds(LIMITS, {**GOOD, **(values or {})})
    base = check_thresholds(LIMITS, {**GOOD, **baseline}) if baseline else None
    return decide(status=status, rollout=rollout, total=total, window_total=window_total, thresholds=rows,
                  baseline_rows=base, server_caused_failed=server_caused, unobserved=unobserved)


CASES = [
    ("clean", {}, {}, "pass", 0),
    ("failed-requests", {"failed_requests": 3}, {}, "fail", 1),
    ("slow", {"p99_latency_ms": 250.0}, {}, "fail", 1),
    ("engine-lag", {"send_lag_p99_ms": 80.0}, {}, "inconclusive", 3),
    ("engine-dropped", {"dropped_ratio": 0.01}, {}, "inconclusive", 3),
    # failures the engine's own lateness can cause (timeouts, a burst's 503s): not proof
    ("engine-lag-and-failures", {"send_lag_p99_ms": 80.0, "failed_requests": 9}, {}, "inconclusive", 3),
    # refused / reset / closed by the server: a late sender cannot cause them, so they are proof
    ("engine-lag-server-caused", {"send_lag_p99_ms": 80.0, "failed_requests": 9}, {"server_caused": 7}, "fail", 1),
    ("engine-dropped-server-caused", {"dropped_ratio": 0.01, "failed_requests": 2}, {"server_caused": 2}, "fail", 1),
    ("engine-lag-server-caused-within-gate", {"send_lag_p99_ms": 80.0, "failed_requests": 9}, {"server_caused": 0},
     "inconclusive", 3),
    # lag is the only blindness that failures can outweigh
    ("engine-lag-server-caused-unobserved", {"send_lag_p99_ms": 80.0, "failed_requests": 9},
     {"server_caused": 9, "unobserved": ["pod p was never seen to end"]}, "inconclusive", 3),
    ("engine-lag-server-caused-crashed", {"send_lag_p99_ms": 80.0, "failed_requests": 9},
     {"server_caused": 9, "status": "crashed"}, "inconclusive", 3),
    ("engine-lag-server-caused-baseline-failing", {"send_lag_p99_ms": 80.0, "failed_requests": 9},
     {"server_caused": 9, "baseline": {"failed_requests": 2}}, "inconclusive", 3),
    ("crashed", {}, {"status": "crashed"}, "inconclusive", 3),
    ("interrupted", {}, {"status": "interrupted"}, "inconclusive", 3),
    ("rollout-failed", {}, {"status": "rollout_failed", "rollout": {"completed": False, "error": "stuck"}},
     "inconclusive", 3),
    ("rollout-unknown", {}, {"rollout": None}, "inconclusive", 3),
    ("no-requests", {}, {"total": 0, "window_total": 0}, "inconclusive", 3),
    ("nothing-in-window", {}, {"window_total": 0}, "inconclusive", 3),
    ("baseline-failing", {"failed_requests": 5}, {"baseline": {"failed_requests": 2}}, "inconclusive", 3),
    ("baseline-clean", {"failed_requests": 5}, {"baseline": {}}, "fail", 1),
]


@pytest.mark.parametrize("values,kw,status,code", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_verdict_table(values, kw, status, code):
    v = verdict(values, **kw)
    assert (v["status"], v["exit_code"]) == (status, code), v
    assert v["reasons"] and v["headline"].startswith(status.upper())


def test_fail_headline_reads_as_a_sentence_and_reasons_name_the_threshold():
    v = verdict({"failed_requests": 7})
    assert v["headline"] == "FAIL: 7 requests failed during the rollout (the gate allows 0)"
    assert v["reasons"] == ["maxFailedRequests: failed_requests = 7 (limit 0)"]


def test_thresholds_without_a_limit_are_skipped_and_missing_values_unknown():
    rows = {r["name"]: r for r in check_thresholds(LIMITS, {**GOOD, "p99_latency_ms": None})}
    assert rows["maxErrorRatio"]["status"] == "skipped"
    assert rows["maxP99LatencyMs"]["status"] == "unknown"
    assert rows["maxFailedRequests"]["status"] == "pass"


def test_failures_seen_despite_engine_lag_say_the_count_is_a_lower_bound():
    v = verdict({"send_lag_p99_ms": 80.0, "failed_requests": 12}, server_caused=11)
    assert v["status"] == "fail"
    assert v["headline"].startswith("FAIL: 11 requests refused, reset or closed by the server")
    assert any("fell behind" in r for r in v["reasons"]) and any("lower bound" in r for r in v["reasons"])


def test_the_proxys_answers_seen_despite_engine_lag_are_named_as_such():
    rows = check_thresholds(LIMITS, {**GOOD, "send_lag_p99_ms": 300.0, "failed_requests": 60})
    v = decide(status="complete", rollout={"completed": True}, total=1000, window_total=800, thresholds=rows,
               baseline_rows=[], server_caused_failed=40,
               server_caused_what="answered 502/504 by the ingress proxy for a pod already deleted")
    assert v["status"] == "fail"
    assert v["headline"].startswith("FAIL: 40 requests answered 502/504 by the ingress proxy for a pod already deleted")
    assert any("lower bound" in r for r in v["reasons"])


HOST_SLOW = {"probed_s": 30.0, "slow_share": 0.06,
             "windows": [{"start_ns": 1_000_000_000, "end_ns": 1_045_000_000, "speed": 0.2},
                         {"start_ns": 9_000_000_000, "end_ns": 9_030_000_000, "speed": 0.24}]}


def test_a_run_that_fell_behind_while_the_host_ran_slowly_names_the_host_and_the_fix():
    rows = check_thresholds(LIMITS, {**GOOD, "send_lag_p99_ms": 80.0})
    v = decide(status="complete", rollout=ROLLOUT_OK, total=1000, window_total=800, thresholds=rows,
               baseline_rows=None, host=HOST_SLOW)
    assert (v["status"], v["exit_code"]) == ("inconclusive", 3)
    host = [r for r in v["reasons"] if "the host ran this machine" in r]
    assert host == ["the host ran this machine at about 22% of its speed for 6.0% of the traffic (2 window(s), "
                    "the longest 45 ms): any generator falls behind there; run on a host that does not throttle "
                    "its CPUs, or lower traffic.rate"]
    assert any("fell behind its schedule" in r for r in v["reasons"])


@pytest.mark.parametrize("host", [None, {"probed_s": 30.0, "slow_share": 0.0, "windows": []}])
def test_the_host_is_not_blamed_when_it_was_steady_or_not_probed(host):
    rows = check_thresholds(LIMITS, {**GOOD, "send_lag_p99_ms": 80.0})
    v = decide(status="complete", rollout=ROLLOUT_OK, total=1000, window_total=800, thresholds=rows,
               baseline_rows=None, host=host)
    assert v["status"] == "inconclusive"
    assert not any("host" in r for r in v["reasons"])


def test_a_slow_host_is_no_reason_when_the_engine_kept_up():
    v = decide(status="complete", rollout=ROLLOUT_OK, total=1000, window_total=800,
               thresholds=check_thresholds(LIMITS, GOOD), baseline_rows=None, host=HOST_SLOW)
    assert v["status"] == "pass" and not any("host" in r for r in v["reasons"])
