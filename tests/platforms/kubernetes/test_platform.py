"""The platform's orchestration against the fake API: what it creates,
patches and deletes, in which namespace, and what it records."""

from __future__ import annotations

import http.server
import threading

import anyio
import pytest

from harness.errors import BadInput, PlatformError
from harness.model.clock import RunClock
from harness.model.events import EventWriter, read_events
from harness.model.scenario import scenario_from_dict
from harness.platforms.kubernetes import KubernetesPlatform
from harness.platforms.kubernetes.client import KubeError
from tests.platforms.kubernetes.fakekube import FakeKube


class Cluster(FakeKube):
    """Deployments roll out at once; the Service gets NodePort 31234."""

    def __init__(self, *, stuck=False, waiting=None, replicas=2):
        super().__init__()
        self.stuck = stuck
        # what the watches list when they start: the Service's endpoints, and a pod that cannot start
        eps = [{"addresses": [f"198.18.128.{i}"], "conditions": {"ready": True},
                "targetRef": {"kind": "Pod", "name": f"api-x-{i}"}} for i in range(replicas)]
        self.script_list("endpointslices", [{"metadata": {"uid": "s", "name": "api-s"}, "endpoints": eps}], "5")
        if waiting:
            self.script_list("pods", [{"metadata": {"uid": "p", "name": "api-x-0"}, "status": {
                "containerStatuses": [{"name": "app", "state": {"waiting": waiting}}]}}], "5")

    def create(self, resource, namespace, body):
        body = super().create(resource, namespace, body)
        if resource == "services":
            body["spec"]["ports"][0]["nodePort"] = 31234
        if resource == "deployments":
            body["metadata"]["generation"] = 1
            self._status(body)
        return body

    def _status(self, dep):
        n = dep["spec"]["replicas"]
        g = dep["metadata"]["generation"]
        conds = [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}] if self.stuck and g > 1 else []
        dep["status"] = {"observedGeneration": g, "replicas": n, "updatedReplicas": n,
                         "availableReplicas": n, "readyReplicas": n, "conditions": conds}

    def patch(self, resource, namespace, name, body):
        super().patch(resource, namespace, name, body)
        dep = self.objects[(resource, name)]
        dep["metadata"]["generation"] += 1
        self._status(dep)
        return dep


@pytest.fixture(scope="module")
def app_url():
    """A real HTTP server on loopback standing in for the NodePort."""
    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def make(tmp_path, app_url):
    def make(api, **kube):
        kube.setdefault("url", app_url)
        if "target" in kube:
            kube["target"]["url"] = app_url
        sc = scenario_from_dict({"name": "t", "deployment": {"replicas": 2, "progressDeadlineSeconds": 5},
                                 "kubernetes": kube})
        run_dir = tmp_path / "20261126T044000-0001"
        events = EventWriter(run_dir / "events.jsonl")
        return KubernetesPlatform(sc, run_dir, RunClock.start(), events, api=api), run_dir
    return make


def run(platform, *, disrupt=True):
    async def main():
        async with platform:
            await platform.deploy()
            if disrupt:
                await platform.disrupt()
    anyio.run(main)


def test_managed_run_creates_rolls_out_and_deletes_its_namespace(make):
    api = Cluster()
    p, run_dir = make(api)
    run(p)
    ns = p.namespace
    assert ns.startswith("rollout-harness-20261126t044000-0001-") and ns.islower() and len(ns) <= 63
    made = [c for c in api.calls if c[0] in ("create_namespace", "create", "patch", "delete_namespace")]
    assert [c[:2] for c in made] == [("create_namespace", ns), ("create", "deployments"), ("create", "services"),
                                     ("patch", "deployments"), ("delete_namespace", ns)]
    assert p.target_url().endswith("/work") and p.resolver() is None
    kinds = [e["kind"] for e in read_events(run_dir)]
    assert kinds[-2:] == ["rollout_started", "rollout_complete"]
    assert (run_dir / "kube-watch.jsonl").exists()


