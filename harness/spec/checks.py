"""The static face of the diagnosis rules (DESIGN.md "A rule has two
faces"): the risks a Deployment's spec shows before any traffic, each with
the line it comes from, what goes wrong in a rollout, the fix, and the run
that would show it happening.

The rule ids are the diagnosis's own (``rules.py``: no-prestop, short-grace,
no-readiness-probe, capacity-dip; ``drain_rules.py``: single-replica, no-pdb,
pdb-blocks-drain); ``CHECKS`` says which diagnosis rule shows
each risk as evidence in a run, and ``RUN_ONLY`` names the diagnosis rules
that have no static face, and why (tests/spec/test_checks.py holds the lists
together). This module is the one place their spec-side wording lives:
``check`` prints it for manifests, ``validate`` for scenario files. Risks are pure functions of the workload model plus the
document's line map, so they read a manifest file and a live Deployment
(target mode) the same way.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from pydantic.alias_generators import to_camel

from harness.errors import BadInput
from harness.model.k8syaml import Document, Path_, field_path, parse_documents
from harness.model.scenario import Deployment, LifecycleHandler, Probe, resolve_int_or_percent
from harness.model.workload import Workload, workload_of
from harness.platforms.local.eviction import pdb_status

HIGH, MEDIUM, LOW = "high", "medium", "low"
#: what a pod typically needs after preStop: the app's keep-alive drain plus its longest requests
TYPICAL_DRAIN_S = 5.0
#: at or below this many replicas, one unavailable pod is a large share of capacity
FEW_REPLICAS = 3
#: a liveness delay this long is a startup time in disguise
LONG_LIVENESS_DELAY_S = 30.0


@dataclasses.dataclass(frozen=True)
class Check:
    id: str
    title: str
    #: the diagnosis rule (rules.py) that shows this risk as evidence in a run, if any
    diagnosis: str | None
    #: the shipped scenario that reproduces it with the sample app
    scenario: str | None


CHECKS = {c.id: c for c in (
    Check("no-prestop", "No preStop hook", "no-prestop", "scenarios/no-prestop.yaml"),
    Check("short-grace", "Grace period shorter than preStop plus a drain", "short-grace",
          "scenarios/short-grace.yaml"),
    Check("no-readiness-probe", "No readiness probe", "no-readiness-probe", "scenarios/no-readiness-probe.yaml"),
    Check("readiness-is-liveness", "Readiness and liveness probe the same endpoint", None, None),
    Check("max-unavailable", "maxUnavailable > 0 with few replicas", "capacity-dip", None),
    Check("max-surge-zero", "maxSurge 0", "capacity-dip", "scenarios/surge-zero.yaml"),
    Check("recreate", "Recreate strategy", "capacity-dip", None),
    Check("single-replica", "One replica", "single-replica", "scenarios/drain-single-replica.yaml"),
    Check("no-pdb", "No PodDisruptionBudget", "no-pdb", "scenarios/drain-no-pdb.yaml"),
    Check("pdb-blocks-drain", "PodDisruptionBudget allows no disruption", "pdb-blocks-drain",
          "scenarios/drain-pdb-blocks.yaml"),
    Check("spread-blocks-drain", "Hard node spread can strand a drain's replacements", "pdb-blocks-drain", None),
    Check("liveness-delay-without-startup", "Long liveness delay instead of a startup probe", None, None),
)}


#: diagnosis rules with no static face of their own, and why (the spec-side part, if any, is named)
RUN_ONLY = {
    "all-on-one-node": "where the pods land is the scheduler's choice at run time; the spec's part is no-pdb "
                       "(and pdb-blocks-drain for a spread that strands replacements)",
    "rollout-below-pdb": "a fact of a run, not a risk: a PDB does not limit a Deployment's own rollout; the "
                         "spec's part is max-unavailable",
}


@dataclasses.dataclass
class Risk:
    check: str
    severity: str
    deployment: str
    source: str
    line: int
    document: str
    field: str
    what: str
    fix: str

    @property
    def title(self) -> str:
        return CHECKS[self.check].title

    def as_dict(self) -> dict[str, Any]:
        c = CHECKS[self.check]
        return {**dataclasses.asdict(self), "title": c.title, "diagnosis_rule": c.diagnosis,
                "reproduced_by": c.scenario}


def prestop_seconds(h: LifecycleHandler | None) -> float | None:
    """How long a preStop hook holds the pod: a sleep action, or an exec of
    ``sleep N`` (the usual form before the sleep action existed)."""
    if h is None:
        return None
    if h.sleep is not None:
        return h.sleep.seconds
    if h.exec is not None:
        m = re.search(r"(?:^|\s)sleep\s+(\d+(?:\.\d+)?)", " ".join(h.exec.command))
        if m:
            return float(m.group(1))
    return 0.0


def _endpoint(p: Probe) -> tuple | None:
    if p.http_get is not None:
        return ("http", p.http_get.path, p.http_get.port)
    if p.tcp_socket is not None:
        return ("tcp", p.tcp_socket.port)
    if p.exec is not None:
        return ("exec", tuple(p.exec.command))
    return None


#: a manifest path (relative to the Deployment or the PDB) -> the same field in a scenario's own layout
_SCENARIO_PREFIXES: tuple[tuple[Path_, Path_], ...] = (
    (("spec", "template", "spec", "containers"), ("deployment",)),  # then the container index
    (("spec", "template", "spec"), ("deployment",)),
    (("spec",), ("deployment",)),
    (("metadata",), ("deployment",)),
)


def _scenario_path(path: Path_, *, pdb: bool) -> Path_:
    if pdb:
        return ("deployment", "podDisruptionBudget") + tuple(path[1:] if path[:1] == ("spec",) else ())
    for prefix, to in _SCENARIO_PREFIXES:
        if tuple(path[:len(prefix)]) == prefix:
            rest = path[len(prefix):]
            if prefix[-1] == "containers":
                rest = rest[1:]
            if prefix == ("metadata",):
                rest = ()
            return to + tuple(rest)
    return ("deployment",) + tuple(path)


def scenario_document(sc) -> Document:
    """The scenario file, for lines of its ``deployment:`` fields (keys in
    either spelling, camelCase or snake_case); no lines if it has no file."""
    source = sc.source_path or "<scenario>"
    try:
        docs = parse_documents(Path(source).read_text(encoding="utf-8"), source) if sc.source_path else []
    except (OSError, UnicodeDecodeError, BadInput):
        docs = []
    if not docs:
        return Document(source=source, index=0, line=0, data={}, lines={})
    doc = docs[0]
    doc.lines = {tuple(to_camel(k) if isinstance(k, str) else k for k in path): line
                 for path, line in doc.lines.items()}
    return doc


class _Spec:
    """Where each field is written, for the line of a risk: the Deployment
    and PDB documents of manifests, or the scenario file's ``deployment:``
    section (the rules name fields by their manifest path either way)."""

    def __init__(self, wl: Workload, scenario_doc: Document | None = None):
        self.manifests = wl.deployment_doc is not None
        self.doc = wl.deployment_doc if self.manifests else scenario_doc
        assert self.doc is not None, "a workload from a scenario needs its scenario document"
        self.pdb_doc = wl.pdb_doc if self.manifests else self.doc
        self.label = self.doc.label() if self.manifests else f"scenario {self.doc.source}"
        self.c: Path_ = ("spec", "template", "spec", "containers", wl.container_index)
        self.pod: Path_ = ("spec", "template", "spec")
        self.risks: list[Risk] = []
        self.name = wl.deployment.name

    def add(self, check: str, severity: str, path: Path_, what: str, fix: str, *, pdb: bool = False) -> None:
        doc = (self.pdb_doc if pdb else self.doc) or self.doc
        label = doc.label() if self.manifests else self.label
        if not self.manifests:
            path = _scenario_path(path, pdb=pdb)
        self.risks.append(Risk(check, severity, self.name, doc.source, doc.line_of(path), label,
                               field_path(path), what, fix))


def check_scenario(sc) -> list[Risk]:
    """Every risk of a scenario's workload, whichever way it is given: its
    manifests (lines in them) or its own ``deployment:`` fields (lines in
    the scenario file). ``rollout-harness validate`` prints these."""
    wl = workload_of(sc)
    return check_workload(wl, None if wl.from_manifests else scenario_document(sc))


def check_workload(wl: Workload, scenario_doc: Document | None = None) -> list[Risk]:
    """Every risk of one Deployment (and its PDB), most severe first."""
    d: Deployment = wl.deployment
    s = _Spec(wl, scenario_doc)
    grace = d.termination_grace_period_seconds
    prestop = prestop_seconds(d.lifecycle.pre_stop)
    if d.lifecycle.pre_stop is None:
        s.add("no-prestop", HIGH, s.c + ("lifecycle",),
              "At deletion the kubelet sends SIGTERM at once, while kube-proxy and load balancers still route "
              "new connections to the pod for about a second (the endpoint update is asynchronous): requests "
              "sent in that window are refused or reset, unless the app itself keeps serving after SIGTERM for "
              "longer than that (a run shows which).",
              "Add lifecycle.preStop.sleep.seconds longer than your endpoint propagation (5 s is a common start; "
              "a run measures it), and raise terminationGracePeriodSeconds by as much.")
    need = (prestop or 0.0) + TYPICAL_DRAIN_S
    if grace < need:
        s.add("short-grace", HIGH, s.pod + ("terminationGracePeriodSeconds",),
              f"terminationGracePeriodSeconds is {grace:g} s; preStop takes {prestop or 0:g} s of it and the app "
              f"then needs time to drain keep-alive connections and finish requests in flight (typically "
              f"{TYPICAL_DRAIN_S:g} s or more): the kubelet sends SIGKILL at the deadline and cuts them.",
              f"terminationGracePeriodSeconds >= {need:g} s (preStop {prestop or 0:g} s + a drain of "
              f"{TYPICAL_DRAIN_S:g} s), more if requests can take longer.")
    if d.readiness_probe is None:
        s.add("no-readiness-probe", HIGH, s.c,
              "Without a readiness probe a pod is in the endpoints as soon as its container starts, before the "
              "app listens or has warmed up: the first requests to each new pod fail, and a rollout counts "
              "unready pods as available.",
              "Add a readinessProbe on an endpoint that answers only when the app can serve (e.g. httpGet /ready).")
    elif d.liveness_probe is not None and _endpoint(d.readiness_probe) == _endpoint(d.liveness_probe):
        s.add("readiness-is-liveness", MEDIUM, s.c + ("livenessProbe",),
              "Readiness and liveness probe the same endpoint: when the app reports not-ready (overloaded, "
              "draining after SIGTERM, a dependency down) the liveness probe fails too and the kubelet restarts "
              "pods that only needed to be taken out of the endpoints.",
              "Give liveness its own endpoint that checks only that the process is not stuck (e.g. /healthz), "
              "and keep dependency and drain state in readiness.")
    _strategy_risks(s, d)
    _budget_risks(s, wl)
    lv = d.liveness_probe
    if lv is not None and d.startup_probe is None and lv.initial_delay_seconds >= LONG_LIVENESS_DELAY_S:
        s.add("liveness-delay-without-startup", LOW, s.c + ("livenessProbe", "initialDelaySeconds"),
              f"livenessProbe.initialDelaySeconds is {lv.initial_delay_seconds:g} s with no startupProbe: a pod "
              "that starts slower is restarted in a loop, and a pod that hangs early is detected only after the "
              "whole delay.",
              "Add a startupProbe (failureThreshold x periodSeconds covering the slowest start) and drop the "
              "liveness delay.")
    order = {HIGH: 0, MEDIUM: 1, LOW: 2}
    return sorted(s.risks, key=lambda r: (order[r.severity], r.line))


def _strategy_risks(s: _Spec, d: Deployment) -> None:
    n = d.replicas
    if d.strategy.type == "Recreate":
        s.add("recreate", HIGH, ("spec", "strategy", "type"),
              "The Recreate strategy stops every old pod before any new one starts: the service is down for "
              "the whole rollout.",
              "Use strategy.type RollingUpdate with maxSurge 1 and maxUnavailable 0.")
        surge, unavail = 0, n
    else:
        ru = d.strategy.rolling_update
        surge = resolve_int_or_percent(ru.max_surge, n, round_up=True)
        unavail = resolve_int_or_percent(ru.max_unavailable, n, round_up=False)
        ru_path = ("spec", "strategy", "rollingUpdate")
        if unavail > 0 and n <= FEW_REPLICAS:
            s.add("max-unavailable", MEDIUM, ru_path + ("maxUnavailable",),
                  f"maxUnavailable resolves to {unavail} of {n} replicas: the rollout removes ready pods before "
                  f"their replacements are ready, so capacity drops to {n - unavail}/{n} and the rest carry the "
                  "load (queues, timeouts, 503s if they cannot).",
                  "maxUnavailable: 0 with maxSurge: 1 keeps every replica serving during the rollout.")
        if surge == 0:
            s.add("max-surge-zero", MEDIUM, ru_path + ("maxSurge",),
                  "maxSurge 0: each step deletes an old pod before its replacement exists, so the rollout always "
                  f"runs with fewer than {n} ready pods.",
                  "maxSurge: 1 (or 25%) adds the new pod first; keep maxUnavailable: 0 if the spare capacity "
                  "is small.")
    if n == 1:
        safe = surge >= 1 and unavail == 0
        s.add("single-replica", MEDIUM if safe else HIGH, ("spec", "replicas"),
              "One replica: " + ("a rollout surges a new pod first, but a node drain, an eviction or a crash "
                                 "takes the whole service down" if safe else
                                 "the rollout itself stops the only pod before a new one is ready") + ".",
              "replicas >= 2 (3 to survive a drain during a rollout), with a PodDisruptionBudget maxUnavailable: 1.")


def _budget_risks(s: _Spec, wl: Workload) -> None:
    n = wl.deployment.replicas
    budget = wl.deployment.pod_disruption_budget
    if wl.pdb_doc is None and budget is None:
        if n > 1:
            s.add("no-pdb", LOW, ("metadata", "name"),
                  "No PodDisruptionBudget selects these pods: a node drain or cluster upgrade may evict all of "
                  "them at once.",
                  "Add a PodDisruptionBudget with maxUnavailable: 1 selecting the pod template's labels.")
        return
    if budget is None:
        return
    name = f"PodDisruptionBudget {wl.pdb_doc.name}" if wl.pdb_doc is not None else "The PodDisruptionBudget"
    # the disruption controller's own arithmetic (the local platform's eviction API uses it too)
    desired = pdb_status(budget, n, []).desired_healthy
    allowed = n - desired
    field: Path_ = ("spec", "maxUnavailable") if budget.max_unavailable is not None else ("spec", "minAvailable")
    if allowed <= 0:
        s.add("pdb-blocks-drain", MEDIUM, field,
              f"{name} allows {max(allowed, 0)} of {n} pods to be disrupted: every "
              "eviction is refused, so `kubectl drain` and node upgrades hang until someone deletes pods by "
              "hand (without the budget's protection).",
              f"maxUnavailable: 1 (or minAvailable: {max(n - 1, 0)}), so drains can proceed one pod at a time.",
              pdb=True)
    hard = [c for c in wl.deployment.topology_spread_constraints
            if c.when_unsatisfiable == "DoNotSchedule" and c.node_taints_policy == "Ignore"]
    if hard:
        s.add("spread-blocks-drain", MEDIUM, s.pod + ("topologySpreadConstraints",),
              "A DoNotSchedule topology spread with nodeTaintsPolicy Ignore (the default) still counts a "
              f"cordoned node as a domain: the replacement of an evicted pod can stay Pending, so {name[0].lower()}"
              f"{name[1:]} never gets its healthy pods back and the drain blocks.",
              "whenUnsatisfiable: ScheduleAnyway, or nodeTaintsPolicy: Honor (the cordoned node is then no domain).")


def highest(risks: list[Risk]) -> str | None:
    for sev in (HIGH, MEDIUM, LOW):
        if any(r.severity == sev for r in risks):
            return sev
    return None
