"""Lifecycle events: one JSON line per pod step, on the run clock.

    {"t_ns": 1234, "pod": "api-7f9-x2", "kind": "endpoint_removed",
     "source": "harness", "detail": {...}}

``source`` says who saw it: ``harness`` (the local platform, or the harness
itself), ``kube-watch`` (stamped on arrival from a Kubernetes watch),
``app-log`` (the app's own log line, converted from its wall-clock time).
``detail`` is a dict; times converted from elsewhere keep their source
precision there (``{"api_time": "...", "precision_s": 1}``).
"""

from __future__ import annotations

import enum
import json
import os
import threading
from pathlib import Path
from typing import Any, TypedDict

EVENTS_FILE = "events.jsonl"


class EventKind(enum.StrEnum):
    POD_CREATED = "pod_created"
    SCHEDULED = "scheduled"
    CONTAINER_STARTED = "container_started"
    STARTUP_PROBE_OK = "startup_probe_ok"
    READY = "ready"
    NOT_READY = "not_ready"
    ENDPOINT_ADDED = "endpoint_added"
    ENDPOINT_TERMINATING = "endpoint_terminating"
    ENDPOINT_REMOVED = "endpoint_removed"
    DELETION_REQUESTED = "deletion_requested"
    PRESTOP_STARTED = "prestop_started"
    PRESTOP_FINISHED = "prestop_finished"
    SIGTERM_SENT = "sigterm_sent"
    APP_SHUTDOWN_STARTED = "app_shutdown_started"
    APP_EXITED = "app_exited"
    SIGKILL_SENT = "sigkill_sent"
    POD_DELETED = "pod_deleted"
    ROLLOUT_STARTED = "rollout_started"
    ROLLOUT_COMPLETE = "rollout_complete"
    PROBE_FAILED = "probe_failed"
    # node drains (pod is empty for node steps; detail names the node)
    NODE_CORDONED = "node_cordoned"
    NODE_UNCORDONED = "node_uncordoned"
    EVICTION_REQUESTED = "eviction_requested"
    EVICTION_REFUSED = "eviction_refused"  # 429: the PodDisruptionBudget allows no disruption now
    EVICTED = "evicted"
    FAILED_SCHEDULING = "failed_scheduling"  # Pending: no node fits (detail: reason)
    DRAIN_STARTED = "drain_started"
    DRAIN_COMPLETE = "drain_complete"
    # run phases (pod is empty): the analysis splits baseline / disruption / settle
    PHASE = "phase"
    # app log lines without a kind of their own (listener closed, drained, ...)
    APP_LOG = "app_log"


class SourceKind(enum.StrEnum):
    HARNESS = "harness"
    KUBE_WATCH = "kube-watch"
    APP_LOG = "app-log"


class EventDict(TypedDict):
    t_ns: int
    pod: str
    kind: str
    source: str
    detail: dict[str, Any]


class EventWriter:
    """Append-only events.jsonl; each line is flushed as it is written so a
    crash loses nothing already seen. Safe to call from watch threads."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a", encoding="utf-8", buffering=1)
        self._lock = threading.Lock()
        self.count = 0

    def emit(self, t_ns: int, pod: str, kind: EventKind | str, source: SourceKind | str = SourceKind.HARNESS,
             **detail: Any) -> EventDict:
        ev: EventDict = {"t_ns": int(t_ns), "pod": pod, "kind": str(kind), "source": str(source), "detail": detail}
        line = json.dumps(ev, separators=(",", ":"), default=str)
        with self._lock:
            if self._f.closed:
                return ev
            self._f.write(line + "\n")
            self.count += 1
        return ev

    def close(self) -> None:
        with self._lock:
            if not self._f.closed:
                self._f.close()


def read_events(run_dir_or_file: str | os.PathLike) -> list[EventDict]:
    """Events in time order. A torn last line (crash mid-write) is skipped."""
    p = Path(run_dir_or_file)
    if p.is_dir():
        p = p / EVENTS_FILE
    if not p.exists():
        return []
    out: list[EventDict] = []
    with open(p, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                continue
            ev.setdefault("detail", {})
            out.append(ev)
    out.sort(key=lambda e: e["t_ns"])
    return out
