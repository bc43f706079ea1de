"""List + watch from recorded streams: the steps a rolling update yields, and
the same steps whatever the connection does (disconnect, 410 Gone,
duplicates, out-of-order delivery, unknown event types)."""

from __future__ import annotations

import logging

import pytest

from harness.platforms.kubernetes import apitime
from harness.platforms.kubernetes.client import KubeError
from harness.platforms.kubernetes.endpointtrack import EndpointTracker
from harness.platforms.kubernetes.eventtrack import EventTracker
from harness.platforms.kubernetes.podtrack import PodTracker
from harness.platforms.kubernetes.watch import ResourceWatch
from tests.platforms.kubernetes.fakekube import FIXTURES, FakeKube, Sink, load

RECORDINGS = sorted(p.name for p in FIXTURES.glob("*.jsonl"))
RESOURCES = ("pods", "endpointslices", "events")


def tracker_for(resource: str, pods: PodTracker | None = None, rec=None):
    if resource == "pods":
        return pods or PodTracker()
    if resource == "endpointslices":
        return EndpointTracker()
    return EventTracker(has_prestop=(pods or PodTracker()).has_prestop,
                        since_wall_ns=run_start_wall_ns(rec) if rec else 0)


def run_start_wall_ns(rec) -> int:
    """The run began no later than its first pod: Events before are history."""
    pods = list(rec.lists("pods")[0]["items"]) + [e["object"] for _, e in rec.events("pods")]
    return min(apitime.parse(p["metadata"]["creationTimestamp"])[0] for p in pods)


def run_watch(kube: FakeKube, resource: str, tracker, sessions: int) -> tuple[Sink, ResourceWatch]:
    sink = Sink()
    w = ResourceWatch(kube, resource, "ns", tracker, sink, lambda: kube.t_ns, sleep=lambda s: None)
    w.run(max_sessions=sessions)
    return sink, w


def straight(rec, resource):
    first = rec.lists(resource)[0]
    kube = FakeKube().script_list(resource, first["items"], first["resourceVersion"], first["t_ns"])
    kube.script_watch(resource, *rec.events(resource))
    return kube


def replay(rec, resource) -> Sink:
    pods = PodTracker()
    if resource == "events":  # Killing needs to know which pods have a preStop hook
        run_watch(straight(rec, "pods"), "pods", pods, 1)
    sink, _ = run_watch(straight(rec, resource), resource, tracker_for(resource, pods, rec), 1)
    return sink


def replay_all(rec) -> list[tuple[int, str, str, dict]]:
    """All three resources replayed, their steps merged by arrival time."""
    pods = PodTracker()
    steps = run_watch(straight(rec, "pods"), "pods", pods, 1)[0].steps
    for resource in ("endpointslices", "events"):
        steps += run_watch(straight(rec, resource), resource, tracker_for(resource, pods, rec), 1)[0].steps
    return sorted(steps, key=lambda s: s[0])


def steps_only(sink: Sink) -> list[tuple[str, str]]:
    return [(pod, kind) for _, pod, kind, _ in sink.steps]


# ---- what a rolling update looks like (streams recorded on the e2e cluster) ----
# recorded-<scenario>.jsonl: the scenario with 2 replicas, 100 req/s, on the
# project's single-node Kubernetes v1.34 (managedFields stripped).

REPLACED = ["pod_created", "scheduled", "container_started", "ready", "endpoint_added", "deletion_requested",
            "endpoint_terminating", "endpoint_removed", "not_ready", "app_exited", "pod_deleted"]


def by_pod(steps) -> dict[str, list[tuple[str, dict]]]:
    out: dict[str, list[tuple[str, dict]]] = {}
    for _, pod, kind, detail in steps:
        out.setdefault(pod, []).append((kind, detail))
    return out


