"""The user's manifests on a cluster: applied as given in the run's
namespace, with every change the run makes to them listed."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import BadInput
from harness.model.clock import RunClock
from harness.model.events import EventWriter
from harness.model.rundir import update_manifest
from harness.model.scenario import load_scenario
from harness.model.workload import workload_of
from harness.platforms.kubernetes import KubernetesPlatform
from harness.platforms.kubernetes.apply import prepare
from harness.platforms.kubernetes.manifests import RUN_LABEL
from tests.platforms.kubernetes.test_platform import Cluster, app_url, run  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[3]
MANIFEST = ROOT / "examples" / "manifests" / "k8s" / "sample-app.yaml"


def scenario(tmp_path, manifest_text: str | None = None, **kube):
    (tmp_path / "app.yaml").write_text(manifest_text or MANIFEST.read_text())
    lines = "".join(f"  {k}: {v}\n" for k, v in kube.items())
    (tmp_path / "s.yaml").write_text("name: s\nworkload: {manifests: [app.yaml]}\n"
                                     + (f"kubernetes:\n{lines}" if lines else ""))
    return load_scenario(tmp_path / "s.yaml")


def test_objects_are_applied_as_given_and_each_change_is_listed(tmp_path):
    sc = scenario(tmp_path)
    p = prepare(sc, workload_of(sc), namespace="rh-1", run_id="run-1")
    assert [(r, o["metadata"]["name"]) for r, o in p.objects] == [
        ("services", "api"), ("poddisruptionbudgets", "api"), ("deployments", "api")]
    dep = dict(p.objects)["deployments"]
    original = workload_of(sc).deployment_doc.data
    # the pod spec is the user's, untouched
    assert dep["spec"]["template"]["spec"] == original["spec"]["template"]["spec"]
    assert dep["spec"]["selector"] == original["spec"]["selector"]
    assert dep["spec"]["template"]["metadata"]["labels"][RUN_LABEL] == "run-1"
    assert all(o["metadata"]["namespace"] == "rh-1" for _, o in p.objects)
    svc = dict(p.objects)["services"]
    assert svc["spec"]["type"] == "NodePort" and p.service == "api" and p.run_selector == f"{RUN_LABEL}=run-1"
    text = "\n".join(p.changes)
    assert "metadata.namespace (none) -> rh-1" in text
    assert "spec.type ClusterIP -> NodePort" in text
    assert "pod template labels +=" in text
    assert "imagePullPolicy" not in text  # IfNotPresent in the manifest, not set in the scenario: left alone


def test_pull_policy_changes_only_when_asked_or_unpullable(tmp_path):
    sc = scenario(tmp_path, imagePullPolicy="Never")
    p = prepare(sc, workload_of(sc), namespace="n", run_id="r")
    assert dict(p.objects)["deployments"]["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "Never"
    assert any("imagePullPolicy IfNotPresent -> Never" in c for c in p.changes)
    sc = scenario(tmp_path, MANIFEST.read_text().replace("imagePullPolicy: IfNotPresent", "imagePullPolicy: Always"))
    p = prepare(sc, workload_of(sc), namespace="n", run_id="r")
    assert any("imagePullPolicy Always -> IfNotPresent" in c for c in p.changes)


def test_a_missing_service_is_added_and_other_kinds_are_refused(tmp_path):
    docs = MANIFEST.read_text().split("---\n")
    sc = scenario(tmp_path, docs[0] + "---\n" + docs[2])
    p = prepare(sc, workload_of(sc), namespace="n", run_id="r")
    svc = dict(p.objects)["services"]
    assert svc["spec"]["selector"] == {"app.kubernetes.io/name": "api"} and svc["spec"]["type"] == "NodePort"
    assert any(c.startswith("added Service api") for c in p.changes)
    sc = scenario(tmp_path, MANIFEST.read_text() + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\n")
    with pytest.raises(BadInput, match=r"app.yaml:\d+ \(document 4: ConfigMap cfg\): kind ConfigMap is not applied"):
        prepare(sc, workload_of(sc), namespace="n", run_id="r")


def test_a_managed_run_creates_the_manifests_objects_and_records_the_changes(tmp_path, app_url):  # noqa: F811
    sc = scenario(tmp_path, url=app_url)
    sc.deployment.progress_deadline_seconds = 5
    api = Cluster(replicas=4)
    run_dir = tmp_path / "run"
    update_manifest(run_dir, status="running")
    platform = KubernetesPlatform(sc, run_dir, RunClock.start(), EventWriter(run_dir / "events.jsonl"), api=api)
    run(platform)
    created = [c[1:3] for c in api.calls if c[0] == "create"]
    assert [r for r, _ in created] == ["services", "poddisruptionbudgets", "deployments"]
    patch = next(c[3] for c in api.calls if c[0] == "patch")
    assert patch["spec"]["template"]["spec"]["containers"][0]["name"] == "app"
    info = platform.describe()
    assert any("ClusterIP -> NodePort" in c for c in info["manifest_changes"])


def test_target_mode_reads_the_live_deployment_through_the_same_model(tmp_path, app_url):  # noqa: F811
    import json

    from harness.model.scenario import scenario_from_dict

    api = Cluster()
    api.objects[("deployments", "shop")] = {
        "metadata": {"name": "shop", "generation": 1},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "shop"}},
                 "template": {"metadata": {"labels": {"app": "shop"}}, "spec": {
                     "terminationGracePeriodSeconds": 45,
                     "containers": [{"name": "web", "image": "shop:1", "ports": [{"containerPort": 80}],
                                     "lifecycle": {"preStop": {"sleep": {"seconds": 7}}}}]}}}}
    api._status(api.objects[("deployments", "shop")])
    sc = scenario_from_dict({"name": "t", "kubernetes": {"mode": "target", "target": {
        "deployment": "shop", "namespace": "prod", "url": app_url}}})
    assert sc.deployment.termination_grace_period_seconds == 30  # the scenario's default, before the run
    run_dir = tmp_path / "run"
    update_manifest(run_dir, scenario=sc.dump())
    platform = KubernetesPlatform(sc, run_dir, RunClock.start(), EventWriter(run_dir / "events.jsonl"), api=api)
    run(platform, disrupt=False)
    d = platform.sc.deployment
    assert (d.name, d.replicas, d.termination_grace_period_seconds) == ("shop", 2, 45)
    assert d.lifecycle.pre_stop.sleep.seconds == 7 and d.readiness_probe is None
    recorded = json.loads((run_dir / "manifest.json").read_text())
    assert recorded["scenario"]["deployment"]["terminationGracePeriodSeconds"] == 45
    assert recorded["live_deployment"]["source"] == "live Deployment prod/shop"
