"""Timeline arithmetic on small arrays: per-bin quantiles, merged failure
intervals, disruption seconds inside the rollout window only."""

from __future__ import annotations

import numpy as np
import pytest

from harness.analysis import analyse
from harness.analysis.timeline import _binned_quantiles, _intervals
from harness.model.outcome import Outcome
from tests.analysis.builders import RunBuilder


def test_binned_quantiles_nearest_rank_and_empty_bins():
    bins = np.array([0, 0, 0, 0, 2, 2])
    values = np.array([4.0, 1.0, 3.0, 2.0, 10.0, 20.0])
    p50, p99 = _binned_quantiles(bins, values, 3, (0.5, 0.99))
    assert p50[0] == 2.0 and p99[0] == 3.0  # nearest rank over 1,2,3,4
    assert np.isnan(p50[1]) and p50[2] == 10.0


@pytest.mark.parametrize("fail,expected", [
    ([0, 0, 0], []),
    ([1, 2, 0, 0, 5], [(0, 200, 3), (400, 500, 5)]),
    ([3, 3, 3], [(0, 300, 9)]),
], ids=["none", "two-runs", "all"])
def test_intervals_merge_consecutive_failing_bins(fail, expected):
    assert _intervals(np.array(fail), 0, 100) == expected


def test_disruption_seconds_count_only_the_rollout_window(tmp_path):
    b = RunBuilder(tmp_path / "run")
    b.phases(0, 2, 4, 6)
    b.start_pod("api-a1", -1, endpoint_delay=0)
    for i in range(300):
        b.request(i / 50, route_pod="api-a1")
    b.request(0.51, Outcome.RESET, route_pod="api-a1")          # baseline: control, not counted
    b.request(2.51, Outcome.RESET, route_pod="api-a1")          # rollout
    b.request(2.55, Outcome.RESET, route_pod="api-a1")          # same bin
    b.request(4.75, Outcome.REFUSED, route_pod="api-a1", sent=False)  # settle
    a = analyse(b.write())
    s = a.summary
    assert s["disruption_seconds"] == pytest.approx(0.2)
    assert [i["failures"] for i in s["disruption_intervals"]] == [1, 2, 1]
    assert s["phases"]["baseline"]["service_failed"] == 1
    assert s["rollout_window"]["service_failed"] == 3
    counts = a.timeline.counts
    assert counts.sum() == len(a.run.requests)
