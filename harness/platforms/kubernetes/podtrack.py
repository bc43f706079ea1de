"""From a stream of Pod objects to the pod lifecycle steps they reveal.

A watch delivers whole objects, not changes; ``PodTracker`` remembers what
it has already reported per pod (by uid) and turns each newer object into
the steps that appeared since: created, scheduled, container started,
startup probe passed, Ready true/false, deletion requested (the
deletionTimestamp appears), container exited (exit code and reason), pod
deleted. Feeding it the same object twice, or an object from a re-list,
reports nothing new, so resumed and re-listed watches never duplicate steps.

It also keeps, per pod name, when its deletion and its end (a container
terminated during the deletion, or the pod object gone) were seen: the
platform closes the disruption only once every deleted pod has ended.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

from harness.model.events import EventKind as K
from harness.platforms.kubernetes import apitime


#: a container waiting for one of these cannot start until the user fixes the image (bad input)
IMAGE_PROBLEMS = ("ErrImageNeverPull", "ErrImagePull", "ImagePullBackOff", "InvalidImageName")
#: waiting reasons that mean the pod will not start by itself
WAITING_PROBLEMS = IMAGE_PROBLEMS + ("CreateContainerConfigError", "CrashLoopBackOff")


class Step(NamedTuple):
    """One lifecycle step of a pod, as a tracker saw it (becomes an event)."""

    pod: str
    kind: K
    detail: dict[str, Any]
    #: a step inferred after the fact carries its own time; None: stamped on arrival
    at_ns: int | None = None


@dataclass
class _PodState:
    name: str
    ready: bool | None = None
    scheduled: bool = False
    deletion: bool = False
    started_at: dict[str, str] = field(default_factory=dict)  # container -> running.startedAt
    startup_ok: set[str] = field(default_factory=set)
    exited: set[str] = field(default_factory=set)  # containerID (or name+finishedAt)
    running: set[str] = field(default_factory=set)  # containers running now
    has_prestop: bool = False
    phase: str = ""
    deletion_seen_ns: int | None = None
    grace_s: float | None = None
    #: containers of the spec, and those seen terminated since the deletion
    spec_containers: set[str] = field(default_factory=set)
    ended_containers: set[str] = field(default_factory=set)


@dataclass
class Termination:
    """A deleted pod's end as the watch saw it (run clock, on arrival)."""

    pod: str
    deletion_seen_ns: int | None = None
    grace_s: float | None = None
    #: a container terminated during the deletion, or the pod object went away
    ended: bool = False
    how: str = ""


