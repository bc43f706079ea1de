"""``traffic.generators``: load fired from pods inside the cluster instead of
the harness's own process (docs/generators.md).

Why a separate section: one machine's engine tops out at ~80k req/s per
core and only sees the path from outside the cluster; pod -> Service
traffic takes another path (kube-proxy on the client's node), and large
services need load from many nodes. The kubernetes platform runs ``count``
generator pods as one Indexed Job; generator ``i`` sends the global seqs
``i, i+count, ...`` of the one schedule, so the merged arrivals are
``traffic.rate``. Their records come back on the run clock, each with the
worker id naming its generator.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from harness.errors import BadInput

GENERATOR_IMAGE = "localhost/rollout-harness-generator:0.1.0"
#: the generator's control port (clock exchange, start/stop), reached through the API server's pod proxy
CONTROL_PORT = 8089


class Generators(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    #: generator pods (Job parallelism and completions)
    count: int = Field(ge=1, le=1000)
    #: what they hit: the app Service's ClusterIP, the ingress proxy's ClusterIP
    #: (needs traffic.via: ingress), or the NodePort on the generator's own node
    target: Literal["service", "ingress", "nodePort"] = "service"
    #: the generator image (the harness; `make generator-image`, `make kind-load-generator`)
    image: str = GENERATOR_IMAGE
    #: a generator whose clock offset is known less precisely than this makes the run inconclusive
    max_clock_uncertainty_ms: float = Field(25.0, gt=0, le=10_000)
    #: a generator silent for longer than this (no heartbeat, no records) has lost contact
    contact_timeout_seconds: float = Field(5.0, gt=0, le=600)
    #: CPU request of each generator pod (Kubernetes quantity), spreads them by capacity
    cpu: str = "100m"


def check_generators(scenario, platform: str) -> None:
    """Bad input before anything is created: generators need a cluster, and
    their target must agree with how the scenario routes traffic."""
    gen = scenario.traffic.generators
    if gen is None:
        return
    where = scenario.source_path or scenario.name
    if platform != "kubernetes":
        raise BadInput(f"{where}: traffic.generators: generator pods need the kubernetes platform "
                       f"(--platform kubernetes); the {platform} platform fires traffic from the harness "
                       "itself: remove traffic.generators (or scale with traffic.workers)")
    if scenario.traffic.workers != 1:
        raise BadInput(f"{where}: traffic.workers: {scenario.traffic.workers} with traffic.generators: each "
                       "generator pod runs one engine; set traffic.workers: 1 and scale with "
                       "traffic.generators.count")
    if gen.target == "ingress" and scenario.traffic.via != "ingress":
        raise BadInput(f"{where}: traffic.generators.target: ingress needs the ingress proxy: set "
                       "traffic.via: ingress (or target: service)")
    if gen.target != "ingress" and scenario.traffic.via == "ingress":
        raise BadInput(f"{where}: traffic.generators.target: {gen.target} bypasses the ingress that "
                       "traffic.via: ingress asks for: set target: ingress (or traffic.via: service)")
    if scenario.kubernetes.mode != "managed":
        raise BadInput(f"{where}: traffic.generators: needs kubernetes.mode: managed (the generators run "
                       "in the run's namespace, next to the Service they hit)")
    if gen.target == "nodePort" and scenario.kubernetes.service_type == "ClusterIP":
        raise BadInput(f"{where}: traffic.generators.target: nodePort needs kubernetes.serviceType "
                       "NodePort (or LoadBalancer); or set target: service")
