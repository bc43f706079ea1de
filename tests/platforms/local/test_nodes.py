"""The scheduler's choice of a node (harness.platforms.local.nodes)."""

from __future__ import annotations

from harness.model.scenario import Deployment
from harness.platforms.local.nodes import Node, busiest_node, choose_node, node_names


def dep(**kw) -> Deployment:
    return Deployment.model_validate({"replicas": 6, **kw})


SPREAD_HARD = {"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                               "whenUnsatisfiable": "DoNotSchedule"}]}
SPREAD_SOFT = {"topologySpreadConstraints": [{"maxSkew": 1, "whenUnsatisfiable": "ScheduleAnyway"}]}


def place(d: Deployment, nodes: list[Node], n: int, on: dict[str, int] | None = None) -> dict[str, int]:
    on = dict(on or {})
    for _ in range(n):
        node, why = choose_node(nodes, on, d)
        assert node is not None, why
        on[node] = on.get(node, 0) + 1
    return on


def test_spread_places_evenly():
    nodes = [Node(n) for n in node_names(3)]
    assert place(dep(**SPREAD_HARD), nodes, 6) == {"node-1": 2, "node-2": 2, "node-3": 2}
    assert place(dep(), nodes, 4) == {"node-1": 2, "node-2": 1, "node-3": 1}


def test_cordoned_node_is_filtered():
    nodes = [Node("node-1", unschedulable=True), Node("node-2")]
    assert choose_node(nodes, {"node-1": 0, "node-2": 5}, dep())[0] == "node-2"
    node, why = choose_node([Node("node-1", unschedulable=True)], {}, dep())
    assert node is None and "unschedulable" in why


def test_hard_spread_leaves_replacement_pending_while_the_drained_node_counts():
    # node-1 cordoned with 2 of its 3 pods left (one evicted): placing on node-2
    # would make 4 - 2 = 2 > maxSkew 1 -> Pending (nodeTaintsPolicy Ignore)
    nodes = [Node("node-1", unschedulable=True), Node("node-2")]
    node, why = choose_node(nodes, {"node-1": 2, "node-2": 3}, dep(**SPREAD_HARD))
    assert node is None and "topology spread" in why
    # Honor: the cordoned node is no domain, so the pod fits node-2
    honor = {"topologySpreadConstraints": [{**SPREAD_HARD["topologySpreadConstraints"][0],
                                            "nodeTaintsPolicy": "Honor"}]}
    assert choose_node(nodes, {"node-1": 2, "node-2": 3}, dep(**honor))[0] == "node-2"
    # ScheduleAnyway only scores
    assert choose_node(nodes, {"node-1": 2, "node-2": 3}, dep(**SPREAD_SOFT))[0] == "node-2"


def test_required_anti_affinity_one_pod_per_node():
    d = dep(affinity={"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"topologyKey": "kubernetes.io/hostname"}]}})
    nodes = [Node(n) for n in node_names(2)]
    on = place(d, nodes, 2)
    assert on == {"node-1": 1, "node-2": 1}
    node, why = choose_node(nodes, on, d)
    assert node is None and "anti-affinity" in why


def test_busiest_node():
    nodes = [Node(n) for n in node_names(3)]
    assert busiest_node({"node-1": 1, "node-2": 3, "node-3": 3}, nodes) == "node-2"
    assert busiest_node({}, nodes) == "node-1"


def test_only_the_node_level_is_modelled():
    import pytest

    from harness.errors import ScenarioError
    from harness.model.scenario import scenario_from_dict

    with pytest.raises(ScenarioError, match=r"topologySpreadConstraints\[0\]\.topologyKey: only topologyKey "
                                            r"kubernetes.io/hostname"):
        scenario_from_dict({"name": "t", "deployment": {"topologySpreadConstraints": [
            {"topologyKey": "topology.kubernetes.io/zone"}]}})
