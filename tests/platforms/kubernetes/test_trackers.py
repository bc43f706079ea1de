"""Edge cases of the trackers that a single recorded rollout may not show."""

from __future__ import annotations

from pathlib import Path

from harness.model.clock import RunClock
from harness.platforms.kubernetes.client import KubeError
from harness.platforms.kubernetes.endpointtrack import EndpointTracker
from harness.platforms.kubernetes.podlogs import LogFollower, parse_app_line
from harness.platforms.kubernetes.podtrack import PodTracker
from tests.platforms.kubernetes.fakekube import FakeKube, Sink


def slice_(uid: str, *eps: tuple[str, dict | None]) -> dict:
    return {"metadata": {"uid": uid, "name": uid},
            "endpoints": [{"addresses": ["198.18.128.5"], "targetRef": {"kind": "Pod", "name": pod},
                           **({"conditions": c} if c is not None else {})} for pod, c in eps]}


def kinds(steps):
    return [(s.pod, str(s.kind)) for s in steps]


def test_nil_ready_counts_as_ready():
    t = EndpointTracker()
    assert kinds(t.update(slice_("s1", ("p1", None)))) == [("p1", "endpoint_added")]


def test_endpoint_moving_between_slices_is_not_a_removal():
    t = EndpointTracker()
    t.update(slice_("s1", ("p1", {"ready": True})))
    assert t.update(slice_("s2", ("p1", {"ready": True}))) == []  # now in both
    assert t.update(slice_("s1")) == []  # gone from s1, still routable via s2
    assert kinds(t.deleted(slice_("s2"))) == [("p1", "endpoint_removed")]
    assert t.routable_pods() == set()


def test_not_ready_without_terminating_is_a_removal_for_the_traffic_path():
    t = EndpointTracker()
    t.update(slice_("s1", ("p1", {"ready": True})))
    steps = t.update(slice_("s1", ("p1", {"ready": False, "serving": False, "terminating": False})))
    assert kinds(steps) == [("p1", "endpoint_removed")] and steps[0].detail["reason"] == "not_ready"
    assert kinds(t.update(slice_("s1", ("p1", {"ready": True})))) == [("p1", "endpoint_added")]


