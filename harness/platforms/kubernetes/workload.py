"""The facts of a live Deployment that the diagnosis words its findings
with: the container's preStop hook (kind and duration), stop signal, grace
period and probes.

In target mode the scenario file does not describe the workload (its
deployment section keeps its defaults); the Deployment on the cluster does.
The platform records these facts in the run manifest
(``kubernetes.workload``) so the analysis never quotes a default as if it
were the run's value.
"""

from __future__ import annotations

import re
from typing import Any

#: "sleep 10", "/bin/sleep 10", "sh -c 'sleep 10'" in an exec preStop
_SLEEP = re.compile(r"(?:^|[\s;&|'\"/])sleep\s+(\d+(?:\.\d+)?)s?\b")


def _probe(p: dict | None) -> dict[str, Any] | None:
    if not p:
        return None
    if p.get("httpGet"):
        return {"kind": "httpGet", "path": p["httpGet"].get("path", "/"), "port": p["httpGet"].get("port")}
    if p.get("tcpSocket"):
        return {"kind": "tcpSocket", "port": p["tcpSocket"].get("port")}
    if p.get("exec"):
        return {"kind": "exec", "command": list(p["exec"].get("command") or [])}
    if p.get("grpc"):
        return {"kind": "grpc", "port": p["grpc"].get("port")}
    return {"kind": "unknown"}


def prestop_facts(handler: dict | None) -> dict[str, Any] | None:
    """{kind, seconds (None when unknown), text} of a preStop handler."""
    if not handler:
        return None
    if handler.get("sleep"):
        s = float(handler["sleep"].get("seconds", 0))
        return {"kind": "sleep", "seconds": s, "text": f"sleep {s:g} s"}
    if handler.get("exec"):
        cmd = [str(c) for c in handler["exec"].get("command") or []]
        m = _SLEEP.search(" ".join(cmd))
        return {"kind": "exec", "seconds": float(m.group(1)) if m else None, "command": cmd,
                "text": "exec " + " ".join(cmd)}
    if handler.get("httpGet"):
        path = handler["httpGet"].get("path", "/")
        return {"kind": "httpGet", "seconds": None, "path": path, "text": f"httpGet {path}"}
    return {"kind": "unknown", "seconds": None, "text": "a preStop hook"}


def workload_facts(dep: dict, container: str | None = None) -> dict[str, Any]:
    """The facts of ``dep`` (a Deployment object) for its app container
    (``container``, default the first)."""
    spec = (dep.get("spec") or {}).get("template", {}).get("spec") or {}
    containers = spec.get("containers") or [{}]
    c = next((x for x in containers if x.get("name") == container), containers[0])
    lifecycle = c.get("lifecycle") or {}
    strategy = (dep.get("spec") or {}).get("strategy") or {}
    return {
        "container": c.get("name", ""),
        "image": c.get("image", ""),
        "replicas": (dep.get("spec") or {}).get("replicas"),
        "termination_grace_period_seconds": float(spec.get("terminationGracePeriodSeconds", 30)),
        "prestop": prestop_facts(lifecycle.get("preStop")),
        # Kubernetes >= 1.33 (ContainerStopSignals): lifecycle.stopSignal; else the image's STOPSIGNAL
        "stop_signal": lifecycle.get("stopSignal"),
        "readiness_probe": _probe(c.get("readinessProbe")),
        "liveness_probe": _probe(c.get("livenessProbe")),
        "startup_probe": _probe(c.get("startupProbe")),
        "strategy": strategy.get("type", "RollingUpdate"),
        "rolling_update": strategy.get("rollingUpdate"),
        "min_ready_seconds": (dep.get("spec") or {}).get("minReadySeconds", 0),
    }