@pytest.mark.parametrize("recording,termination_starts_with", [
    ("recorded-best-practice.jsonl", "prestop_started"),  # Killing, on a pod with a preStop hook
    ("recorded-no-prestop.jsonl", "sigterm_sent"),        # Killing, on a pod without one
], ids=["best-practice", "no-prestop"])
def test_each_replaced_pod_reports_its_whole_life(recording, termination_starts_with):
    pods = by_pod(replay_all(load(recording)))
    replaced = {p: steps for p, steps in pods.items() if any(k == "deletion_requested" for k, _ in steps)}
    created = {p for p, steps in pods.items() if any(k == "pod_created" for k, _ in steps)} - set(replaced)
    assert len(replaced) == 2 and len(created) == 2  # 2 replicas rolled over
    for pod, steps in replaced.items():
        kinds = [k for k, _ in steps]
        assert set(REPLACED) | {termination_starts_with} <= set(kinds), (pod, kinds)
        detail = dict(steps)
        assert detail["deletion_requested"]["grace_period_seconds"] == 20
        assert (detail["app_exited"]["exit_code"], detail["app_exited"]["reason"]) == (0, "Completed")
        assert detail["endpoint_removed"]["reason"] == "terminating"
        assert detail["endpoint_terminating"]["serving"] is True  # still draining, as the app does
        assert detail[termination_starts_with]["reason"] == "Killing"
    for pod in created:
        kinds = [k for k, _ in pods[pod]]
        assert [k for k in kinds if k in REPLACED] == ["pod_created", "scheduled", "container_started", "ready",
                                                       "endpoint_added"], (pod, kinds)


def test_readiness_failures_during_warm_up_are_probe_failures():
    steps = replay_all(load("recorded-best-practice.jsonl"))
    failed = [d for _, _, k, d in steps if k == "probe_failed"]
    assert failed and {d["probe"] for d in failed} == {"readiness"}
    assert all(d["reason"] == "Unhealthy" and d["precision_s"] == 1.0 for d in failed)


# ---- the same steps whatever the connection does ------------------------------

@pytest.mark.parametrize("recording", RECORDINGS)
@pytest.mark.parametrize("resource", RESOURCES)
def test_disconnect_resumes_from_last_resource_version(recording, resource):
    rec = load(recording)
    events = rec.events(resource)
    if len(events) < 2:
        pytest.skip(f"{recording} has fewer than 2 {resource} watch events")
    cut = len(events) // 2
    first = rec.lists(resource)[0]
    kube = FakeKube().script_list(resource, first["items"], first["resourceVersion"], first["t_ns"])
    kube.script_watch(resource, *events[:cut], KubeError("connection reset by peer"))
    kube.script_watch(resource, *events[cut:])
    pods = PodTracker()
    if resource == "events":
        run_watch(straight(rec, "pods"), "pods", pods, 1)
    sink, w = run_watch(kube, resource, tracker_for(resource, pods, rec), 2)
    assert steps_only(sink) == steps_only(replay(rec, resource))
    resumed_from = kube.watch_calls[1][1]
    assert resumed_from == events[cut - 1][1]["object"]["metadata"]["resourceVersion"]
    assert kube.list_calls == [resource] and w.stats["disconnects"] == 1


@pytest.mark.parametrize("recording", RECORDINGS)
def test_410_gone_relists_and_reports_what_vanished(recording):
    """The watch dies with 410 before the old pod's deletion arrives; the
    re-list no longer has it: it is reported deleted, once, and nothing
    already reported is repeated."""
    rec = load(recording)
    events = rec.events("pods")
    deleted_at = next(i for i, (_, e) in enumerate(events) if e["type"] == "DELETED")
    gone = events[deleted_at][1]["object"]
    # the state after the gap: the last version of every pod that still exists
    latest: dict[str, dict] = {p["metadata"]["uid"]: p for p in rec.lists("pods")[0]["items"]}
    for _, e in events[:deleted_at + 1]:
        latest[e["object"]["metadata"]["uid"]] = e["object"]
    latest.pop(gone["metadata"]["uid"])
    first = rec.lists("pods")[0]
    kube = FakeKube().script_list("pods", first["items"], first["resourceVersion"], first["t_ns"])
    kube.script_watch("pods", *events[:deleted_at // 2],
                      (0, {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired",
                                                      "message": "too old resource version"}}))
    kube.script_list("pods", list(latest.values()), gone["metadata"]["resourceVersion"], 999)
    kube.script_watch("pods", *events[deleted_at + 1:])
    sink, w = run_watch(kube, "pods", PodTracker(), 2)

    name = gone["metadata"]["name"]
    assert kube.list_calls == ["pods", "pods"] and w.stats["gone"] == 1
    assert sink.kinds(name).count("pod_deleted") == 1
    deleted = next(d for _, p, k, d in sink.steps if p == name and k == "pod_deleted")
    assert deleted == {"missed_on_watch": True}
    full = steps_only(replay(rec, "pods"))
    assert set(steps_only(sink)) <= set(full)
    assert all(steps_only(sink).count(s) <= full.count(s) for s in set(steps_only(sink)))


