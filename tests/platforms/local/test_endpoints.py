"""Endpoint propagation with fake time: what the traffic path sees, when."""

import random

import pytest

from harness.platforms.local.endpoints import ProxyResolver, ProxyView

S = 1_000_000_000


class Events:
    def __init__(self):
        self.seen = []

    def emit(self, t_ns, pod, kind, source="harness", **detail):
        self.seen.append((t_ns, pod, str(kind)))


def view(delay=1.0, jitter=0.0, seed=1):
    return ProxyView(events=Events(), host="127.0.0.1", delay_s=delay, jitter_s=jitter, rng=random.Random(seed))


def test_ready_pod_appears_after_the_delay():
    v = view()
    v.pod_ready(0, "a", 2001)
    assert v.apply_due(S - 1) == [] and v.routes == ()
    assert v.apply_due(S) == [("a", True)]
    assert [r.pod for r in v.routes] == ["a"] and v.routes[0].port == 2001
    assert v.events.seen[-1] == (S, "a", "endpoint_added")


def test_deletion_marks_terminating_at_once_and_removes_after_the_delay():
    v = view()
    v.pod_ready(0, "a", 2001)
    v.apply_due(S)
    v.pod_terminating(5 * S, "a")
    assert v.events.seen[-1] == (5 * S, "a", "endpoint_terminating")
    v.apply_due(6 * S - 1)
    assert [r.pod for r in v.routes] == ["a"], "the stale view still routes to the deleted pod"
    assert v.apply_due(6 * S) == [("a", False)] and v.routes == ()


def test_a_terminating_pod_never_comes_back():
    v = view()
    v.pod_ready(0, "a", 2001)
    v.apply_due(S)
    v.pod_terminating(2 * S, "a")
    assert v.pod_ready(2 * S + 1, "a", 2001) is None
    v.apply_due(10 * S)
    assert v.routes == ()


def test_updates_of_one_pod_apply_in_order_despite_jitter():
    v = view(delay=1.0, jitter=0.9, seed=3)
    for i in range(50):
        v.pod_ready(i * 10, "a", 2001)
        v.pod_not_ready(i * 10 + 1, "a")
    v.apply_due(100 * S)
    assert v.routes == (), "the last update (not ready) wins"


def test_jitter_stays_within_bounds_and_is_seeded():
    def due_times(seed):
        v = view(delay=1.0, jitter=0.2, seed=seed)
        return [v.pod_ready(0, f"p{i}", 2000 + i) for i in range(200)]

    times = due_times(7)
    assert all(0.8 * S <= t <= 1.2 * S for t in times)
    assert len(set(times)) > 1
    assert times == due_times(7)


def test_not_ready_for_a_pod_never_seen_changes_nothing():
    v = view()
    v.pod_not_ready(0, "ghost")
    assert v.apply_due(5 * S) == [] and v.events.seen == []


@pytest.mark.parametrize("round_robin", [False, True], ids=["random", "round-robin"])
def test_resolver_picks_only_visible_endpoints(round_robin):
    v = view(delay=0)
    r = ProxyResolver(v, rng=random.Random(0), round_robin=round_robin)
    assert r.pick() is None
    for i, pod in enumerate("abc"):
        v.pod_ready(0, pod, 2000 + i)
    v.apply_due(0)
    picked = {r.pick().pod for _ in range(300)}
    assert picked == {"a", "b", "c"}
    v.pod_terminating(1, "b")
    v.apply_due(1)
    assert {r.pick().pod for _ in range(300)} == {"a", "c"}


def test_the_ingress_follows_the_endpointslice_at_once_not_kube_proxys_lagging_view():
    """Traefik's Kubernetes providers watch the EndpointSlice and fence a
    terminating endpoint: the ingress feed changes when the slice does, while
    kube-proxy's view (routes) still waits for the propagation delay."""
    v = view()
    fed = []
    v.on_slice_change = fed.append
    v.pod_ready(0, "a", 2001)
    v.pod_ready(0, "b", 2002)
    assert sorted(fed[-1]) == ["a", "b"] and fed[-1]["a"].port == 2001 and v.routes == ()
    v.apply_due(S)
    v.pod_terminating(5 * S, "a")
    assert sorted(fed[-1]) == ["b"], "a terminating endpoint is fenced at once"
    assert sorted(r.pod for r in v.routes) == ["a", "b"], "kube-proxy still routes to it"
    v.pod_not_ready(6 * S, "b")
    assert fed[-1] == {}
    n = len(fed)
    v.pod_ready(7 * S, "a", 2001)   # terminating: never routable again
    v.pod_not_ready(7 * S, "b")     # no change: no feed
    assert len(fed) == n
