import pytest

from harness.traffic.schedule import scheduled_ns, uses_new_connection


@pytest.mark.parametrize("rate,seq,expected", [
    (1000, 0, 0), (1000, 1, 1_000_000), (1000, 999, 999_000_000), (3, 1, 333_333_333), (0.5, 2, 4_000_000_000),
], ids=["first", "second", "last-of-second", "rate-3", "slow"])
def test_scheduled_time_is_fixed_in_advance(rate, seq, expected):
    assert scheduled_ns(seq, start_ns=0, rate=rate) == expected


# How workers interleave (worker w of n sends seqs w, w+n, ... on this schedule) is
# tested on the engine itself: tests/traffic/test_engine.py::test_worker_w_of_n_...


@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.25, 0.5, 0.9, 1.0])
def test_new_connection_ratio_is_exact_over_any_window(ratio):
    picks = [uses_new_connection(s, ratio) for s in range(10_000)]
    assert sum(picks) == round(10_000 * ratio)
    window = picks[1234:1334]
    assert abs(sum(window) - 100 * ratio) <= 1
