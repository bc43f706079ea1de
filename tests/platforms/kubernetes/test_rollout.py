"""A Deployment's rollout state from its status, as kubectl judges it."""

from __future__ import annotations

import pytest

from harness.platforms.kubernetes.rollout import Phase, rollout_state


def dep(*, generation=2, observed=2, replicas=4, updated=4, total=4, available=4, ready=4, conditions=()):
    return {"metadata": {"generation": generation}, "spec": {"replicas": replicas},
            "status": {"observedGeneration": observed, "updatedReplicas": updated, "replicas": total,
                       "availableReplicas": available, "readyReplicas": ready, "conditions": list(conditions)}}


DEADLINE = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
            "message": 'ReplicaSet "api-7b6c5d4f9" has timed out progressing.'}
PROGRESSING = {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}


@pytest.mark.parametrize("d,phase,words", [
    (dep(), Phase.COMPLETE, "rolled out"),
    (dep(observed=1), Phase.PROGRESSING, "observe"),
    (dep(updated=2, total=5), Phase.PROGRESSING, "2 of 4 replicas updated"),
    (dep(total=5), Phase.PROGRESSING, "1 old replicas pending termination"),
    (dep(available=3), Phase.PROGRESSING, "3 of 4 updated replicas available"),
    (dep(updated=2, conditions=[DEADLINE]), Phase.STUCK, "progress deadline exceeded"),
    (dep(conditions=[PROGRESSING]), Phase.COMPLETE, "rolled out"),
], ids=["complete", "not-observed", "updating", "old-left", "unavailable", "stuck", "progressing-ok"])
def test_rollout_state(d, phase, words):
    state = rollout_state(d)
    assert state.phase is phase and words in state.message


def test_min_generation_waits_for_the_patch_to_be_seen():
    # the status still describes the previous generation: not complete yet
    assert rollout_state(dep(generation=2, observed=2), min_generation=3).phase is Phase.PROGRESSING
