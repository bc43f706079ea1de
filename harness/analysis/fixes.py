"""A finding's fix as a change to the scenario, when the fix lives in the
Deployment (preStop, grace period, maxSurge/maxUnavailable, readiness
probe) or in the ingress the run puts in front (its upstream idle
timeout; for the sample app, its keep-alive timeout); a fix that needs
the app changed is named as such and never "applied" (``run --verify-fix`` then reruns nothing and says so).

    fix = deployment_fix(summary["findings"][0], scenario)
    fix.applicable     # True: fix.overrides are --set expressions
    fix.overrides      # ["deployment.lifecycle.preStop.sleep.seconds=2"]

The numbers come from the run's own evidence (the rule's suggested
preStop, the longest request the grace period must cover), so the fix
verified is the one the report recommends.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from harness.model.scenario import Scenario

#: rules whose fix is in the app, not in the Deployment
APP_FIXES = {
    "no-graceful-shutdown": "handle SIGTERM in the app (stop accepting, finish in-flight requests, then exit)",
    "keepalive-cut": "close keep-alive connections politely at shutdown (Connection: close, then close)",
    "premature-readiness": "give the app a readiness check that fails until it is warm",
    "keepalive-close-race": "answer with Connection: close before closing an idle keep-alive connection "
                            "(or let clients retry idempotent requests on a reused connection)",
}


@dataclasses.dataclass
class Fix:
    rule: str
    applicable: bool
    #: --set expressions that apply it to the scenario
    overrides: list[str]
    #: what it changes, in words (or why it cannot be applied)
    text: str

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _is_sample_app(sc: Scenario) -> bool:
    return any("sample-app/app.py" in part for part in sc.app.command)


def _prestop(finding: dict[str, Any], sc: Scenario) -> Fix:
    ev = finding.get("evidence") or {}
    want = ev.get("suggested_prestop_s")
    if want is None:
        lag = float(ev.get("routed_after_deletion_s") or 1.0)
        want = math.ceil((lag + 0.5) * 2) / 2
    want = float(want)
    grace = sc.deployment.termination_grace_period_seconds
    overrides = [f"deployment.lifecycle.preStop.sleep.seconds={want:g}"]
    text = f"preStop sleep {want:g} s"
    if grace < want + 1:
        new = math.ceil(grace + want)
        overrides.append(f"deployment.terminationGracePeriodSeconds={new}")
        text += f", terminationGracePeriodSeconds {grace:g} -> {new} s (kept above preStop)"
    return Fix(finding["rule"], True, overrides, text)


def _grace(finding: dict[str, Any], sc: Scenario) -> Fix:
    ev = finding.get("evidence") or {}
    prestop = 0.0
    ps = sc.deployment.lifecycle.pre_stop
    if ps is not None and ps.sleep is not None:
        prestop = float(ps.sleep.seconds)
    need = max(float(ev.get("longest_request_s") or 0.0), float(ev.get("oldest_cut_request_s") or 0.0))
    want = math.ceil(prestop + float(ev.get("app_drain_s") or 0.0) + need + 1.0)
    want = max(want, int(sc.deployment.termination_grace_period_seconds) + 1)
    return Fix(finding["rule"], True, [f"deployment.terminationGracePeriodSeconds={want}"],
               f"terminationGracePeriodSeconds {sc.deployment.termination_grace_period_seconds:g} -> {want} s")


def _upstream_idle(finding: dict[str, Any], sc: Scenario) -> Fix:
    """The proxy's upstream idle timeout below the app's keep-alive timeout
    (a setting of the ingress the run puts in front, traffic.ingress), or,
    when the rule found no safe proxy value (a keep-alive of milliseconds),
    the app's keep-alive above the proxy's: applied only for the sample app,
    whose setting is known (KEEPALIVE_TIMEOUT); any other app's is the app's
    to change."""
    ev = finding.get("evidence") or {}
    want = ev.get("suggested_upstream_idle_timeout_s")
    if want:
        now = sc.traffic.ingress.upstream_idle_timeout_seconds
        return Fix(finding["rule"], True, [f"traffic.ingress.upstreamIdleTimeoutSeconds={float(want):g}"],
                   f"the proxy's upstream idle timeout {now:g} s -> {float(want):g} s, below the app's keep-alive "
                   "timeout")
    app = ev.get("suggested_app_keepalive_timeout_s")
    if not app or not ev.get("app_keepalive_timeout_s"):
        return Fix(finding["rule"], False, [], "set the proxy's upstream idle timeout below the app's keep-alive "
                   "timeout: the app's timeout is not known here (KEEPALIVE_TIMEOUT unset), so no value is guessed")
    if not _is_sample_app(sc):
        return Fix(finding["rule"], False, [], f"needs the app changed: its keep-alive timeout above the proxy's "
                   f"upstream idle timeout (e.g. {float(app):g} s); no proxy idle timeout leaves a safe margin")
    where = [f"disruption.change.env.KEEPALIVE_TIMEOUT={float(app):g}"]
    if "KEEPALIVE_TIMEOUT" in sc.app.env:
        where.insert(0, f"app.env.KEEPALIVE_TIMEOUT={float(app):g}")
    return Fix(finding["rule"], True, where,
               f"the app's keep-alive timeout {float(ev['app_keepalive_timeout_s']):g} s -> {float(app):g} s, above "
               f"the proxy's upstream idle timeout (KEEPALIVE_TIMEOUT, the sample app's): no proxy idle timeout "
               "below a keep-alive of milliseconds leaves a margin above the proxy's own delays")


def _surge(finding: dict[str, Any], sc: Scenario) -> Fix:
    return Fix(finding["rule"], True,
               ["deployment.strategy.type=RollingUpdate", "deployment.strategy.rollingUpdate.maxSurge=1",
                "deployment.strategy.rollingUpdate.maxUnavailable=0"],
               f"maxSurge {sc.max_surge()} -> 1, maxUnavailable {sc.max_unavailable()} -> 0")


def _readiness(finding: dict[str, Any], sc: Scenario) -> Fix:
    if not _is_sample_app(sc):
        return Fix(finding["rule"], False, [], "add a readinessProbe on the app's own readiness endpoint: which "
                   "path that is depends on the app, so the harness does not guess it")
    return Fix(finding["rule"], True,
               ["deployment.readinessProbe.httpGet.path=/ready", "deployment.readinessProbe.periodSeconds=1",
                "deployment.readinessProbe.failureThreshold=1"],
               "readinessProbe GET /ready every 1 s (the sample app's readiness endpoint)")


_DEPLOYMENT_FIXES = {
    "no-prestop": _prestop,
    "prestop-too-short": _prestop,
    "short-grace": _grace,
    "capacity-dip": _surge,
    "no-readiness-probe": _readiness,
    "upstream-keepalive": _upstream_idle,
}


def deployment_fix(finding: dict[str, Any] | None, sc: Scenario) -> Fix:
    """The fix of ``finding`` as scenario overrides, or why there is none."""
    if finding is None:
        return Fix("", False, [], "no finding: nothing to fix")
    rule = finding.get("rule", "")
    make = _DEPLOYMENT_FIXES.get(rule)
    if make is not None:
        return make(finding, sc)
    if rule in APP_FIXES:
        return Fix(rule, False, [], f"needs the app changed: {APP_FIXES[rule]} — not a Deployment setting, "
                   "so it is not applied")
    return Fix(rule, False, [], f"no Deployment-level fix is known for {rule!r}")


def top_failing_finding(findings: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first finding that explains failed requests (findings come ranked)."""
    for f in findings:
        if f.get("failures") and f.get("rule") != "unexplained":
            return f
    return next((f for f in findings if f.get("rule") != "unexplained"), None)
