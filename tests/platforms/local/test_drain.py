"""The local platform's side of a drain (harness.platforms.local.drain):
evictions answered from the pods' live state, an allowed eviction deletes
the pod as any deletion does, and a drain of a node the platform does not
have is bad input before anything starts."""

from __future__ import annotations

import anyio
import pytest

from harness.errors import BadInput
from harness.model.clock import RunClock
from harness.model.events import EventWriter, read_events
from harness.model.scenario import scenario_from_dict
from harness.platforms.local.drain import LocalDrainTarget
from harness.platforms.local.platform import LocalPlatform
from harness.platforms.local.pods import Pod, Template


def platform(tmp_path, **deployment) -> LocalPlatform:
    sc = scenario_from_dict({"name": "t", "deployment": {"replicas": 3, **deployment},
                             "disruption": {"type": "drain"}, "local": {"nodes": 2}})
    return LocalPlatform(sc, tmp_path, RunClock.start(), EventWriter(tmp_path / "events.jsonl"))


def add_pods(p: LocalPlatform, nodes: list[str]) -> list[Pod]:
    t = Template.initial(p.scenario)
    out = []
    for i, node in enumerate(nodes):
        pod = Pod(name=f"api-x-{i}", template=t, template_hash=t.hash(), port=10000 + i, created_ns=0,
                  ready=True, started=True, node=node)
        p.pods.append(pod)
        p._deleted[pod.name] = anyio.Event()
        out.append(pod)
    return out


def test_evictions_follow_the_budget_and_delete_the_pod(tmp_path):
    p = platform(tmp_path, podDisruptionBudget={"maxUnavailable": 1})
    target = LocalDrainTarget(p)

    async def main():
        pods = add_pods(p, ["node-1", "node-1", "node-2"])
        await target.cordon("node-1")
        assert p.nodes[0].unschedulable
        assert await target.pods_on("node-1") == ["api-x-0", "api-x-1"]
        code, _, status = await target.evict("api-x-0")
        assert code == 201 and status["disruptions_allowed"] == 1
        assert pods[0].deleting
        code, message, status = await target.evict("api-x-1")
        assert code == 429 and status["disruptions_allowed"] == 0 and "disruption budget" in message
        assert not pods[1].deleting
        assert await target.pods_on("node-1") == ["api-x-1"]
        await target.uncordon("node-1")
        assert not p.nodes[0].unschedulable

    anyio.run(main)
    p.events.close()
    kinds = [e["kind"] for e in read_events(tmp_path)]
    assert kinds.count("deletion_requested") == 1 and "endpoint_terminating" in kinds


def test_unknown_drain_node_is_bad_input(tmp_path):
    sc = scenario_from_dict({"name": "t", "disruption": {"type": "drain", "drain": {"nodes": ["node-9"]}},
                             "local": {"nodes": 2}}, source="x.yaml")
    p = LocalPlatform(sc, tmp_path, RunClock.start(), EventWriter(tmp_path / "events.jsonl"))
    with pytest.raises(BadInput, match=r"x.yaml: disruption.drain.nodes: no node 'node-9'.*local.nodes: 2"):
        anyio.run(p.deploy)
