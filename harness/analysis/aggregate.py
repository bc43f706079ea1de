"""Many rollouts, one verdict: the per-rollout summaries of a repeated run
gathered into the figures that make a claim about the next rollout.

    agg = aggregate(rollouts, gate)     # rollouts: headline() of each summary.json
    agg["verdict"]["status"]            # pass | fail | flaky | inconclusive

- k/N rollouts failed their gate, with the exact 95% (Clopper–Pearson)
  interval for the probability that a rollout fails;
- failed requests per rollout, mean and max;
- the per-request failure rate over every rollout window, with its exact
  upper bound (0 in n gives about 3/n);
- the detection limit: the per-request rate below which one rollout (and
  the whole series) would show no failure with probability >= 50%.

States: ``pass`` (every rollout passed and could see), ``fail`` (every
rollout that could see failed), ``flaky`` (some failed, some passed: the
service drops requests in some rollouts, which is a failure a single run
often hides), ``inconclusive`` (no failure, but some rollout could not see,
or the gate's maxRolloutFailureProbability cannot be shown with this many
rollouts). Pure: tested by tables.
"""

from __future__ import annotations

from typing import Any

from harness.analysis import stats
from harness.errors import EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_PASS

CONFIDENCE = 0.95


def headline(summary: dict[str, Any]) -> dict[str, Any]:
    """The figures of one rollout that the series and the history keep."""
    w = summary.get("rollout_window") or {}
    v = summary.get("verdict") or {}
    start, end = w.get("start_s"), w.get("end_s")
    return {
        "run_dir": summary.get("run_dir"),
        "status": v.get("status", "inconclusive"),
        "headline": v.get("headline", ""),
        "failed_requests": int(w.get("service_failed") or 0),
        "window_requests": int((w.get("total") or 0) - (w.get("dropped") or 0)),
        "window_seconds": round(end - start, 3) if start is not None and end is not None else None,
        "disruption_seconds": summary.get("disruption_seconds"),
        "p99_ms": (w.get("latency_ms") or {}).get("p99"),
        "achieved_rate": summary.get("achieved_rate"),
        "top_finding": summary.get("top_finding"),
        "top_title": next((f.get("title") for f in summary.get("findings") or []), None),
    }


def _r(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else round(x, digits)


def aggregate(rollouts: list[dict[str, Any]], *, max_rollout_failure_probability: float | None = None,
              confidence: float = CONFIDENCE) -> dict[str, Any]:
    """The series' figures and verdict from its rollouts' headlines."""
    n_all = len(rollouts)
    seen = [r for r in rollouts if r["status"] in ("pass", "fail")]
    blind = [i + 1 for i, r in enumerate(rollouts) if r["status"] not in ("pass", "fail")]
    n = len(seen)
    k = sum(r["status"] == "fail" for r in seen)
    with_failures = sum(r["failed_requests"] > 0 for r in seen)
    # failures recorded by rollouts that could not see: real, but not counted (shown, never judged)
    blind_failing = [i + 1 for i, r in enumerate(rollouts)
                     if r["status"] not in ("pass", "fail") and r.get("failed_requests", 0) > 0]
    out: dict[str, Any] = {"rollouts_asked": n_all, "rollouts_conclusive": n, "inconclusive_rollouts": blind,
                           "inconclusive_rollouts_with_failed_requests": blind_failing,
                           "failed_rollouts": k, "rollouts_with_failed_requests": with_failures,
                           "confidence": confidence}
    if n:
        lo, hi = stats.clopper_pearson(k, n, confidence)
        fails = [r["failed_requests"] for r in seen]
        reqs = sum(r["window_requests"] for r in seen)
        total_failed = sum(fails)
        per_rollout = min((r["window_requests"] for r in seen), default=0)
        out["rollout_failure"] = {
            "k": k, "n": n, "rate": _r(k / n), "interval": [_r(lo), _r(hi)],
            "upper": _r(stats.upper_bound(k, n, confidence)),
        }
        out["failed_requests"] = {"mean": _r(total_failed / n, 3), "max": max(fails), "total": total_failed,
                                  "per_rollout": fails}
        out["requests"] = {
            "window_total": reqs,
            "failure_rate": _r(total_failed / reqs, 9) if reqs else None,
            "upper": _r(stats.upper_bound(min(total_failed, reqs), reqs, confidence), 9) if reqs else None,
            "detection_limit_per_rollout": _r(stats.detection_limit(per_rollout), 9) if per_rollout else None,
            "detection_limit_series": _r(stats.detection_limit(reqs), 9) if reqs else None,
            "smallest_rollout_requests": per_rollout,
        }
    out["verdict"] = decide(k=k, n=n, blind=blind, limit=max_rollout_failure_probability, confidence=confidence)
    if blind_failing:
        out["verdict"]["reasons"].append(
            f"rollout(s) {', '.join(map(str, blind_failing))} recorded failed requests but could not see the "
            "whole rollout, so they are not counted")
    return out


def decide(*, k: int, n: int, blind: list[int], limit: float | None, confidence: float) -> dict[str, Any]:
    """pass / fail / flaky / inconclusive and the exit code, from k of n and the gate."""
    pct = f"{confidence:.0%}"
    if n == 0:
        return _v("inconclusive", EXIT_INCONCLUSIVE, "no rollout could see (every one was inconclusive)")
    upper = stats.upper_bound(k, n, confidence)
    lo, hi = stats.clopper_pearson(k, n, confidence)
    span = f"{k}/{n} rollouts failed; P(a rollout fails) in [{lo:.3f}, {hi:.3f}] ({pct} Clopper–Pearson)"
    reasons = [span]
    if blind:
        reasons.append(f"rollout(s) {', '.join(map(str, blind))} could not see (inconclusive) and are not counted")
    if limit is not None:
        within = upper <= limit
        reasons.append(f"maxRolloutFailureProbability {limit:g}: the {pct} upper bound is {upper:.3f}"
                       + (" (within)" if within else " (over)"))
        if k == 0 and not within:
            need = stats.rollouts_needed(limit, confidence)
            return _v("inconclusive", EXIT_INCONCLUSIVE,
                      f"0/{n} rollouts failed, but {n} rollouts cannot show P(fail) <= {limit:g} at {pct} "
                      f"(the bound is {upper:.3f}; {need} clean rollouts would)", reasons)
        status = "pass" if k == 0 else "fail" if k == n else "flaky"
        return _v(status, EXIT_PASS if within else EXIT_FAIL,
                  f"{span}; upper bound {upper:.3f} {'<=' if within else '>'} {limit:g}", reasons)
    if k == 0:
        if blind:
            return _v("inconclusive", EXIT_INCONCLUSIVE, f"0/{n} rollouts failed, but {len(blind)} could not see",
                      reasons)
        return _v("pass", EXIT_PASS, f"0/{n} rollouts failed; P(a rollout fails) <= {upper:.3f} ({pct})", reasons)
    if k == n:
        return _v("fail", EXIT_FAIL, span, reasons)
    return _v("flaky", EXIT_FAIL, span + " — the failure shows in some rollouts only", reasons)


def _v(status: str, exit_code: int, text: str, reasons: list[str] | None = None) -> dict[str, Any]:
    return {"status": status, "exit_code": exit_code, "headline": f"{status.upper()}: {text}",
            "reasons": reasons or [text]}
