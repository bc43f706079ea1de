"""The drain scenarios (scenarios/drain-*.yaml) load, say their expected
outcome, and each is drain-best-practice plus exactly its one mistake."""

from __future__ import annotations

import pytest

from tests.sample_app.test_scenarios_valid import SCENARIOS, flat, load

DRAIN = sorted(p.stem for p in SCENARIOS.glob("drain-*.yaml"))
MISTAKE_FIELDS = {
    "drain-no-pdb": {"deployment.podDisruptionBudget"},
    "drain-pdb-blocks": {"deployment.podDisruptionBudget"},
    "drain-single-replica": {"deployment.replicas", "app.env.MAX_CONCURRENCY", "app.env.QUEUE_TIMEOUT_MS"},
}


def test_the_drain_scenarios_ship():
    assert DRAIN == sorted(["drain-best-practice", *MISTAKE_FIELDS])


@pytest.mark.parametrize("name", DRAIN)
def test_drain_scenario_shape(name):
    sc = load(name)
    assert sc.name == name and sc.disruption.type == "drain"
    assert "Expected" in sc.description
    assert ("Fix" in sc.description) == (name != "drain-best-practice")
    assert sc.local.nodes >= 2 and sc.gate.max_failed_requests == 0


def test_best_practice_has_every_protection():
    d = load("drain-best-practice").deployment
    assert d.pod_disruption_budget is not None and d.pod_disruption_budget.max_unavailable == 1
    assert d.topology_spread_constraints and d.lifecycle.pre_stop is not None and d.replicas >= 2


@pytest.mark.parametrize("name", sorted(MISTAKE_FIELDS))
def test_is_drain_best_practice_plus_one_mistake(name):
    base = flat(load("drain-best-practice").dump())
    this = flat(load(name).dump())
    differ = {k for k in base.keys() | this.keys() if base.get(k) != this.get(k)} - {"name", "description"}
    allowed = MISTAKE_FIELDS[name]
    assert differ, f"{name} is identical to drain-best-practice"
    outside = {k for k in differ if not any(k == p or k.startswith(p + ".") for p in allowed)}
    assert not outside, f"{name} differs from drain-best-practice beyond its mistake: {sorted(outside)}"
