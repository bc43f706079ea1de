"""Request statistics, defined once (harness.model.stats): the figures the
generator section, summary.json and every phase of the analysis share."""

from __future__ import annotations

import numpy as np

from harness.model.outcome import OUTCOMES, Outcome
from harness.model.stats import quantiles, request_stats

CODE = {o: i for i, o in enumerate(OUTCOMES)}
MS = 1_000_000


def test_quantiles_are_nearest_rank_and_none_when_empty():
    assert quantiles(np.array([1.0, 2.0, 3.0, 4.0]), {"p50": 0.5, "max": 1.0}) == {"p50": 3.0, "max": 4.0}
    assert quantiles(np.array([]), {"p50": 0.5}) == {"p50": None}


def test_counts_lag_and_latency_from_the_scheduled_time():
    # ok (sent 1 ms late, ended 5 ms after schedule), refused at once, dropped (never sent)
    code = np.array([CODE[Outcome.OK], CODE[Outcome.REFUSED], CODE[Outcome.DROPPED]])
    sched = np.array([0, 10 * MS, 20 * MS])
    sent = np.array([1 * MS, 10 * MS, -1])
    ended = np.array([5 * MS, 10 * MS, 20 * MS])
    s = request_stats(code, sched, sent, ended)
    assert (s["total"], s["failed"], s["service_failed"], s["dropped"]) == (3, 2, 1, 1)
    assert s["outcomes"] == {"ok": 1, "refused": 1, "dropped": 1}
    assert s["error_ratio"] == round(1 / 3, 6)
    assert s["send_lag_ms"] == {"p50": 1.0, "p99": 1.0, "max": 1.0}  # over the 2 sent: [1, 0] -> higher
    assert s["latency_ms"] == {"p50": 5.0, "p90": 5.0, "p99": 5.0, "max": 5.0}


def test_no_records():
    empty = np.empty(0, dtype=np.int64)
    s = request_stats(empty, empty, empty, empty)
    assert s["total"] == 0 and s["error_ratio"] is None and s["latency_ms"]["p99"] is None
