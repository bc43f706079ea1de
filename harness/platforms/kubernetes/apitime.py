"""Kubernetes timestamps, kept with their precision.

The API serves ``Time`` fields (creationTimestamp, conditions, container
states) to the second and ``MicroTime`` fields (Event.eventTime, lease
renewals) to the microsecond; annotations such as the EndpointSlice
``last-change-trigger-time`` carry nanoseconds. Lifecycle events are stamped
on arrival with the run clock; the API's own time goes into ``detail`` with
its precision so the analysis knows how far to trust it.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def parse(ts: str | None) -> tuple[int, float] | None:
    """``(wall ns since epoch, precision in seconds)`` or None if absent/unparseable."""
    if not ts:
        return None
    m = _RFC3339.match(ts)
    if not m:
        return None
    base, frac, zone = m.groups()
    zone = "+00:00" if zone == "Z" else zone
    whole = dt.datetime.fromisoformat(base + zone)
    ns = int(whole.timestamp()) * 1_000_000_000
    precision = 1.0
    if frac:
        ns += int(frac[:9].ljust(9, "0"))
        precision = 10.0 ** -min(len(frac), 9)
    return ns, precision


def api_time(ts: str | None, *, clock=None, key: str = "api_time") -> dict[str, Any]:
    """Detail fields for an API timestamp: the text, its precision and, when a
    run clock is given, the same moment on the run clock (``api_t_ns``)."""
    parsed = parse(ts)
    if parsed is None:
        return {}
    wall_ns, precision = parsed
    out: dict[str, Any] = {key: ts, "precision_s": precision}
    if clock is not None:
        out[f"{key.removesuffix('_time')}_t_ns"] = clock.from_wall_ns(wall_ns)
    return out


def rfc3339_now() -> str:
    """Now, as ``kubectl rollout restart`` writes it into restartedAt."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