def test_existing_namespace_deletes_only_what_the_run_created(make):
    api = Cluster()
    p, _ = make(api, namespace="team-a")
    run(p, disrupt=False)
    assert not any(c[0] in ("create_namespace", "delete_namespace") for c in api.calls)
    assert [c for c in api.calls if c[0] == "delete"] == [("delete", "services", "api"),
                                                          ("delete", "deployments", "api")]


def test_target_mode_creates_and_deletes_nothing(make):
    api = Cluster()
    api.objects[("deployments", "shop")] = {
        "metadata": {"name": "shop", "generation": 1},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "shop"}},
                 "template": {"metadata": {"labels": {"app": "shop"}}, "spec": {"containers": [{"name": "web"}]}}}}
    api._status(api.objects[("deployments", "shop")])
    p, _ = make(api, mode="target",
                target={"deployment": "shop", "namespace": "prod", "url": "http://127.0.0.1:30080"})
    run(p)
    assert not any(c[0] in ("create", "delete", "create_namespace", "delete_namespace") for c in api.calls)
    patch = next(c[3] for c in api.calls if c[0] == "patch")
    assert patch["spec"]["template"]["spec"]["containers"][0]["name"] == "web"
    assert p.target_url().endswith("/work")


def test_target_deployment_missing_is_bad_input(make):
    p, _ = make(Cluster(), mode="target",
                target={"deployment": "shop", "namespace": "prod", "url": "http://127.0.0.1:30080"})
    with pytest.raises(BadInput, match="no Deployment 'shop' in namespace 'prod'"):
        run(p)


def test_stuck_rollout_is_inconclusive_and_still_tears_down(make):
    api = Cluster(stuck=True)
    p, run_dir = make(api)
    with pytest.raises(PlatformError, match="stuck"):
        run(p)
    assert api.calls[-1][0] == "delete_namespace"


class PortHeld(Cluster):
    """The pinned nodePort is held for the first ``held`` Service creations
    (the previous run's namespace still being deleted)."""

    def __init__(self, held: int):
        super().__init__()
        self.held = held

    def create(self, resource, namespace, body):
        if resource == "services" and self.held:
            self.held -= 1
            self.calls.append(("refused", resource))
            raise KubeError('POST services: 422 Service "api" is invalid: spec.ports[0].nodePort: '
                            'Invalid value: 30080: provided port is already allocated', status=422)
        return super().create(resource, namespace, body)


def test_a_pinned_node_port_still_held_is_waited_for(make, monkeypatch):
    from harness.platforms.kubernetes import deploy

    monkeypatch.setattr(deploy.anyio, "sleep", lambda s: anyio.lowlevel.checkpoint())
    api = PortHeld(held=2)
    p, _ = make(api, nodePort=30080)
    run(p, disrupt=False)
    made = [c[:2] for c in api.calls if c[1] == "services" and c[0] != "get"]
    assert made == [("refused", "services")] * 2 + [("create", "services")]


def test_a_pinned_node_port_held_for_good_names_the_field_and_still_tears_down(make, monkeypatch):
    from harness.platforms.kubernetes import deploy

    monkeypatch.setattr(deploy, "NODE_PORT_WAIT_S", 0.0)
    api = PortHeld(held=99)
    p, _ = make(api, nodePort=30080)
    with pytest.raises(PlatformError, match="kubernetes.nodePort 30080: still allocated"):
        run(p, disrupt=False)
    assert api.calls[-1][0] == "delete_namespace"


def test_image_not_loaded_fails_before_load_with_the_fix(make):
    api = Cluster(waiting={"reason": "ErrImageNeverPull", "message": "image not present with pull policy Never"})
    p, _ = make(api)
    with pytest.raises(BadInput, match="make kind-load"):
        run(p, disrupt=False)
    assert api.calls[-1][0] == "delete_namespace"


# ---- observation completeness: the disruption ends when every deleted pod has ended ----------

