"""The pod side of a scenario file: the app (image, command, env) and the
Deployment (strategy, probes, preStop, PodDisruptionBudget, topology), with
field names as in a Kubernetes manifest so users can paste theirs. Split from
harness.model.scenario, which re-exports every name here; also the home of
the schema's base model and of intOrPercent resolution, which the other
sections share. See docs/scenarios.md for every field.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel


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
