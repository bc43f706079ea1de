"""What every diagnosis rule works with: the run's context (scenario, pod
lives, attributed failures, requests), the claims bookkeeping that lets each
failure be explained by one rule only, and the shape of a finding
({rule, title, cause, evidence, fix, severity, failures}).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import numpy as np
import pandas as pd

from harness.analysis.podlife import PodLife
from harness.analysis.runspec import RunSpec, run_spec
from harness.model.outcome import OUTCOMES, Outcome
from harness.model.scenario import Scenario

#: near-simultaneity allowed between an event and a request time
TOL_NS = 50_000_000
#: after a process ends, its idle keep-alive connections fail on their next request
AFTER_END_NS = 500_000_000
#: capacity dips shorter than this are endpoint-update jitter, not a dip
MIN_DIP_NS = 500_000_000
#: overload failures after a dip, while the backlog it built drains, are still its doing
RECOVERY_NS = 2_000_000_000
#: a request written on a reused connection at most this long before the
#: connection closed under it (no response byte) was on the wire as the server
#: closed the connection as idle: the HTTP/1.1 keep-alive close race
RACE_WINDOW_NS = 20_000_000
#: a finding that explains at most this share of the failures is not HIGH
MIN_HIGH_SHARE = 0.01
SEVERITY_RANK = {"high": 0, "medium": 1, "low": 2}
CODE = {o: OUTCOMES.index(o) for o in Outcome}
#: what an overloaded service answers
OVERLOAD_CODES = [CODE[o] for o in (Outcome.HTTP_503, Outcome.HTTP_504, Outcome.HTTP_5XX, Outcome.HTTP_502,
                                    Outcome.READ_TIMEOUT, Outcome.CONNECT_TIMEOUT)]
#: what a connection cut under a request looks like
CUT_CODES = [CODE[o] for o in (Outcome.RESET, Outcome.CLOSED, Outcome.OTHER, Outcome.READ_TIMEOUT)]


@dataclasses.dataclass
class Context:
    scenario: Scenario
    pods: dict[str, PodLife]
    #: attributed failures (harness.analysis.attribution.attribute)
    att: pd.DataFrame
    chains: list[dict[str, Any]]
    req: pd.DataFrame
    window: tuple[int, int] | None
    baseline_p99_ms: float | None
    #: the run's real values (stop signal, preStop, grace period, probes); default: from the scenario
    spec: RunSpec | None = None
    #: the run's lifecycle events (the drain rules read its steps)
    events: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    #: unclaimed failures (rules flip it as they claim)
    free: np.ndarray = dataclasses.field(init=False)
    #: attributed pod per failure, as an object array (compared per pod)
    pod_of: np.ndarray = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        if self.spec is None:
            self.spec = run_spec(self.scenario, {})
        self.free = np.ones(len(self.att), dtype=bool)
        self.pod_of = self.att["pod"].to_numpy(dtype=object)


Rule = Callable[[Context], dict[str, Any] | None]


#: titles, one per rule (the static check quotes the same words)
TITLES = {
    "short-grace": "Grace period too short: SIGKILL cut requests in flight",
    "no-graceful-shutdown": "No graceful shutdown: the app exited on {signal} with requests in flight",
    "keepalive-close-race": "Keep-alive close race: requests written on connections the server was closing as idle",
    "no-prestop": "No preStop hook: pods stopped serving while still in the endpoints",
    "prestop-too-short": "preStop too short: pods stopped serving while still in the endpoints",
    "no-readiness-probe": "No readiness probe: pods got traffic before they were ready",
    "premature-readiness": "Readiness probe passed before the app was ready",
    "keepalive-cut": "Keep-alive connections cut under requests in flight at shutdown",
}
#: the keep-alive close race's fix (server side, then client side)
RACE_FIX = ("From the stop signal on, answer every request with Connection: close for a drain window "
            "(a few seconds, inside the preStop/grace period) before closing idle keep-alive connections, "
            "so clients stop reusing them first; or use clients that retry idempotent requests on a reused "
            "connection that closed before any response byte (Go's net/http Transport and browsers do).")


# ---- helpers --------------------------------------------------------------------------

def secs(t_ns: float | None) -> float | None:
    return None if t_ns is None else round(t_ns / 1e9, 3)


def ceil_half(x: float) -> float:
    return math.ceil(x * 2) / 2


def by_outcome(att: pd.DataFrame) -> dict[str, int]:
    counts = np.bincount(att["code"].to_numpy().astype(np.int64), minlength=len(OUTCOMES))
    return {OUTCOMES[i].value: int(c) for i, c in enumerate(counts) if c}


def outcome_text(by: dict[str, int]) -> str:
    return ", ".join(f"{n} {o}" for o, n in sorted(by.items(), key=lambda kv: -kv[1]))


def pod_rows(ctx: Context, pod: str) -> np.ndarray:
    return ctx.free & (ctx.pod_of == pod)


def claim(ctx: Context, mask: np.ndarray) -> pd.DataFrame:
    got = ctx.att.loc[mask]
    ctx.free &= ~mask
    return got


def finding(rule: str, title: str, cause: str, fix: str, severity: str, claimed: pd.DataFrame | None,
             **evidence: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {}
    if claimed is not None and len(claimed):
        ev["failures"] = int(len(claimed))
        ev["by_outcome"] = by_outcome(claimed)
        ev["by_pod"] = {str(k): int(v) for k, v in claimed["pod"].fillna("(none)").value_counts().items()}
        ev["first_s"] = secs(int(claimed["t_ns"].min()))
        ev["last_s"] = secs(int(claimed["t_ns"].max()))
    ev.update(evidence)
    return {"rule": rule, "title": title, "cause": cause, "evidence": ev, "fix": fix, "severity": severity,
            "failures": int(len(claimed)) if claimed is not None else 0}


def longest_request_s(req: pd.DataFrame) -> float | None:
    ok = req["code"].to_numpy() == CODE[Outcome.OK]
    sent = req["sent_ns"].to_numpy()[ok]
    if not len(sent):
        return None
    return round(float((req["ended_ns"].to_numpy()[ok] - sent).max()) / 1e9, 3)


def prestop_seconds(spec: RunSpec) -> float | None:
    """The preStop hook's duration as the spec tells it (None: none, or unknown)."""
    return spec.prestop.seconds if spec.prestop is not None else None


def no_response_byte(att: pd.DataFrame, req: pd.DataFrame) -> np.ndarray:
    """Per attributed failure: the client received no byte of a response
    (no status, and the connection did not end part-way into one)."""
    rows = req.loc[att.index]
    status = rows["status"].to_numpy()
    err = rows["error"].fillna("").astype(str).to_numpy(dtype=object)
    partial = np.array([("complete response" in e and "before" in e) or "partial" in e for e in err], dtype=bool)
    return (status == 0) & ~partial


def graceful_exit(p: PodLife) -> bool:
    """The app handled its stop signal: it logged a drain of its own, it
    answered a request sent after the signal (an app with no handler dies at
    once), or it exited with code 0 after it. (Exit code 128 + the signal's
    number proves nothing: uvicorn, for one, re-raises the signal after its
    graceful shutdown.)"""
    if p.drained_gracefully:
        return True
    if p.stop_signal is None or p.sigkill is not None:
        return False
    return p.exit_code == 0 or (p.last_ok_sent is not None and p.last_ok_sent > p.stop_signal + TOL_NS)
