"""The app's own log, one parser for both platforms: a JSON line
``{"ts": unix seconds, "event": ..., ...}`` (what the sample app writes; a
user's app may write anything else, which is skipped) becomes a lifecycle
event on the run clock. ``sigterm_received`` is ``app_shutdown_started``;
every other event is ``app_log`` with the event's name.

Per the clock contract (docs/design.md), a time from elsewhere keeps its
source precision: ``precision_s`` is read from the digits of ``ts`` as
written (``1764131400.071434`` -> 1e-06; ``1764131400`` -> 1.0).
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, NamedTuple

from harness.model.events import EventKind

APP_EVENT_KINDS = {"sigterm_received": EventKind.APP_SHUTDOWN_STARTED}
#: names the event writer takes as its own arguments: never copied from a log line
_RESERVED = frozenset({"t_ns", "pod", "kind", "source", "detail"})
_TS = re.compile(r'"ts"\s*:\s*-?\d+(?:\.(\d+))?')


class AppLogEvent(NamedTuple):
    t_ns: int
    pod: str
    kind: EventKind
    detail: dict[str, Any]  # event, ts, precision_s and the line's other fields


def parse_app_log(line: str) -> dict | None:
    """The JSON record of an app log line; None for anything else."""
    if not line.startswith("{"):
        return None
    try:
        rec = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(rec, dict) or "event" not in rec or not isinstance(rec.get("ts"), (int, float)) \
            or isinstance(rec.get("ts"), bool):
        return None
    return rec


def ts_precision_s(line: str) -> float:
    """The precision of the line's ``ts`` as written: 10^-(fraction digits), at most 1 ns."""
    m = _TS.search(line)
    digits = len(m.group(1)) if m and m.group(1) else 0
    return 10.0 ** -min(digits, 9)


def app_log_event(line: str, *, pod: str, from_wall_s: Callable[[float], int]) -> AppLogEvent | None:
    """The event for one line of ``pod``'s log (the line's own ``pod`` field,
    when it has one, names the pod); None for lines that are not events."""
    rec = parse_app_log(line)
    if rec is None:
        return None
    event = str(rec["event"])
    detail = {k: v for k, v in rec.items() if k not in _RESERVED and k not in ("event", "ts")}
    detail.update(event=event, ts=rec["ts"], precision_s=ts_precision_s(line))
    return AppLogEvent(from_wall_s(float(rec["ts"])), str(rec.get("pod") or pod),
                       APP_EVENT_KINDS.get(event, EventKind.APP_LOG), detail)
