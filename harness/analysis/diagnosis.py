"""Diagnosis: the rules (harness.analysis.rules) over the attributed
failures and the termination chains -> findings, most important first
(severity, then the failures each explains); failures no rule claims are
one last ``unexplained`` finding, never hidden.
"""

from __future__ import annotations

from typing import Any

from harness.analysis.findings import SEVERITY_RANK, Context, Rule, finding
from harness.analysis.ingress_rules import INGRESS_RULES
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


def diagnose(ctx: Context, rules: tuple[Rule, ...] = INGRESS_RULES + RULES) -> list[dict[str, Any]]:
    """Findings, most important first; ``unexplained`` (if any) last."""
    found = [f for f in (rule(ctx) for rule in rules) if f is not None]
    found.sort(key=lambda f: (SEVERITY_RANK.get(f["severity"], 9), -f["failures"]))
    rest = unexplained(ctx)
    if rest is not None:
        found.append(rest)
    return found
