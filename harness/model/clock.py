"""The run clock: nanoseconds since the run started, on the system-wide
monotonic clock, so worker processes and the platform share it.

The wall-clock anchor is recorded in the manifest so times from elsewhere
(Kubernetes timestamps, app logs) can be converted on the way in.
"""

from __future__ import annotations

import dataclasses
import time


@dataclasses.dataclass(frozen=True)
class RunClock:
    monotonic_anchor_ns: int
    wall_anchor_ns: int
    #: the monotonic source (a C function: hot paths call it and subtract the anchor
    #: themselves); tests substitute a virtual one in a subclass
    source = staticmethod(time.monotonic_ns)

    @classmethod
    def start(cls) -> "RunClock":
        # Read the two clocks back to back; the pair is the anchor.
        mono = time.monotonic_ns()
        wall = time.time_ns()
        return cls(monotonic_anchor_ns=mono, wall_anchor_ns=wall)

    def now(self) -> int:
        """t_ns: nanoseconds since the run started."""
        return self.source() - self.monotonic_anchor_ns

    def from_wall_ns(self, wall_ns: int) -> int:
        """Convert a wall-clock time (ns since epoch) to run-clock t_ns."""
        return wall_ns - self.wall_anchor_ns

    def from_wall_s(self, wall_s: float) -> int:
        return self.from_wall_ns(int(wall_s * 1e9))

    def to_wall_ns(self, t_ns: int) -> int:
        return self.wall_anchor_ns + t_ns

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunClock":
        return cls(int(d["monotonic_anchor_ns"]), int(d["wall_anchor_ns"]))
