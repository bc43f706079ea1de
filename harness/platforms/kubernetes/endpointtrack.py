"""From EndpointSlice objects to the traffic path's view of each pod.

kube-proxy sends new connections only to endpoints whose ``ready``
condition is true (nil counts as true, as the API documents); a terminating
endpoint has ``ready: false`` and may stay ``serving`` while it drains. So,
per pod (aggregated over every slice of the Service, since an endpoint can
move between slices):

- ``endpoint_added``        the pod became routable (ready) in some slice
- ``endpoint_terminating``  the endpoint's ``terminating`` condition turned true
- ``endpoint_removed``      the pod stopped being routable: not ready,
                            terminating, or gone from every slice

The slice's ``endpoints.kubernetes.io/last-change-trigger-time`` annotation
(when the change that caused the update happened) is kept in detail.
"""

from __future__ import annotations

import threading
from typing import Any, NamedTuple

from harness.model.events import EventKind as K
from harness.platforms.kubernetes import apitime
from harness.platforms.kubernetes.podtrack import Step

TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"


class _Endpoint(NamedTuple):
    ready: bool
    serving: bool
    terminating: bool
    address: str


def _endpoints(slice_obj: dict) -> dict[str, _Endpoint]:
    out: dict[str, _Endpoint] = {}
    for ep in slice_obj.get("endpoints") or []:
        addresses = ep.get("addresses") or [""]
        ref = ep.get("targetRef") or {}
        key = ref.get("name") if ref.get("kind", "Pod") == "Pod" and ref.get("name") else addresses[0]
        cond = ep.get("conditions") or {}
        ready = cond.get("ready") is not False
        out[key] = _Endpoint(ready=ready, serving=cond.get("serving", ready) is not False,
                             terminating=bool(cond.get("terminating")), address=addresses[0])
    return out


def _merge(views: list[_Endpoint]) -> _Endpoint | None:
    if not views:
        return None
    return _Endpoint(ready=any(v.ready for v in views), serving=any(v.serving for v in views),
                     terminating=any(v.terminating for v in views), address=views[0].address)


class EndpointTracker:
    """Feed ``update(slice)`` / ``deleted(slice)``; each returns the new steps."""

    def __init__(self, *, clock=None):
        self._clock = clock
        self._slices: dict[str, dict[str, _Endpoint]] = {}  # slice uid -> pod -> endpoint
        self._lock = threading.Lock()

    def pod_at(self, address: str) -> str:
        """The pod an endpoint address belongs to ('' when unknown)."""
        with self._lock:
            for eps in self._slices.values():
                for pod, ep in eps.items():
                    if ep.address == address:
                        return pod
        return ""

    def routable_pods(self) -> set[str]:
        with self._lock:
            return {pod for eps in self._slices.values() for pod, ep in eps.items() if ep.ready}

    def _view(self, pod: str) -> _Endpoint | None:
        return _merge([eps[pod] for eps in self._slices.values() if pod in eps])

    def update(self, slice_obj: dict, *, listed: bool = False) -> list[Step]:
        return self._replace(slice_obj, _endpoints(slice_obj), listed=listed)

    def deleted(self, slice_obj: dict, *, missed: bool = False) -> list[Step]:
        return self._replace(slice_obj, {}, listed=False, why="slice_deleted")

    def _replace(self, slice_obj: dict, new: dict[str, _Endpoint], *, listed: bool,
                 why: str = "") -> list[Step]:
        meta = slice_obj.get("metadata", {})
        uid = meta.get("uid", meta.get("name", ""))
        base: dict[str, Any] = {"slice": meta.get("name", "")}
        base.update(apitime.api_time((meta.get("annotations") or {}).get(TRIGGER_TIME),
                                     clock=self._clock, key="trigger_time"))
        if listed:
            base["listed"] = True
        steps: list[Step] = []
        with self._lock:
            old = self._slices.get(uid, {})
            pods = sorted(set(old) | set(new))
            before = {pod: self._view(pod) for pod in pods}
            if new:
                self._slices[uid] = new
            else:
                self._slices.pop(uid, None)
            for pod in pods:
                steps += self._transition(pod, before[pod], self._view(pod), base, why)
        return steps

    @staticmethod
    def _transition(pod: str, was: _Endpoint | None, now: _Endpoint | None, base: dict,
                    why: str) -> list[Step]:
        steps: list[Step] = []
        was_routable = bool(was and was.ready)
        now_routable = bool(now and now.ready)
        if now is not None and now.terminating and not (was and was.terminating):
            steps.append(Step(pod, K.ENDPOINT_TERMINATING,
                              {**base, "serving": now.serving, "address": now.address}))
        if now_routable and not was_routable:
            steps.append(Step(pod, K.ENDPOINT_ADDED, {**base, "address": now.address}))
        elif was_routable and not now_routable:
            reason = why or ("gone" if now is None else "terminating" if now.terminating else "not_ready")
            steps.append(Step(pod, K.ENDPOINT_REMOVED, {**base, "reason": reason, "address": was.address}))
        return steps
