"""The verdict a CI job gates on: pass (0), fail (1) or inconclusive (3).

The gate's thresholds come from the scenario as run (``gate:`` in the
manifest). They judge what the rollout added: the requests of the rollout
window (disruption + settle); the baseline before it is the control.

A run that could not see is never a pass. It is inconclusive when the
engine fell behind its schedule (dropped ratio or send-lag p99 over the
limits), the rollout did not complete, the run did not finish
(interrupted, crashed), there were no requests, or the baseline already
failed the gate before anything was disrupted.

A failure seen is not undone by a late sender: when the engine fell behind
(and nothing else blinded the run) but requests failed in ways only the
server produces at the moment they were sent — refused, reset, closed
without a response — and more of them than the gate allows, the run fails.
A late (or bursting) sender shifts *when* requests are tried, never whether
a request tried at that moment is refused or cut off; its own timers
(connect/read timeouts) and the load of its catch-up bursts (a shed 503) it
can cause, so those are not counted for this. The count is then a lower
bound, and the verdict says so.
"""

from __future__ import annotations

from typing import Any

from harness.errors import EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_PASS
from harness.model.scenario import Gate
from harness.traffic.hostspeed import host_sentence

#: gate field (camelCase, as in the scenario file) -> (summary value key, unit)
THRESHOLDS = (
    ("maxFailedRequests", "failed_requests", ""),
    ("maxErrorRatio", "error_ratio", ""),
    ("maxDisruptionSeconds", "disruption_seconds", "s"),
    ("maxP99LatencyMs", "p99_latency_ms", "ms"),
    ("maxSendLagP99Ms", "send_lag_p99_ms", "ms"),
    ("maxDroppedRatio", "dropped_ratio", ""),
)
#: thresholds whose breach means the engine could not see, not that the service failed
ENGINE_THRESHOLDS = ("maxSendLagP99Ms", "maxDroppedRatio")
#: failures the server produces at the moment a request is tried, which a late sender cannot cause
SERVER_CAUSED = ("refused", "reset", "closed")
#: ... and the same seen through an ingress proxy: its answer when the pod it picked refused, cut or
#: never answered its connection (502, 504), counted only when its own access log names that pod
#: (attribution ``ingress-log``): the client's timing decides when the proxy tries, not what it meets
PROXY_UPSTREAM = ("http_502", "http_504")
SERVER_CAUSED_TEXT = "refused, reset or closed by the server"


def gate_limits(gate: Gate) -> dict[str, float | None]:
    d = gate.model_dump(by_alias=True)
    return {name: d.get(name) for name, _, _ in THRESHOLDS}


def _fmt(v: Any, unit: str) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        v = f"{v:.4g}"
    return f"{v}{unit and ' ' + unit}"


