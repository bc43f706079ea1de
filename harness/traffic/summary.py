"""What the generator did, from the records on disk: counts by outcome, the
rate it achieved versus the rate it was asked, send lag and latency.

These are the traffic engine's summary.json keys; the analysis stage adds
to them. Latency counts from the *scheduled* time (coordinated omission
corrected) over every request that was sent, failures included.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from harness.model.outcome import OUTCOMES, Outcome


def _q(values: np.ndarray, qs: dict[str, float]) -> dict[str, float | None]:
    if values.size == 0:
        return {k: None for k in qs}
    out = np.quantile(values, list(qs.values()), method="higher") if values.size else []
    return {k: round(float(v), 3) for k, v in zip(qs, out)}


def summarize(table: pa.Table, *, start_ns: int, end_ns: int, asked_rate: float) -> dict[str, Any]:
    n = table.num_rows
    duration_s = max((end_ns - start_ns) / 1e9, 1e-9)
    if n:
        codes = table.column("outcome").combine_chunks()
        idx = codes.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        dictionary = [str(x) for x in codes.dictionary.to_pylist()]
        counts_by_name = {dictionary[i]: int(c) for i, c in enumerate(np.bincount(idx, minlength=len(dictionary))) if c}
        sched = table.column("scheduled_ns").to_numpy()
        sent = table.column("sent_ns").to_numpy()
        ended = table.column("ended_ns").to_numpy()
    else:
        counts_by_name = {}
        sched = sent = ended = np.empty(0, dtype=np.int64)
    outcomes = {o.value: counts_by_name.get(o.value, 0) for o in OUTCOMES if counts_by_name.get(o.value, 0)}
    ok = outcomes.get(Outcome.OK.value, 0)
    was_sent = sent >= 0
    lag_ms = (sent[was_sent] - sched[was_sent]) / 1e6
    lat_ms = (ended[was_sent] - sched[was_sent]) / 1e6
    return {
        "total": int(n),
        "failed": int(n - ok),
        "outcomes": outcomes,
        "asked_rate": float(asked_rate),
        "achieved_rate": round(float(was_sent.sum()) / duration_s, 3),
        "duration_s": round(duration_s, 3),
        "dropped": int(outcomes.get(Outcome.DROPPED.value, 0)),
        "send_lag_ms": _q(lag_ms, {"p50": 0.5, "p99": 0.99, "max": 1.0}),
        "latency_ms": _q(lat_ms, {"p50": 0.5, "p90": 0.9, "p99": 0.99, "max": 1.0}),
    }
