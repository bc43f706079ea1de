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
    #: the run's lifecycle events (the drain rules read its steps)
    events: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    #: unclaimed failures (rules flip it as they claim)
    free: np.ndarray = dataclasses.field(init=False)
    #: attributed pod per failure, as an object array (compared per pod)
    pod_of: np.ndarray = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.free = np.ones(len(self.att), dtype=bool)
        self.pod_of = self.att["pod"].to_numpy(dtype=object)


Rule = Callable[[Context], dict[str, Any] | None]


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


def prestop_seconds(sc: Scenario) -> float | None:
    ps = sc.deployment.lifecycle.pre_stop
    return ps.sleep.seconds if ps is not None and ps.sleep is not None else None
