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
