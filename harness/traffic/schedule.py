"""The open-loop schedule, as pure functions (no clock, no sleeping).

Request ``seq`` (global, across workers) is due at ``seq * 1e9 / rate`` ns
after the traffic start; worker ``w`` of ``n`` owns the seqs ``w, w+n, ...``,
so the merged schedule of all workers is exactly the single-worker one.
Latency counts from the scheduled time (wrk2's correction of coordinated
omission), so a late send shows up as latency and as send lag, never hidden.
"""

from __future__ import annotations


def scheduled_ns(seq: int, *, start_ns: int, rate: float) -> int:
    return start_ns + int(seq * 1e9 / rate)


def uses_new_connection(seq: int, ratio: float) -> bool:
    """Spread new-connection requests evenly: seq uses a new connection when
    floor((seq+1)*ratio) > floor(seq*ratio). Deterministic and exact over any
    window: n consecutive seqs hold round(n*ratio) +- 1 of them."""
    if ratio <= 0:
        return False
    if ratio >= 1:
        return True
    return int((seq + 1) * ratio) > int(seq * ratio)
