"""The clock maths of many generators: offset, its bound, drift."""

import pytest

from harness.traffic.clocksync import Drift, Exchange, estimate

MS = 1_000_000


@pytest.mark.parametrize("true_offset,out_leg,back_leg", [
    (0, 1 * MS, 1 * MS),
    (5_000 * MS, 2 * MS, 2 * MS),  # a generator whose clock is 5 s ahead
    (-7 * MS, 0, 4 * MS),  # all of the round trip on the way back
    (123_456_789_012, 9 * MS, 1 * MS),  # another node's boot-time clock, lopsided legs
], ids=["same-clock", "ahead", "back-leg-only", "other-node-lopsided"])
def test_the_true_offset_is_within_the_uncertainty(true_offset, out_leg, back_leg):
    t_send = 10_000 * MS
    t_gen = t_send + out_leg + true_offset  # the generator reads its clock when the request arrives
    t_recv = t_send + out_leg + back_leg
    est = estimate([Exchange(t_send, t_gen, t_recv)])
    assert abs(est.offset_ns - true_offset) <= est.uncertainty_ns
    assert est.uncertainty_ns == (out_leg + back_leg + 1) // 2
    # symmetric legs: exact
    if out_leg == back_leg:
        assert est.offset_ns == true_offset


def test_the_exchange_with_the_smallest_round_trip_is_used():
    xs = [Exchange(0, 1_000 + 30 * MS, 40 * MS), Exchange(100 * MS, 1_000 + 101 * MS, 102 * MS),
          Exchange(200 * MS, 1_000 + 210 * MS, 230 * MS)]
    est = estimate(xs)
    assert est.rtt_ns == 2 * MS and est.offset_ns == 1_000 and est.samples == 3
    assert est.to_run(est.to_gen(123 * MS)) == 123 * MS


def test_no_exchange_is_an_error():
    with pytest.raises(ValueError):
        estimate([])


def test_drift_widens_the_uncertainty():
    start = estimate([Exchange(0, 50 * MS + 1 * MS, 2 * MS)])
    end = estimate([Exchange(60_000 * MS, 60_000 * MS + 53 * MS + 1 * MS, 60_002 * MS)])
    d = Drift(start, end)
    assert d.drift_ns == 3 * MS
    assert d.uncertainty_ns == 3 * MS + 1 * MS  # the start estimate is 3 ms off at the end, +- the end bound
    loose_start = estimate([Exchange(0, 50 * MS + 20 * MS, 40 * MS)])  # +- 20 ms
    assert Drift(loose_start, end).uncertainty_ns == 20 * MS
    assert Drift(start, None).uncertainty_ns == start.uncertainty_ns
    assert d.as_dict()["drift_ns"] == 3 * MS
