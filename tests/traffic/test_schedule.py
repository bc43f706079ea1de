import pytest

from harness.traffic.schedule import scheduled_ns, uses_new_connection


@pytest.mark.parametrize("rate,seq,expected", [
    (1000, 0, 0), (1000, 1, 1_000_000), (1000, 999, 999_000_000), (3, 1, 333_333_333), (0.5, 2, 4_000_000_000),
], ids=["first", "second", "last-of-second", "rate-3", "slow"])
def test_scheduled_time_is_fixed_in_advance(rate, seq, expected):
    assert scheduled_ns(seq, start_ns=0, rate=rate) == expected


def test_workers_interleave_to_the_single_worker_schedule():
    rate, n = 1000, 3
    merged = sorted(scheduled_ns(s, start_ns=0, rate=rate) for w in range(n) for s in range(w, 30, n))
    assert merged == [scheduled_ns(s, start_ns=0, rate=rate) for s in range(30)]


@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.25, 0.5, 0.9, 1.0])
def test_new_connection_ratio_is_exact_over_any_window(ratio):
    picks = [uses_new_connection(s, ratio) for s in range(10_000)]
    assert sum(picks) == round(10_000 * ratio)
    window = picks[1234:1334]
    assert abs(sum(window) - 100 * ratio) <= 1
