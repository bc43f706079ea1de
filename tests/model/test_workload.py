"""One workload model: the sample app's manifest gives the same Deployment
as the scenario that transcribes it, fields the local platform cannot play
are listed with their lines, and bad manifests are refused by field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.errors import BadInput, ScenarioError
from harness.model.k8syaml import ManifestError, parse_documents
from harness.model.scenario import load_scenario
from harness.model.workload import from_documents, load_workload, workload_of

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "manifests"
MANIFEST = EXAMPLE / "k8s" / "sample-app.yaml"


def test_the_sample_app_manifest_is_the_best_practice_deployment():
    """The manifest carries the seed's settings: read through the model, it
    equals the scenario that writes them in the scenario's own layout."""
    wl = load_workload([str(MANIFEST)])
    seed = load_scenario(ROOT / "scenarios" / "best-practice.yaml")
    got = wl.deployment.dump()
    want = seed.deployment.dump()
    got.pop("podDisruptionBudget")
    for probe in ("readinessProbe", "livenessProbe"):  # the manifest names the port the scenario leaves implicit
        assert got[probe]["httpGet"].pop("port") == 8080
    assert got == want
    assert wl.app.image == seed.app.image and wl.app.container_port == 8080
    assert {k: v for k, v in wl.app.env.items() if k != "PORT"} == seed.app.env
    assert wl.deployment.pod_disruption_budget.max_unavailable == 1
    assert (wl.service_doc.name, wl.pdb_doc.name, wl.container) == ("api", "api", "app")


def test_fields_the_local_platform_cannot_play_are_listed_with_their_line():
    wl = load_workload([str(MANIFEST)])
    text = MANIFEST.read_text().splitlines()
    assert any(u.endswith("spec.template.spec.containers[0].resources") for u in wl.unmodelled)
    for entry in wl.unmodelled:
        line = int(entry.split(":")[1])
        field = entry.split(": ", 1)[1].split(" ")[0].split(".")[-1].split("[")[0]
        assert field in text[line - 1], (entry, text[line - 1])


def _deployment(**container) -> str:
    c = {"name": "web", "image": "web:1", "ports": [{"name": "http", "containerPort": 9000}], **container}
    return yaml.safe_dump({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                           "spec": {"selector": {"matchLabels": {"a": "b"}},
                                    "template": {"metadata": {"labels": {"a": "b"}},
                                                 "spec": {"containers": [c, {"name": "proxy", "image": "p"}]}}}})


