"""The open-loop schedule, as pure functions (no clock, no sleeping).

Request ``seq`` (global, across workers) is due at ``seq * 1e9 / rate`` ns
after the traffic start; worker ``w`` of ``n`` owns the seqs ``w, w+n, ...``,
so the merged schedule of all workers is exactly the single-worker one.
Latency counts from the scheduled time (wrk2's correction of coordinated
omission), so a late send shows up as latency and as send lag, never hidden.
"""

from __future__ import annotations


def interval_ns(rate: float) -> float:
    if rate <= 0:
        raise ValueError("open-loop rate must be > 0 (0 means closed loop)")
    return 1e9 / rate


def scheduled_ns(seq: int, *, start_ns: int, rate: float) -> int:
    return start_ns + int(seq * 1e9 / rate)


def last_seq_before(end_ns: int, *, start_ns: int, rate: float) -> int:
    """Number of global seqs due strictly before ``end_ns`` (the schedule length)."""
    if end_ns <= start_ns:
        return 0
    span = end_ns - start_ns
    n = int(span * rate / 1e9)
    # guard float rounding at the boundary
    while scheduled_ns(n, start_ns=start_ns, rate=rate) < end_ns:
        n += 1
    while n > 0 and scheduled_ns(n - 1, start_ns=start_ns, rate=rate) >= end_ns:
        n -= 1
    return n


def uses_new_connection(seq: int, ratio: float) -> bool:
    """Spread new-connection requests evenly: seq uses a new connection when
    floor((seq+1)*ratio) > floor(seq*ratio). Deterministic and exact over any
    window: n consecutive seqs hold round(n*ratio) +- 1 of them."""
    if ratio <= 0:
        return False
    if ratio >= 1:
        return True
    return int((seq + 1) * ratio) > int(seq * ratio)
