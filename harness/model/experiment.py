"""The experiment side of a scenario file: the traffic the engine sends, the
disruption to apply, the gate that judges the run, and the per-platform knobs
(local and kubernetes). Split from harness.model.scenario, which re-exports
every name here. See docs/scenarios.md for every field.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from harness.model.generators import Generators
from harness.model.podspec import App, _Model


# ---- traffic, disruption, gate ----------------------------------------------

class Ingress(_Model):
    """The ingress proxy (Traefik) in front of the Service when
    ``traffic.via: ingress``; see docs/ingress.md."""
    #: attempts of Traefik's retry middleware; 0 = no retry middleware (Traefik's default)
    retries: int = Field(0, ge=0, le=10)
    #: serversTransport forwardingTimeouts.idleConnTimeout: how long the proxy keeps an idle
    #: upstream (proxy -> pod) keep-alive connection; Traefik's default is 90 s
    upstream_idle_timeout_seconds: float = Field(90, gt=0, le=3600)
    #: serversTransport forwardingTimeouts.dialTimeout: how long the proxy waits for a TCP
    #: connection to a pod; Traefik's default is 30 s (a gone pod's IP can hang a dial that long)
    dial_timeout_seconds: float = Field(30, gt=0, le=3600)
    #: forwardingTimeouts.responseHeaderTimeout: how long the proxy waits for a pod's response
    #: headers; 0 = no limit (Traefik's default)
    response_header_timeout_seconds: float = Field(0, ge=0, le=3600)


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
    #: in-cluster generator pods (kubernetes platform; harness.model.generators, docs/generators.md)
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