def test_kubernetes_defaults_named_ports_and_sidecars():
    wl = from_documents(parse_documents(_deployment(
        readinessProbe={"httpGet": {"path": "/ready", "port": "http", "scheme": "HTTP"}},
        env=[{"name": "A", "value": 1}, {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
    ), "d.yaml"))
    d = wl.deployment
    # Kubernetes' defaults, not the scenario's
    assert (d.replicas, d.progress_deadline_seconds, d.termination_grace_period_seconds) == (1, 600, 30)
    assert d.readiness_probe.http_get.port == 9000 and wl.app.container_port == 9000
    assert wl.app.env == {"A": "1"}
    listed = " | ".join(wl.unmodelled)
    assert "readinessProbe.httpGet.scheme" in listed
    assert "S: valueFrom is not resolved locally" in listed
    assert "container 'proxy' is not run locally" in listed


@pytest.mark.parametrize("container, field", [
    ({"terminationMessagePath": "/x", "readinessProbe": {"httpGet": {"path": "/", "port": "nope"}}},
     r"d\.yaml:\d+ \(document 1: Deployment web\): spec\.template\.spec\.containers\[0\]\.readinessProbe\.httpGet"
     r"\.port: port 'nope'"),
    ({"livenessProbe": {"httpGet": {"path": "/"}, "periodSeconds": -1}},
     r"containers\[0\]\.livenessProbe\.periodSeconds: Input should be greater than 0"),
    ({"lifecycle": {"preStop": {}}}, r"containers\[0\]\.lifecycle\.preStop: preStop needs exactly one"),
], ids=["named-port", "negative-period", "empty-prestop"])
def test_a_bad_field_is_named_with_file_line_and_document(container, field):
    with pytest.raises(ManifestError, match=field):
        from_documents(parse_documents(_deployment(**container), "d.yaml"))


def test_choosing_among_deployments():
    two = _deployment() + "---\n" + _deployment().replace("name: web\n  ", "name: api\n  ", 1)
    docs = parse_documents(two, "two.yaml")
    with pytest.raises(ManifestError, match="2 Deployments .*workload.deployment"):
        from_documents(docs)
    assert from_documents(docs, deployment="web").deployment.name == "web"
    with pytest.raises(ManifestError, match="no Deployment named 'shop'"):
        from_documents(docs, deployment="shop")


def _scenario(tmp_path, body: str) -> Path:
    (tmp_path / "k8s").mkdir(exist_ok=True)
    (tmp_path / "k8s" / "app.yaml").write_text(MANIFEST.read_text())
    path = tmp_path / "s.yaml"
    path.write_text(body)
    return path


def test_a_scenario_takes_its_workload_from_manifests_relative_to_itself(tmp_path):
    sc = load_scenario(_scenario(tmp_path, "name: s\nworkload:\n  manifests: [k8s/app.yaml]\n"
                                           "  localCommands: {app: [run-me, '{port}']}\n"))
    assert sc.deployment.replicas == 4 and sc.app.command == ["run-me", "{port}"]
    wl = workload_of(sc)
    assert wl.from_manifests and wl.local_command == ["run-me", "{port}"]
    # the dumped scenario reloads without the files (a run dir is analysed later, elsewhere)
    from harness.model.scenario import scenario_from_dict
    again = scenario_from_dict(sc.dump())
    assert again.deployment == sc.deployment


@pytest.mark.parametrize("body, problem", [
    ("workload: {manifests: [k8s/app.yaml]}\ndeployment: {replicas: 2}\n", "deployment: comes from the manifests"),
    ("workload: {manifests: [k8s/app.yaml]}\napp: {env: {A: '1'}}\n", "app.env: comes from the manifests"),
    ("workload: {manifests: []}\n", "workload.manifests: a list of manifest files"),
], ids=["deployment-too", "app-env-too", "empty-list"])
def test_a_scenario_cannot_say_the_workload_twice(tmp_path, body, problem):
    with pytest.raises(ScenarioError, match=problem):
        load_scenario(_scenario(tmp_path, "name: s\n" + body))


def test_manifests_from_the_command_line_replace_the_scenarios(tmp_path):
    path = _scenario(tmp_path, "name: s\nworkload: {manifests: [k8s/app.yaml]}\n")
    rendered = (EXAMPLE / "helm-rendered.yaml").read_text()
    sc = load_scenario(path, manifests=["-"], stdin_text=rendered)
    assert sc.deployment.name == "demo-sample-app" and sc.deployment.replicas == 3
    assert workload_of(sc).local_command is None  # no command for container 'sample-app'
    from harness.model.workload import require_local_command
    with pytest.raises(BadInput, match="workload.localCommands.sample-app"):
        require_local_command(sc)


def test_node_placement_is_taken_at_node_level_and_the_rest_listed():
    zone = "topology.kubernetes.io/zone"
    text = _deployment().replace("spec:\n      containers:", "spec:\n      containers:", 1)
    data = yaml.safe_load(text)
    data["spec"]["template"]["spec"]["topologySpreadConstraints"] = [
        {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
         "labelSelector": {"matchLabels": {"a": "b"}}},
        {"maxSkew": 1, "topologyKey": zone, "whenUnsatisfiable": "ScheduleAnyway"}]
    data["spec"]["template"]["spec"]["affinity"] = {
        "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                                "labelSelector": {"matchLabels": {"a": "b"}}}}]},
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}
    wl = from_documents(parse_documents(yaml.safe_dump(data), "d.yaml"))
    [spread] = wl.deployment.topology_spread_constraints
    assert spread.topology_key == "kubernetes.io/hostname" and spread.max_skew == 1
    [term] = wl.deployment.affinity.pod_anti_affinity.preferred_during_scheduling_ignored_during_execution
    assert term.weight == 100
    listed = " | ".join(wl.unmodelled)
    assert "topologySpreadConstraints[1] (only kubernetes.io/hostname is modelled)" in listed
    assert "affinity.nodeAffinity" in listed
