"""Render the managed-mode objects (Namespace, Deployment, Service,
PodDisruptionBudget) from a scenario.

The scenario's ``deployment:`` fields carry Kubernetes' own names, so most
of the rendering is a direct copy into the skeletons in ``manifests/``.
Two things are not direct, and each is recorded in ``notes``:

- the local platform accepts fractional seconds (scenarios are scaled to
  run in a minute), Kubernetes wants whole seconds: a duration that keeps
  the app alive (grace period, preStop sleep, probe timeout) rounds up, a
  probe period rounds to the nearest second (at least 1);
- the app reads ``POD_NAME`` (downward API) and ``PORT`` (the container
  port) from its environment, as the local platform sets them.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from harness.errors import BadInput
from harness.model.scenario import HTTPGetAction, LifecycleHandler, Probe, Scenario

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "rollout-harness"
RUN_LABEL = "rollout-harness.io/run"
NAME_LABEL = "app.kubernetes.io/name"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
CONTAINER = "app"


@dataclass
class Rendered:
    namespace: dict[str, Any]
    deployment: dict[str, Any]
    service: dict[str, Any]
    pdb: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)

    def objects(self) -> list[dict[str, Any]]:
        return [o for o in (self.namespace, self.deployment, self.service, self.pdb) if o]


def _skeleton(name: str) -> dict[str, Any]:
    text = resources.files("harness.platforms.kubernetes").joinpath("manifests", name).read_text("utf-8")
    return copy.deepcopy(yaml.safe_load(text))


def namespace_name(prefix: str, run_id: str) -> str:
    """``<prefix>-<run id>``, lowercased and cut to a valid DNS label."""
    raw = f"{prefix}-{run_id}".lower()
    clean = "".join(c if c.isalnum() or c == "-" else "-" for c in raw)[:63].strip("-")
    return clean


def run_label_value(run_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in run_id)[:63].strip("-_.")


class _Seconds:
    """Whole-second conversion that remembers each rounding."""

    def __init__(self, notes: list[str]):
        self.notes = notes

    def up(self, where: str, v: float, minimum: int = 0) -> int:
        out = max(minimum, math.ceil(v - 1e-9))
        if out != v:
            self.notes.append(f"{where}: {v:g}s rounded up to {out}s (Kubernetes takes whole seconds)")
        return out

    def near(self, where: str, v: float, minimum: int = 0) -> int:
        out = max(minimum, round(v))
        if out != v:
            self.notes.append(f"{where}: {v:g}s rounded to {out}s (Kubernetes takes whole seconds)")
        return out


def _http_get(action: HTTPGetAction, port: int) -> dict[str, Any]:
    out: dict[str, Any] = {"path": action.path, "port": action.port or port}
    if action.http_headers:
        out["httpHeaders"] = [dict(h) for h in action.http_headers]
    return out


def _probe(where: str, p: Probe, port: int, sec: _Seconds) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if p.http_get:
        out["httpGet"] = _http_get(p.http_get, port)
    elif p.tcp_socket:
        out["tcpSocket"] = {"port": p.tcp_socket.port or port}
    elif p.exec:
        out["exec"] = {"command": list(p.exec.command)}
    out["initialDelaySeconds"] = sec.near(f"{where}.initialDelaySeconds", p.initial_delay_seconds)
    out["periodSeconds"] = sec.near(f"{where}.periodSeconds", p.period_seconds, minimum=1)
    out["timeoutSeconds"] = sec.up(f"{where}.timeoutSeconds", p.timeout_seconds, minimum=1)
    out["successThreshold"] = p.success_threshold
    out["failureThreshold"] = p.failure_threshold
    return out


def _pre_stop(h: LifecycleHandler, port: int, sec: _Seconds) -> dict[str, Any]:
    if h.sleep:
        return {"sleep": {"seconds": sec.up("deployment.lifecycle.preStop.sleep.seconds", h.sleep.seconds)}}
    if h.exec:
        return {"exec": {"command": list(h.exec.command)}}
    assert h.http_get is not None
    return {"httpGet": _http_get(h.http_get, port)}


def render(sc: Scenario, *, namespace: str, run_id: str) -> Rendered:
    """Everything managed mode creates, as API objects (dicts)."""
    d, app, kube = sc.deployment, sc.app, sc.kubernetes
    if app.stop_signal != "SIGTERM":
        raise BadInput(f"{sc.source_path or sc.name}: app.stopSignal: {app.stop_signal} cannot be set "
                       "per pod on the kubernetes platform; set STOPSIGNAL in the image's Dockerfile "
                       "and leave app.stopSignal at SIGTERM")
    notes: list[str] = []
    sec = _Seconds(notes)
    port = app.container_port
    run = run_label_value(run_id)
    labels = {NAME_LABEL: d.name, MANAGED_BY: MANAGER, RUN_LABEL: run}
    selector = {NAME_LABEL: d.name, RUN_LABEL: run}

    ns = _skeleton("namespace.yaml")
    ns["metadata"].update(name=namespace, labels={MANAGED_BY: MANAGER, RUN_LABEL: run})

    dep = _skeleton("deployment.yaml")
    dep["metadata"].update(name=d.name, namespace=namespace, labels=dict(labels))
    spec = dep["spec"]
    spec["replicas"] = d.replicas
    spec["selector"]["matchLabels"] = dict(selector)
    if d.strategy.type == "Recreate":
        spec["strategy"] = {"type": "Recreate"}
    else:
        ru = d.strategy.rolling_update
        spec["strategy"] = {"type": "RollingUpdate",
                            "rollingUpdate": {"maxSurge": ru.max_surge, "maxUnavailable": ru.max_unavailable}}
    spec["minReadySeconds"] = sec.up("deployment.minReadySeconds", d.min_ready_seconds)
    spec["progressDeadlineSeconds"] = max(sec.up("deployment.progressDeadlineSeconds",
                                                 d.progress_deadline_seconds, minimum=1),
                                          spec["minReadySeconds"] + 1)
    pod = spec["template"]
    pod["metadata"]["labels"] = dict(labels)
    pod["spec"]["terminationGracePeriodSeconds"] = sec.up(
        "deployment.terminationGracePeriodSeconds", d.termination_grace_period_seconds)
    c = pod["spec"]["containers"][0]
    c["image"] = app.image
    c["imagePullPolicy"] = kube.image_pull_policy
    c["ports"][0]["containerPort"] = port
    c["env"][1]["value"] = str(port)
    c["env"] += [{"name": k, "value": v} for k, v in app.env.items() if k not in ("POD_NAME", "PORT")]
    for field_name, probe in (("startupProbe", d.startup_probe), ("readinessProbe", d.readiness_probe),
                              ("livenessProbe", d.liveness_probe)):
        if probe is not None:
            c[field_name] = _probe(f"deployment.{field_name}", probe, port, sec)
    if d.lifecycle.pre_stop is not None:
        c["lifecycle"] = {"preStop": _pre_stop(d.lifecycle.pre_stop, port, sec)}
    _placement(pod["spec"], d, selector)

    svc = _skeleton("service.yaml")
    svc["metadata"].update(name=d.name, namespace=namespace, labels=dict(labels))
    svc["spec"]["type"] = kube.service_type
    svc["spec"]["selector"] = dict(selector)
    svc["spec"]["ports"][0]["port"] = port
    if kube.node_port is not None and kube.service_type != "ClusterIP":
        svc["spec"]["ports"][0]["nodePort"] = kube.node_port

    pdb = None
    budget = d.pod_disruption_budget
    if budget is not None and (budget.min_available is not None or budget.max_unavailable is not None):
        pdb = _skeleton("pdb.yaml")
        pdb["metadata"].update(name=d.name, namespace=namespace, labels=dict(labels))
        pdb["spec"]["selector"]["matchLabels"] = dict(selector)
        if budget.min_available is not None:
            pdb["spec"]["minAvailable"] = budget.min_available
        if budget.max_unavailable is not None:
            pdb["spec"]["maxUnavailable"] = budget.max_unavailable
        if budget.unhealthy_pod_eviction_policy is not None:
            pdb["spec"]["unhealthyPodEvictionPolicy"] = budget.unhealthy_pod_eviction_policy
    return Rendered(ns, dep, svc, pdb, notes)


def _placement(pod_spec: dict[str, Any], d, selector: dict[str, str]) -> None:
    """topologySpreadConstraints and podAntiAffinity as the scenario gives
    them, each matching the Deployment's own pods (the selector)."""
    match = {"matchLabels": dict(selector)}
    if d.topology_spread_constraints:
        pod_spec["topologySpreadConstraints"] = [
            {"maxSkew": c.max_skew, "topologyKey": c.topology_key, "whenUnsatisfiable": c.when_unsatisfiable,
             "nodeTaintsPolicy": c.node_taints_policy, "labelSelector": match}
            for c in d.topology_spread_constraints]
    anti = d.affinity.pod_anti_affinity if d.affinity else None
    if anti is not None:
        out: dict[str, Any] = {}
        if anti.required_during_scheduling_ignored_during_execution:
            out["requiredDuringSchedulingIgnoredDuringExecution"] = [
                {"topologyKey": t.topology_key, "labelSelector": match}
                for t in anti.required_during_scheduling_ignored_during_execution]
        if anti.preferred_during_scheduling_ignored_during_execution:
            out["preferredDuringSchedulingIgnoredDuringExecution"] = [
                {"weight": w.weight, "podAffinityTerm": {"topologyKey": w.pod_affinity_term.topology_key,
                                                         "labelSelector": match}}
                for w in anti.preferred_during_scheduling_ignored_during_execution]
        if out:
            pod_spec["affinity"] = {"podAntiAffinity": out}


def rollout_patch(sc: Scenario, *, container: str, now_rfc3339: str, again: bool = False) -> dict[str, Any]:
    """The pod template change that starts the rollout (a strategic merge
    patch): the scenario's new image/env, or the ``kubectl rollout restart``
    annotation. ``again`` (a later rollout of the same Deployment, run
    --repeat): the image/env are already the new ones, so the patch also
    sets the restart annotation, as ``kubectl rollout restart`` does, which
    changes the template and replaces every pod."""
    ch = sc.disruption.change
    restart = {"metadata": {"annotations": {RESTARTED_AT: now_rfc3339}}}
    if sc.disruption.type == "restart":
        return {"spec": {"template": restart}}
    patch_c: dict[str, Any] = {"name": container}
    if ch.image:
        patch_c["image"] = ch.image
    if ch.env:
        patch_c["env"] = [{"name": k, "value": v} for k, v in ch.env.items()]
    if len(patch_c) == 1:
        raise BadInput(f"{sc.source_path or sc.name}: disruption.change: a rollingUpdate needs an image "
                       "or env change (or use disruption.type: restart)")
    return {"spec": {"template": {"spec": {"containers": [patch_c]}, **(restart if again else {})}}}
