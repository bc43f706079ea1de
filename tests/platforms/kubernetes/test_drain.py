"""The kubernetes drain (harness.platforms.kubernetes.drain) against the
fake kube client: cordon/uncordon patch the node, evictions go to the
policy/v1 Eviction subresource, a 429 is retried every 5 s with the PDB's
status as evidence, and a pod counts as gone when the API answers 404."""

from __future__ import annotations

import anyio

from harness.platforms.drain import run_drain
from harness.platforms.kubernetes.drain import (CORDONED_BY, UNCORDON_PATCH, KubeDrainTarget, busiest, cordon_patch,
                                                eviction_body, pods_per_node, uncordon_marked)
from tests.platforms.kubernetes.fakekube import FakeKube
from tests.platforms.test_drain import FakeTime


def pod(name: str, node: str, deleting: bool = False) -> dict:
    meta = {"name": name, **({"deletionTimestamp": "2026-01-01T00:00:00Z"} if deleting else {})}
    return {"metadata": meta, "spec": {"nodeName": node}}


PDB = {"metadata": {"name": "api"}, "status": {"expectedPods": 4, "desiredHealthy": 3, "currentHealthy": 3,
                                                "disruptionsAllowed": 0}}


def setup() -> FakeKube:
    kube = FakeKube()
    pods = [pod("api-1", "w1"), pod("api-2", "w1"), pod("api-3", "w2"), pod("api-4", "w2", deleting=True)]
    kube.script_list("pods", pods, "10")
    for p in pods[:2]:
        kube.objects[("pods", p["metadata"]["name"])] = p
    kube.objects[("poddisruptionbudgets", "api")] = PDB
    return kube


def drain(kube: FakeKube, nodes: list[str], timeout_s: float = 60):
    t, events = FakeTime(), []
    target = KubeDrainTarget(kube, "ns", "app=api", "api", "run-1")

    async def main():
        return await run_drain(target, nodes, timeout_s=timeout_s, now=t.now, sleep=t.sleep,
                               emit=lambda kind, p, **d: events.append((str(kind), p, t.now(), d)))

    return anyio.run(t.run, main), events


def test_cordon_evict_with_429_retry_uncordon():
    kube = setup()
    kube.eviction_answers = {"api-1": [201], "api-2": [429, 429, 201]}
    res, events = drain(kube, ["w1"])
    assert res.complete and sorted(res.evicted) == ["api-1", "api-2"] and res.refusals == 2
    patches = [c for c in kube.calls if c[0] == "patch_node"]
    assert patches == [("patch_node", "w1", cordon_patch("run-1", "1")), ("patch_node", "w1", UNCORDON_PATCH)]
    assert kube.nodes["w1"]["spec"] == {} and not kube.nodes["w1"]["metadata"].get("annotations")
    refused = [e for e in events if e[0] == "eviction_refused"]
    assert [e[2] for e in refused] == [0, 5_000_000_000]
    assert refused[0][3]["pdb"] == {"expected_pods": 4, "desired_healthy": 3, "current_healthy": 3,
                                    "disruptions_allowed": 0}
    # only the pods on the drained node, never api-3 on w2
    assert {c[1] for c in kube.calls if c[0] == "evict"} == {"api-1", "api-2"}


def test_a_pdb_that_never_allows_gives_up_at_the_timeout():
    kube = setup()
    kube.eviction_answers = {"api-1": [429], "api-2": [429]}
    res, _ = drain(kube, ["w1"], timeout_s=20)
    assert not res.complete and res.evicted == [] and set(res.blocked) == {"api-1", "api-2"}
    assert res.refusals == 10  # each pod at 0, 5, 10, 15, 20 s
    assert ("patch_node", "w1", UNCORDON_PATCH) in kube.calls


