"""The kubernetes platform's side of a node drain: cordon and uncordon a
real node (``spec.unschedulable``), evict the run's pods through the
Eviction API (policy/v1, ``pods/<name>/eviction``), where the API server
applies the PodDisruptionBudget and answers 429 while it allows no
disruption. The steps are harness.platforms.drain.run_drain, the same as on
the local platform.

Only the run's own pods are evicted: the harness drains for its app, and a
shared cluster's other workloads (system pods included) are left alone; the
cordon still applies to the whole node, and the node is uncordoned at the
end. Blocking API calls run in worker threads.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio

from harness.platforms.kubernetes.client import KubeApi, KubeError


def eviction_body(namespace: str, pod: str) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod, "namespace": namespace}}


def pdb_detail(pdb: dict[str, Any] | None) -> dict[str, Any]:
    """The PDB's status in the local platform's words (evidence in events)."""
    st = (pdb or {}).get("status") or {}
    if not st:
        return {}
    return {"expected_pods": st.get("expectedPods"), "desired_healthy": st.get("desiredHealthy"),
            "current_healthy": st.get("currentHealthy"), "disruptions_allowed": st.get("disruptionsAllowed")}


def pods_per_node(pods: list[dict[str, Any]]) -> dict[str, int]:
    """The app's pods (not terminating) per node name."""
    c: Counter[str] = Counter()
    for p in pods:
        node = (p.get("spec") or {}).get("nodeName")
        if node and not (p.get("metadata") or {}).get("deletionTimestamp"):
            c[node] += 1
    return dict(c)


def busiest(per_node: dict[str, int]) -> str | None:
    return min(per_node, key=lambda n: (-per_node[n], n)) if per_node else None


class KubeDrainTarget:
    def __init__(self, api: KubeApi, namespace: str, selector: str, pdb_name: str | None):
        self.api, self.namespace, self.selector, self.pdb_name = api, namespace, selector, pdb_name

    async def _run(self, fn, *args):
        return await anyio.to_thread.run_sync(lambda: fn(*args))

    async def cordon(self, node: str) -> None:
        await self._run(self.api.patch_node, node, {"spec": {"unschedulable": True}})

    async def uncordon(self, node: str) -> None:
        await self._run(self.api.patch_node, node, {"spec": {"unschedulable": None}})

    async def app_pods(self) -> list[dict[str, Any]]:
        items, _ = await self._run(lambda: self.api.list("pods", self.namespace, label_selector=self.selector))
        return items

    async def pods_on(self, node: str) -> list[str]:
        return [p["metadata"]["name"] for p in await self.app_pods()
                if (p.get("spec") or {}).get("nodeName") == node and not p["metadata"].get("deletionTimestamp")]

    async def _pdb(self) -> dict[str, Any]:
        if not self.pdb_name:
            return {}
        try:
            return pdb_detail(await self._run(self.api.get, "poddisruptionbudgets", self.namespace, self.pdb_name))
        except KubeError:
            return {}

    async def evict(self, pod: str) -> tuple[int, str, dict]:
        try:
            await self._run(self.api.evict, self.namespace, pod, eviction_body(self.namespace, pod))
        except KubeError as exc:
            if exc.status in (429, 404):
                return exc.status, str(exc), await self._pdb() if exc.status == 429 else {}
            return exc.status or 500, str(exc), {}
        return 201, "evicted", await self._pdb()

    async def gone(self, pod: str) -> bool:
        try:
            await self._run(self.api.get, "pods", self.namespace, pod)
        except KubeError as exc:
            if exc.status == 404:
                return True
            raise
        return False


async def drain_on_cluster(platform) -> dict[str, Any]:
    """The drain disruption on a cluster (``KubernetesPlatform.disrupt``):
    the drain steps, then the Deployment back at full availability with
    every replica in the endpoints (the observation window closes only
    when what the drain deleted is gone and replaced). A drain
    that did not finish raises PlatformError: the run is inconclusive."""
    from harness.errors import PlatformError
    from harness.model.events import EventKind, SourceKind
    from harness.platforms.drain import run_drain

    sc, clock, events = platform.sc, platform.clock, platform.events
    cfg = sc.disruption.drain
    pdb_name = sc.deployment.name if (platform.mode == "managed" and sc.deployment.pod_disruption_budget) else None
    target = KubeDrainTarget(platform.api, platform.namespace, platform.pod_selector, pdb_name)
    app_pods = await target.app_pods()
    per_node = pods_per_node(app_pods)
    if sc.disruption.type == "evict":
        nodes, timeout_s, uncordon = [], sc.disruption.evict.timeout_seconds, False
        pods: list[str] | None = sorted(p["metadata"]["name"] for p in app_pods
                                        if not p["metadata"].get("deletionTimestamp"))[:sc.disruption.evict.pods]
    else:
        nodes, timeout_s, uncordon, pods = cfg.nodes or [n for n in [busiest(per_node)] if n], \
            cfg.timeout_seconds, cfg.uncordon, None
        if not nodes:
            raise PlatformError("kubernetes: drain: no pod of the app is on a node; nothing to drain")
    events.emit(clock.now(), "", EventKind.DRAIN_STARTED, SourceKind.HARNESS, nodes=nodes, pods=pods,
                pods_per_node=per_node, timeout_s=timeout_s)

    def emit(kind, pod, **detail):
        events.emit(clock.now(), pod, kind, SourceKind.HARNESS, **detail)

    platform._progress = f"draining {', '.join(nodes)}" if nodes else "evicting"
    since = clock.now()
    res = await run_drain(target, nodes, timeout_s=timeout_s, now=clock.now, emit=emit, uncordon=uncordon,
                          pods=pods)
    summary = res.as_dict()
    events.emit(clock.now(), "", EventKind.DRAIN_COMPLETE, SourceKind.HARNESS, **summary)
    if not res.complete:
        raise PlatformError(res.failure_text(timeout_s))
    # every evicted pod seen to end (the watch), then back at full strength:
    # every replica available and in the Service's endpoints
    await platform._until_deleted_pods_ended(set(), since)
    await platform._wait_ready()
    return summary
