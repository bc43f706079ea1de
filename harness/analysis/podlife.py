"""Each pod's life as the events recorded it: when it started, was ready,
was visible to the traffic path, was deleted, got its preStop, stop signal,
shutdown and exit — and from that, the phase of the pod at any moment.

Phases (the words the report uses):

    starting      created, but not yet serving: before the kubelet marked it
                  ready, or before the app itself was warm (its own "ready"
                  log line, or failing that its first successful answer)
    ready         serving and in the endpoints
    terminating   deletion requested but still in the endpoints the traffic
                  path uses: new connections still land on it
    draining      out of the endpoints, process still running
    killed        the request was in flight when the pod got SIGKILL
    gone          the process had exited
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

import numpy as np

from harness.model.events import EventDict, EventKind, SourceKind

NEVER = np.iinfo(np.int64).max
#: how long after a watched endpoint removal the traffic path may still route
#: to the pod: a cluster's kube-proxy applies the EndpointSlice change some
#: time after the watch saw it (the local platform records the proxy's own view)
WATCHED_PROXY_LAG_NS = 1_000_000_000
PHASE_NAMES = ("starting", "ready", "terminating", "draining", "killed", "gone")

# app log lines (detail "event", as the sample app writes them; other apps'
# wording is matched loosely) -> PodLife field
_APP_EVENTS = {
    "listening": "listening",
    "ready": "app_ready",
    "draining": "draining",
    "listener_closed": "listener_closed",
    "inflight_drained": "drained",
    "exiting": "exiting",
}
_LISTENER_CLOSED_WORDS = ("listener closed", "stopped accepting", "server closed")


@dataclasses.dataclass
class PodLife:
    name: str
    created: int | None = None
    started: int | None = None
    #: the app said it listens (app log)
    listening: int | None = None
    #: the kubelet's readiness (first ``ready`` from the platform)
    ready: int | None = None
    #: the app's own word that it is warm (app log), when it says so
    app_ready: int | None = None
    #: first successful answer the pod gave (from the request records)
    first_ok: int | None = None
    #: when the last request the pod answered successfully was sent (from the request records)
    last_ok_sent: int | None = None
    deletion: int | None = None
    prestop_started: int | None = None
    prestop_finished: int | None = None
    stop_signal: int | None = None
    shutdown_started: int | None = None
    draining: int | None = None
    listener_closed: int | None = None
    drained: int | None = None
    #: the app's own last word before exiting (app log)
    exiting: int | None = None
    #: requests the app said it was serving when it closed its listener (app log, when it says)
    inflight_at_close: int | None = None
    exited: int | None = None
    exit_code: int | None = None
    sigkill: int | None = None
    deleted: int | None = None
    #: [added, removed) intervals in which the traffic path could route new
    #: connections to this pod
    endpoint_intervals: list[tuple[int, int]] = dataclasses.field(default_factory=list)
    #: the ingress proxy's own view (events with detail hop=ingress): when it
    #: last started / stopped routing to the pod
    ingress_added: int | None = None
    ingress_removed: int | None = None
    #: slack after an endpoint removal (0 when the events are the proxy's own view)
    endpoint_slack_ns: int = 0
    #: how prestop_finished (and the stop signal) were inferred when no event
    #: recorded them (a cluster reports neither); None when recorded
    prestop_end_source: str | None = None

    @property
    def endpoint_added(self) -> int | None:
        return self.endpoint_intervals[0][0] if self.endpoint_intervals else None

    @property
    def endpoint_removed(self) -> int | None:
        """The last removal from the traffic path (None while still in it)."""
        if not self.endpoint_intervals or self.endpoint_intervals[-1][1] == NEVER:
            return None
        return self.endpoint_intervals[-1][1]

    @property
    def serving_from(self) -> int | None:
        """When the pod could first serve: the later of kubelet-ready and
        app-warm (app log, else its first successful answer)."""
        app = self.app_ready if self.app_ready is not None else self.first_ok
        marks = [t for t in (self.ready, app) if t is not None]
        return max(marks) if marks else None

    @property
    def not_accepting_from(self) -> int | None:
        """When the pod stopped accepting new connections (listener closed
        or process exited), as far as the events tell."""
        marks = [t for t in (self.listener_closed, self.exiting, self.exited) if t is not None]
        return min(marks) if marks else None

    @property
    def end(self) -> int | None:
        """When the process ended (its own last word, or the kubelet saw it exit)."""
        marks = [t for t in (self.exiting, self.exited) if t is not None]
        return min(marks) if marks else None

    @property
    def drained_gracefully(self) -> bool:
        """The app logged a drain of its own (it has a shutdown handler)."""
        return any(t is not None for t in (self.draining, self.listener_closed, self.drained))

    def visible_mask(self, t: np.ndarray, tol_ns: int = 0) -> np.ndarray:
        out = np.zeros(len(t), dtype=bool)
        for lo, hi in self.endpoint_intervals:
            out |= (t >= lo - tol_ns) & (t < (hi if hi == NEVER else hi + tol_ns + self.endpoint_slack_ns))
        return out

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["endpoint_intervals"] = [[lo, None if hi == NEVER else hi] for lo, hi in self.endpoint_intervals]
        d.pop("endpoint_slack_ns")
        d.pop("prestop_end_source")
        return d


def _first(cur: int | None, t: int) -> int:
    return t if cur is None else cur


def _text(detail: dict[str, Any]) -> str:
    parts = [str(detail.get(k, "")) for k in ("event", "msg", "message", "what", "step")]
    return " ".join(parts).lower()


def _apply(p: PodLife, ev: EventDict) -> None:
    t, kind, detail = int(ev["t_ns"]), ev["kind"], ev.get("detail") or {}
    from_app = ev.get("source") == SourceKind.APP_LOG
    if detail.get("hop") == "ingress":  # the ingress's view is a hop of its own
        if kind == EventKind.ENDPOINT_ADDED:
            p.ingress_added = _first(p.ingress_added, t)
        elif kind == EventKind.ENDPOINT_REMOVED:
            p.ingress_removed = t
        return
    if kind == EventKind.POD_CREATED:
        p.created = _first(p.created, t)
    elif kind == EventKind.CONTAINER_STARTED:
        p.started = _first(p.started, t)
    elif kind == EventKind.READY:
        if from_app:
            p.app_ready = _first(p.app_ready, t)
        else:
            p.ready = _first(p.ready, t)
    elif kind == EventKind.ENDPOINT_ADDED:
        if not p.endpoint_intervals or p.endpoint_intervals[-1][1] != NEVER:
            p.endpoint_intervals.append((t, NEVER))
    elif kind == EventKind.ENDPOINT_REMOVED:
        if p.endpoint_intervals and p.endpoint_intervals[-1][1] == NEVER:
            p.endpoint_intervals[-1] = (p.endpoint_intervals[-1][0], t)
        if ev.get("source") == SourceKind.KUBE_WATCH:
            p.endpoint_slack_ns = WATCHED_PROXY_LAG_NS
    elif kind == EventKind.DELETION_REQUESTED:
        p.deletion = _first(p.deletion, t)
    elif kind == EventKind.PRESTOP_STARTED:
        p.prestop_started = _first(p.prestop_started, t)
    elif kind == EventKind.PRESTOP_FINISHED:
        p.prestop_finished = _first(p.prestop_finished, t)
    elif kind == EventKind.SIGTERM_SENT:
        p.stop_signal = _first(p.stop_signal, t)
    elif kind == EventKind.APP_SHUTDOWN_STARTED:
        p.shutdown_started = _first(p.shutdown_started, t)
    elif kind == EventKind.APP_EXITED:
        p.exited = _first(p.exited, t)
        if p.exit_code is None and detail.get("exit_code", detail.get("code")) is not None:
            try:
                p.exit_code = int(detail.get("exit_code", detail.get("code")))
            except (TypeError, ValueError):
                pass
    elif kind == EventKind.SIGKILL_SENT:
        p.sigkill = _first(p.sigkill, t)
    elif kind == EventKind.POD_DELETED:
        p.deleted = _first(p.deleted, t)
    elif kind == EventKind.APP_LOG:
        field = _APP_EVENTS.get(str(detail.get("event", "")))
        if field is None and any(w in _text(detail) for w in _LISTENER_CLOSED_WORDS):
            field = "listener_closed"
        if field is not None:
            setattr(p, field, _first(getattr(p, field), t))
        if field == "listener_closed" and p.inflight_at_close is None and isinstance(detail.get("inflight"), int):
            p.inflight_at_close = int(detail["inflight"])


def pod_lives(events: Iterable[EventDict]) -> dict[str, PodLife]:
    """PodLife per pod name, in order of first appearance."""
    pods: dict[str, PodLife] = {}
    for ev in events:
        name = ev.get("pod") or ""
        if not name:
            continue
        p = pods.get(name)
        if p is None:
            p = pods[name] = PodLife(name=name)
        _apply(p, ev)
    for p in pods.values():
        if p.created is None:
            p.created = p.started
    return pods


def infer_prestop_end(pods: dict[str, PodLife], prestop_seconds: float | None) -> None:
    """A cluster reports when the kubelet began a pod's termination (the
    Killing event: preStop started) but neither the preStop's end nor the
    stop signal, which follows it at once. Infer them, best evidence first:
    the app's own shutdown log line (it got the signal), the preStop's
    duration from the spec (capped at the end), the process's end."""
    for p in pods.values():
        if p.prestop_started is None or p.prestop_finished is not None:
            continue
        if p.stop_signal is not None and p.stop_signal >= p.prestop_started:
            t, src = p.stop_signal, "stop signal"
        elif p.shutdown_started is not None and p.shutdown_started >= p.prestop_started:
            t, src = p.shutdown_started, "the app's shutdown log line"
        elif prestop_seconds is not None:
            t, src = p.prestop_started + int(prestop_seconds * 1e9), "the preStop's duration in the spec"
            if p.end is not None and p.end < t:
                t, src = p.end, "the process's end (before the spec's preStop duration)"
        elif p.end is not None:
            t, src = p.end, "the process's end (the preStop's duration is not in the spec)"
        else:
            continue
        p.prestop_finished, p.prestop_end_source = int(t), src
        if p.stop_signal is None and (p.end is None or t < p.end):
            p.stop_signal = int(t)