def test_eviction_body_and_placement_helpers():
    assert eviction_body("ns", "api-1") == {"apiVersion": "policy/v1", "kind": "Eviction",
                                            "metadata": {"name": "api-1", "namespace": "ns"}}
    per = pods_per_node([pod("a", "w1"), pod("b", "w2"), pod("c", "w2"), pod("d", "w1", deleting=True)])
    assert per == {"w1": 1, "w2": 2} and busiest(per) == "w2" and busiest({}) is None


class FakePlatform:
    """What drain_on_cluster uses of KubernetesPlatform."""

    def __init__(self, kube, tmp_path, scenario_overrides: dict):
        from harness.model.clock import RunClock
        from harness.model.events import EventWriter
        from harness.model.scenario import scenario_from_dict

        self.api, self.namespace, self.pod_selector, self.mode = kube, "ns", "app=api", "managed"
        self.run_label = "run-1"
        self.sc = scenario_from_dict({"name": "t", "disruption": {"type": "drain"}, **scenario_overrides})
        self.clock, self.events = RunClock.start(), EventWriter(tmp_path / "events.jsonl")
        self._progress, self.waited = "", False

    async def _wait_ready(self):
        self.waited = True

    async def _until_deleted_pods_ended(self, old, since_ns):
        self.ended_since = since_ns


def test_drain_on_cluster_drains_the_busiest_node_then_waits_for_full_strength(tmp_path):
    from harness.model.events import read_events
    from harness.platforms.kubernetes.drain import drain_on_cluster

    kube = setup()
    p = FakePlatform(kube, tmp_path, {"deployment": {"podDisruptionBudget": {"maxUnavailable": 1}}})
    kube.script_list("pods", [pod("api-1", "w1"), pod("api-2", "w1")], "11")  # pods_on(w1)
    summary = anyio.run(drain_on_cluster, p)
    p.events.close()
    assert summary["complete"] and p.waited
    kinds = [e["kind"] for e in read_events(tmp_path)]
    assert kinds[0] == "drain_started" and kinds[-1] == "drain_complete"
    started = read_events(tmp_path)[0]["detail"]
    assert started["pods_per_node"] == {"w1": 2, "w2": 1}  # api-4 is terminating: not counted
    assert summary["nodes"] == ["w1"]


def test_drain_on_cluster_that_cannot_finish_is_a_platform_error(tmp_path):
    import pytest

    from harness.errors import PlatformError
    from harness.platforms.kubernetes.drain import drain_on_cluster

    kube = setup()
    kube.script_list("pods", [pod("api-1", "w1"), pod("api-2", "w1")], "11")
    kube.eviction_answers = {"api-1": [429], "api-2": [429]}
    p = FakePlatform(kube, tmp_path, {"deployment": {"podDisruptionBudget": {"minAvailable": 4}},
                                      "disruption": {"type": "drain", "drain": {"timeoutSeconds": 1}}})
    with pytest.raises(PlatformError, match="did not finish within 1s.*2 eviction\\(s\\) refused with 429"):
        anyio.run(drain_on_cluster, p)
    assert not p.waited
    assert ("patch_node", "w1", UNCORDON_PATCH) in kube.calls


def test_evict_on_cluster_evicts_the_first_pods_by_name_without_cordon(tmp_path):
    from harness.platforms.kubernetes.drain import drain_on_cluster

    kube = setup()
    p = FakePlatform(kube, tmp_path, {"deployment": {"podDisruptionBudget": {"maxUnavailable": 1}},
                                      "disruption": {"type": "evict", "evict": {"pods": 2}}})
    summary = anyio.run(drain_on_cluster, p)
    assert summary["complete"] and summary["nodes"] == [] and sorted(summary["evicted"]) == ["api-1", "api-2"]
    assert not [c for c in kube.calls if c[0] == "patch_node"]


