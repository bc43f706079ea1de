"""The scenario file schema: one YAML file describes the app, the Deployment
(field names as in a Kubernetes manifest, so users can paste theirs), the
traffic, the disruption, the gate, and per-platform knobs. The local and the
kubernetes platform read the same file unchanged.

The sections live in harness.model.podspec (app, deployment) and
harness.model.experiment (traffic, disruption, gate, platforms); this module
holds the whole ``Scenario`` and its loading, and re-exports every section so
``from harness.model.scenario import X`` keeps working.

``load_scenario(path, overrides)`` returns a validated ``Scenario`` or raises
``ScenarioError`` naming the file, each bad field's path and what is allowed.
See docs/scenarios.md for every field.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, PrivateAttr, ValidationError
from pydantic.alias_generators import to_camel

from harness.errors import ScenarioError
from harness.model.experiment import (  # noqa: F401  (re-exported: the schema's public names)
    Change,
    Disruption,
    Drain,
    Evict,
    Gate,
    Ingress,
    KubernetesPlatform,
    KubernetesTarget,
    LocalPlatform,
    Traffic,
)
from harness.model.podspec import (  # noqa: F401  (re-exported: the schema's public names)
    HOSTNAME_KEY,
    Affinity,
    App,
    Deployment,
    ExecAction,
    HTTPGetAction,
    IntOrPercent,
    Lifecycle,
    LifecycleHandler,
    PodAffinityTerm,
    PodAntiAffinity,
    PodDisruptionBudget,
    Probe,
    RollingUpdate,
    SleepAction,
    Strategy,
    TCPSocketAction,
    TopologySpreadConstraint,
    WeightedPodAffinityTerm,
    _Model,
    resolve_int_or_percent,
)


class WorkloadManifests(_Model):
    """The workload from Kubernetes manifests instead of ``deployment:``
    (see docs/manifests.md); ``-`` reads them from stdin."""

    manifests: list[str] = Field(min_length=1)
    #: the Deployment to roll out (needed when the manifests hold several)
    deployment: str | None = None
    #: the container under test (default: the first)
    container: str | None = None
    #: local platform: argv run in place of a container, by container name
    local_commands: dict[str, list[str]] = Field(default_factory=dict)


class Scenario(_Model):
    name: str = Field(pattern=r"^[a-z0-9][-a-z0-9_]*$")
    description: str = ""
    app: App = Field(default_factory=App)
    deployment: Deployment = Field(default_factory=Deployment)
    workload: WorkloadManifests | None = None
    traffic: Traffic = Field(default_factory=Traffic)
    disruption: Disruption = Field(default_factory=Disruption)
    gate: Gate = Field(default_factory=Gate)
    local: LocalPlatform = Field(default_factory=LocalPlatform)
    kubernetes: KubernetesPlatform = Field(default_factory=KubernetesPlatform)

    #: where the file was loaded from (not part of the schema)
    source_path: str | None = Field(None, exclude=True)
    #: the manifests as loaded (harness.model.workload.Workload), when workload: is set
    _workload: Any = PrivateAttr(default=None)

    def max_surge(self) -> int:
        return resolve_int_or_percent(self.deployment.strategy.rolling_update.max_surge,
                                      self.deployment.replicas, round_up=True)

    def max_unavailable(self) -> int:
        return resolve_int_or_percent(self.deployment.strategy.rolling_update.max_unavailable,
                                      self.deployment.replicas, round_up=False)


# ---- loading ----------------------------------------------------------------

def _loc(loc: tuple) -> str:
    parts: list[str] = []
    for p in loc:
        if isinstance(p, int):
            parts.append(f"[{p}]")
        else:
            # pydantic reports union branches as 'int' / 'str'; they are not fields
            if p in ("int", "str", "function-after[_check_int_or_percent(), union[int,str]]"):
                continue
            if p.startswith(("function-", "tagged-union", "union[")):
                continue
            parts.append(("." if parts else "") + to_camel(p) if "_" in p else ("." if parts else "") + p)
    return "".join(parts) or "(top level)"


def format_validation_error(exc: ValidationError) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for err in exc.errors():
        field = _loc(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling; see docs/scenarios.md for the fields allowed here)"
        got = err.get("input")
        text = f"{field}: {msg}"
        if err["type"] not in ("extra_forbidden", "missing") and not isinstance(got, (dict, list)):
            text += f" (got {got!r})"
        if text not in seen:
            seen.add(text)
            problems.append(text)
    return problems


def parse_override(expr: str) -> tuple[list[str], Any]:
    if "=" not in expr:
        raise ValueError(f"--set {expr!r}: expected path=value, e.g. traffic.rate=1000")
    path, _, raw = expr.partition("=")
    keys = [k for k in path.strip().split(".") if k]
    if not keys:
        raise ValueError(f"--set {expr!r}: empty field path")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return keys, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for expr in overrides:
        keys, value = parse_override(expr)
        node = data
        for k in keys[:-1]:
            nxt = node.get(k)
            if not isinstance(nxt, dict):
                nxt = {}
                node[k] = nxt
            node = nxt
        node[keys[-1]] = value
    return data


def scenario_from_dict(data: Any, *, source: str = "<scenario>") -> Scenario:
    if not isinstance(data, dict):
        raise ScenarioError(source, ["(top level): expected a mapping of fields (name, app, deployment, ...)"])
    try:
        sc = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(source, format_validation_error(exc)) from exc
    sc.source_path = source
    return sc


def load_scenario(path: str | os.PathLike, overrides: list[str] | None = None, *,
                  manifests: list[str] | None = None, stdin_text: str | None = None) -> Scenario:
    """``manifests`` (the ``--manifests`` option) replaces ``workload.manifests``."""
    p = Path(path)
    src = str(path)
    if not p.exists():
        raise ScenarioError(src, ["file not found (shipped scenarios are in scenarios/)"])
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ScenarioError(src, [f"{where}not valid YAML: {getattr(exc, 'problem', exc)}"]) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(src, [f"cannot read: {exc}"]) from exc
    if data is None:
        data = {}
    if isinstance(data, dict) and "name" not in data:
        data["name"] = re.sub(r"[^-a-z0-9_]", "-", p.stem.lower())
    if overrides:
        try:
            data = apply_overrides(data if isinstance(data, dict) else {}, overrides)
        except ValueError as exc:
            raise ScenarioError(src, [str(exc)]) from exc
    workload = None
    if isinstance(data, dict) and (manifests or data.get("workload") is not None):
        from harness.model.workload import resolve_manifests

        data, workload = resolve_manifests(data, source=src, base=p.parent, manifests=manifests,
                                           stdin_text=stdin_text)
    sc = scenario_from_dict(data, source=src)
    sc._workload = workload
    return sc
