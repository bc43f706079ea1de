"""Judge a Deployment's rollout from its status, as ``kubectl rollout
status`` does.

``rollout_state`` is a pure function of one Deployment object, so the
follow loop in the platform is a poll of it and the rules are tested with
tables: the controller must have observed the new generation; every
replica must be updated, no old replica left, every updated one available;
a ``Progressing`` condition with reason ``ProgressDeadlineExceeded`` means
the rollout is stuck.
"""

from __future__ import annotations

import enum
from typing import Any, NamedTuple


class Phase(enum.StrEnum):
    PROGRESSING = "progressing"
    COMPLETE = "complete"
    STUCK = "stuck"


class RolloutState(NamedTuple):
    phase: Phase
    message: str
    updated: int = 0
    ready: int = 0
    available: int = 0
    total: int = 0
    desired: int = 0


def rollout_state(dep: dict[str, Any], *, min_generation: int = 0) -> RolloutState:
    meta, spec, st = dep.get("metadata", {}), dep.get("spec", {}), dep.get("status", {})
    desired = int(spec.get("replicas", 1))
    updated = int(st.get("updatedReplicas") or 0)
    total = int(st.get("replicas") or 0)
    available = int(st.get("availableReplicas") or 0)
    ready = int(st.get("readyReplicas") or 0)
    counts = dict(updated=updated, ready=ready, available=available, total=total, desired=desired)
    generation = int(meta.get("generation") or 0)
    if int(st.get("observedGeneration") or 0) < max(generation, min_generation):
        return RolloutState(Phase.PROGRESSING, "waiting for the controller to observe the change", **counts)
    for cond in st.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return RolloutState(Phase.STUCK, f"progress deadline exceeded: {cond.get('message', '')}", **counts)
    if updated < desired:
        return RolloutState(Phase.PROGRESSING, f"{updated} of {desired} replicas updated", **counts)
    if total > updated:
        return RolloutState(Phase.PROGRESSING, f"{total - updated} old replicas pending termination", **counts)
    if available < updated:
        return RolloutState(Phase.PROGRESSING, f"{available} of {updated} updated replicas available", **counts)
    return RolloutState(Phase.COMPLETE, "rolled out", **counts)
