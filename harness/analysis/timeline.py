"""The run over time: requests per bin split by outcome, latency quantiles
per bin, the disruption intervals (bins with failures), and the headline
numbers per run phase (baseline = the control, disruption, settle).

Latency counts from the *scheduled* time (the open-loop correction of
coordinated omission) and is taken over successful requests; failures are
counted, not timed. Everything here is numpy over whole columns.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis.rundata import OK_CODE, PHASES, SERVICE_FAILURE_CODES, RunData
from harness.model.outcome import OUTCOMES
from harness.model.stats import request_stats
from harness.model.summary import RequestStats

DEFAULT_BIN_NS = 100_000_000


@dataclasses.dataclass
class Timeline:
    bin_ns: int
    t0_ns: int
    #: [n_bins, len(OUTCOMES)] requests per bin (by scheduled time) and outcome
    counts: np.ndarray
    #: latency of successful requests per bin, ms (NaN where none)
    p50_ms: np.ndarray
    p99_ms: np.ndarray
    #: merged runs of bins with service failures: (start_ns, end_ns, failures)
    intervals: list[tuple[int, int, int]]

    @property
    def n_bins(self) -> int:
        return len(self.counts)

    def bin_starts_s(self) -> np.ndarray:
        return (self.t0_ns + np.arange(self.n_bins, dtype=np.int64) * self.bin_ns) / 1e9

    def failures_per_bin(self) -> np.ndarray:
        return self.counts[:, SERVICE_FAILURE_CODES].sum(axis=1) if self.n_bins else np.zeros(0, np.int64)

    def disruption_seconds(self, window: tuple[int, int] | None) -> float:
        fail = self.failures_per_bin() > 0
        if window is not None and self.n_bins:
            starts = self.t0_ns + np.arange(self.n_bins, dtype=np.int64) * self.bin_ns
            fail &= (starts + self.bin_ns > window[0]) & (starts < window[1])
        return round(float(fail.sum()) * self.bin_ns / 1e9, 3)


def _binned_quantiles(bins: np.ndarray, values: np.ndarray, n_bins: int, qs: tuple[float, ...]) -> list[np.ndarray]:
    """Nearest-rank quantiles of ``values`` per bin, NaN for empty bins."""
    out = [np.full(n_bins, np.nan) for _ in qs]
    if len(values) == 0:
        return out
    order = np.lexsort((values, bins))
    sv, sb = values[order], bins[order]
    n = np.bincount(sb, minlength=n_bins)
    start = np.concatenate(([0], np.cumsum(n)[:-1]))
    has = n > 0
    for arr, q in zip(out, qs):
        k = start[has] + np.floor(q * (n[has] - 1)).astype(np.int64)
        arr[has] = sv[k]
    return out


def _intervals(fail: np.ndarray, t0: int, bin_ns: int) -> list[tuple[int, int, int]]:
    if not len(fail):
        return []
    on = fail > 0
    edges = np.diff(np.concatenate(([0], on.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(t0 + int(s) * bin_ns, t0 + int(e) * bin_ns, int(fail[s:e].sum())) for s, e in zip(starts, ends)]


def build_timeline(run: RunData, bin_ns: int = DEFAULT_BIN_NS) -> Timeline:
    req = run.requests
    if req.empty:
        z = np.zeros(0)
        return Timeline(bin_ns, 0, np.zeros((0, len(OUTCOMES)), np.int64), z, z, [])
    sched = req["scheduled_ns"].to_numpy()
    code = req["code"].to_numpy().astype(np.int64)
    t0 = int(sched.min()) // bin_ns * bin_ns
    b = (sched - t0) // bin_ns
    n_bins = int(b.max()) + 1
    counts = np.bincount(b * len(OUTCOMES) + code, minlength=n_bins * len(OUTCOMES)).reshape(n_bins, len(OUTCOMES))
    ok = code == OK_CODE
    lat = (req["ended_ns"].to_numpy()[ok] - sched[ok]) / 1e6
    p50, p99 = _binned_quantiles(b[ok], lat, n_bins, (0.5, 0.99))
    fail = counts[:, SERVICE_FAILURE_CODES].sum(axis=1)
    return Timeline(bin_ns, t0, counts, p50, p99, _intervals(fail, t0, bin_ns))


def record_stats(req: pd.DataFrame) -> RequestStats:
    """harness.model.stats.request_stats over a frame of records."""
    return request_stats(req["code"].to_numpy(), req["scheduled_ns"].to_numpy(), req["sent_ns"].to_numpy(),
                         req["ended_ns"].to_numpy())


def phase_stats(run: RunData) -> dict[str, Any]:
    """record_stats per run phase (baseline, disruption, settle, outside)."""
    req = run.requests
    out: dict[str, Any] = {}
    if req.empty:
        return out
    for name, grp in req.groupby("phase", observed=True, sort=False):
        s = record_stats(grp)
        bounds = run.phase_bounds.get(str(name))
        if bounds:
            s["start_s"] = round(bounds[0] / 1e9, 3)
            s["duration_s"] = round((bounds[1] - bounds[0]) / 1e9, 3)
        out[str(name)] = s
    order = [p for p in (*PHASES, "outside") if p in out]
    return {p: out[p] for p in order}


def window_mask(run: RunData) -> np.ndarray:
    """Requests the verdict judges: the rollout window (disruption + settle),
    or every request when the run recorded no phases."""
    ph = run.requests["phase"]
    if run.window() is None:
        return np.ones(len(ph), dtype=bool)
    return ph.isin(["disruption", "settle"]).to_numpy()
