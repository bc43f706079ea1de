"""Live progress for `run` and `load` (one renderer): elapsed time, an
optional status line (the run's phase and rollout state), then the traffic:
rate, failures by outcome, send lag, connections.

On a terminal it is a rich live block refreshed 4 times a second; otherwise
(CI logs) a plain block every few seconds, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, Sequence

from rich.console import Console
from rich.live import Live
from rich.text import Text

from harness.model.outcome import OUTCOMES, Outcome

_OK = OUTCOMES.index(Outcome.OK)


class Snapshot:
    """The traffic counters at one moment, summed over the workers."""

    __slots__ = ("issued", "completed", "counts", "lag_max_ms", "connections")

    def __init__(self, issued=0, completed=0, counts: Sequence[int] = (), lag_max_ms=0.0, connections=0):
        self.issued = issued
        self.completed = completed
        self.counts = list(counts) or [0] * len(OUTCOMES)
        self.lag_max_ms = lag_max_ms
        self.connections = connections

    @classmethod
    def from_shared(cls, slots: list) -> "Snapshot":
        """From the workers' shared counters (harness.traffic.workers.publish_live)."""
        snap = cls()
        for s in slots:
            snap.issued += s[0]
            snap.completed += s[1]
            snap.lag_max_ms = max(snap.lag_max_ms, s[2] / 1e6)
            s[2] = 0
            snap.connections += s[3]
            for i in range(len(OUTCOMES)):
                snap.counts[i] += s[4 + i]
        return snap

    @classmethod
    def from_live(cls, live) -> "Snapshot":
        return cls(live.issued, live.completed, live.counts, live.take_lag_max_ms(), live.connections)

    @property
    def failed(self) -> int:
        return self.completed - self.counts[_OK]


class Progress:
    """``update(snapshot)`` about 4 times a second; ``status()`` (if given)
    supplies the text after the elapsed time, e.g. the run's phase."""

    def __init__(self, *, label: str = "load", duration: float | None = None, asked_rate: float | None = None,
                 status: Callable[[], str] | None = None, console: Console | None = None,
                 plain_every_s: float = 5.0, transient: bool = False):
        self.console = console or Console(file=sys.stderr)
        self.label = label
        self.duration = duration
        self.asked_rate = asked_rate
        self.status = status
        self.transient = transient
        self.t0 = time.monotonic()
        self._last = (self.t0, 0)
        self._rate = 0.0
        self._lag = 0.0
        self._plain_every = plain_every_s
        self._last_plain = self.t0
        self._live: Live | None = None

    def __enter__(self) -> "Progress":
        if self.console.is_terminal:
            self._live = Live(Text(""), console=self.console, refresh_per_second=4, transient=self.transient)
            self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self, note: str | None = None) -> None:
        """Stop refreshing (idempotent); ``note`` is printed after a live block."""
        if self._live is not None:
            live, self._live = self._live, None
            live.__exit__(None, None, None)
            if note:
                self.console.print(note, style="dim")

    def text(self, snap: Snapshot | None) -> Text:
        now = time.monotonic()
        t = Text()
        t.append(f"{self.label} ", style="bold")
        t.append(f"{now - self.t0:5.1f}s" + (f"/{self.duration:g}s" if self.duration else "") + "  ")
        if self.status is not None:
            t.append(self.status(), style="cyan")
        if snap is None:
            return t
        t_last, c_last = self._last
        if now - t_last >= 0.5:
            self._rate = (snap.completed - c_last) / (now - t_last)
            self._last = (now, snap.completed)
            self._lag = snap.lag_max_ms
        else:
            self._lag = max(self._lag, snap.lag_max_ms)
        t.append("\n  " if self.status is not None else "")
        t.append(f"{self._rate:8.0f} req/s" + (f" of {self.asked_rate:g}" if self.asked_rate else "")
                 + f"  {snap.completed:>9,} done  ")
        failed = snap.failed
        t.append(f"{failed:,} failed", style="red" if failed else "green")
        if failed:
            parts = [f"{OUTCOMES[i].value} {c:,}" for i, c in enumerate(snap.counts) if c and i != _OK]
            t.append(" (" + ", ".join(parts) + ")", style="red")
        t.append(f"  lag max {self._lag:.1f} ms  conns {snap.connections}")
        return t

    def update(self, snap: Snapshot | None) -> None:
        text = self.text(snap)
        if self._live is not None:
            self._live.update(text)
        elif time.monotonic() - self._last_plain >= self._plain_every:
            self._last_plain = time.monotonic()
            self.console.print(text, soft_wrap=True)
