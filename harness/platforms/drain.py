"""A node drain as `kubectl drain` carries it out, for any platform: the
steps are the same on the local platform and on a cluster, only the calls
differ (``DrainTarget``).

    cordon every node  → list the pods on them
    → evict each pod (all at once, one task each); a 429 (the PDB allows no
      disruption now) is retried every 5 s — the API sends no Retry-After
      (kubernetes#36409), kubectl waits 5 s
    → wait until every evicted pod is gone
    → give up when ``timeout_s`` (kubectl drain --timeout) runs out
    → uncordon (a node maintenance ends with it; kubectl leaves it to you)

Only the nodes this drain cordoned are uncordoned: one that was cordoned
already (someone else's maintenance) is drained but left as it was found.
A drain cut short — Ctrl-C or SIGTERM cancel it, an API error ends it —
always gives its nodes back, even with ``uncordon=False`` (which keeps them
cordoned only after a drain that finished); an uncordon that fails is
recorded (``left_cordoned``) and does not stop the others. A run killed
outright (SIGKILL) cannot: the kubernetes platform marks the nodes it
cordons so that ``rollout-harness cleanup`` finds them.

Every step is a lifecycle event (node_cordoned, eviction_requested,
eviction_refused, evicted, node_uncordoned). Time comes from ``now`` and
``sleep`` so the retry and the timeout are tested with fake time.
"""

from __future__ import annotations

import dataclasses
from typing import Awaitable, Callable, Protocol

import anyio

from harness.model.events import EventKind

#: kubectl drain: "error when evicting pods/... (will retry after 5s)"
EVICTION_RETRY_S = 5.0
#: how often kubectl checks whether an evicted pod is gone
DELETE_POLL_S = 1.0


class DrainTarget(Protocol):
    #: True when this call cordoned the node, False when it was cordoned already
    def cordon(self, node: str) -> Awaitable[bool]: ...
    def uncordon(self, node: str) -> Awaitable[None]: ...
    def pods_on(self, node: str) -> Awaitable[list[str]]: ...
    #: (HTTP status, message, the PDB's status as the answer saw it, or {})
    def evict(self, pod: str) -> Awaitable[tuple[int, str, dict]]: ...
    def gone(self, pod: str) -> Awaitable[bool]: ...


Emit = Callable[..., None]  # emit(kind, pod, **detail)


@dataclasses.dataclass
class DrainResult:
    nodes: list[str]
    evicted: list[str] = dataclasses.field(default_factory=list)
    #: pods whose eviction never succeeded, with the last answer
    blocked: dict[str, str] = dataclasses.field(default_factory=dict)
    refusals: int = 0  # 429 answers
    requests: int = 0
    started_ns: int = 0
    ended_ns: int = 0
    timed_out: bool = False
    #: the nodes this drain cordoned (not those cordoned before it)
    cordoned: list[str] = dataclasses.field(default_factory=list)
    #: nodes whose uncordon failed, with the error
    left_cordoned: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.timed_out and not self.blocked

    @property
    def duration_s(self) -> float:
        return round((self.ended_ns - self.started_ns) / 1e9, 3)

    def as_dict(self) -> dict:
        return {"nodes": self.nodes, "evicted": self.evicted, "blocked": self.blocked,
                "evictions_refused": self.refusals, "eviction_requests": self.requests,
                "duration_s": self.duration_s, "timed_out": self.timed_out, "complete": self.complete,
                "cordoned": self.cordoned, "left_cordoned": self.left_cordoned}

    def failure_text(self, timeout_s: float) -> str:
        pods = ", ".join(sorted(self.blocked)) or "evicted pods still terminating"
        last = next(iter(self.blocked.values()), "")
        what, field = ((f"drain of {', '.join(self.nodes)}", "drain") if self.nodes
                       else ("eviction of the pods", "evict"))
        return (f"{what} did not finish within {timeout_s:g}s (disruption.{field}.timeoutSeconds): "
                f"{self.refusals} eviction(s) refused with 429; not evicted: {pods}"
                + (f" ({last})" if last else ""))


async def run_drain(target: DrainTarget, nodes: list[str], *, timeout_s: float, now: Callable[[], int],
                    emit: Emit, sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
                    uncordon: bool = True, retry_s: float = EVICTION_RETRY_S,
                    pods: list[str] | None = None) -> DrainResult:
    """Drain ``nodes``; never raises for a drain that cannot finish (the
    result says so), so the caller decides what the run makes of it.
    With ``pods`` (the ``evict`` disruption) no node is cordoned: only those
    pods are evicted, with the same 429 retry, wait and timeout."""
    res = DrainResult(nodes=list(nodes), started_ns=now())
    deadline = res.started_ns + int(timeout_s * 1e9)
    finished = False
    try:
        for node in nodes:
            # no checkpoint between the answer and the record: a cancel cannot lose a cordon
            if await target.cordon(node):
                res.cordoned.append(node)
                emit(EventKind.NODE_CORDONED, "", node=node)
            else:
                emit(EventKind.NODE_CORDONED, "", node=node, already_cordoned=True)
        if pods is None:
            pods = []
            for node in nodes:
                pods += await target.pods_on(node)

        async def evict_one(pod: str) -> None:
            while True:
                res.requests += 1
                emit(EventKind.EVICTION_REQUESTED, pod, attempt=res.requests)
                code, message, pdb = await target.evict(pod)
                if code == 429:
                    res.refusals += 1
                    res.blocked[pod] = message
                    emit(EventKind.EVICTION_REFUSED, pod, code=code, message=message, retry_after_s=retry_s,
                         pdb=pdb)
                    if now() + int(retry_s * 1e9) > deadline:
                        res.timed_out = True
                        return
                    await sleep(retry_s)
                    continue
                res.blocked.pop(pod, None)
                if code >= 400 and code != 404:
                    res.blocked[pod] = f"HTTP {code}: {message}"
                    return
                if code != 404:
                    res.evicted.append(pod)
                    emit(EventKind.EVICTED, pod, code=code, message=message, pdb=pdb)
                while not await target.gone(pod):
                    if now() >= deadline:
                        res.timed_out = True
                        res.blocked[pod] = "evicted but still terminating"
                        return
                    await sleep(DELETE_POLL_S)
                return

        async with anyio.create_task_group() as tg:
            for pod in pods:
                tg.start_soon(evict_one, pod)
        finished = True
    finally:
        res.ended_ns = now()
        if uncordon or not (finished and res.complete):
            with anyio.CancelScope(shield=True):
                await _give_back(target, res, emit, cut_short=not finished)
    return res


async def _give_back(target: DrainTarget, res: DrainResult, emit: Emit, *, cut_short: bool) -> None:
    """Uncordon every node the drain cordoned, each on its own: one failure
    is recorded and the others still go back."""
    for node in res.cordoned:
        try:
            await target.uncordon(node)
        except Exception as exc:  # noqa: BLE001 - recorded; the kubernetes mark lets cleanup finish it
            res.left_cordoned[node] = f"{type(exc).__name__}: {exc}"
            continue
        emit(EventKind.NODE_UNCORDONED, "", node=node, **({"cut_short": True} if cut_short else {}))
