"""The scenario file schema: one YAML file describes the app, the Deployment
(field names as in a Kubernetes manifest, so users can paste theirs), the
traffic, the disruption, the gate, and per-platform knobs. The local and the
kubernetes platform read the same file unchanged.

``load_scenario(path, overrides)`` returns a validated ``Scenario`` or raises
``ScenarioError`` naming the file, each bad field's path and what is allowed.
See docs/scenarios.md for every field.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from harness.errors import ScenarioError
from harness.model.generators import Generators


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=False)

    def dump(self) -> dict[str, Any]:
        """As the user would write it (camelCase keys, defaults filled in)."""
        return self.model_dump(by_alias=True, mode="json", exclude_none=True)


IntOrPercent = int | str
_PERCENT = re.compile(r"^\d{1,3}%$")


def _check_int_or_percent(v: IntOrPercent) -> IntOrPercent:
    if isinstance(v, int):
        if v < 0:
            raise ValueError("must be >= 0 (an integer, or a percentage like '25%')")
        return v
    if isinstance(v, str) and _PERCENT.match(v):
        return v
    raise ValueError("must be an integer >= 0 or a percentage like '25%'")


def resolve_int_or_percent(v: IntOrPercent, total: int, *, round_up: bool) -> int:
    """As Kubernetes' intstr.GetScaledValueFromIntOrPercent: maxSurge rounds
    up, maxUnavailable rounds down."""
    if isinstance(v, int):
        return v
    pct = int(v[:-1])
    scaled = pct * total / 100
    return math.ceil(scaled) if round_up else math.floor(scaled)


# ---- app -------------------------------------------------------------------

class App(_Model):
    image: str = "localhost/rollout-harness-sample-app:0.1.0"
    #: Local platform: argv of one replica; ``{port}``, ``{python}`` and
    #: ``{pod}`` are substituted. Default: the sample app.
    command: list[str] = Field(default_factory=lambda: ["{python}", "sample-app/app.py"])
    env: dict[str, str] = Field(default_factory=dict)
    container_port: int = Field(8080, ge=1, le=65535)
    stop_signal: Literal["SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2"] = "SIGTERM"
    #: Working directory for the local command (relative to the scenario's repo root).
    workdir: str | None = None

    @field_validator("env", mode="before")
    @classmethod
    def _env_strings(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): ("true" if x is True else "false" if x is False else str(x)) for k, x in v.items()}
        return v


# ---- deployment ------------------------------------------------------------

class HTTPGetAction(_Model):
    path: str = "/"
    port: int | None = Field(None, ge=1, le=65535)  # default: the container port
    http_headers: list[dict[str, str]] = Field(default_factory=list)


class TCPSocketAction(_Model):
    port: int | None = Field(None, ge=1, le=65535)


class ExecAction(_Model):
    command: list[str] = Field(min_length=1)


class SleepAction(_Model):
    seconds: float = Field(ge=0)


class Probe(_Model):
    http_get: HTTPGetAction | None = None
    tcp_socket: TCPSocketAction | None = None
    exec: ExecAction | None = None
    initial_delay_seconds: float = Field(0, ge=0)
    period_seconds: float = Field(10, gt=0)
    timeout_seconds: float = Field(1, gt=0)
    success_threshold: int = Field(1, ge=1)
    failure_threshold: int = Field(3, ge=1)

    @model_validator(mode="after")
    def _one_handler(self) -> "Probe":
        n = sum(x is not None for x in (self.http_get, self.tcp_socket, self.exec))
        if n != 1:
            raise ValueError("a probe needs exactly one of httpGet, tcpSocket, exec")
        return self


class LifecycleHandler(_Model):
    sleep: SleepAction | None = None
    exec: ExecAction | None = None
    http_get: HTTPGetAction | None = None

    @model_validator(mode="after")
    def _one_handler(self) -> "LifecycleHandler":
        n = sum(x is not None for x in (self.sleep, self.exec, self.http_get))
        if n != 1:
            raise ValueError("preStop needs exactly one of sleep, exec, httpGet")
        return self


class Lifecycle(_Model):
    pre_stop: LifecycleHandler | None = None


class RollingUpdate(_Model):
    max_surge: IntOrPercent = "25%"
    max_unavailable: IntOrPercent = "25%"

    _v = field_validator("max_surge", "max_unavailable")(classmethod(lambda cls, v: _check_int_or_percent(v)))


class Strategy(_Model):
    type: Literal["RollingUpdate", "Recreate"] = "RollingUpdate"
    rolling_update: RollingUpdate = Field(default_factory=RollingUpdate)


class PodDisruptionBudget(_Model):
    """policy/v1 PodDisruptionBudget spec (the selector is always the
    Deployment's own pods). Limits evictions (node drains), not a rollout."""

    min_available: IntOrPercent | None = None
    max_unavailable: IntOrPercent | None = None
    #: IfHealthyBudget (the default): a not-ready pod may be evicted only while
    #: the budget is met; AlwaysAllow: not-ready pods may always be evicted
    unhealthy_pod_eviction_policy: Literal["IfHealthyBudget", "AlwaysAllow"] | None = None

    _v = field_validator("min_available", "max_unavailable")(
        classmethod(lambda cls, v: v if v is None else _check_int_or_percent(v)))

    @model_validator(mode="after")
    def _one_of(self) -> "PodDisruptionBudget":
        if (self.min_available is None) == (self.max_unavailable is None):
            raise ValueError("a PodDisruptionBudget needs exactly one of minAvailable, maxUnavailable "
                             "(e.g. maxUnavailable: 1)")
        return self


HOSTNAME_KEY = "kubernetes.io/hostname"


def _hostname_only(v: str) -> str:
    if v != HOSTNAME_KEY:
        raise ValueError(f"only topologyKey {HOSTNAME_KEY} (spread over nodes) is modelled; zones and other "
                         "topology keys are not")
    return v


class TopologySpreadConstraint(_Model):
    """A pod's topologySpreadConstraints entry. Only the node level
    (topologyKey kubernetes.io/hostname) is modelled."""

    max_skew: int = Field(1, ge=1)
    topology_key: str = HOSTNAME_KEY
    when_unsatisfiable: Literal["DoNotSchedule", "ScheduleAnyway"] = "DoNotSchedule"
    #: Ignore (the default): cordoned/tainted nodes still count as domains; Honor: they do not
    node_taints_policy: Literal["Honor", "Ignore"] = "Ignore"
    #: informational: the harness always matches the Deployment's own pods
    label_selector: dict[str, Any] | None = None

    _key = field_validator("topology_key")(classmethod(lambda cls, v: _hostname_only(v)))


class PodAffinityTerm(_Model):
    topology_key: str = HOSTNAME_KEY
    label_selector: dict[str, Any] | None = None

    _key = field_validator("topology_key")(classmethod(lambda cls, v: _hostname_only(v)))


class WeightedPodAffinityTerm(_Model):
    weight: int = Field(100, ge=1, le=100)
    pod_affinity_term: PodAffinityTerm = Field(default_factory=PodAffinityTerm)


class PodAntiAffinity(_Model):
    required_during_scheduling_ignored_during_execution: list[PodAffinityTerm] = Field(default_factory=list)
    preferred_during_scheduling_ignored_during_execution: list[WeightedPodAffinityTerm] = Field(
        default_factory=list)


class Affinity(_Model):
    pod_anti_affinity: PodAntiAffinity | None = None


class Deployment(_Model):
    name: str = Field("api", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=40)
    replicas: int = Field(4, ge=1, le=64)
    strategy: Strategy = Field(default_factory=Strategy)
    min_ready_seconds: float = Field(0, ge=0)
    progress_deadline_seconds: float = Field(120, gt=0)
    termination_grace_period_seconds: float = Field(30, ge=0)
    startup_probe: Probe | None = None
    readiness_probe: Probe | None = None
    liveness_probe: Probe | None = None
    lifecycle: Lifecycle = Field(default_factory=Lifecycle)
    pod_disruption_budget: PodDisruptionBudget | None = None
    topology_spread_constraints: list[TopologySpreadConstraint] = Field(default_factory=list)
    affinity: Affinity | None = None

    @model_validator(mode="after")
    def _strategy_can_progress(self) -> "Deployment":
        if self.strategy.type == "RollingUpdate":
            ru = self.strategy.rolling_update
            surge = resolve_int_or_percent(ru.max_surge, self.replicas, round_up=True)
            unavail = resolve_int_or_percent(ru.max_unavailable, self.replicas, round_up=False)
            if surge == 0 and unavail == 0:
                raise ValueError(
                    "strategy.rollingUpdate: maxSurge and maxUnavailable cannot both be 0 "
                    f"(with {self.replicas} replicas they resolve to 0 and 0); set maxSurge: 1"
                )
        return self


# ---- traffic, disruption, gate ----------------------------------------------

class Ingress(_Model):
    """The ingress proxy (Traefik) in front of the Service when
    ``traffic.via: ingress``; see docs/ingress.md."""
    #: attempts of Traefik's retry middleware; 0 = no retry middleware (Traefik's default)
    retries: int = Field(0, ge=0, le=10)
    #: serversTransport forwardingTimeouts.idleConnTimeout: how long the proxy keeps an idle
    #: upstream (proxy -> pod) keep-alive connection; Traefik's default is 90 s
    upstream_idle_timeout_seconds: float = Field(90, gt=0, le=3600)


class Traffic(_Model):
    #: where the engine's requests enter: straight at the Service (kube-proxy's
    #: view of the endpoints) or through the ingress proxy in front of it
    via: Literal["service", "ingress"] = "service"
    ingress: Ingress = Field(default_factory=Ingress)
    rate: float = Field(500, ge=0, description="requests per second; 0 = closed loop")
    connections: int = Field(16, ge=1, le=10000, description="keep-alive pool size")
    new_connection_ratio: float = Field(0.5, ge=0, le=1, description="share of requests on a new connection")
    connect_timeout: float = Field(1.0, gt=0)
    read_timeout: float = Field(5.0, gt=0)
    max_inflight: int = Field(512, ge=1)
    method: Literal["GET", "POST", "PUT", "DELETE"] = "GET"
    path: str = "/work"
    headers: dict[str, str] = Field(default_factory=dict)
    pod_header: str = "X-Pod-Name"
    workers: int = Field(1, ge=1, le=64)
    #: in-cluster generator pods (kubernetes platform; harness.model.generators)
    generators: Generators | None = None

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError("must start with '/'")
        return v


class Change(_Model):
    image: str | None = None
    env: dict[str, str] = Field(default_factory=dict)

    _env = field_validator("env", mode="before")(App._env_strings.__func__)  # type: ignore[attr-defined]


class Drain(_Model):
    """`kubectl drain`: cordon, evict every pod through the Eviction API
    (a 429 is retried every 5 s), wait for them to be gone; then uncordon."""

    #: node names; empty = the node running the most of the app's pods
    nodes: list[str] = Field(default_factory=list)
    #: kubectl drain --timeout: give up (the run is inconclusive) after this long
    timeout_seconds: float = Field(60, gt=0)
    #: uncordon the drained nodes once the drain finished (or gave up)
    uncordon: bool = True


class Evict(_Model):
    """Evict pods through the Eviction API without cordoning (what the
    cluster autoscaler or a descheduler does): all at once, each 429
    retried every 5 s, until they are gone."""

    #: how many of the app's pods, first by name
    pods: int = Field(1, ge=1, le=64)
    timeout_seconds: float = Field(60, gt=0)


class Disruption(_Model):
    type: Literal["rollingUpdate", "restart", "drain", "evict"] = "rollingUpdate"
    change: Change = Field(default_factory=lambda: Change(env={"APP_VERSION": "2"}))
    drain: Drain = Field(default_factory=Drain)
    evict: Evict = Field(default_factory=Evict)
    baseline_seconds: float = Field(10, ge=0)
    settle_seconds: float = Field(10, ge=0)


class Gate(_Model):
    max_failed_requests: int | None = Field(0, ge=0)
    max_error_ratio: float | None = Field(None, ge=0, le=1)
    max_disruption_seconds: float | None = Field(None, ge=0)
    max_p99_latency_ms: float | None = Field(None, gt=0)
    #: the run is inconclusive (not a pass) when the engine fell behind this much
    max_send_lag_p99_ms: float = Field(50, gt=0)
    max_dropped_ratio: float = Field(0.001, ge=0, le=1)
    #: run --repeat: the most a rollout may fail, shown by the exact upper bound at rolloutConfidence
    max_rollout_failure_probability: float | None = Field(None, gt=0, lt=1)
    rollout_confidence: float = Field(0.95, gt=0, lt=1)
    #: which failures maxFailedRequests / maxErrorRatio count: every one (strict,
    #: the default), or only those a standard retrying client would still see
    count_failures: Literal["all", "clientVisible"] = "all"


# ---- platforms --------------------------------------------------------------

class LocalPlatform(_Model):
    endpoint_propagation_delay_seconds: float = Field(1.0, ge=0)
    endpoint_propagation_jitter_seconds: float = Field(0.2, ge=0)
    seed: int | None = None
    host: str = Field("127.0.0.1", description="loopback address replicas listen on")
    #: modelled nodes (node-1 .. node-N) the scheduler places pods on
    nodes: int = Field(1, ge=1, le=64)

    @field_validator("host")
    @classmethod
    def _loopback(cls, v: str) -> str:
        if not v.startswith("127."):
            raise ValueError("the local platform only runs replicas on 127.0.0.0/8")
        return v


class KubernetesTarget(_Model):
    deployment: str
    namespace: str = "default"
    url: str


class KubernetesPlatform(_Model):
    context: str | None = None
    kubeconfig: str | None = None
    mode: Literal["managed", "target"] = "managed"
    namespace_prefix: str = "rollout-harness"
    #: managed mode: deploy into this existing namespace (deleting only what the
    #: run created) instead of creating one per run; needs only the namespaced Role
    namespace: str | None = Field(None, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    image_pull_policy: Literal["Never", "IfNotPresent", "Always"] = "IfNotPresent"
    service_type: Literal["NodePort", "LoadBalancer", "ClusterIP"] = "NodePort"
    node_port: int | None = Field(None, ge=30000, le=32767)
    #: where traffic enters the cluster; {node_port} is substituted
    url: str = "http://127.0.0.1:{node_port}"
    target: KubernetesTarget | None = None

    @model_validator(mode="after")
    def _target_mode(self) -> "KubernetesPlatform":
        if self.mode == "target" and self.target is None:
            raise ValueError("mode: target needs target: {deployment, namespace, url}")
        return self


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
