"""Exact binomial bounds against published Clopper–Pearson tables."""

import math

import pytest

from harness.analysis import stats

# (k, n) -> 95% two-sided Clopper–Pearson interval, as tabulated (e.g. R's
# binom.test(k, n)$conf.int, rounded to 4 places)
TABLE = [
    ((0, 10), (0.0, 0.3085)),
    ((1, 10), (0.0025, 0.4450)),
    ((3, 10), (0.0667, 0.6525)),
    ((5, 10), (0.1871, 0.8129)),
    ((10, 10), (0.6915, 1.0)),
    ((0, 20), (0.0, 0.1684)),
    ((2, 50), (0.0049, 0.1371)),
    ((1, 1), (0.025, 1.0)),
]


@pytest.mark.parametrize("kn,want", TABLE)
def test_clopper_pearson_matches_the_tables(kn, want):
    lo, hi = stats.clopper_pearson(*kn)
    assert lo == pytest.approx(want[0], abs=6e-5)
    assert hi == pytest.approx(want[1], abs=6e-5)


def test_zero_failures_upper_bound_is_the_rule_of_three():
    # 0 failures in n: the one-sided 95% bound is 1 - 0.05^(1/n), about 3/n
    for n in (100, 3000, 15000, 1_000_000):
        ub = stats.upper_bound(0, n)
        assert ub == pytest.approx(1 - 0.05 ** (1 / n), rel=1e-9)
        assert 2.9 / n < ub < 3.0 / n
    assert stats.upper_bound(0, 10) == pytest.approx(0.2589, abs=1e-4)


def test_bounds_bracket_the_observed_rate_and_hold_their_coverage():
    for k, n in ((1, 1000), (12, 15000), (7, 7), (0, 1)):
        lo, hi = stats.lower_bound(k, n), stats.upper_bound(k, n)
        assert lo <= k / n <= hi
        # at the bound, seeing <= k (resp. >= k) is exactly 5% likely
        if hi < 1:
            assert stats.binom_cdf(k, n, hi) == pytest.approx(0.05, abs=1e-9)
        if lo > 0:
            assert stats.binom_sf(k, n, lo) == pytest.approx(0.05, abs=1e-9)


def test_detection_limit_is_where_a_clean_run_becomes_a_coin_flip():
    n = 15000
    x = stats.detection_limit(n)
    assert (1 - x) ** n == pytest.approx(0.5, rel=1e-9)
    assert x == pytest.approx(math.log(2) / n, rel=1e-3)
    # a rate ten times higher is caught almost always
    assert (1 - 10 * x) ** n < 0.001


def test_rollouts_needed_for_a_claim():
    # "a rollout fails at most 10% of the time, at 95%" needs 29 clean rollouts
    assert stats.rollouts_needed(0.1) == 29
    assert stats.upper_bound(0, 29) <= 0.1 < stats.upper_bound(0, 28)


@pytest.mark.parametrize("k,n", [(-1, 10), (11, 10), (0, 0)])
def test_bad_counts_are_refused(k, n):
    with pytest.raises(ValueError):
        stats.clopper_pearson(k, n)
