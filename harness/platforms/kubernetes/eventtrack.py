"""From Kubernetes Events to the kubelet's side of a pod's lifecycle.

The Pod object does not say when the kubelet began to stop a container or
why a probe failed; the kubelet's Events do:

- ``Killing`` ("Stopping container app"): termination began. The kubelet
  runs the preStop hook first and sends the stop signal after it, so this is
  ``prestop_started`` for a pod with a preStop hook and ``sigterm_sent``
  for one without.
- ``Unhealthy`` ("Readiness probe failed: ..."): ``probe_failed``.
- ``FailedPreStopHook``: ``prestop_finished`` with ``ok: false``.

An Event is one object whose ``count`` (or ``series.count``) grows as the
same thing happens again; each growth is one more occurrence. Events from
before the run (``since_wall_ns``) are history, not part of this run.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from harness.model.events import EventKind as K
from harness.platforms.kubernetes import apitime
from harness.platforms.kubernetes.podtrack import Step

_PROBES = ("Startup", "Readiness", "Liveness")


def _count(ev: dict) -> int:
    series = ev.get("series") or {}
    return int(series.get("count") or ev.get("count") or 1)


def _when(ev: dict) -> str | None:
    series = ev.get("series") or {}
    return series.get("lastObservedTime") or ev.get("eventTime") or ev.get("lastTimestamp") \
        or ev.get("firstTimestamp")


class EventTracker:
    def __init__(self, *, has_prestop: Callable[[str], bool], since_wall_ns: int = 0,
                 accept_pod: Callable[[str], bool] = lambda name: True, clock=None):
        self._has_prestop = has_prestop
        self._since = since_wall_ns
        self._accept = accept_pod
        self._clock = clock
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def update(self, ev: dict, *, listed: bool = False) -> list[Step]:
        obj = ev.get("involvedObject") or ev.get("regarding") or {}
        if obj.get("kind") != "Pod" or not self._accept(obj.get("name", "")):
            return []
        when = _when(ev)
        parsed = apitime.parse(when)
        if parsed and parsed[0] < self._since:
            return []  # history from before this run
        uid = ev.get("metadata", {}).get("uid", "")
        count = _count(ev)
        with self._lock:
            if self._counts.get(uid, 0) >= count:
                return []  # seen already (duplicate, re-list, or an older copy)
            self._counts[uid] = count
        return self._step(obj.get("name", ""), ev, when, count)

    def deleted(self, ev: dict, *, missed: bool = False) -> list[Step]:
        return []  # Events expire; their deletion says nothing about the pod

    def _step(self, pod: str, ev: dict, when: str | None, count: int) -> list[Step]:
        reason = ev.get("reason", "")
        message = ev.get("message") or ev.get("note") or ""
        detail: dict[str, Any] = {"reason": reason, "message": message, "count": count,
                                  **apitime.api_time(when, clock=self._clock)}
        if reason == "Killing":
            kind = K.PRESTOP_STARTED if self._has_prestop(pod) else K.SIGTERM_SENT
            return [Step(pod, kind, detail)]
        if reason == "Unhealthy":
            detail["probe"] = next((p.lower() for p in _PROBES if message.startswith(p)), "")
            return [Step(pod, K.PROBE_FAILED, detail)]
        if reason == "FailedPreStopHook":
            return [Step(pod, K.PRESTOP_FINISHED, {**detail, "ok": False})]
        return []