def check_thresholds(limits: dict[str, float | None], values: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per threshold: name, limit, value, status (pass/fail/skipped/unknown)."""
    rows = []
    for name, key, unit in THRESHOLDS:
        limit, value = limits.get(name), values.get(key)
        if limit is None:
            status = "skipped"
        elif value is None:
            status = "unknown"
        else:
            status = "pass" if value <= limit else "fail"
        rows.append({"name": name, "value_key": key, "limit": limit, "value": value, "unit": unit,
                     "status": status,
                     "message": f"{key} = {_fmt(value, unit)} (limit {_fmt(limit, unit)})"})
    return rows


_HUMAN = {
    "maxFailedRequests": "{v} requests failed during the rollout (the gate allows {limit})",
    "maxErrorRatio": "error ratio {v:.3%} during the rollout (the gate allows {limit:.3%})",
    "maxDisruptionSeconds": "{v:g} s of disruption during the rollout (the gate allows {limit:g} s)",
    "maxP99LatencyMs": "p99 latency {v:.1f} ms during the rollout (the gate allows {limit:g} ms)",
}


def _human(row: dict[str, Any]) -> str:
    fmt = _HUMAN.get(row["name"])
    return fmt.format(v=row["value"], limit=row["limit"]) if fmt else row["message"]


def decide(*, status: str, rollout: dict[str, Any] | None, total: int, window_total: int,
           thresholds: list[dict[str, Any]], baseline_rows: list[dict[str, Any]] | None,
           records_complete: bool = True, unobserved: list[str] | None = None,
           server_caused_failed: int = 0, server_caused_what: str = SERVER_CAUSED_TEXT,
           host: dict[str, Any] | None = None) -> dict[str, Any]:
    """The verdict from the run's facts; pure, so it is tested by tables.

    ``unobserved``: why the run did not see the whole disruption (a deleted
    pod not seen to end), one sentence each; any makes it inconclusive.
    ``server_caused_failed``: failed requests of the rollout window whose
    outcome is one of SERVER_CAUSED (counted as the gate counts), or PROXY_UPSTREAM traced
    to its pod; ``server_caused_what`` says which, in the reasons. ``host``: the
    generator's host windows (harness.model.summary.HostSpeed); when the engine fell
    behind and the host ran slowly, a reason says so (the cause, and its fix)."""
    why_blind: list[str] = list(unobserved or [])
    if total == 0:
        why_blind.append("no requests were recorded")
    elif window_total == 0:
        why_blind.append("no requests fell in the rollout window")
    if status != "complete" and not unobserved:
        why_blind.append(f"the run did not complete (status: {status})")
    if rollout is not None and not rollout.get("completed", False):
        err = rollout.get("error")
        why_blind.append("the rollout did not complete" + (f": {err}" if err else ""))
    elif rollout is None:
        why_blind.append("the manifest does not say whether the rollout completed")
    lag: list[str] = []
    for row in thresholds:
        if row["name"] in ENGINE_THRESHOLDS and row["status"] == "fail":
            lag.append(f"the traffic engine fell behind its schedule: {row['message']}")
    host_slow = host_sentence(host)
    if lag and host_slow:
        lag.append(host_slow)
    if lag and not why_blind and not _baseline_failing(baseline_rows):
        limit = next((r["limit"] for r in thresholds if r["name"] == "maxFailedRequests"), None)
        if limit is not None and server_caused_failed > limit:
            return {"status": "fail", "exit_code": EXIT_FAIL,
                    "reasons": [f"maxFailedRequests: {server_caused_failed} requests {server_caused_what} "
                                f"(limit {limit:g})"] + lag
                               + [f"a late sender cannot cause a request {server_caused_what}: these failures are "
                                  "real; the count is a lower bound (requests sent late, or not at all, were not "
                                  "tried on schedule)"],
                    "headline": f"FAIL: {server_caused_failed} requests {server_caused_what} "
                                f"during the rollout (the gate allows {limit:g}), seen although the traffic "
                                "engine fell behind its schedule"}
    why_blind += lag
    if baseline_rows:
        bad = _baseline_failing(baseline_rows)
        if bad:
            why_blind.append("the target was already failing before the disruption (baseline "
                             + "; ".join(r["message"] for r in bad) + ")")
    failed = [r for r in thresholds if r["status"] == "fail" and r["name"] not in ENGINE_THRESHOLDS]
    reasons = [f"{r['name']}: {r['message']}" for r in failed]
    if why_blind:
        return {"status": "inconclusive", "exit_code": EXIT_INCONCLUSIVE,
                "reasons": why_blind + reasons,
                "headline": "INCONCLUSIVE: " + why_blind[0]}
    if failed:
        more = f" (and {len(failed) - 1} more threshold(s))" if len(failed) > 1 else ""
        return {"status": "fail", "exit_code": EXIT_FAIL, "reasons": reasons,
                "headline": "FAIL: " + _human(failed[0]) + more}
    notes = [] if records_complete else ["a torn last record batch was skipped"]
    return {"status": "pass", "exit_code": EXIT_PASS, "reasons": notes or ["every gate threshold held"],
            "headline": "PASS: every gate threshold held during the rollout"}


def _baseline_failing(baseline_rows: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [r for r in baseline_rows or [] if r["status"] == "fail" and r["name"] not in ENGINE_THRESHOLDS]
