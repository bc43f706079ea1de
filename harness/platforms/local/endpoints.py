"""The EndpointSlice controller and kube-proxy, reduced to what the traffic
path experiences: a pod's endpoint reaches the proxy's view a propagation
delay after the pod turns Ready, and leaves it a delay after the pod turns
not-ready or is deleted. Deletion and the kubelet's termination of the pod
start at the same moment; the delayed removal races them, as on a cluster.

``ProxyView`` holds the pending updates and the current view; it takes times
as arguments, so it is tested with fake time. It also keeps the EndpointSlice
itself (``serving``: ready endpoints that are not terminating), changed at
once, for the ingress proxy: Traefik's Kubernetes providers watch the
EndpointSlices, not kube-proxy, and fence a terminating endpoint (no new
requests), so the ingress hop follows the slice, not kube-proxy's lagging view. ``ProxyResolver`` is what the
traffic engine calls for each new connection.
"""

from __future__ import annotations

import heapq
import itertools
import random
from typing import Callable

from harness.model.events import EventKind, EventWriter
from harness.platforms.base import Route


class ProxyView:
    """Pending endpoint updates and the endpoints the traffic path sees now."""

    def __init__(self, *, events: EventWriter, host: str, delay_s: float, jitter_s: float,
                 rng: random.Random):
        self.events = events
        self.host = host
        self.delay_ns = int(delay_s * 1e9)
        self.jitter_ns = int(jitter_s * 1e9)
        self.rng = rng
        self.visible: dict[str, Route] = {}  # pod -> route, in the proxy's view
        self.routes: tuple[Route, ...] = ()  # the same, as a sequence for picking
        self._pending: list[tuple[int, int, str, bool, int]] = []  # (at, seq, pod, add, port)
        self._seq = itertools.count()
        self._last_at: dict[str, int] = {}  # per pod: updates apply in order
        self._terminating: set[str] = set()
        self.on_change: Callable[[], None] | None = None  # wakes the applying task
        #: the EndpointSlice's routable endpoints (ready, not terminating), as of now
        self.serving: dict[str, Route] = {}
        #: called with ``serving`` whenever it changes (the ingress proxy's feed)
        self.on_slice_change: Callable[[dict[str, Route]], None] | None = None

    def _slice(self, pod: str, port: int | None) -> None:
        before = self.serving.get(pod)
        if port is None:
            self.serving.pop(pod, None)
        else:
            self.serving[pod] = Route(self.host, port, pod)
        if before != self.serving.get(pod) and self.on_slice_change is not None:
            self.on_slice_change(dict(self.serving))

    def _delay(self) -> int:
        if not self.jitter_ns:
            return self.delay_ns
        return max(0, self.delay_ns + self.rng.randint(-self.jitter_ns, self.jitter_ns))

    def _schedule(self, t_ns: int, pod: str, add: bool, port: int = 0) -> int:
        at = t_ns + self._delay()
        prev = self._last_at.get(pod)
        if prev is not None and at <= prev:
            at = prev + 1
        self._last_at[pod] = at
        heapq.heappush(self._pending, (at, next(self._seq), pod, add, port))
        if self.on_change is not None:
            self.on_change()
        return at

    # -- what the control plane reports ------------------------------------
    def pod_ready(self, t_ns: int, pod: str, port: int) -> int | None:
        if pod in self._terminating:
            return None  # a terminating endpoint never becomes ready again
        self._slice(pod, port)
        return self._schedule(t_ns, pod, True, port)

    def pod_not_ready(self, t_ns: int, pod: str) -> int:
        self._slice(pod, None)
        return self._schedule(t_ns, pod, False)

    def pod_terminating(self, t_ns: int, pod: str) -> int:
        """The pod got a deletion timestamp: the EndpointSlice marks it
        terminating (not ready) now; the proxy drops it after the delay."""
        self._terminating.add(pod)
        self.events.emit(t_ns, pod, EventKind.ENDPOINT_TERMINATING)
        self._slice(pod, None)
        return self._schedule(t_ns, pod, False)

    # -- what the proxy applies ---------------------------------------------
    def next_due_ns(self) -> int | None:
        return self._pending[0][0] if self._pending else None

    def apply_due(self, now_ns: int) -> list[tuple[str, bool]]:
        """Apply every update due by ``now_ns``; emit endpoint_added/removed
        for those that change the view (stamped ``now_ns``)."""
        changed: list[tuple[str, bool]] = []
        while self._pending and self._pending[0][0] <= now_ns:
            at, _, pod, add, port = heapq.heappop(self._pending)
            if add and pod not in self.visible:
                self.visible[pod] = Route(self.host, port, pod)
                self.events.emit(now_ns, pod, EventKind.ENDPOINT_ADDED, port=port, due_ns=at)
                changed.append((pod, True))
            elif not add and pod in self.visible:
                del self.visible[pod]
                self.events.emit(now_ns, pod, EventKind.ENDPOINT_REMOVED, due_ns=at)
                changed.append((pod, False))
        if changed:
            self.routes = tuple(self.visible.values())
        return changed

    def forget(self, pod: str) -> None:
        self._terminating.discard(pod)
        self._last_at.pop(pod, None)
        self._slice(pod, None)


class ProxyResolver:
    """kube-proxy's choice for a new connection: a random endpoint of the
    current view (iptables mode), or round robin (IPVS mode)."""

    __slots__ = ("view", "rng", "_rr", "round_robin")

    def __init__(self, view: ProxyView, *, rng: random.Random, round_robin: bool = False):
        self.view = view
        self.rng = rng
        self._rr = 0
        self.round_robin = round_robin

    def pick(self) -> Route | None:
        routes = self.view.routes
        if not routes:
            return None
        if self.round_robin:
            self._rr += 1
            return routes[self._rr % len(routes)]
        return routes[self.rng.randrange(len(routes))]
