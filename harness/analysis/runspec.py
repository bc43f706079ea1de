"""The run's real values, for the words of every finding: the stop signal
the pods got, the preStop hook (kind and duration), the grace period, the
probes, the request method.

They come from what the run recorded, strongest first: the stop signal
named in the pods' own ``sigterm_sent`` events; the live Deployment's spec
the kubernetes platform recorded in the manifest (``kubernetes.workload``;
in target mode the scenario's deployment section is only defaults); and
the scenario as run.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

from harness.model.events import EventDict, EventKind
from harness.model.scenario import LifecycleHandler, Probe, Scenario

#: methods a client may replay (RFC 9110 9.2.2), as Go's net/http and browsers do
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


@dataclasses.dataclass(frozen=True)
class PreStop:
    kind: str  # sleep | exec | httpGet
    seconds: float | None  # None: not known from the spec
    text: str  # "sleep 3 s", "exec sh -c 'sleep 10'", "httpGet /drain"


@dataclasses.dataclass(frozen=True)
class RunSpec:
    stop_signal: str
    grace_s: float
    prestop: PreStop | None
    #: "httpGet /ready", "tcpSocket", "exec ..." (None: no probe)
    readiness: str | None
    readiness_kind: str | None
    method: str
    #: where the workload facts came from: "scenario" or "live Deployment"
    source: str

    @property
    def idempotent(self) -> bool:
        return self.method.upper() in IDEMPOTENT_METHODS

    @property
    def prestop_text(self) -> str:
        return f"preStop {self.prestop.text}" if self.prestop else "no preStop hook"


def _scenario_prestop(h: LifecycleHandler | None) -> PreStop | None:
    if h is None:
        return None
    if h.sleep is not None:
        return PreStop("sleep", h.sleep.seconds, f"sleep {h.sleep.seconds:g} s")
    if h.exec is not None:
        from harness.platforms.kubernetes.workload import prestop_facts

        f = prestop_facts({"exec": {"command": h.exec.command}})
        return PreStop("exec", f["seconds"], f["text"])
    path = h.http_get.path if h.http_get else "/"
    return PreStop("httpGet", None, f"httpGet {path}")


def _scenario_probe(p: Probe | None) -> tuple[str | None, str | None]:
    if p is None:
        return None, None
    if p.http_get is not None:
        return f"httpGet {p.http_get.path}", "httpGet"
    if p.tcp_socket is not None:
        return "tcpSocket", "tcpSocket"
    return "exec " + " ".join(p.exec.command if p.exec else []), "exec"


def _live_probe(p: dict | None) -> tuple[str | None, str | None]:
    if not p:
        return None, None
    kind = p.get("kind")
    if kind == "httpGet":
        return f"httpGet {p.get('path', '/')}", kind
    if kind == "exec":
        return "exec " + " ".join(p.get("command") or []), kind
    return str(kind), kind


def _signal_from_events(events: Iterable[EventDict]) -> str | None:
    for ev in events:
        if ev.get("kind") == EventKind.SIGTERM_SENT:
            sig = (ev.get("detail") or {}).get("signal")
            if sig:
                return str(sig)
    return None


def run_spec(scenario: Scenario, manifest: dict[str, Any], events: Iterable[EventDict] = ()) -> RunSpec:
    d = scenario.deployment
    live = ((manifest.get("kubernetes") or {}).get("workload")) or None
    signal = _signal_from_events(events) or (live or {}).get("stop_signal") or scenario.app.stop_signal
    method = scenario.traffic.method
    if live:
        ps = live.get("prestop")
        readiness, rkind = _live_probe(live.get("readiness_probe"))
        return RunSpec(signal, float(live.get("termination_grace_period_seconds") or d.termination_grace_period_seconds),
                       PreStop(ps["kind"], ps.get("seconds"), ps["text"]) if ps else None,
                       readiness, rkind, method, "live Deployment")
    readiness, rkind = _scenario_probe(d.readiness_probe)
    return RunSpec(signal, float(d.termination_grace_period_seconds), _scenario_prestop(d.lifecycle.pre_stop),
                   readiness, rkind, method, "scenario")
