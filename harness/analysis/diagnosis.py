"""Diagnosis: the rules (harness.analysis.rules) over the attributed
failures and the termination chains -> findings, most important first
(severity, then the failures each explains); failures no rule claims are
one last ``unexplained`` finding, never hidden. A finding that explains at
most MIN_HIGH_SHARE of the failures is not HIGH (it is demoted to medium).

``claims`` (rule -> the attributed rows it explained) is what the ground
truth check (harness.analysis.groundtruth) holds each finding to.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from harness.analysis.findings import MIN_HIGH_SHARE, SEVERITY_RANK, Context, Rule, finding
from harness.analysis.ingress_rules import INGRESS_RULES
from harness.analysis.drain_rules import DRAIN_RULES
from harness.analysis.rules import RULES

__all__ = ["Context", "RULES", "diagnose", "unexplained"]


def unexplained(ctx: Context) -> dict[str, Any] | None:
    if not ctx.free.any():
        return None
    got = ctx.att.loc[ctx.free]
    phases = {str(k): int(v) for k, v in got["phase"].value_counts().items()}
    return finding(
        "unexplained", f"{len(got)} failed requests no rule explains",
        "These failures match none of the known rollout mistakes; read them against the swimlanes "
        f"(by phase of the pod they hit: {', '.join(f'{k} {v}' for k, v in phases.items())}).",
        "Look at when they happened and on which pod (timeline and swimlanes below); failures in the "
        "baseline point at the service itself, not the rollout.",
        "medium", got, by_phase=phases,
        in_baseline=int((got["run_phase"].astype(str) == "baseline").sum()),
    )


def diagnose(ctx: Context, rules: tuple[Rule, ...] = INGRESS_RULES + RULES + DRAIN_RULES,
             claims: dict[str, pd.Index] | None = None) -> list[dict[str, Any]]:
    """Findings, most important first; ``unexplained`` (if any) last.
    ``claims``, when given, is filled with rule -> claimed rows."""
    found = []
    total = len(ctx.att)
    for rule in rules:
        before = ctx.free.copy()
        f = rule(ctx)
        if f is None:
            continue
        if claims is not None:
            claims[f["rule"]] = ctx.att.index[before & ~ctx.free]
        if f["severity"] == "high" and total and 0 < f["failures"] <= MIN_HIGH_SHARE * total:
            f["severity"] = "medium"
            f["evidence"]["demoted"] = (f"explains {f['failures']} of {total} failures "
                                        f"(<= {MIN_HIGH_SHARE:.0%}): not HIGH")
        found.append(f)
    found.sort(key=lambda f: (SEVERITY_RANK.get(f["severity"], 9), -f["failures"]))
    rest = unexplained(ctx)
    if rest is not None:
        if claims is not None:
            claims["unexplained"] = ctx.att.index[ctx.free]
        found.append(rest)
    return found