@pytest.mark.parametrize("recording", RECORDINGS)
@pytest.mark.parametrize("resource", RESOURCES)
def test_duplicates_change_nothing(recording, resource):
    rec = load(recording)
    first = rec.lists(resource)[0]
    kube = FakeKube().script_list(resource, first["items"], first["resourceVersion"], first["t_ns"])
    kube.script_watch(resource, *[e for e in rec.events(resource) for _ in (0, 1)])
    pods = PodTracker()
    if resource == "events":
        run_watch(straight(rec, "pods"), "pods", pods, 1)
    sink, w = run_watch(kube, resource, tracker_for(resource, pods, rec), 1)
    assert steps_only(sink) == steps_only(replay(rec, resource))
    assert w.stats["skipped"] >= len(rec.events(resource))


@pytest.mark.parametrize("recording", RECORDINGS)
def test_an_older_version_arriving_late_is_ignored(recording):
    rec = load(recording)
    events = rec.events("pods")
    # find two consecutive MODIFIED events of the same pod and swap them
    i = next(i for i in range(len(events) - 1)
             if events[i][1]["type"] == events[i + 1][1]["type"] == "MODIFIED"
             and events[i][1]["object"]["metadata"]["uid"] == events[i + 1][1]["object"]["metadata"]["uid"])
    swapped = events[:i] + [events[i + 1], events[i]] + events[i + 2:]
    first = rec.lists("pods")[0]
    kube = FakeKube().script_list("pods", first["items"], first["resourceVersion"], first["t_ns"])
    kube.script_watch("pods", *swapped)
    sink, w = run_watch(kube, "pods", PodTracker(), 1)
    assert w.stats["skipped"] == 1
    # every step still reported exactly once (the newer object carries both changes)
    assert sorted(steps_only(sink)) == sorted(steps_only(replay(rec, "pods")))


def test_unknown_event_type_is_skipped_with_a_log_line(caplog):
    rec = load(RECORDINGS[0])
    first = rec.lists("pods")[0]
    kube = FakeKube().script_list("pods", first["items"], first["resourceVersion"], first["t_ns"])
    kube.script_watch("pods", (5, {"type": "SOMETHING_NEW", "object": {}}), *rec.events("pods"))
    with caplog.at_level(logging.WARNING):
        sink, w = run_watch(kube, "pods", PodTracker(), 1)
    assert w.stats["unknown"] == 1
    assert "skipping unknown event type 'SOMETHING_NEW'" in caplog.text
    assert steps_only(sink) == steps_only(replay(rec, "pods"))


def test_bookmark_moves_the_resume_point_without_steps():
    kube = FakeKube().script_list("pods", [], "100")
    kube.script_watch("pods", (1, {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "250"}}}),
                      KubeError("eof"))
    sink, _ = run_watch(kube, "pods", PodTracker(), 2)
    assert sink.steps == [] and kube.watch_calls == [("pods", "100"), ("pods", "250")]


def test_steps_are_stamped_with_arrival_time():
    rec = load(RECORDINGS[0])
    sink = replay(rec, "pods")
    arrivals = {t for t, _ in rec.events("pods")} | {rec.lists("pods")[0]["t_ns"]}
    assert {t for t, *_ in sink.steps} <= arrivals
