"""The one workload model: what is rolled out (a Deployment, its app
container, the Service in front of it and its PodDisruptionBudget), filled
either from the scenario's own ``deployment:`` / ``app:`` fields or from the
user's Kubernetes manifests (DESIGN.md "One workload model").

Both platforms read the model (``scenario.deployment`` and ``scenario.app``,
which ``resolve`` fills in from the manifests); the kubernetes platform also
applies the manifests themselves (``Workload.documents``), as given.

From a Deployment the model takes exactly what the local platform can play:
replicas, strategy, minReadySeconds, progressDeadlineSeconds, the probes,
preStop, terminationGracePeriodSeconds, the container's image, port and env.
Every other field present is listed in ``Workload.unmodelled`` with its line,
so a run says once what it did not reproduce rather than ignoring it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.model.k8sdeployment import model_of
from harness.model.k8syaml import Document, ManifestError, Path_, load_documents
from harness.model.scenario import App, Deployment, PodDisruptionBudget, format_validation_error


@dataclasses.dataclass
class Workload:
    deployment: Deployment
    app: App
    #: where it came from: 'scenario', or the manifest files
    origin: str = "scenario"
    documents: list[Document] = dataclasses.field(default_factory=list)
    deployment_doc: Document | None = None
    container_index: int = 0
    container: str = "app"
    service_doc: Document | None = None
    pdb_doc: Document | None = None
    #: fields present in the manifests that the local platform does not play
    unmodelled: list[str] = dataclasses.field(default_factory=list)
    #: local platform: what runs in place of the container (None: not given for manifests)
    local_command: list[str] | None = None

    @property
    def from_manifests(self) -> bool:
        return self.deployment_doc is not None

    def describe(self) -> dict[str, Any]:
        """For the run manifest."""
        out: dict[str, Any] = {"origin": self.origin, "deployment": self.deployment.name,
                               "container": self.container}
        if self.from_manifests:
            out["documents"] = [f"{d.source}#{d.index + 1} {d.kind}/{d.name}" for d in self.documents]
            out["service"] = self.service_doc.name if self.service_doc else None
            out["pdb"] = self.pdb_doc.name if self.pdb_doc else None
            out["unmodelled_locally"] = list(self.unmodelled)
        return out


def _selects(selector: dict[str, Any] | None, labels: dict[str, Any]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def pick_deployment(docs: list[Document], name: str | None) -> Document:
    deps = [d for d in docs if d.kind == "Deployment"]
    sources = ", ".join(sorted({d.source for d in docs})) or "the manifests"
    if name:
        for d in deps:
            if d.name == name:
                return d
        have = ", ".join(d.name for d in deps) or "none"
        raise ManifestError(f"{sources}: no Deployment named {name!r} (Deployments found: {have}); "
                            "fix workload.deployment")
    if not deps:
        kinds = ", ".join(f"{d.kind}/{d.name}" for d in docs) or "no objects"
        raise ManifestError(f"{sources}: no Deployment in the manifests (found {kinds})")
    if len(deps) > 1:
        raise ManifestError(f"{sources}: {len(deps)} Deployments ({', '.join(d.name for d in deps)}); "
                            "name the one to roll out with workload.deployment")
    return deps[0]


def pod_labels(dep: Document) -> dict[str, Any]:
    return dep.get(("spec", "template", "metadata", "labels"), {}) or {}


def service_for(docs: list[Document], dep: Document) -> Document | None:
    labels = pod_labels(dep)
    for d in docs:
        if d.kind == "Service" and _selects(d.get(("spec", "selector")), labels):
            return d
    return None


def pdb_for(docs: list[Document], dep: Document) -> Document | None:
    labels = pod_labels(dep)
    for d in docs:
        if d.kind == "PodDisruptionBudget" and _selects(d.get(("spec", "selector", "matchLabels")), labels):
            return d
    return None


def _validate(dep: Document, data: dict[str, Any], model: type, where: dict[tuple, Path_]):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(str(x) for x in first["loc"])
        base: Path_ = ()
        for n in range(len(loc), -1, -1):
            if loc[:n] in where:
                base = where[loc[:n]] + tuple(int(x) if x.isdigit() else x for x in loc[n:])
                break
        problems = "; ".join(p.split(": ", 1)[-1] for p in format_validation_error(exc)[:3])
        raise dep.error(base, problems) from exc


def from_documents(docs: list[Document], *, deployment: str | None = None, container: str | None = None,
                   origin: str = "manifests") -> Workload:
    dep_doc = pick_deployment(docs, deployment)
    d, app, ci, unmodelled, where = model_of(dep_doc, container=container)
    dep = _validate(dep_doc, d, Deployment, where)
    app_model = _validate(dep_doc, app, App, where)
    cname = str(dep_doc.get(("spec", "template", "spec", "containers", ci, "name")) or "")
    pdb = pdb_for(docs, dep_doc)
    if pdb is not None:
        budget = {k: v for k, v in (pdb.get(("spec",)) or {}).items()
                  if k in ("minAvailable", "maxUnavailable", "unhealthyPodEvictionPolicy")}
        dep.pod_disruption_budget = _validate(pdb, budget, PodDisruptionBudget, {(): ("spec",)})
    return Workload(deployment=dep, app=app_model, origin=origin, documents=docs, deployment_doc=dep_doc,
                    container_index=ci, container=cname, service_doc=service_for(docs, dep_doc),
                    pdb_doc=pdb, unmodelled=unmodelled)


def load_workload(files: list[str], *, deployment: str | None = None, container: str | None = None,
                  stdin_text: str | None = None) -> Workload:
    docs = load_documents(files, stdin_text=stdin_text)
    return from_documents(docs, deployment=deployment, container=container, origin=", ".join(files))


#: app: fields a scenario may still set beside manifests (how to run the container locally)
APP_LOCAL_FIELDS = {"command", "workdir", "stopSignal", "stop_signal"}


def resolve_manifests(data: dict[str, Any], *, source: str, base, manifests: list[str] | None,
                      stdin_text: str | None = None) -> tuple[dict[str, Any], Workload]:
    """Fill a scenario's ``deployment:`` and ``app:`` from its manifests
    (``workload.manifests``, or ``manifests`` from the command line, which
    replaces them). Paths are relative to the scenario file."""
    from harness.errors import ScenarioError

    wl = data.get("workload")
    if wl is None:
        wl = {}
    if not isinstance(wl, dict):
        raise ScenarioError(source, ["workload: expected a mapping {manifests: [FILE, ...], deployment: NAME}"])
    wl = dict(wl)
    if manifests:
        wl["manifests"] = list(manifests)
    files = wl.get("manifests")
    if not isinstance(files, list) or not files or not all(isinstance(f, str) and f for f in files):
        raise ScenarioError(source, ["workload.manifests: a list of manifest files ('-' for stdin), "
                                     "e.g. [k8s/deployment.yaml]"])
    if "deployment" in data:
        raise ScenarioError(source, ["deployment: comes from the manifests (workload.manifests); remove the "
                                     "scenario's deployment: section, or drop workload: to use it"])
    app = data.get("app") or {}
    if not isinstance(app, dict):
        raise ScenarioError(source, ["app: expected a mapping"])
    clash = sorted(set(app) - APP_LOCAL_FIELDS)
    if clash:
        raise ScenarioError(source, [f"app.{k}: comes from the manifests' container; only app.command, "
                                     "app.workdir and app.stopSignal can be set beside workload.manifests"
                                     for k in clash])
    resolved = [f if f == "-" or Path(f).is_absolute() else str(base / f) for f in files]
    workload = load_workload(resolved, deployment=wl.get("deployment"), container=wl.get("container"),
                             stdin_text=stdin_text)
    workload.origin = ", ".join(resolved)
    out = dict(data)
    out["workload"] = wl
    out["deployment"] = workload.deployment.dump()
    merged = workload.app.dump()
    merged.pop("command", None)
    merged.pop("workdir", None)
    merged.update(app)
    commands = wl.get("localCommands") or wl.get("local_commands") or {}
    if "command" not in app and isinstance(commands, dict) and workload.container in commands:
        merged["command"] = commands[workload.container]
    out["app"] = merged
    workload.local_command = merged.get("command")
    return out, workload


def workload_of(scenario) -> Workload:
    """The workload a scenario rolls out, whichever way it was given."""
    loaded = getattr(scenario, "_workload", None)
    if loaded is not None:
        return loaded
    return Workload(deployment=scenario.deployment, app=scenario.app, local_command=list(scenario.app.command))


def require_local_command(scenario) -> list[str]:
    """The argv the local platform runs for a replica; manifests must say it
    (a container image cannot run as a process here)."""
    from harness.errors import BadInput

    wl = workload_of(scenario)
    if wl.local_command is None:
        raise BadInput(f"{scenario.source_path or scenario.name}: workload.localCommands: no local command for "
                       f"container {wl.container!r}; the local platform runs a process in place of the container: "
                       f"set workload.localCommands.{wl.container} (or app.command), e.g. "
                       f"[\"{{python}}\", \"sample-app/app.py\"]")
    return wl.local_command
