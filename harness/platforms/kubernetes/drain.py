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

A node this run cordons carries the annotation ``rollout-harness.io/cordoned-by``
(the run's label value) until it is uncordoned: the platform's teardown
uncordons what is still marked with its run (a drain task that never reached
its own uncordon), and ``rollout-harness cleanup`` finds the nodes a killed
run (SIGKILL, a lost CI runner) left cordoned. A node cordoned before the
drain is neither marked nor uncordoned.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio

from harness.platforms.kubernetes.client import KubeApi, KubeError


#: on a node this run cordoned, until it is uncordoned: the run's label value
CORDONED_BY = "rollout-harness.io/cordoned-by"
#: a cordon's precondition (the node's resourceVersion) may meet another writer
CORDON_ATTEMPTS = 3


def cordon_patch(run: str, resource_version: str) -> dict[str, Any]:
    """spec.unschedulable and the mark in one write; the resourceVersion makes
    it fail (409) if the node changed since it was read schedulable."""
    return {"metadata": {"annotations": {CORDONED_BY: run}, "resourceVersion": resource_version},
            "spec": {"unschedulable": True}}


UNCORDON_PATCH: dict[str, Any] = {"metadata": {"annotations": {CORDONED_BY: None}}, "spec": {"unschedulable": None}}


def cordoned_by(node: dict[str, Any]) -> str | None:
    """The run that cordoned ``node`` and has not uncordoned it yet, or None."""
    return ((node.get("metadata") or {}).get("annotations") or {}).get(CORDONED_BY)


def uncordon_marked(api: KubeApi, run: str | None = None) -> list[tuple[str, str, str | None]]:
    """Uncordon every node marked by ``run`` (every marked node when None):
    [(node, run, error or None)]. Used by the platform's teardown and by
    `rollout-harness cleanup`."""
    out = []
    for node in api.list_nodes():
        by = cordoned_by(node)
        if by is None or (run is not None and by != run):
            continue
        name = node["metadata"]["name"]
        try:
            api.patch_node(name, UNCORDON_PATCH)
            out.append((name, by, None))
        except KubeError as exc:
            out.append((name, by, str(exc)))
    return out


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
    def __init__(self, api: KubeApi, namespace: str, selector: str, pdb_name: str | None, run: str = ""):
        self.api, self.namespace, self.selector, self.pdb_name = api, namespace, selector, pdb_name
        self.run = run

    async def _run(self, fn, *args):
        return await anyio.to_thread.run_sync(lambda: fn(*args))

    def _cordon(self, node: str) -> bool:
        for attempt in range(CORDON_ATTEMPTS):
            current = self.api.get_node(node)
            if (current.get("spec") or {}).get("unschedulable"):
                return False  # someone else's cordon: drained, but left as found
            try:
                self.api.patch_node(node, cordon_patch(self.run, current["metadata"].get("resourceVersion", "")))
                return True
            except KubeError as exc:
                if exc.status != 409 or attempt == CORDON_ATTEMPTS - 1:
                    raise
        return False

    async def cordon(self, node: str) -> bool:
        return await self._run(self._cordon, node)

    async def uncordon(self, node: str) -> None:
        await self._run(self.api.patch_node, node, UNCORDON_PATCH)

    async def keep_cordoned(self, node: str) -> None:
        """disruption.drain.uncordon: false -- the node stays cordoned on
        purpose: the mark goes, so neither teardown nor cleanup undoes it."""
        await self._run(self.api.patch_node, node, {"metadata": {"annotations": {CORDONED_BY: None}}})

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
    target = KubeDrainTarget(platform.api, platform.namespace, platform.pod_selector, pdb_name, platform.run_label)
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
    if not uncordon and res.complete:
        for node in res.cordoned:
            await target.keep_cordoned(node)
    summary = res.as_dict()
    events.emit(clock.now(), "", EventKind.DRAIN_COMPLETE, SourceKind.HARNESS, **summary)
    if not res.complete:
        raise PlatformError(res.failure_text(timeout_s))
    # every evicted pod seen to end (the watch), then back at full strength:
    # every replica available and in the Service's endpoints
    await platform._until_deleted_pods_ended(set(), since)
    await platform._wait_ready()
    return summary