def _condition(pod: dict, ctype: str) -> dict | None:
    for c in pod.get("status", {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def _container_spec(pod: dict) -> dict[str, dict]:
    return {c.get("name", ""): c for c in pod.get("spec", {}).get("containers") or []}


class PodTracker:
    """Feed ``update(obj)`` / ``deleted(obj)``; each returns the new steps.

    ``on_container_started(pod, container)`` is called for each container
    start (the platform starts following its log there).
    """

    def __init__(self, *, clock=None, on_container_started: Callable[[str, str], None] | None = None,
                 now: Callable[[], int] | None = None):
        self._clock = clock
        self._now = now or (clock.now if clock is not None else None)
        self._pods: dict[str, _PodState] = {}
        self._lock = threading.Lock()
        self._on_started = on_container_started
        self._waiting: dict[str, str] = {}
        self._prestop: dict[str, bool] = {}  # by pod name, kept after deletion
        self._ends: dict[str, Termination] = {}  # by pod name, kept after deletion

    # -- queries (any thread)
    def ready_pods(self) -> set[str]:
        with self._lock:
            return {p.name for p in self._pods.values() if p.ready and not p.deletion}

    def live_pods(self) -> set[str]:
        with self._lock:
            return {p.name for p in self._pods.values()}

    def has_prestop(self, pod: str) -> bool:
        with self._lock:
            return self._prestop.get(pod, False)

    def container_running(self, pod: str, container: str) -> bool:
        with self._lock:
            return any(p.name == pod and container in p.running for p in self._pods.values())

    def terminations(self) -> dict[str, Termination]:
        """Every pod whose deletion or end was seen, by name (copies)."""
        with self._lock:
            return {k: Termination(**vars(v)) for k, v in self._ends.items()}

    def _end(self, name: str, how: str) -> None:
        t = self._ends.setdefault(name, Termination(name))
        if not t.ended:
            t.ended, t.how = True, how

    def waiting_problems(self) -> dict[str, str]:
        """Pods whose container waits for a reason that will not fix itself."""
        with self._lock:
            return dict(self._waiting)

    # -- feeding (the watch thread)
    def update(self, pod: dict, *, listed: bool = False) -> list[Step]:
        meta = pod.get("metadata", {})
        uid, name = meta.get("uid", meta.get("name", "")), meta.get("name", "")
        steps: list[Step] = []
        started: list[tuple[str, str]] = []
        with self._lock:
            st = self._pods.get(uid)
            if st is None:
                st = self._pods[uid] = _PodState(name=name)
                steps.append(Step(name, K.POD_CREATED, {
                    **apitime.api_time(meta.get("creationTimestamp"), clock=self._clock),
                    **({"listed": True} if listed else {}),
                    "node": pod.get("spec", {}).get("nodeName", ""),
                    "pod_template_hash": meta.get("labels", {}).get("pod-template-hash", "")}))
            st.has_prestop = any((c.get("lifecycle") or {}).get("preStop")
                                 for c in _container_spec(pod).values())
            st.spec_containers = set(_container_spec(pod)) - {""}
            self._prestop[name] = st.has_prestop
            st.phase = pod.get("status", {}).get("phase", "")
            steps += self._scheduled(st, pod)
            steps += self._deletion(st, pod)
            steps += self._containers(st, pod, started)
            steps += self._readiness(st, pod)
        if self._on_started:
            for pod_name, container in started:
                self._on_started(pod_name, container)
        return steps

    def deleted(self, pod: dict, *, missed: bool = False) -> list[Step]:
        steps = self.update(pod)
        meta = pod.get("metadata", {})
        with self._lock:
            st = self._pods.pop(meta.get("uid", meta.get("name", "")), None)
            self._waiting.pop(meta.get("name", ""), None)
        if st is not None:
            steps.append(Step(st.name, K.POD_DELETED, {"missed_on_watch": True} if missed else {}))
            with self._lock:
                self._end(st.name, "pod deleted")
        return steps

    # -- transitions
    def _scheduled(self, st: _PodState, pod: dict) -> list[Step]:
        cond = _condition(pod, "PodScheduled")
        if st.scheduled or not (cond and cond.get("status") == "True"):
            return []
        st.scheduled = True
        return [Step(st.name, K.SCHEDULED, {"node": pod.get("spec", {}).get("nodeName", ""),
                                            **apitime.api_time(cond.get("lastTransitionTime"),
                                                               clock=self._clock)})]

    def _containers(self, st: _PodState, pod: dict, started: list[tuple[str, str]]) -> list[Step]:
        steps: list[Step] = []
        specs = _container_spec(pod)
        self._waiting.pop(st.name, None)
        for cs in pod.get("status", {}).get("containerStatuses") or []:
            cname = cs.get("name", "")
            state = cs.get("state") or {}
            for terminated in ((cs.get("lastState") or {}).get("terminated"), state.get("terminated")):
                if terminated:
                    steps += self._exited(st, cname, terminated)
            running = state.get("running")
            if running:
                st.running.add(cname)
            else:
                st.running.discard(cname)
            if running and st.started_at.get(cname) != running.get("startedAt"):
                st.started_at[cname] = running.get("startedAt")
                steps.append(Step(st.name, K.CONTAINER_STARTED, {
                    "container": cname, "restart_count": cs.get("restartCount", 0),
                    **apitime.api_time(running.get("startedAt"), clock=self._clock)}))
                started.append((st.name, cname))
            if (cs.get("started") and (specs.get(cname) or {}).get("startupProbe")
                    and cname not in st.startup_ok):
                st.startup_ok.add(cname)
                steps.append(Step(st.name, K.STARTUP_PROBE_OK, {"container": cname}))
            reason = (state.get("waiting") or {}).get("reason", "")
            if reason in WAITING_PROBLEMS:
                self._waiting[st.name] = f"{reason}: {(state.get('waiting') or {}).get('message', '')}".strip()
        return steps

    def _exited(self, st: _PodState, cname: str, term: dict) -> list[Step]:
        key = term.get("containerID") or f"{cname}@{term.get('finishedAt')}"
        if key in st.exited:
            return []
        st.exited.add(key)
        detail = {"container": cname, "exit_code": term.get("exitCode"), "reason": term.get("reason", ""),
                  **apitime.api_time(term.get("finishedAt"), clock=self._clock)}
        if term.get("signal"):
            detail["signal"] = term["signal"]
        if term.get("startedAt"):
            detail["started_at"] = term["startedAt"]
        if st.deletion:
            # the pod has ended once every container of its spec has (a sidecar alone is not the app)
            st.ended_containers.add(cname)
            if st.spec_containers <= st.ended_containers:
                self._end(st.name, f"container(s) {', '.join(sorted(st.ended_containers))} terminated")
        return [Step(st.name, K.APP_EXITED, detail)] + self._sigkilled(st, term)

    def _sigkilled(self, st: _PodState, term: dict) -> list[Step]:
        """The kubelet reports no SIGKILL; exit code 137 (128 + 9) during a
        deletion means the grace period ran out, and the kubelet's grace timer
        started as the deletion was seen: SIGKILL at deletion + grace period."""
        if (term.get("exitCode") != 137 or term.get("reason") == "OOMKilled" or not st.deletion
                or st.deletion_seen_ns is None or st.grace_s is None or self._now is None):
            return []
        at = min(st.deletion_seen_ns + int(st.grace_s * 1e9), self._now())
        return [Step(st.name, K.SIGKILL_SENT, {"estimated": "deletion seen + grace period (exit code 137)",
                                               "grace_period_seconds": st.grace_s}, at_ns=at)]

    def _readiness(self, st: _PodState, pod: dict) -> list[Step]:
        cond = _condition(pod, "Ready")
        if cond is None:
            return []
        ready = cond.get("status") == "True"
        if st.ready is None and not ready:  # first sight, not ready yet: nothing changed
            st.ready = False
            return []
        if st.ready == ready:
            return []
        st.ready = ready
        return [Step(st.name, K.READY if ready else K.NOT_READY,
                     {**apitime.api_time(cond.get("lastTransitionTime"), clock=self._clock),
                      **({"reason": cond["reason"]} if cond.get("reason") else {})})]

    def _deletion(self, st: _PodState, pod: dict) -> list[Step]:
        meta = pod.get("metadata", {})
        deadline = meta.get("deletionTimestamp")
        if st.deletion or not deadline:
            return []
        st.deletion = True
        grace = meta.get("deletionGracePeriodSeconds")
        st.grace_s = float(grace) if grace is not None else None
        st.deletion_seen_ns = self._now() if self._now is not None else None
        end = self._ends.setdefault(st.name, Termination(st.name))
        end.deletion_seen_ns, end.grace_s = st.deletion_seen_ns, st.grace_s
        detail: dict[str, Any] = {"deletion_timestamp": deadline, "grace_period_seconds": grace}
        parsed = apitime.parse(deadline)
        if parsed and grace is not None and self._clock is not None:
            # deletionTimestamp is the kill deadline: the request time + the grace period
            detail["requested_api_t_ns"] = self._clock.from_wall_ns(parsed[0] - int(grace) * 1_000_000_000)
            detail["precision_s"] = parsed[1]
        return [Step(st.name, K.DELETION_REQUESTED, detail)]