def _pod(name, *, deleting=False, terminated=None, prestop=True):
    meta = {"uid": f"u-{name}", "name": name, "labels": {"pod-template-hash": "old"}}
    if deleting:
        meta.update(deletionTimestamp="2026-11-26T04:41:00Z", deletionGracePeriodSeconds=1)
    state = {"terminated": terminated} if terminated else {"running": {"startedAt": "2026-11-26T04:40:00Z"}}
    spec = {"containers": [{"name": "app", **({"lifecycle": {"preStop": {"exec": {"command": ["sleep", "10"]}}}}
                                              if prestop else {})}]}
    return {"metadata": meta, "spec": spec, "status": {"containerStatuses": [{"name": "app", "state": state}]}}


class Terminating(Cluster):
    """The rollout completes at once, as the Deployment status says once the
    old pods are terminating; the old pod ends ``end_after_s`` later (never: None)."""

    def __init__(self, platform_box, end_after_s):
        super().__init__()
        self.script_list("pods", [_pod("api-old-0")], "5")
        self.box, self.end_after_s = platform_box, end_after_s
        self.ended_at = None

    def patch(self, resource, namespace, name, body):
        dep = super().patch(resource, namespace, name, body)
        tracker = self.box[0].pods
        tracker.update(_pod("api-old-0", deleting=True))  # its deletion, as the watch would deliver it

        def end():
            import time as _t
            self.ended_at = _t.monotonic()
            tracker.update(_pod("api-old-0", deleting=True, terminated={"exitCode": 0, "containerID": "c1"}))
        if self.end_after_s is not None:
            threading.Timer(self.end_after_s, end).start()
        return dep


def test_disrupt_returns_only_after_every_deleted_pod_has_ended(make):
    import time

    box = []
    api = Terminating(box, end_after_s=0.6)
    p, _ = make(api)
    box.append(p)
    run(p)
    returned = time.monotonic()
    assert api.ended_at is not None and returned >= api.ended_at
    assert "api-old-0" in p.pods.terminations() and p.pods.terminations()["api-old-0"].ended


def test_a_deleted_pod_not_seen_to_end_makes_the_run_inconclusive_naming_it(make, monkeypatch):
    from harness.errors import ObservationIncomplete
    from harness.platforms.kubernetes import platform as plat

    monkeypatch.setattr(plat, "END_MARGIN_S", 0.3)  # grace 1 s (the pod's own) + 0.3 s
    box = []
    api = Terminating(box, end_after_s=None)
    p, _ = make(api)
    box.append(p)
    with pytest.raises(ObservationIncomplete, match=r"pod api-old-0 was not seen to end within its grace period \(1 s\)"):
        run(p)


def test_the_live_deployment_spec_is_recorded_for_the_analysis(make):
    import json

    api = Cluster()
    api.objects[("deployments", "shop")] = {
        "metadata": {"name": "shop", "generation": 1},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "shop"}},
                 "template": {"metadata": {"labels": {"app": "shop"}}, "spec": {
                     "terminationGracePeriodSeconds": 45,
                     "containers": [{"name": "web", "lifecycle": {"preStop": {"exec": {"command": ["sleep", "10"]}}},
                                     "readinessProbe": {"httpGet": {"path": "/healthz", "port": 80}}}]}}}}
    api._status(api.objects[("deployments", "shop")])
    p, run_dir = make(api, mode="target", target={"deployment": "shop", "namespace": "prod", "url": "x"})
    (run_dir).mkdir(parents=True, exist_ok=True)
    (run_dir / "manifest.json").write_text("{}")
    run(p, disrupt=False)
    w = json.loads((run_dir / "manifest.json").read_text())["kubernetes"]["workload"]
    assert w["termination_grace_period_seconds"] == 45
    assert w["prestop"] == {"kind": "exec", "seconds": 10.0, "command": ["sleep", "10"], "text": "exec sleep 10"}
    assert w["readiness_probe"]["path"] == "/healthz"
