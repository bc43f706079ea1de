"""The PodDisruptionBudget arithmetic and the eviction API's answers, as
Kubernetes computes them (harness.platforms.local.eviction)."""

from __future__ import annotations

import pytest

from harness.model.scenario import PodDisruptionBudget
from harness.platforms.local.eviction import TOO_MANY_REQUESTS, PodState, evict, pdb_status


def pods(ready: int, not_ready: int = 0, terminating: int = 0) -> list[PodState]:
    out = [PodState(f"r{i}", ready=True) for i in range(ready)]
    out += [PodState(f"u{i}", ready=False) for i in range(not_ready)]
    out += [PodState(f"t{i}", ready=True, terminating=True) for i in range(terminating)]
    return out


def pdb(**kw) -> PodDisruptionBudget:
    return PodDisruptionBudget.model_validate(kw)


# (pdb fields, replicas, pods) -> (expected, desiredHealthy, currentHealthy, disruptionsAllowed)
TABLE = [
    ({"maxUnavailable": 1}, 4, pods(4), (4, 3, 4, 1)),
    ({"maxUnavailable": 1}, 4, pods(3, terminating=1), (4, 3, 3, 0)),
    ({"maxUnavailable": 0}, 4, pods(4), (4, 4, 4, 0)),
    ({"maxUnavailable": 1}, 1, pods(1), (1, 0, 1, 1)),
    ({"maxUnavailable": 5}, 4, pods(4), (4, 0, 4, 4)),  # never below 0
    # percentages round UP (GetScaledValueFromIntOrPercent(..., true))
    ({"maxUnavailable": "25%"}, 6, pods(6), (6, 4, 6, 2)),  # 1.5 -> 2
    ({"maxUnavailable": "10%"}, 4, pods(4), (4, 3, 4, 1)),  # 0.4 -> 1
    ({"minAvailable": "50%"}, 7, pods(7), (7, 4, 7, 3)),  # 3.5 -> 4 (the docs' example)
    ({"minAvailable": "100%"}, 6, pods(6), (6, 6, 6, 0)),
    # minAvailable as an integer: expectedCount is the pods the selector matches
    ({"minAvailable": 6}, 6, pods(6), (6, 6, 6, 0)),
    ({"minAvailable": 2}, 4, pods(4, terminating=1), (5, 2, 4, 2)),
    ({"minAvailable": 3}, 4, pods(2, not_ready=2), (4, 3, 2, 0)),
]


@pytest.mark.parametrize("spec,replicas,state,want", TABLE)
def test_pdb_status_table(spec, replicas, state, want):
    assert tuple(pdb_status(pdb(**spec), replicas, state)) == want


def test_a_pdb_needs_exactly_one_of_min_and_max():
    with pytest.raises(ValueError, match="exactly one of minAvailable, maxUnavailable"):
        pdb(minAvailable=1, maxUnavailable=1)
    with pytest.raises(ValueError, match="exactly one"):
        pdb()
    with pytest.raises(ValueError, match="percentage"):
        pdb(maxUnavailable="a lot")


def test_no_pdb_evicts_anything():
    assert evict(None, 4, pods(4), "r0").allowed


def test_429_when_no_disruption_is_allowed():
    res = evict(pdb(minAvailable=4), 4, pods(4), "r0")
    assert (res.allowed, res.code) == (False, TOO_MANY_REQUESTS)
    assert "disruption budget" in res.message
    assert res.status.disruptions_allowed == 0


def test_second_eviction_refused_while_the_first_pod_terminates():
    budget = pdb(maxUnavailable=1)
    state = pods(4)
    assert evict(budget, 4, state, "r0").allowed
    state[0] = PodState("r0", ready=True, terminating=True)
    assert evict(budget, 4, state, "r1").code == TOO_MANY_REQUESTS
    # a terminating pod itself may be evicted again without the budget
    assert evict(budget, 4, state, "r0").allowed


def test_unhealthy_pod_if_healthy_budget():
    # budget met (3 healthy >= 3 desired): the not-ready pod may go
    state = pods(3, not_ready=1)
    assert evict(pdb(maxUnavailable=1), 4, state, "u0").allowed
    # budget not met (2 healthy < 3): IfHealthyBudget (the default) refuses it
    state = pods(2, not_ready=2)
    res = evict(pdb(maxUnavailable=1), 4, state, "u0")
    assert res.code == TOO_MANY_REQUESTS
    res = evict(pdb(maxUnavailable=1, unhealthyPodEvictionPolicy="IfHealthyBudget"), 4, state, "u0")
    assert res.code == TOO_MANY_REQUESTS


def test_unhealthy_pod_always_allow():
    state = pods(2, not_ready=2)
    budget = pdb(maxUnavailable=1, unhealthyPodEvictionPolicy="AlwaysAllow")
    assert evict(budget, 4, state, "u0").allowed
    # ... but a healthy pod is still held by the budget
    assert evict(budget, 4, state, "r0").code == TOO_MANY_REQUESTS


def test_pending_pod_is_evicted_without_the_budget():
    state = pods(4) + [PodState("p0", ready=False, scheduled=False)]
    assert evict(pdb(minAvailable=5), 4, state, "p0").allowed
