"""What must hold for any recorded rolling update, replayed through all three
watches on one clock: each pod's steps come in lifecycle order, nothing is
reported twice, and the traffic path follows the pods (an endpoint is added
only after its pod is ready, removed only after its pod stops being ready or
is deleted) — which also checks that steps carry their arrival times."""

from __future__ import annotations

import pytest

from harness.platforms.kubernetes.podtrack import PodTracker
from tests.platforms.kubernetes.fakekube import FIXTURES, load
from tests.platforms.kubernetes.test_watch import replay_all

RECORDINGS = sorted(p.name for p in FIXTURES.glob("*.jsonl"))
ORDER = ["pod_created", "scheduled", "container_started", "ready", "deletion_requested", "pod_deleted"]


def first(steps, pod, kind):
    return next((t for t, p, k, _ in steps if p == pod and k == kind), None)


@pytest.fixture(params=RECORDINGS)
def steps(request):
    return replay_all(load(request.param))


def test_pod_steps_in_lifecycle_order(steps):
    pods = {p for _, p, k, _ in steps if k == "pod_created"}
    assert pods
    for pod in pods:
        times = [first(steps, pod, k) for k in ORDER]
        seen = [t for t in times if t is not None]
        assert seen == sorted(seen), (pod, dict(zip(ORDER, times)))


def test_no_step_reported_twice(steps):
    once = ("pod_created", "scheduled", "deletion_requested", "app_exited", "pod_deleted", "endpoint_terminating")
    keys = [(p, k) for _, p, k, _ in steps if k in once]
    assert len(keys) == len(set(keys))


def test_endpoints_follow_pod_readiness(steps):
    for t, pod, kind, _ in steps:
        if kind == "endpoint_added":
            ready = first(steps, pod, "ready")
            assert ready is not None and ready <= t, pod
        if kind == "endpoint_removed":
            why = [first(steps, pod, k) for k in ("deletion_requested", "not_ready", "pod_deleted")]
            assert any(w is not None and w <= t for w in why), pod


def test_every_deleted_pod_left_the_endpoints(steps):
    for _, pod, kind, _ in steps:
        if kind == "pod_deleted" and first(steps, pod, "endpoint_added") is not None:
            assert first(steps, pod, "endpoint_removed") is not None, pod


@pytest.mark.parametrize("name", RECORDINGS)
def test_every_deleted_pod_is_seen_to_end_and_a_cut_stream_is_not(name):
    """What the platform waits on before it closes the disruption: every pod
    whose deletion the watch saw has ended (a container terminated during the
    deletion, or the pod object went away). A stream cut before the exit
    (the run ended mid-preStop) leaves those pods not ended."""
    from tests.platforms.kubernetes.fakekube import FakeKube
    from tests.platforms.kubernetes.test_watch import run_watch, straight

    rec = load(name)
    full = PodTracker(now=lambda: 1)
    run_watch(straight(rec, "pods"), "pods", full, 1)
    ends = full.terminations()
    deleted = {p for p, t in ends.items() if t.deletion_seen_ns is not None}
    assert deleted, name
    assert all(ends[p].ended for p in deleted), {p: vars(t) for p, t in ends.items()}

    events = rec.events("pods")
    cut_at = next(i for i, (_, e) in enumerate(events) if e["object"]["metadata"].get("deletionTimestamp")) + 1
    first = rec.lists("pods")[0]
    kube = FakeKube().script_list("pods", first["items"], first["resourceVersion"], first["t_ns"])
    kube.script_watch("pods", *events[:cut_at])
    cut = PodTracker(now=lambda: 1)
    run_watch(kube, "pods", cut, 1)
    waiting = [p for p, t in cut.terminations().items() if t.deletion_seen_ns is not None and not t.ended]
    assert waiting, "a stream cut right after a deletion must leave that pod not ended"
