"""One clock for many generators: each generator's monotonic clock is mapped
to the run clock by an NTP-style exchange, and its records are converted on
the way in, so the analysis never sees two clocks.

One exchange: the harness notes ``t_send`` (run clock), the generator
answers with its own clock ``t_gen``, the harness notes ``t_recv``. If the
two legs took equally long, ``t_gen`` was read at ``(t_send + t_recv) / 2``
on the run clock, so ``offset = t_gen - (t_send + t_recv) / 2`` and
``t_run = t_gen - offset``. The legs are unknown, but each is at least 0,
so the true offset lies within ``rtt / 2`` of the estimate: that is the
uncertainty. Of several exchanges the one with the smallest round trip
gives the tightest bound. Exchanges at the start and at the end of the run
show the drift between the two clocks over the run.

Pure functions; tested with tables (tests/traffic/test_clocksync.py).
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence


@dataclasses.dataclass(frozen=True)
class Exchange:
    t_send: int  # run clock, ns
    t_gen: int  # the generator's clock, ns
    t_recv: int  # run clock, ns

    @property
    def rtt(self) -> int:
        return self.t_recv - self.t_send

    @property
    def offset(self) -> int:
        return self.t_gen - (self.t_send + self.t_recv) // 2


@dataclasses.dataclass(frozen=True)
class ClockEstimate:
    offset_ns: int  # generator clock - run clock
    uncertainty_ns: int  # |true offset - offset_ns| <= this
    rtt_ns: int
    samples: int
    at_ns: int  # run clock of the exchange used

    def to_run(self, t_gen: int) -> int:
        return t_gen - self.offset_ns

    def to_gen(self, t_run: int) -> int:
        return t_run + self.offset_ns

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def estimate(exchanges: Iterable[Exchange]) -> ClockEstimate:
    """The offset from the exchange with the smallest round trip."""
    xs = [x for x in exchanges if x.rtt >= 0]
    if not xs:
        raise ValueError("no clock exchange completed")
    best = min(xs, key=lambda x: x.rtt)
    return ClockEstimate(offset_ns=best.offset, uncertainty_ns=(best.rtt + 1) // 2, rtt_ns=best.rtt,
                         samples=len(xs), at_ns=(best.t_send + best.t_recv) // 2)


@dataclasses.dataclass(frozen=True)
class Drift:
    """Start and end estimates of one generator's clock."""

    start: ClockEstimate
    end: ClockEstimate | None

    @property
    def drift_ns(self) -> int | None:
        """How far the offset moved over the run (end - start)."""
        return None if self.end is None else self.end.offset_ns - self.start.offset_ns

    @property
    def uncertainty_ns(self) -> int:
        """How far a record's time, converted with the start estimate (as
        records are, on arrival), can be from the truth anywhere in the run.
        At the start: the start bound. At the end the true offset is within
        the end bound of the end estimate, so the start estimate is off by at
        most |end - start| + the end bound; with a steady drift, in between
        it is off by no more than at one of the two ends."""
        if self.end is None:
            return self.start.uncertainty_ns
        return max(self.start.uncertainty_ns, abs(self.drift_ns or 0) + self.end.uncertainty_ns)

    def as_dict(self) -> dict:
        return {"start": self.start.as_dict(), "end": None if self.end is None else self.end.as_dict(),
                "drift_ns": self.drift_ns, "uncertainty_ns": self.uncertainty_ns}


def worst_uncertainty(drifts: Sequence[Drift]) -> int:
    return max((d.uncertainty_ns for d in drifts), default=0)
