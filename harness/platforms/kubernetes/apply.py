"""Managed mode with the user's own manifests: the objects are applied as
given, in the run's namespace. Only what a run must change is changed, and
every change is listed (``Prepared.changes``, recorded in the run manifest):

- ``metadata.namespace``: the run's namespace (so runs never collide and
  teardown removes everything);
- the run labels on every object and on the pod template (the pod watch
  selects the run's pods by them; selectors are left as they are);
- ``imagePullPolicy``, only when ``kubernetes.imagePullPolicy`` is set in
  the scenario, or when the policy would pull a ``localhost/`` image that no
  registry serves;
- the Service type: traffic enters through a NodePort, as users' traffic
  does (a ClusterIP Service becomes NodePort; ``kubernetes.nodePort`` pins
  the port); a Service is added when the manifests have none for the
  Deployment;
- ``status`` and server-set metadata (``kubectl get -o yaml`` output) are
  dropped.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from harness.errors import BadInput
from harness.model.k8syaml import Document
from harness.model.scenario import Deployment, Scenario
from harness.model.workload import Workload, from_documents
from harness.platforms.kubernetes import manifests as mf

#: kind -> the client's resource name; other kinds are refused by name
KINDS = {"Deployment": "deployments", "Service": "services", "PodDisruptionBudget": "poddisruptionbudgets"}
SERVER_SET = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink",
              "deletionTimestamp", "deletionGracePeriodSeconds", "ownerReferences")


@dataclasses.dataclass
class Prepared:
    namespace: dict[str, Any]
    #: (resource, object) in the order they are created
    objects: list[tuple[str, dict[str, Any]]]
    service: str
    run_selector: str
    changes: list[str]


def _labelled(obj: dict[str, Any], run: str, where: str, changes: list[str]) -> None:
    meta = obj.setdefault("metadata", {})
    labels = meta.get("labels") or {}
    meta["labels"] = {**labels, mf.MANAGED_BY: mf.MANAGER, mf.RUN_LABEL: run}
    changes.append(f"{where}: metadata.labels += {mf.RUN_LABEL}={run}, {mf.MANAGED_BY}={mf.MANAGER}")


def _clean(doc: Document, namespace: str, changes: list[str]) -> dict[str, Any]:
    out = copy.deepcopy(doc.data)
    out.pop("status", None)
    meta = out.setdefault("metadata", {})
    dropped = [k for k in SERVER_SET if meta.pop(k, None) is not None]
    if dropped:
        changes.append(f"{doc.where()}: dropped server-set metadata ({', '.join(dropped)})")
    old = meta.get("namespace")
    meta["namespace"] = namespace
    changes.append(f"{doc.where()}: metadata.namespace {old or '(none)'} -> {namespace}")
    return out


def _pull_policy(c: dict[str, Any], sc: Scenario, where: str, changes: list[str]) -> None:
    image = str(c.get("image") or "")
    current = c.get("imagePullPolicy")
    tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
    effective = current or ("Always" if tag in ("", "latest") else "IfNotPresent")
    want = None
    if "image_pull_policy" in sc.kubernetes.model_fields_set:
        want = sc.kubernetes.image_pull_policy
    elif effective == "Always" and image.startswith("localhost/"):
        want = "IfNotPresent"  # no registry serves localhost/: the image was loaded onto the node
    if want and want != effective:
        c["imagePullPolicy"] = want
        changes.append(f"{where}: imagePullPolicy {current or f'(default {effective})'} -> {want}")


def _service_for_traffic(svc: dict[str, Any], sc: Scenario, where: str, changes: list[str]) -> None:
    spec = svc.setdefault("spec", {})
    kind = spec.get("type") or "ClusterIP"
    if kind == "ClusterIP":
        if spec.get("clusterIP") == "None":
            raise BadInput(f"{where}: a headless Service (clusterIP: None) has no NodePort for traffic to "
                           "enter by; give a Service with a selector and a port")
        spec["type"] = "NodePort"
        changes.append(f"{where}: spec.type ClusterIP -> NodePort (traffic enters through kube-proxy)")
    for key in ("clusterIP", "clusterIPs"):
        if spec.pop(key, None) is not None:
            changes.append(f"{where}: dropped spec.{key} (allocated per run)")
    ports = spec.get("ports") or []
    if sc.kubernetes.node_port is not None and ports:
        old = ports[0].get("nodePort")
        ports[0]["nodePort"] = sc.kubernetes.node_port
        changes.append(f"{where}: spec.ports[0].nodePort {old or '(allocated)'} -> {sc.kubernetes.node_port}")


def prepare(sc: Scenario, wl: Workload, *, namespace: str, run_id: str) -> Prepared:
    """The objects to create for one run, and every change made to them."""
    assert wl.deployment_doc is not None
    if sc.app.stop_signal != "SIGTERM":
        raise BadInput(f"{sc.source_path or sc.name}: app.stopSignal: {sc.app.stop_signal} cannot be set per pod "
                       "on the kubernetes platform; set STOPSIGNAL in the image and leave app.stopSignal at SIGTERM")
    run = mf.run_label_value(run_id)
    changes: list[str] = []
    ns = mf._skeleton("namespace.yaml")
    ns["metadata"].update(name=namespace, labels={mf.MANAGED_BY: mf.MANAGER, mf.RUN_LABEL: run})
    objects: list[tuple[str, dict[str, Any]]] = []
    service = ""
    for doc in wl.documents:
        resource = KINDS.get(doc.kind)
        if resource is None:
            raise BadInput(f"{doc.where()}: kind {doc.kind} is not applied by the harness (it applies "
                           f"{', '.join(KINDS)}); leave it out of the manifests for the run or create it first")
        obj = _clean(doc, namespace, changes)
        _labelled(obj, run, doc.where(), changes)
        if doc is wl.deployment_doc:
            tmeta = obj["spec"]["template"].setdefault("metadata", {})
            tmeta["labels"] = {**(tmeta.get("labels") or {}), mf.MANAGED_BY: mf.MANAGER, mf.RUN_LABEL: run}
            changes.append(f"{doc.where(('spec', 'template', 'metadata', 'labels'))}: pod template labels += "
                           f"{mf.RUN_LABEL}={run}")
            for i, c in enumerate(obj["spec"]["template"]["spec"].get("containers") or []):
                _pull_policy(c, sc, doc.where(("spec", "template", "spec", "containers", i)), changes)
        if doc is wl.service_doc:
            _service_for_traffic(obj, sc, doc.where(), changes)
            service = doc.name
        objects.append((resource, obj))
    if wl.service_doc is None:
        svc = mf._skeleton("service.yaml")
        labels = (wl.deployment_doc.get(("spec", "template", "metadata", "labels")) or {})
        svc["metadata"].update(name=wl.deployment.name, namespace=namespace)
        _labelled(svc, run, "added Service", changes)
        svc["spec"].update(type=sc.kubernetes.service_type, selector=dict(labels))
        svc["spec"]["ports"][0]["port"] = wl.app.container_port
        if sc.kubernetes.node_port is not None:
            svc["spec"]["ports"][0]["nodePort"] = sc.kubernetes.node_port
        changes.append(f"added Service {wl.deployment.name} ({sc.kubernetes.service_type}): the manifests have "
                       f"no Service selecting Deployment {wl.deployment.name}'s pods")
        objects.append(("services", svc))
        service = wl.deployment.name
    # the Deployment last: its pods find their Service and budget already there
    objects.sort(key=lambda ro: ro[0] == "deployments")
    return Prepared(namespace=ns, objects=objects, service=service,
                    run_selector=f"{mf.RUN_LABEL}={run}", changes=changes)


def read_live(dep: dict[str, Any], *, source: str) -> tuple[Deployment | None, dict[str, Any]]:
    """Target mode: a live Deployment read the way a manifest is, and what
    to record of it (the model, or why it could not be read)."""
    doc = Document(source=source, index=0, line=0, lines={},
                   data={"apiVersion": "apps/v1", "kind": "Deployment", **dep})
    try:
        live = from_documents([doc], origin=source)
    except BadInput as exc:
        return None, {"source": source, "error": str(exc)}
    return live.deployment, {"source": source, "deployment": live.deployment.dump(), "container": live.container}
