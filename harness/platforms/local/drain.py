"""The local platform's side of a node drain: cordon/uncordon its modelled
nodes, answer evictions with the PDB arithmetic (harness.platforms.local.
eviction) over the pods' live state, and delete an evicted pod the way any
deletion goes (preStop, endpoint removal racing it, grace period).

The drain steps themselves are harness.platforms.drain.run_drain, shared
with the kubernetes platform; the ReplicaSet's re-creation of evicted pods is
the platform's controller loop, which keeps running during the drain.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.platforms.local.eviction import PodState, evict

if TYPE_CHECKING:
    from harness.platforms.local.platform import LocalPlatform


class LocalDrainTarget:
    def __init__(self, platform: "LocalPlatform"):
        self.p = platform

    def _node(self, name: str):
        return next(n for n in self.p.nodes if n.name == name)

    async def cordon(self, node: str) -> bool:
        n = self._node(node)
        was, n.unschedulable = n.unschedulable, True
        return not was

    async def uncordon(self, node: str) -> None:
        self._node(node).unschedulable = False
        self.p.wake_controller()

    async def pods_on(self, node: str) -> list[str]:
        return [p.name for p in self.p.pods if p.node == node and not p.deleting]

    def pod_states(self) -> list[PodState]:
        return [PodState(p.name, ready=p.ready, terminating=p.deleting, scheduled=p.node is not None)
                for p in self.p.pods if not p.gone]

    async def evict(self, pod: str) -> tuple[int, str, dict]:
        d = self.p.scenario.deployment
        res = evict(d.pod_disruption_budget, d.replicas, self.pod_states(), pod)
        detail = res.status._asdict() if res.status is not None else {}
        if res.allowed and res.code != 404:
            target = next(p for p in self.p.pods if p.name == pod)
            if not target.deleting:
                self.p.delete_pod(target, reason="eviction")
        return res.code, res.message, detail

    async def gone(self, pod: str) -> bool:
        target = next((p for p in self.p.pods if p.name == pod), None)
        return target is None or target.gone

