"""Request statistics, defined once: counts by outcome, send lag and latency.

The traffic engine's figures (the manifest's ``generator`` section) and the
analysis (summary.json, per phase and per rollout window) both come from
here, so a number called ``send_lag_ms.p99`` means the same everywhere.
Latency counts from the *scheduled* time (coordinated omission corrected)
over every request that was sent, failures included; quantiles are
nearest-rank ("higher"), so every figure is a latency that was measured.
"""

from __future__ import annotations

import numpy as np

from harness.model.outcome import OUTCOMES, SERVICE_FAILURES, Outcome
from harness.model.summary import RequestStats

SEND_LAG_QUANTILES = {"p50": 0.5, "p99": 0.99, "max": 1.0}
LATENCY_QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "max": 1.0}
OK_CODE = OUTCOMES.index(Outcome.OK)
DROPPED_CODE = OUTCOMES.index(Outcome.DROPPED)
#: outcome codes that are failures of the service (dropped is the engine's)
SERVICE_FAILURE_CODES = np.array([i for i, o in enumerate(OUTCOMES) if o in SERVICE_FAILURES], dtype=np.int8)


def quantiles(values: np.ndarray, qs: dict[str, float]) -> dict[str, float | None]:
    """Nearest-rank quantiles of ``values`` (ms, rounded to the microsecond);
    None for each when there are no values."""
    if len(values) == 0:
        return {k: None for k in qs}
    out = np.quantile(values, list(qs.values()), method="higher")
    return {k: round(float(v), 3) for k, v in zip(qs, out)}


def request_stats(code: np.ndarray, scheduled_ns: np.ndarray, sent_ns: np.ndarray,
                  ended_ns: np.ndarray) -> RequestStats:
    """The headline figures of a set of request records (columns as arrays;
    ``code`` is the outcome's index in OUTCOMES). ``failed`` is every request
    not ok (dropped included); ``service_failed`` leaves the engine's drops out."""
    counts = np.bincount(np.asarray(code, dtype=np.int64), minlength=len(OUTCOMES))
    was_sent = sent_ns >= 0
    lag = (sent_ns[was_sent] - scheduled_ns[was_sent]) / 1e6
    lat = (ended_ns[was_sent] - scheduled_ns[was_sent]) / 1e6
    total = int(len(code))
    service_failed = int(counts[SERVICE_FAILURE_CODES].sum())
    return {
        "total": total,
        "failed": total - int(counts[OK_CODE]),
        "service_failed": service_failed,
        "dropped": int(counts[DROPPED_CODE]),
        "outcomes": {o.value: int(counts[i]) for i, o in enumerate(OUTCOMES) if counts[i]},
        "error_ratio": round(service_failed / total, 6) if total else None,
        "send_lag_ms": quantiles(lag, SEND_LAG_QUANTILES),
        "latency_ms": quantiles(lat, LATENCY_QUANTILES),
    }
