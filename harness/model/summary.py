"""The shapes of the run dir's JSON files, as TypedDicts: manifest.json (its
writers: the runner and the ``load`` command, through the traffic session
for the ``generator`` section) and summary.json (one writer: the analysis).

Readers index these keys; a key renamed here is a contract change (see
docs/design.md). ``total=False``: a crashed or interrupted run writes what
it knows, so readers use ``.get`` for everything but the always-written keys.
"""

from __future__ import annotations

from typing import Any, TypedDict


class Quantiles(TypedDict, total=False):
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None


class RequestStats(TypedDict):
    total: int
    failed: int
    service_failed: int
    dropped: int
    outcomes: dict[str, int]
    error_ratio: float | None
    send_lag_ms: Quantiles
    latency_ms: Quantiles


class HostWindow(TypedDict):
    start_ns: int  # run clock
    end_ns: int
    speed: float  # the host's speed in it, a share of its usual


class HostSpeed(TypedDict):
    """When the host ran this machine slowly while the traffic ran
    (harness.traffic.hostspeed): a cause of falling behind that is neither
    the harness's nor the target's."""

    probed_s: float  # how long the probe sampled (0: it did not start)
    slow_share: float  # the share of probed_s inside windows
    windows: list[HostWindow]


class Generator(TypedDict, total=False):
    """What the traffic generator was asked and what it achieved: the
    manifest's ``generator`` section, written once by the runner at the end of the traffic
    (harness.traffic.summary.generator_figures), for `run` and `load` alike."""

    asked_rate: float  # req/s; 0 = closed loop
    achieved_rate: float  # requests sent per second of schedule
    duration_s: float  # the schedule's span (start to when scheduling stopped)
    send_lag_ms: Quantiles
    dropped: int
    total: int
    workers: int  # engine processes that ran
    cpu_s: float  # CPU time of the engine(s) while they ran
    interrupted: bool
    records_complete: bool
    fell_behind: bool  # load: dropped requests or send-lag p99 over its limit
    max_lag_ms: float
    host: HostSpeed  # the harness's own engines only (not in-cluster generators)


class Manifest(TypedDict, total=False):
    kind: str  # "run" | "load"
    run_id: str
    status: str  # running | complete | interrupted | crashed | rollout_failed | deploy_failed | observation_incomplete
    platform: str
    scenario: dict[str, Any]
    scenario_path: str | None
    url: str  # load
    engine: dict[str, Any]  # load: the engine settings
    started_at: str
    finished_at: str
    command: list[str]
    clock: dict[str, Any]
    host: dict[str, Any]
    versions: dict[str, str]
    generator: Generator
    rollout: dict[str, Any]
    #: {complete, reason}: whether every pod the disruption deleted was seen to end
    observation: dict[str, Any]
    #: kubernetes: context, namespace, ..., workload (the live Deployment's facts)
    kubernetes: dict[str, Any]
    phases_t_ns: dict[str, int]
    platform_info: dict[str, Any]
    error: str | None
    #: where the workload came from (harness.model.workload.Workload.describe)
    workload: dict[str, Any]
    #: the risks `check` sees in the manifests' spec (harness.spec.checks)
    spec_risks: list[dict[str, Any]]
    #: target mode: the live Deployment read through the workload model
    live_deployment: dict[str, Any]


class Summary(TypedDict, total=False):
    """summary.json: the analysis of one run dir (harness.analysis)."""

    scenario: str
    description: str
    run_dir: str
    status: str
    platform: str | None
    total: int
    failed: int
    service_failed: int
    outcomes: dict[str, int]
    dropped: int
    asked_rate: float
    achieved_rate: float | None
    send_lag_ms: Quantiles
    latency_ms: Quantiles
    phases: dict[str, Any]
    rollout_window: dict[str, Any]
    disruption_seconds: float
    disruption_intervals: list[dict[str, Any]]
    availability: float | None
    findings: list[dict[str, Any]]
    top_finding: str | None
    unexplained: int
    attribution: dict[str, Any]
    #: the client's view: failed, retried_transparently, visible, sentence
    client_view: dict[str, Any]
    #: findings checked against the local platform's ground truth (None elsewhere)
    ground_truth: dict[str, Any] | None
    #: the run's real values the findings quote (stop signal, preStop, grace, probes)
    run_spec: dict[str, Any]
    chains: list[dict[str, Any]]
    #: what the ingress proxy did (traffic.via: ingress; None otherwise): harness.analysis.ingress
    ingress: dict[str, Any] | None
    pods: list[dict[str, Any]]
    gate: dict[str, Any]
    verdict: dict[str, Any]
    rollout: dict[str, Any] | None
    #: a node drain's own figures (the drain_complete event): nodes, evicted,
    #: evictions_refused (429s), duration_s, complete; None for other disruptions
    drain: dict[str, Any] | None
    records_complete: bool
    notes: list[str]
