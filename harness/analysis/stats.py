"""Exact binomial bounds for "how often does a rollout fail?" and "how
often does a request fail?", from counts alone.

One run that passes proves little: a mistake that fails one rollout in
five passes most single runs. These functions turn k failures in n trials
into the statements a reviewer can rely on (docs/proof.md says it in plain
words):

    clopper_pearson(3, 10)        # (0.0667, 0.6525): 95% two-sided interval
    upper_bound(0, 15000)         # 0.000200: "at most 2 in 10,000", ~3/n
    detection_limit(15000)        # 4.6e-05: rates below this go unseen >= 50%

Pure functions of integers (no scipy): the binomial tail is summed in log
space and inverted by bisection, which is exact to ~1e-12 for any n a run
produces. Trials are assumed independent with one failure probability; the
docs say where that is a model and not the truth.
"""

from __future__ import annotations

import math

_ITER = 200


def _log_pmf(i: int, n: int, p: float) -> float:
    if p <= 0.0:
        return 0.0 if i == 0 else -math.inf
    if p >= 1.0:
        return 0.0 if i == n else -math.inf
    return (math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
            + i * math.log(p) + (n - i) * math.log1p(-p))


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    terms = [_log_pmf(i, n, p) for i in range(k + 1)]
    top = max(terms)
    if top == -math.inf:
        return 0.0
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def binom_sf(k: int, n: int, p: float) -> float:
    """P(X >= k)."""
    if k <= 0:
        return 1.0
    return max(0.0, 1.0 - binom_cdf(k - 1, n, p))


def _bisect(f, lo: float = 0.0, hi: float = 1.0) -> float:
    """The p in [lo, hi] where the increasing function f crosses 0."""
    for _ in range(_ITER):
        mid = (lo + hi) / 2
        if f(mid) < 0:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-15:
            break
    return (lo + hi) / 2


def _check(k: int, n: int, confidence: float) -> None:
    if not (isinstance(k, int) and isinstance(n, int)) or n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1 (got k={k}, n={n})")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1 (got {confidence})")


def upper_bound(k: int, n: int, confidence: float = 0.95) -> float:
    """One-sided exact upper bound: the largest failure probability under
    which seeing k or fewer failures in n still has chance >= 1-confidence.
    For k = 0 it is 1 - (1-confidence)^(1/n), about 3/n at 95%."""
    _check(k, n, confidence)
    if k == n:
        return 1.0
    alpha = 1.0 - confidence
    if k == 0:
        return -math.expm1(math.log(alpha) / n)
    return _bisect(lambda p: alpha - binom_cdf(k, n, p))


def lower_bound(k: int, n: int, confidence: float = 0.95) -> float:
    """One-sided exact lower bound (0 when k = 0)."""
    _check(k, n, confidence)
    if k == 0:
        return 0.0
    alpha = 1.0 - confidence
    if k == n:
        return math.exp(math.log(alpha) / n)
    return _bisect(lambda p: binom_sf(k, n, p) - alpha)


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact two-sided interval: each side misses with probability
    (1-confidence)/2 at most, whatever the true probability."""
    _check(k, n, confidence)
    tail = 1.0 - (1.0 - confidence) / 2
    return lower_bound(k, n, tail), upper_bound(k, n, tail)


def detection_limit(n: int, miss_probability: float = 0.5) -> float:
    """The per-trial failure probability below which n trials show no
    failure with probability >= ``miss_probability``: (1-p)^n >= miss."""
    if n < 1:
        raise ValueError(f"need n >= 1 (got {n})")
    if not 0.0 < miss_probability < 1.0:
        raise ValueError(f"miss_probability must be between 0 and 1 (got {miss_probability})")
    return -math.expm1(math.log(miss_probability) / n)


def rollouts_needed(max_probability: float, confidence: float = 0.95) -> int:
    """How many passing rollouts in a row prove, at ``confidence``, that a
    rollout fails with probability at most ``max_probability``."""
    if not 0.0 < max_probability < 1.0:
        raise ValueError(f"max_probability must be between 0 and 1 (got {max_probability})")
    return math.ceil(math.log(1.0 - confidence) / math.log1p(-max_probability))
