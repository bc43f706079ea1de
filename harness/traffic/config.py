"""The engine's settings, its live counters and its result: what callers
(the traffic session, the progress display) exchange with an engine."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from harness.errors import BadInput
from harness.model.outcome import OUTCOME_CODE, OUTCOMES, Outcome
from harness.traffic.http1 import Target

_OK = OUTCOME_CODE[Outcome.OK]
_DROPPED = OUTCOME_CODE[Outcome.DROPPED]


@dataclasses.dataclass
class EngineConfig:
    url: str
    rate: float = 0.0  # req/s; 0 = closed loop (as fast as the connections allow)
    duration: float | None = None  # seconds; None = until stop()
    connections: int = 16  # keep-alive pool size (and closed-loop concurrency)
    new_connection_ratio: float = 0.0  # share of requests on a fresh connection
    connect_timeout: float = 1.0
    read_timeout: float = 5.0
    max_inflight: int = 512
    method: str = "GET"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    pod_header: str = "X-Pod-Name"
    flush_interval: float = 0.5

    @classmethod
    def from_traffic(cls, url: str, traffic: Any, duration: float | None = None) -> "EngineConfig":
        """From a scenario's ``traffic`` section (harness.model.scenario.Traffic)."""
        return cls(url=url, rate=traffic.rate, duration=duration, connections=traffic.connections,
                   new_connection_ratio=traffic.new_connection_ratio, connect_timeout=traffic.connect_timeout,
                   read_timeout=traffic.read_timeout, max_inflight=traffic.max_inflight, method=traffic.method,
                   headers=dict(traffic.headers), pod_header=traffic.pod_header)

    def check(self) -> None:
        problems = []
        if self.rate < 0:
            problems.append(f"rate {self.rate}: must be >= 0 (0 = closed loop)")
        if self.duration is not None and self.duration <= 0:
            problems.append(f"duration {self.duration}: must be > 0 seconds")
        if self.connections < 1:
            problems.append(f"connections {self.connections}: must be >= 1")
        if not 0 <= self.new_connection_ratio <= 1:
            problems.append(f"new connection ratio {self.new_connection_ratio}: must be within 0..1")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            problems.append("timeouts must be > 0 seconds")
        if self.max_inflight < 1:
            problems.append(f"max in-flight {self.max_inflight}: must be >= 1")
        if problems:
            raise BadInput("bad traffic settings: " + "; ".join(problems))
        Target(self.url, method=self.method, headers=self.headers, pod_header=self.pod_header)


class LiveStats:
    """Counters the progress display reads while the engine runs."""

    __slots__ = ("counts", "issued", "lag_max_ns", "inflight", "waiting", "connections")

    def __init__(self) -> None:
        self.counts = [0] * len(OUTCOMES)
        self.issued = 0
        self.lag_max_ns = 0
        self.inflight = 0
        self.waiting = 0
        self.connections = 0

    @property
    def completed(self) -> int:
        return sum(self.counts)

    @property
    def outcomes(self) -> dict[str, int]:
        return {OUTCOMES[i].value: c for i, c in enumerate(self.counts) if c}

    @property
    def failed(self) -> int:
        return self.completed - self.counts[_OK]

    @property
    def dropped(self) -> int:
        return self.counts[_DROPPED]

    def take_lag_max_ms(self) -> float:
        v, self.lag_max_ns = self.lag_max_ns, 0
        return v / 1e6


@dataclasses.dataclass
class EngineResult:
    worker: int
    path: Path
    start_ns: int
    end_ns: int  # when scheduling stopped
    rows: int
    interrupted: bool
    cpu_s: float = 0.0  # process CPU time spent while the engine ran