def test_pod_ready_flapping_reports_each_change_once():
    def pod(rv, ready):
        return {"metadata": {"uid": "u", "name": "p", "resourceVersion": str(rv)},
                "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}
    t = PodTracker()
    got = [str(s.kind) for rv, r in enumerate([False, True, True, False, True]) for s in t.update(pod(rv, r))]
    assert got == ["pod_created", "ready", "not_ready", "ready"]


def test_image_pull_problem_is_visible_to_the_platform():
    t = PodTracker()
    t.update({"metadata": {"uid": "u", "name": "p"}, "status": {"containerStatuses": [
        {"name": "app", "state": {"waiting": {"reason": "ErrImageNeverPull",
                                              "message": 'Container image "x" is not present'}}}]}})
    assert t.waiting_problems()["p"].startswith("ErrImageNeverPull")


def test_app_log_lines_become_events_on_the_run_clock():
    clock = RunClock(monotonic_anchor_ns=0, wall_anchor_ns=1_795_000_000_000_000_000)
    t_ns, step = parse_app_line('{"ts": 1795000002.5, "pod": "api-1", "event": "sigterm_received", "inflight": 3}',
                                "fallback", clock.from_wall_s)
    assert t_ns == 2_500_000_000 and str(step.kind) == "app_shutdown_started"
    assert step.detail["inflight"] == 3 and step.pod == "api-1"
    _, other = parse_app_line('{"ts": 1795000003, "pod": "api-1", "event": "listener_closed"}', "x",
                              clock.from_wall_s)
    assert str(other.kind) == "app_log" and other.detail["event"] == "listener_closed"
    assert parse_app_line("Traceback (most recent call last):", "x", clock.from_wall_s) is None


class FlakyLogs(FakeKube):
    """The first stream drops after two lines; the second serves the whole log."""

    LINES = [f'{{"ts": 1795000000.{i}, "pod": "api-1", "event": "e{i}"}}' for i in range(4)]

    def __init__(self):
        super().__init__()
        self.opened = 0

    def pod_log(self, namespace, pod, container):
        from tests.platforms.kubernetes.fakekube import FakeStream
        self.opened += 1
        if self.opened == 1:
            return FakeStream(self, [(0, {"line": l}) for l in self.LINES[:2]] + [KubeError("EOF")])
        return FakeStream(self, [(0, {"line": l}) for l in self.LINES])


def test_log_stream_reopened_after_a_drop_skips_what_was_read(tmp_path: Path):
    sink, kube = Sink(), FlakyLogs()
    running = iter([True, False])
    f = LogFollower(kube, "ns", "api-1", "app", tmp_path, sink, lambda s: int(s * 1e9),
                    still_running=lambda: next(running), retry_delay=0)
    f.run()
    assert kube.opened == 2
    assert [d["event"] for *_, d in sink.steps] == ["e0", "e1", "e2", "e3"]
    assert (tmp_path / "api-1.log").read_text().count("\n") == 4


def kubelet_event(uid: str, reason: str, message: str, count: int, last: str) -> dict:
    return {"metadata": {"uid": uid, "name": f"api-1.{uid}"}, "reason": reason, "message": message,
            "count": count, "lastTimestamp": last, "firstTimestamp": last, "eventTime": None,
            "involvedObject": {"kind": "Pod", "name": "api-1"}}


def test_events_from_before_the_run_are_history():
    from harness.platforms.kubernetes import apitime
    from harness.platforms.kubernetes.eventtrack import EventTracker

    since = apitime.parse("2026-11-26T04:40:00Z")[0]
    t = EventTracker(has_prestop=lambda pod: False, since_wall_ns=since)
    old = kubelet_event("e1", "Unhealthy", "Readiness probe failed: connection refused", 7, "2026-11-26T03:10:00Z")
    assert t.update(old) == []
    again = kubelet_event("e1", "Unhealthy", "Readiness probe failed: connection refused", 8, "2026-11-26T04:40:05Z")
    assert [(str(s.kind), s.detail["count"]) for s in t.update(again)] == [("probe_failed", 8)]
    assert t.update(again) == []  # the same occurrence delivered twice


def test_sigkill_is_inferred_from_exit_137_during_deletion_at_deletion_plus_grace():
    now = iter([10_000_000_000, 17_500_000_000]).__next__  # deletion seen at 10 s, exit seen at 17.5 s
    t = PodTracker(now=now)

    def pod(rv, **extra):
        meta = {"uid": "u", "name": "api-1", "resourceVersion": str(rv),
                "deletionTimestamp": "2026-11-26T04:40:29Z", "deletionGracePeriodSeconds": 6}
        return {"metadata": meta, "status": {"containerStatuses": [{"name": "app", "state": extra}]}}

    t.update(pod(1, running={"startedAt": "2026-11-26T04:40:00Z"}))
    steps = t.update(pod(2, terminated={"exitCode": 137, "reason": "Error", "containerID": "c1"}))
    kill = [s for s in steps if str(s.kind) == "sigkill_sent"]
    assert len(kill) == 1 and kill[0].at_ns == 16_000_000_000


def test_exit_137_without_deletion_or_from_oom_is_no_sigkill_by_the_kubelet():
    t = PodTracker(now=lambda: 0)
    oom = {"metadata": {"uid": "u", "name": "api-1", "deletionTimestamp": "2026-11-26T04:40:29Z",
                        "deletionGracePeriodSeconds": 6},
           "status": {"containerStatuses": [{"name": "app", "state": {
               "terminated": {"exitCode": 137, "reason": "OOMKilled", "containerID": "c1"}}}]}}
    assert "sigkill_sent" not in [str(s.kind) for s in t.update(oom)]
    crash = {"metadata": {"uid": "v", "name": "api-2"}, "status": {"containerStatuses": [{"name": "app", "state": {
        "terminated": {"exitCode": 137, "reason": "Error", "containerID": "c2"}}}]}}
    assert "sigkill_sent" not in [str(s.kind) for s in t.update(crash)]


def test_a_deleted_pod_ends_when_every_container_has_terminated():
    from harness.platforms.kubernetes.podtrack import PodTracker

    def pod(app_state, side_state):
        return {"metadata": {"uid": "u1", "name": "api-1", "deletionTimestamp": "2026-11-26T04:41:00Z",
                             "deletionGracePeriodSeconds": 30},
                "spec": {"containers": [{"name": "app"}, {"name": "proxy"}]},
                "status": {"containerStatuses": [{"name": "app", "state": app_state},
                                                 {"name": "proxy", "state": side_state}]}}
    t = PodTracker(now=lambda: 1)
    running = {"running": {"startedAt": "2026-11-26T04:40:00Z"}}
    t.update(pod(running, running))
    t.update(pod(running, {"terminated": {"exitCode": 0, "containerID": "s1"}}))
    assert not t.terminations()["api-1"].ended  # the sidecar alone ended; the app is still in its preStop
    t.update(pod({"terminated": {"exitCode": 0, "containerID": "a1"}}, {"terminated": {"exitCode": 0, "containerID": "s1"}}))
    assert t.terminations()["api-1"].ended
