"""The open-loop figure `make bench` gives beside the whole-run send lag: the
p99 of the requests the host's slow windows (harness/traffic/hostspeed.py)
did not touch (bench/run.py's ``outside_host_windows``)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

from run import outside_host_windows  # noqa: E402

MS = 1_000_000


def test_requests_touched_by_a_window_are_those_in_it_and_those_until_the_engine_caught_up():
    sched = np.arange(0, 100 * MS, MS, dtype=np.int64)  # one request a ms
    lag = np.full(len(sched), 50_000, dtype=np.int64)  # 0.05 ms: on time
    lag[40:50] = 3 * MS  # inside the window [40, 45) ms and 5 ms after it, behind
    lag[60] = 5 * MS  # late outside any window: the engine's own, never left out
    sent = sched + lag
    shuffled = np.random.default_rng(1).permutation(len(sched))  # records come in completion order
    keep = outside_host_windows(sched[shuffled], sent[shuffled], [(40 * MS, 45 * MS, 0.2)])
    kept = np.zeros(len(sched), dtype=bool)
    kept[shuffled] = keep
    assert not kept[40:50].any()  # in the window, then catching up until request 50
    assert kept[:40].all() and kept[50:].all()
    assert kept[60]  # a late request the host did not touch stays in the figure


def test_a_window_the_engine_never_recovers_from_leaves_out_the_rest():
    sched = np.arange(0, 20 * MS, MS, dtype=np.int64)
    sent = sched + np.where(np.arange(20) >= 5, 4 * MS, 0)
    keep = outside_host_windows(sched, sent, [(5 * MS, 7 * MS, 0.2)])
    assert keep[:5].all() and not keep[5:].any()


def test_without_catch_up_only_requests_scheduled_inside_a_window_are_left_out():
    sched = np.arange(0, 100 * MS, MS, dtype=np.int64)
    lag = np.full(len(sched), 50_000, dtype=np.int64)
    lag[40:50] = 3 * MS
    keep = outside_host_windows(sched, sched + lag, [(40 * MS, 45 * MS, 0.2)], caught_up_ns=None)
    assert not keep[40:45].any() and keep[45:].all() and keep[:40].all()
