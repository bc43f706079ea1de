"""The Eviction API and the PodDisruptionBudget arithmetic, as Kubernetes
computes them; pure functions of the pods' state, tested by tables.

The disruption controller (pkg/controller/disruption, getExpectedPodCount
and countHealthyPods) keeps a PDB's status:

- ``maxUnavailable``: expectedCount = the Deployment's replicas (its scale);
  desiredHealthy = expectedCount - maxUnavailable, a percentage of
  expectedCount rounded **up**, never below 0;
- ``minAvailable`` as an integer: desiredHealthy = minAvailable,
  expectedCount = the pods the selector matches;
- ``minAvailable`` as a percentage: desiredHealthy = that share of the
  replicas, rounded **up**;
- currentHealthy = pods that are Ready and not being deleted;
- disruptionsAllowed = max(0, currentHealthy - desiredHealthy).

The eviction subresource (pkg/registry/core/pod/storage/eviction.go):

- a pod already being deleted, or not yet running (Pending), is evicted
  without looking at the budget;
- a pod that is not Ready: ``AlwaysAllow`` evicts it; ``IfHealthyBudget``
  (the default) evicts it only while currentHealthy >= desiredHealthy > 0,
  and otherwise falls through to the budget check below;
- otherwise disruptionsAllowed == 0 answers 429 TooManyRequests, "Cannot
  evict pod as it would violate the pod's disruption budget." (with no
  Retry-After, kubernetes#36409); else the pod is deleted (graceful) and the
  budget is one disruption smaller until the controller sees it gone.

No PDB: every eviction succeeds.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterable, NamedTuple

from harness.model.scenario import PodDisruptionBudget

TOO_MANY_REQUESTS = 429
REFUSED_MESSAGE = "Cannot evict pod as it would violate the pod's disruption budget."


@dataclasses.dataclass(frozen=True)
class PodState:
    """What the controller and the eviction API look at for one pod."""

    name: str
    ready: bool
    terminating: bool = False
    scheduled: bool = True  # False: Pending (no node yet)


class PDBStatus(NamedTuple):
    expected_pods: int
    desired_healthy: int
    current_healthy: int
    disruptions_allowed: int


class EvictionResult(NamedTuple):
    allowed: bool
    code: int  # 201 (created: the pod is being deleted) or 429
    message: str
    status: PDBStatus | None


def _scaled_up(v: int | str, total: int) -> int:
    if isinstance(v, int):
        return v
    return math.ceil(int(v[:-1]) * total / 100)


def pdb_status(pdb: PodDisruptionBudget, replicas: int, pods: Iterable[PodState]) -> PDBStatus:
    """The PDB's status as the disruption controller computes it."""
    pods = list(pods)
    if pdb.max_unavailable is not None:
        expected = replicas
        desired = max(0, expected - _scaled_up(pdb.max_unavailable, expected))
    elif isinstance(pdb.min_available, int):
        expected = len(pods)
        desired = pdb.min_available
    else:
        assert pdb.min_available is not None
        expected = replicas
        desired = _scaled_up(pdb.min_available, expected)
    healthy = sum(1 for p in pods if p.ready and not p.terminating)
    return PDBStatus(expected, desired, healthy, max(0, healthy - desired))


def evict(pdb: PodDisruptionBudget | None, replicas: int, pods: Iterable[PodState], name: str) -> EvictionResult:
    """POST pods/<name>/eviction: may the pod be deleted now?"""
    pods = list(pods)
    pod = next((p for p in pods if p.name == name), None)
    if pod is None:
        return EvictionResult(True, 404, f'pods "{name}" not found', None)
    if pdb is None:
        return EvictionResult(True, 201, "evicted (no PodDisruptionBudget)", None)
    if pod.terminating or not pod.scheduled:
        return EvictionResult(True, 201, "evicted (pod already terminating or pending: budget not checked)", None)
    status = pdb_status(pdb, replicas, pods)
    if not pod.ready:
        if pdb.unhealthy_pod_eviction_policy == "AlwaysAllow":
            return EvictionResult(True, 201, "evicted (not ready; unhealthyPodEvictionPolicy AlwaysAllow)", status)
        if status.current_healthy >= status.desired_healthy > 0:
            return EvictionResult(True, 201, "evicted (not ready; the budget is met)", status)
    if status.disruptions_allowed <= 0:
        return EvictionResult(False, TOO_MANY_REQUESTS, REFUSED_MESSAGE, status)
    return EvictionResult(True, 201, "evicted", status)
