"""Scenario -> Namespace, Deployment, Service, PodDisruptionBudget: each
feature of the shipped scenarios lands in the field Kubernetes reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import BadInput
from harness.model.scenario import load_scenario, scenario_from_dict
from harness.platforms.kubernetes import manifests

SCENARIOS = sorted(Path(__file__).resolve().parents[3].joinpath("scenarios").glob("*.yaml"))


def render(data: dict, run_id: str = "20261126T044000-0001"):
    sc = scenario_from_dict({"name": "t", **data})
    return manifests.render(sc, namespace="rh-1", run_id=run_id)


def container(r) -> dict:
    return r.deployment["spec"]["template"]["spec"]["containers"][0]


def test_namespace_and_labels_mark_what_the_run_owns():
    r = render({})
    assert r.namespace["metadata"]["name"] == "rh-1"
    run = r.namespace["metadata"]["labels"][manifests.RUN_LABEL]
    for obj in (r.namespace, r.deployment, r.service):
        assert obj["metadata"]["labels"][manifests.MANAGED_BY] == "rollout-harness"
        assert obj["metadata"]["labels"][manifests.RUN_LABEL] == run
    assert r.deployment["spec"]["selector"]["matchLabels"] == r.service["spec"]["selector"]
    assert r.deployment["spec"]["template"]["metadata"]["labels"][manifests.RUN_LABEL] == run


def test_namespace_name_is_a_dns_label():
    name = manifests.namespace_name("Rollout-Harness", "20261126T044000-0001_x" * 4)
    assert len(name) <= 63 and name == name.lower() and name[0].isalnum() and name[-1].isalnum()


def test_app_env_pod_name_and_port():
    r = render({"app": {"image": "localhost/app:2", "containerPort": 9090, "env": {"GRACEFUL_SHUTDOWN": False}},
                "kubernetes": {"imagePullPolicy": "Never"}})
    c = container(r)
    assert (c["image"], c["imagePullPolicy"]) == ("localhost/app:2", "Never")
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["PORT"]["value"] == "9090" and env["GRACEFUL_SHUTDOWN"]["value"] == "false"
    assert c["ports"][0]["containerPort"] == 9090
    assert r.service["spec"]["ports"][0]["port"] == 9090 and r.service["spec"]["ports"][0]["targetPort"] == "http"


@pytest.mark.parametrize("handler,expected", [
    ({"sleep": {"seconds": 5}}, {"sleep": {"seconds": 5}}),
    ({"sleep": {"seconds": 1.5}}, {"sleep": {"seconds": 2}}),
    ({"exec": {"command": ["sleep", "3"]}}, {"exec": {"command": ["sleep", "3"]}}),
    ({"httpGet": {"path": "/drain"}}, {"httpGet": {"path": "/drain", "port": 8080}}),
], ids=["sleep", "sleep-fraction-rounds-up", "exec", "httpGet-default-port"])
def test_prestop_handlers(handler, expected):
    r = render({"deployment": {"lifecycle": {"preStop": handler}}})
    assert container(r)["lifecycle"] == {"preStop": expected}


def test_no_prestop_renders_no_lifecycle():
    assert "lifecycle" not in container(render({}))


@pytest.mark.parametrize("field", ["startupProbe", "readinessProbe", "livenessProbe"])
def test_probes_copy_every_parameter(field):
    probe = {"httpGet": {"path": "/ready"}, "initialDelaySeconds": 2, "periodSeconds": 1, "timeoutSeconds": 1,
             "successThreshold": 1, "failureThreshold": 2}
    r = render({"deployment": {field: probe}})
    assert container(r)[field] == {"httpGet": {"path": "/ready", "port": 8080}, "initialDelaySeconds": 2,
                                   "periodSeconds": 1, "timeoutSeconds": 1, "successThreshold": 1,
                                   "failureThreshold": 2}
    assert r.notes == []


def test_fractional_probe_timings_round_and_are_noted():
    r = render({"deployment": {"readinessProbe": {"tcpSocket": {}, "periodSeconds": 0.5, "timeoutSeconds": 0.3},
                               "terminationGracePeriodSeconds": 2.5}})
    p = container(r)["readinessProbe"]
    assert (p["tcpSocket"], p["periodSeconds"], p["timeoutSeconds"]) == ({"port": 8080}, 1, 1)
    assert r.deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 3
    assert any("periodSeconds" in n for n in r.notes) and any("terminationGracePeriodSeconds" in n for n in r.notes)


@pytest.mark.parametrize("strategy,expected", [
    ({"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
     {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}),
    ({"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "0%"}},
     {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "0%"}}),
    ({"type": "Recreate"}, {"type": "Recreate"}),
], ids=["surge-zero", "percent", "recreate"])
def test_strategy(strategy, expected):
    r = render({"deployment": {"strategy": strategy, "minReadySeconds": 2}})
    assert r.deployment["spec"]["strategy"] == expected
    assert r.deployment["spec"]["minReadySeconds"] == 2


@pytest.mark.parametrize("budget,expected", [
    ({"minAvailable": 3}, {"minAvailable": 3}),
    ({"maxUnavailable": "25%"}, {"maxUnavailable": "25%"}),
], ids=["minAvailable", "maxUnavailable"])
def test_pod_disruption_budget(budget, expected):
    r = render({"deployment": {"podDisruptionBudget": budget}})
    assert {k: v for k, v in r.pdb["spec"].items() if k != "selector"} == expected
    assert r.pdb["spec"]["selector"]["matchLabels"] == r.deployment["spec"]["selector"]["matchLabels"]


def test_no_budget_no_pdb():
    assert render({}).pdb is None


def test_fixed_node_port_for_kind():
    r = render({"kubernetes": {"nodePort": 30080}})
    assert r.service["spec"]["ports"][0]["nodePort"] == 30080 and r.service["spec"]["type"] == "NodePort"


def test_other_stop_signal_is_refused_with_the_fix():
    with pytest.raises(BadInput, match="STOPSIGNAL"):
        render({"app": {"stopSignal": "SIGINT"}})


def test_rollout_patch_env_and_image():
    sc = scenario_from_dict({"name": "t", "disruption": {"change": {"image": "x:2", "env": {"APP_VERSION": 2}}}})
    patch = manifests.rollout_patch(sc, container="app", now_rfc3339="2026-11-26T04:40:00Z")
    assert patch == {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "x:2", "env": [{"name": "APP_VERSION", "value": "2"}]}]}}}}


def test_rollout_patch_restart_is_kubectls_annotation():
    sc = scenario_from_dict({"name": "t", "disruption": {"type": "restart"}})
    patch = manifests.rollout_patch(sc, container="app", now_rfc3339="2026-11-26T04:40:00Z")
    assert patch["spec"]["template"]["metadata"]["annotations"] == {
        "kubectl.kubernetes.io/restartedAt": "2026-11-26T04:40:00Z"}


def test_a_later_rollout_of_the_same_deployment_also_restarts_it():
    """run --repeat: the second rollout's env/image are already in the template; without the restart
    annotation the patch would change nothing and no pod would be replaced."""
    sc = scenario_from_dict({"name": "t", "disruption": {"change": {"env": {"APP_VERSION": 2}}}})
    patch = manifests.rollout_patch(sc, container="app", now_rfc3339="2026-11-26T04:41:00Z", again=True)
    assert patch == {"spec": {"template": {
        "spec": {"containers": [{"name": "app", "env": [{"name": "APP_VERSION", "value": "2"}]}]},
        "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-26T04:41:00Z"}}}}}


def test_rollout_patch_without_a_change_is_bad_input():
    sc = scenario_from_dict({"name": "t", "disruption": {"change": {}}})
    with pytest.raises(BadInput, match="disruption.change"):
        manifests.rollout_patch(sc, container="app", now_rfc3339="x")


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_shipped_scenario_renders_its_features(path):
    sc = load_scenario(path)
    r = manifests.render(sc, namespace="rh-1", run_id="r1")
    d, c = sc.deployment, container(r)
    spec = r.deployment["spec"]
    assert spec["replicas"] == d.replicas
    assert ("lifecycle" in c) == (d.lifecycle.pre_stop is not None)
    for field, probe in (("readinessProbe", d.readiness_probe), ("startupProbe", d.startup_probe),
                         ("livenessProbe", d.liveness_probe)):
        assert (field in c) == (probe is not None)
    if d.strategy.type == "RollingUpdate":
        ru = spec["strategy"]["rollingUpdate"]
        assert (ru["maxSurge"], ru["maxUnavailable"]) == (d.strategy.rolling_update.max_surge,
                                                          d.strategy.rolling_update.max_unavailable)
    assert spec["template"]["spec"]["terminationGracePeriodSeconds"] >= d.termination_grace_period_seconds
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert all(env[k] == v for k, v in sc.app.env.items() if k not in ("POD_NAME", "PORT"))
    assert (r.pdb is not None) == (d.pod_disruption_budget is not None)
    manifests.rollout_patch(sc, container="app", now_rfc3339="2026-11-26T04:40:00Z")


def test_pdb_and_placement_render_with_kubernetes_field_names():
    r = render({"deployment": {
        "podDisruptionBudget": {"maxUnavailable": 1, "unhealthyPodEvictionPolicy": "AlwaysAllow"},
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                       "whenUnsatisfiable": "ScheduleAnyway"}],
        "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": "kubernetes.io/hostname"}]}}}})
    assert r.pdb["spec"]["maxUnavailable"] == 1 and r.pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert "minAvailable" not in r.pdb["spec"]
    pod_spec = r.deployment["spec"]["template"]["spec"]
    selector = r.deployment["spec"]["selector"]["matchLabels"]
    (tsc,) = pod_spec["topologySpreadConstraints"]
    assert tsc == {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
                   "nodeTaintsPolicy": "Ignore", "labelSelector": {"matchLabels": selector}}
    (term,) = pod_spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term == {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": selector}}
    assert "topologySpreadConstraints" not in render({}).deployment["spec"]["template"]["spec"]
