"""The bench's host probe (bench/hostprobe.py) and the open-loop figure that
leaves out the requests its slow windows touched (bench/run.py): what a
`make bench` reader trusts when it says "the host, not the engine"."""

from __future__ import annotations

import array
import sys
import time
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import hostprobe  # noqa: E402
from hostprobe import HostProbe, windows_of  # noqa: E402
from run import outside_host_windows  # noqa: E402

MS = 1_000_000


def samples(durations: list[int], period_ns: int = 2 * MS) -> array.array:
    """The probe's flat (time, duration) pairs, one sample every ``period_ns``."""
    out = array.array("q")
    for i, d in enumerate(durations):
        out.extend((i * period_ns, d))
    return out


def test_a_steady_host_has_no_window():
    wins, span, share = windows_of(samples([1000, 1010, 990, 1200, 1000] * 20))
    assert wins == [] and share == 0.0
    assert span == pytest.approx(99 * 2 / 1000)


def test_a_run_of_slow_samples_is_one_window_with_its_speed():
    durs = [1000] * 40 + [4000, 5000, 4000, 5000] + [1000] * 40  # samples 40..43 at 20-25% speed
    wins, span, share = windows_of(samples(durs))
    assert len(wins) == 1
    start, end, speed = wins[0]
    assert start == 40 * 2 * MS  # the first slow sample
    assert end == 44 * 2 * MS  # the first sample at speed again
    assert speed == pytest.approx((0.25 + 0.2 + 0.25 + 0.2) / 4)
    assert share == pytest.approx(8 / (83 * 2))


def test_one_slow_sample_is_not_a_window():
    """An interrupt or an SMI can slow one sample; a window needs MIN_SAMPLES."""
    durs = [1000] * 30 + [9000] + [1000] * 30
    assert windows_of(samples(durs))[0] == []
    assert hostprobe.MIN_SAMPLES >= 2


def test_a_window_at_the_end_of_the_run_is_kept():
    wins, _, _ = windows_of(samples([1000] * 30 + [5000] * 5))
    assert [(a, b) for a, b, _ in wins] == [(30 * 2 * MS, 34 * 2 * MS)]


def test_too_few_samples_say_nothing():
    assert windows_of(samples([1000] * 5)) == ([], 0.0, 0.0)


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


def test_the_probe_process_samples_and_stops():
    with HostProbe(seconds=20, cpu=None) as probe:
        proc = probe._proc
        time.sleep(0.6)
    assert proc.poll() is not None  # stopped when the block ended, long before its 20 s
    assert 0.4 < probe.span_s < 2.0
    assert 0.0 <= probe.slow_share <= 1.0
    assert probe.describe().startswith(("host steady", "host slow"))
    assert not probe._dir.exists()  # its samples file is gone


def test_without_catch_up_only_requests_scheduled_inside_a_window_are_left_out():
    sched = np.arange(0, 100 * MS, MS, dtype=np.int64)
    lag = np.full(len(sched), 50_000, dtype=np.int64)
    lag[40:50] = 3 * MS
    keep = outside_host_windows(sched, sched + lag, [(40 * MS, 45 * MS, 0.2)], caught_up_ns=None)
    assert not keep[40:45].any() and keep[45:].all() and keep[:40].all()