def test_a_node_cordoned_before_the_drain_is_drained_but_left_cordoned():
    kube = setup()
    kube.nodes["w1"] = {"metadata": {"name": "w1", "resourceVersion": "7"}, "spec": {"unschedulable": True}}
    res, events = drain(kube, ["w1"])
    assert res.complete and res.cordoned == [] and sorted(res.evicted) == ["api-1", "api-2"]
    assert not [c for c in kube.calls if c[0] == "patch_node"]  # neither marked nor uncordoned
    assert kube.nodes["w1"]["spec"] == {"unschedulable": True}
    assert [e[3] for e in events if e[0] == "node_cordoned"] == [{"node": "w1", "already_cordoned": True}]


def test_a_cordon_that_meets_another_writer_reads_the_node_again():
    kube = setup()
    kube.patch_node_errors = [409]
    res, _ = drain(kube, ["w1"])
    assert res.complete and res.cordoned == ["w1"]
    assert [c[2]["metadata"].get("resourceVersion") for c in kube.calls if c[0] == "patch_node"] == ["1", "1", None]


def test_the_mark_names_the_run_while_cordoned_and_teardown_or_cleanup_find_it():
    """A drain cut short before its uncordon (killed): the node keeps the mark
    with the run's label, uncordon_marked gives back exactly that run's nodes."""
    kube = setup()
    target = KubeDrainTarget(kube, "ns", "app=api", "api", "run-1")
    assert anyio.run(target.cordon, "w1") is True
    KubeDrainTarget(kube, "ns", "app=api", "api", "run-2")._cordon("w2")
    assert kube.nodes["w1"]["metadata"]["annotations"] == {CORDONED_BY: "run-1"}
    assert uncordon_marked(kube, "run-1") == [("w1", "run-1", None)]
    assert kube.nodes["w1"]["spec"] == {} and kube.nodes["w2"]["spec"] == {"unschedulable": True}
    kube.patch_node_errors = [500]
    assert uncordon_marked(kube) == [("w2", "run-2", "patch node w2: scripted error")]
    assert uncordon_marked(kube) == [("w2", "run-2", None)] and uncordon_marked(kube) == []


def test_uncordon_false_keeps_the_node_cordoned_without_the_mark(tmp_path):
    from harness.platforms.kubernetes.drain import drain_on_cluster

    kube = setup()
    kube.script_list("pods", [pod("api-1", "w1"), pod("api-2", "w1")], "11")
    p = FakePlatform(kube, tmp_path, {"deployment": {"podDisruptionBudget": {"maxUnavailable": 1}},
                                      "disruption": {"type": "drain", "drain": {"uncordon": False}}})
    summary = anyio.run(drain_on_cluster, p)
    assert summary["complete"] and kube.nodes["w1"]["spec"] == {"unschedulable": True}
    assert not kube.nodes["w1"]["metadata"].get("annotations")  # the user's cordon now: cleanup leaves it


def test_cleanup_uncordons_what_a_killed_drain_left_cordoned(capsys):
    import argparse
    from unittest import mock

    from harness.commands import cleanup

    kube = setup()
    kube.list_namespaces = lambda sel: []
    kube.context = "kind-x"
    KubeDrainTarget(kube, "ns", "app=api", "api", "run-1")._cordon("w1")
    kube.nodes["w2"] = {"metadata": {"name": "w2", "resourceVersion": "1"}, "spec": {"unschedulable": True}}
    args = argparse.Namespace(kubeconfig=None, context=None, namespace=None, run=None, dry_run=True)
    with mock.patch("harness.platforms.kubernetes.client.load_api", return_value=kube):
        assert cleanup.run(args) == 0
        assert "would uncordon nodes/w1 (run run-1)" in capsys.readouterr().out
        assert kube.nodes["w1"]["spec"] == {"unschedulable": True}
        args.dry_run = False
        assert cleanup.run(args) == 0
        assert "uncordoning nodes/w1 (run run-1)" in capsys.readouterr().out
        assert cleanup.run(args) == 0 and "nothing left over" in capsys.readouterr().out
    assert kube.nodes["w1"]["spec"] == {} and kube.nodes["w2"]["spec"] == {"unschedulable": True}
