"""The Deployment controller's arithmetic, as Kubernetes computes it.

Pure functions of the ReplicaSets' counts, so the rolling update can be
checked against tables with no processes and no time. The code paths follow
pkg/controller/deployment/rolling.go (reconcileNewReplicaSet,
reconcileOldReplicaSets, cleanupUnhealthyReplicas,
scaleDownOldReplicaSetsForRollingUpdate) and recreate.go:

- a ReplicaSet's size is its spec.replicas: pods already being deleted
  (terminating) no longer count, neither against maxSurge nor as available;
- scale up the new ReplicaSet up to ``replicas + maxSurge`` pods in total;
- scale down old pods only while ``available >= replicas - maxUnavailable``
  stays true, unhealthy (not available) old pods first;
- a pod is available once it has been Ready for minReadySeconds.
"""

from __future__ import annotations

from typing import NamedTuple


class RSCounts(NamedTuple):
    """One ReplicaSet as the controller sees it."""

    replicas: int  # spec.replicas: pods that exist and are not being deleted
    available: int  # of those, Ready for at least minReadySeconds


class ScaleStep(NamedTuple):
    scale_up: int  # pods to add to the new ReplicaSet
    scale_down: int  # pods to delete from the old ReplicaSet(s)


def rolling_update_step(desired: int, max_surge: int, max_unavailable: int,
                        old: RSCounts, new: RSCounts) -> ScaleStep:
    """One sync of a RollingUpdate Deployment: how many new pods to create and
    how many old pods to delete now. Kubernetes does the scale-up in one sync
    and the scale-down in the next; neither depends on the other's result
    except through ``new.replicas``, so one step computes both."""
    # reconcileNewReplicaSet / NewRSNewReplicas
    up = 0
    if new.replicas < desired:
        current = old.replicas + new.replicas
        max_total = desired + max_surge
        if current < max_total:
            up = min(max_total - current, desired - new.replicas)
    new_replicas = new.replicas + up

    # reconcileOldReplicaSets
    if old.replicas <= 0:
        return ScaleStep(up, 0)
    all_pods = old.replicas + new_replicas
    min_available = desired - max_unavailable
    new_unavailable = new_replicas - new.available
    max_scaled_down = all_pods - min_available - new_unavailable
    if max_scaled_down <= 0:
        return ScaleStep(up, 0)
    # cleanupUnhealthyReplicas: old pods that are not available go first
    cleanup = min(max_scaled_down, old.replicas - old.available)
    old_left = old.replicas - cleanup
    # scaleDownOldReplicaSetsForRollingUpdate: keep minAvailable available
    available = old.available + new.available
    by_availability = 0
    if available > min_available:
        by_availability = min(old_left, available - min_available)
    return ScaleStep(up, cleanup + by_availability)


def recreate_step(desired: int, old: RSCounts, new: RSCounts, old_pods_running: int) -> ScaleStep:
    """Recreate: delete every old pod, wait until none is running (terminating
    ones included), then create the new ReplicaSet at full size."""
    if old.replicas > 0:
        return ScaleStep(0, old.replicas)
    if old_pods_running > 0:
        return ScaleStep(0, 0)
    return ScaleStep(max(0, desired - new.replicas), 0)


def rollout_complete(desired: int, old: RSCounts, new: RSCounts) -> bool:
    """As `kubectl rollout status`: every replica updated and available and no
    old replica left (terminating pods are not counted, as in Deployment status)."""
    return new.replicas == desired and new.available >= desired and old.replicas == 0