def set_first_ok(pods: dict[str, PodLife], first_ok: dict[str, int],
                 last_ok_sent: dict[str, int] | None = None) -> None:
    for name, t in first_ok.items():
        if name in pods:
            pods[name].first_ok = int(t)
    for name, t in (last_ok_sent or {}).items():
        if name in pods:
            pods[name].last_ok_sent = int(t)


def phase_at(pod: PodLife, t: np.ndarray, sent: np.ndarray, ended: np.ndarray, tol_ns: int) -> np.ndarray:
    """Phase index (into PHASE_NAMES) of ``pod`` for failures judged at ``t``
    (connect time for refused, end time for the rest) that were in flight
    over [sent, ended]."""
    def v(x: int | None) -> int:
        return NEVER if x is None else int(x)

    serving = v(pod.serving_from)
    deletion = v(pod.deletion)
    removed = v(pod.endpoint_removed) if pod.deletion is not None else NEVER
    if removed != NEVER:
        removed += pod.endpoint_slack_ns
    if pod.deletion is not None and pod.ingress_removed is not None:  # the slower hop decides
        removed = max(removed if removed != NEVER else 0, int(pod.ingress_removed))
    exited = v(pod.end)
    sigkill = v(pod.sigkill)
    sent_eff = np.where(sent >= 0, sent, t)
    killed = (sigkill != NEVER) & (sent_eff <= sigkill + tol_ns) & (ended >= sigkill - tol_ns)
    # a request cut by the process exit is judged just before the exit
    cut = (exited != NEVER) & (sent_eff <= exited + tol_ns) & (ended >= exited - tol_ns)
    t_eval = np.where(cut, np.minimum(t, exited - 1), t)
    conds = [
        killed,
        t_eval < serving,
        (t_eval >= deletion) & (t_eval < removed),
        t_eval >= exited,
        t_eval >= deletion,
    ]
    choices = [PHASE_NAMES.index(x) for x in ("killed", "starting", "terminating", "gone", "draining")]
    return np.select(conds, choices, default=PHASE_NAMES.index("ready")).astype(np.int8)
