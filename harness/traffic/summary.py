"""What the generator did, from its records on disk: the rate it achieved
versus the rate it was asked, its send lag and what it dropped. This is the
manifest's ``generator`` section (harness.model.summary.Generator); the
statistics are harness.model.stats', the same the analysis reports.
"""

from __future__ import annotations

from typing import Sequence

import pyarrow as pa

from harness.model.requests import outcome_codes
from harness.model.stats import request_stats
from harness.model.summary import Generator, HostSpeed
from harness.traffic.engine import EngineResult


def schedule_span(table: pa.Table, results: Sequence[EngineResult]) -> tuple[int, int]:
    """[start, end) of the schedule: from the engines when they reported,
    else (a worker died) from the records."""
    if results:
        return min(r.start_ns for r in results), max(r.end_ns for r in results)
    if table.num_rows:
        sched = table.column("scheduled_ns").to_numpy()
        return int(sched.min()), int(sched.max())
    return 0, 0


def generator_figures(table: pa.Table, results: Sequence[EngineResult], *, asked_rate: float, workers: int,
                      records_complete: bool, max_lag_ms: float | None = None,
                      host: HostSpeed | None = None) -> Generator:
    start, end = schedule_span(table, results)
    duration_s = max((end - start) / 1e9, 1e-9)
    if table.num_rows:
        sent = table.column("sent_ns").to_numpy()
        stats = request_stats(outcome_codes(table), table.column("scheduled_ns").to_numpy(), sent,
                              table.column("ended_ns").to_numpy())
        n_sent = int((sent >= 0).sum())
    else:
        import numpy as np

        empty = np.empty(0, dtype=np.int64)
        stats = request_stats(empty, empty, empty, empty)
        n_sent = 0
    gen: Generator = {
        "asked_rate": float(asked_rate),
        "achieved_rate": round(n_sent / duration_s, 3),
        "duration_s": round(duration_s, 3),
        "send_lag_ms": stats["send_lag_ms"],
        "dropped": stats["dropped"],
        "total": stats["total"],
        "workers": workers,
        "cpu_s": round(sum(r.cpu_s for r in results), 3),
        "interrupted": any(r.interrupted for r in results),
        "records_complete": records_complete,
    }
    if host is not None:
        gen["host"] = host
    if max_lag_ms is not None:
        gen["max_lag_ms"] = max_lag_ms
        gen["fell_behind"] = stats["dropped"] > 0 or (stats["send_lag_ms"]["p99"] or 0) > max_lag_ms
    return gen
