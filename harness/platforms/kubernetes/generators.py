"""The generator pods of ``traffic.generators`` as one Indexed Job (pure:
rendered from the scenario, tested without a cluster).

Why one Indexed Job: Kubernetes gives each pod its index
(``JOB_COMPLETION_INDEX``), which is the generator's share of the schedule
(seqs ``i, i+N, ...``); ``backoffLimitPerIndex: 0`` keeps a failed or
deleted generator from being replaced (a replacement would send a share
twice) without failing the others; ``activeDeadlineSeconds`` bounds the
whole Job even if the harness is gone.

The pods carry the managed-by label and a generator label, never the run's
pod label: the platform's pod watch follows the app's pods only.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from harness.model.generators import CONTROL_PORT, Generators
from harness.platforms.kubernetes.manifests import MANAGED_BY, MANAGER, RUN_LABEL

JOB_NAME = "rollout-harness-generators"
CONTAINER = "generator"
GENERATOR_LABEL = "rollout-harness.io/generator-of"


def target_url(gen: Generators, *, service: dict[str, Any] | None, ingress: dict[str, Any] | None,
               path: str) -> str:
    """Where the generators send: the ClusterIP of the app's Service or of the
    ingress proxy's, or the NodePort on each generator's own node
    (``{host_ip}``, filled in the pod from the downward API)."""
    if gen.target == "ingress":
        if ingress is None:
            raise ValueError("target ingress: the ingress proxy's Service is not deployed")
        spec = ingress.get("spec", {})
        port = next((p["port"] for p in spec.get("ports") or [] if p.get("name") == "web"), None)
        return f"http://{spec.get('clusterIP')}:{port}{path}"
    if service is None:
        raise ValueError("the app's Service is not deployed")
    spec = service.get("spec", {})
    ports = spec.get("ports") or [{}]
    if gen.target == "nodePort":
        node_port = ports[0].get("nodePort")
        if not node_port:
            raise ValueError(f"Service {service.get('metadata', {}).get('name')} has no nodePort")
        return f"http://{{host_ip}}:{node_port}{path}"
    ip = spec.get("clusterIP")
    if not ip or ip == "None":
        raise ValueError(f"Service {service.get('metadata', {}).get('name')} has no ClusterIP")
    return f"http://{ip}:{ports[0]['port']}{path}"


def render_job(gen: Generators, *, namespace: str, run_label: str, spec: dict[str, Any],
               pull_policy: str, deadline_s: int, name: str = JOB_NAME) -> dict[str, Any]:
    labels = {MANAGED_BY: MANAGER, GENERATOR_LABEL: run_label, "app.kubernetes.io/component": "generator"}
    env = [
        {"name": "RH_GENERATOR", "value": json.dumps(spec, separators=(",", ":"))},
        {"name": "RH_GENERATORS", "value": str(gen.count)},
        {"name": "RH_CONTROL_PORT", "value": str(CONTROL_PORT)},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
    ]
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": {**labels, RUN_LABEL: run_label}},
        "spec": {
            "completionMode": "Indexed",
            "completions": gen.count,
            "parallelism": gen.count,
            "backoffLimitPerIndex": 0,
            "podReplacementPolicy": "Failed",
            "activeDeadlineSeconds": int(deadline_s),
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 5,
                    "enableServiceLinks": False,
                    "automountServiceAccountToken": False,
                    "containers": [{
                        "name": CONTAINER, "image": gen.image, "imagePullPolicy": pull_policy,
                        "command": ["python", "-m", "harness.traffic.generator"],
                        "env": env,
                        "ports": [{"name": "control", "containerPort": CONTROL_PORT}],
                        "resources": {"requests": {"cpu": gen.cpu}},
                    }],
                },
            },
        },
    }


@dataclasses.dataclass(frozen=True)
class Share:
    """Generator ``index`` of ``count``: the global seqs index, index+count, ..."""

    index: int
    count: int

    def seqs(self, total: int) -> range:
        return range(self.index, total, self.count)

    def size(self, total: int) -> int:
        return len(self.seqs(total))
