"""One pass over a run dir: timeline, attribution, termination chains,
diagnosis and verdict, gathered into the summary.json shape the report,
the gate and the comparison read. ``write_summary`` is summary.json's one
writer; the engine's own figures come from the manifest's ``generator``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis import attribution, chains as chains_mod, diagnosis, groundtruth, ingress, timeline as tl, verdict
from harness.analysis.clientview import client_view
from harness.analysis.findings import CODE
from harness.analysis.podlife import PodLife, infer_prestop_end, pod_lives, set_first_ok
from harness.analysis.rundata import OK_CODE, SERVICE_FAILURE_CODES, RunData, load_run
from harness.analysis.runspec import run_spec
from harness.model.outcome import Outcome
from harness.model.rundir import SUMMARY_FILE, write_json_atomic
from harness.model.summary import Summary


@dataclasses.dataclass
class Analysis:
    run: RunData
    timeline: tl.Timeline
    pods: dict[str, PodLife]
    #: one row per service failure (index = request row)
    attributed: pd.DataFrame
    chains: list[dict[str, Any]]
    findings: list[dict[str, Any]]
    summary: Summary


def _first_ok(req: pd.DataFrame) -> dict[str, int]:
    ok = req.loc[(req["code"].to_numpy() == OK_CODE) & req["pod"].notna().to_numpy(), ["pod", "ended_ns"]]
    if ok.empty:
        return {}
    return {str(k): int(v) for k, v in ok.groupby("pod", sort=False)["ended_ns"].min().items()}


def _last_ok_sent(req: pd.DataFrame) -> dict[str, int]:
    ok = req.loc[(req["code"].to_numpy() == OK_CODE) & req["pod"].notna().to_numpy(), ["pod", "sent_ns"]]
    if ok.empty:
        return {}
    return {str(k): int(v) for k, v in ok.groupby("pod", sort=False)["sent_ns"].max().items()}


def _achieved_rate(run: RunData) -> float | None:
    """The generator's figure; a run that crashed before writing it gets one
    from the records (sent requests over the span of their schedule)."""
    gen = run.manifest.get("generator") or {}
    if gen.get("achieved_rate") is not None:
        return float(gen["achieved_rate"])
    req = run.requests
    sent = req["sent_ns"].to_numpy()
    if not len(req) or not (sent >= 0).any():
        return None
    sched = req["scheduled_ns"].to_numpy()
    span = max((int(sched.max()) - int(sched.min())) / 1e9, 1e-9)
    return round(float((sent >= 0).sum()) / span, 3)


def _gate_values(stats: dict[str, Any], window: dict[str, Any], disruption_s: float) -> dict[str, Any]:
    total = stats["total"]
    return {
        "failed_requests": window["service_failed"],
        "error_ratio": window["error_ratio"],
        "disruption_seconds": disruption_s,
        "p99_latency_ms": window["latency_ms"]["p99"],
        "send_lag_p99_ms": stats["send_lag_ms"]["p99"],
        "dropped_ratio": round(stats["dropped"] / total, 6) if total else None,
    }


def _baseline_rows(run: RunData, limits: dict[str, Any], timeline: tl.Timeline) -> list[dict[str, Any]] | None:
    b = run.phase_bounds.get("baseline")
    if b is None:
        return None
    base = run.requests.loc[(run.requests["phase"] == "baseline").to_numpy()]
    if base.empty:
        return None
    s = tl.record_stats(base)
    values = _gate_values(s, s, timeline.disruption_seconds(b))
    values.pop("send_lag_p99_ms"), values.pop("dropped_ratio")
    return verdict.check_thresholds(limits, values)


def _pods_summary(pods: dict[str, PodLife], att: pd.DataFrame) -> list[dict[str, Any]]:
    per = att["pod"].value_counts() if len(att) else pd.Series(dtype=int)
    out = []
    for p in pods.values():
        d = {k: (None if v is None else round(v / 1e9, 3)) for k, v in dataclasses.asdict(p).items()
             if k not in ("name", "endpoint_intervals", "exit_code", "endpoint_slack_ns", "prestop_end_source", "last_ok_sent",
                         "inflight_at_close")}
        d = {k: v for k, v in d.items() if v is not None}
        out.append({"pod": p.name, **d, "exit_code": p.exit_code,
                    "endpoint_intervals_s": [[round(lo / 1e9, 3), None if hi is None else round(hi / 1e9, 3)]
                                             for lo, hi in p.as_dict()["endpoint_intervals"]],
                    "failures": int(per.get(p.name, 0))})
    return out


def clock_uncertainty_ns(manifest: dict[str, Any]) -> int:
    """How far the requests' times may be off the run clock: 0 for the
    harness's own engine; for generator pods, the worst uncertainty of their
    clock offsets (harness.fleet), which widens the attribution tolerance."""
    gens = manifest.get("generators") or {}
    return int(gens.get("clock_uncertainty_ns") or 0)


def unobserved(run: RunData, pods: dict[str, PodLife]) -> list[str]:
    """Why the run did not see the whole disruption: the platform said so
    (manifest ``observation``), or a pod deleted during the run has no end
    in the events (its chain stops short of exit)."""
    out = []
    obs = run.manifest.get("observation") or {}
    if obs.get("complete") is False:
        out.append(str(obs.get("reason") or "the platform did not observe every deleted pod's end"))
    d = run.phase_bounds.get("disruption")
    if d is None:
        return out
    for p in pods.values():
        if p.deletion is None or p.deletion < d[0] or p.end is not None or p.deleted is not None:
            continue
        if any(p.name in r for r in out):
            continue
        last = max(((label, getattr(p, k)) for k, label in chains_mod.STEPS if getattr(p, k) is not None),
                   key=lambda kv: kv[1])[0]
        out.append(f"pod {p.name} was deleted at {p.deletion / 1e9:.1f} s but was never seen to end "
                   f"(its termination chain stops at {last!r}): what it dropped after that was not observed")
    return out


def _server_caused_on_schedule(req: pd.DataFrame, wmask, att: pd.DataFrame, pods: dict[str, PodLife],
                               max_lag_ms: float | None, *, proxy: bool = False) -> int:
    """Failed requests of the rollout window that prove a failure even when
    the engine fell behind elsewhere (verdict.SERVER_CAUSED): refused, reset
    or closed, on a connection to a pod (it answered on it, or the traffic
    path routed it there) sent after that pod's deletion, and the engine on
    schedule from that deletion until the request was sent (every request scheduled in
    between sent within the send-lag limit, none dropped). On schedule over
    that stretch, the whole sequence that led to the failure (deletion,
    endpoint removal, SIGTERM, the app closing) met a punctual client: a
    stall there would have left keep-alive connections idle across a drain,
    or (on the local platform, whose endpoint view runs on the harness's
    loop) applied an endpoint removal late, either of which a punctual
    client would not have met.

    ``proxy``: count instead the ingress proxy's 502/504
    (verdict.PROXY_UPSTREAM) whose access log names the pod it picked
    (how: ingress-log), under the same conditions: the proxy met the
    deleted pod's refusal or absence at that moment, as a punctual client's
    request would have."""
    if not len(req) or not len(att) or max_lag_ms is None:
        return 0
    codes = [CODE[Outcome(o)] for o in (verdict.PROXY_UPSTREAM if proxy else verdict.SERVER_CAUSED)]
    mask = np.isin(req["code"].to_numpy(), codes) & np.asarray(wmask, dtype=bool)
    rows = req.index[mask].intersection(att.index)
    if not len(rows):
        return 0
    sched, sent = req["scheduled_ns"].to_numpy(), req["sent_ns"].to_numpy()
    late = (sent < 0) | (sent - sched > max_lag_ms * 1e6)
    late_at = np.sort(sched[late])
    routed = req["route_pod"] if "route_pod" in req.columns else None
    n = 0
    for row in rows:
        # the pod whose own connection it was: it answered on it, or the traffic path sent it there (not
        # an inference from the endpoints, and not "no ready endpoint", which no pod caused)
        how = att.at[row, "how"]
        if proxy:  # only the proxy's own record of the upstream it picked
            pod = att.at[row, "pod"] if how == "ingress-log" else None
        else:
            pod = att.at[row, "pod"] if how in ("answered", "connection") else None
            if not isinstance(pod, str) and routed is not None:
                pod = routed.at[row]
        life = pods.get(pod) if isinstance(pod, str) else None
        if life is None or life.deletion is None:
            continue
        i = req.index.get_loc(row)
        if sched[i] < life.deletion or sent[i] < 0 or sent[i] - sched[i] > max_lag_ms * 1e6:
            continue
        lo, hi = np.searchsorted(late_at, [life.deletion, sched[i]], side="left")
        n += int(lo == hi)
    return n


def _client_visible_values(values: dict[str, Any], view: dict[str, Any], window: dict[str, Any]) -> dict[str, Any]:
    """Gate values counting only the failures a retrying client would see."""
    v = dict(values)
    v["failed_requests"] = view["visible"]
    total = window["total"]
    v["error_ratio"] = round(view["visible"] / total, 6) if total else None
    return v


def analyse(run_dir: str | Path, *, bin_ns: int = tl.DEFAULT_BIN_NS) -> Analysis:
    run = load_run(run_dir)
    run.requests = ingress.load(run.run_dir, run.requests, run.events,
                                int((run.manifest.get("clock") or {}).get("wall_anchor_ns", 0)))
    req = run.requests
    timeline = tl.build_timeline(run, bin_ns)
    pods = pod_lives(run.events)
    set_first_ok(pods, _first_ok(req), _last_ok_sent(req))
    spec = run_spec(run.scenario, run.manifest, run.events)
    infer_prestop_end(pods, spec.prestop.seconds if spec.prestop else None)
    failed_mask = np.isin(req["code"].to_numpy(), SERVICE_FAILURE_CODES)
    att = attribution.attribute(req, pods, failed_mask,
                                ready_means_listening=spec.readiness_kind in ("httpGet", "tcpSocket"),
                                tol_ns=attribution.TOL_NS + clock_uncertainty_ns(run.manifest))
    traffic = chains_mod.pod_traffic(req, att)
    chains = chains_mod.termination_chains(pods, traffic, spec)

    stats = tl.record_stats(req)
    phases = tl.phase_stats(run)
    wmask = tl.window_mask(run)
    window = tl.record_stats(req.loc[wmask]) if wmask.any() else tl.record_stats(req.iloc[0:0])
    bounds = run.window()
    disruption_s = timeline.disruption_seconds(bounds)
    base_p99 = (phases.get("baseline") or {}).get("latency_ms", {}).get("p99")

    ctx = diagnosis.Context(scenario=run.scenario, pods=pods, att=att, chains=chains, req=req,
                            window=bounds or ((int(req["scheduled_ns"].min()), int(req["ended_ns"].max()))
                                              if len(req) else None),
                            baseline_p99_ms=base_p99, spec=spec, events=run.events)
    claims: dict[str, pd.Index] = {}
    findings = diagnosis.diagnose(ctx, claims=claims)
    truth = groundtruth.check_findings(findings, claims, att, pods, CODE[Outcome.REFUSED])
    view = client_view(att, req, spec, wmask)

    limits = verdict.gate_limits(run.scenario.gate)
    values = _gate_values(stats, window, disruption_s)
    counting = run.scenario.gate.count_failures
    if counting == "clientVisible":
        values = _client_visible_values(values, view, window)
    rows = verdict.check_thresholds(limits, values)
    max_lag = run.scenario.gate.max_send_lag_p99_ms
    by_server = _server_caused_on_schedule(req, wmask, att, pods, max_lag)
    by_proxy = _server_caused_on_schedule(req, wmask, att, pods, max_lag, proxy=True)
    v = verdict.decide(status=run.status, rollout=run.manifest.get("rollout"), total=stats["total"],
                       window_total=window["total"], thresholds=rows,
                       baseline_rows=_baseline_rows(run, limits, timeline), records_complete=run.records_complete,
                       unobserved=unobserved(run, pods),
                       server_caused_failed=min(by_server + by_proxy, int(values["failed_requests"] or 0)),
                       server_caused_what=verdict.SERVER_CAUSED_TEXT if not by_proxy else
                       ("refused, reset or closed by the server, or answered 502/504 by the ingress proxy for a "
                        "pod already deleted" if by_server else
                        "answered 502/504 by the ingress proxy for a pod already deleted"),
                       host=(run.manifest.get("generator") or {}).get("host"))

    ok_window = window["total"] - window["dropped"]
    acc = attribution.accuracy(att)
    summary: Summary = {
        "scenario": run.scenario.name,
        "description": run.scenario.description,
        "run_dir": str(run.run_dir),
        "status": run.status,
        "platform": run.manifest.get("platform"),
        **{k: stats[k] for k in ("total", "failed", "service_failed", "outcomes", "dropped")},
        "asked_rate": (run.manifest.get("generator") or {}).get("asked_rate", run.scenario.traffic.rate),
        "achieved_rate": _achieved_rate(run),
        "send_lag_ms": stats["send_lag_ms"],
        "latency_ms": stats["latency_ms"],
        "phases": phases,
        "rollout_window": {**window, "start_s": round(bounds[0] / 1e9, 3) if bounds else None,
                           "end_s": round(bounds[1] / 1e9, 3) if bounds else None},
        "disruption_seconds": disruption_s,
        "disruption_intervals": [{"start_s": round(a / 1e9, 3), "end_s": round(b / 1e9, 3), "failures": n}
                                 for a, b, n in timeline.intervals],
        "availability": round(1 - window["service_failed"] / ok_window, 6) if ok_window else None,
        "findings": findings,
        "top_finding": findings[0]["rule"] if findings else None,
        "unexplained": next((f["failures"] for f in findings if f["rule"] == "unexplained"), 0),
        "attribution": {
            "failures": int(len(att)),
            "by_evidence": {str(k): int(v) for k, v in att["how"].value_counts().items()} if len(att) else {},
            "by_pod_phase": attribution.phase_counts(att),
            "accuracy": acc,
            "ambiguous": int((att["how"] == "ambiguous").sum()) if len(att) else 0,
        },
        "client_view": view,
        "ground_truth": truth,
        "run_spec": dataclasses.asdict(spec),
        "chains": chains,
        "ingress": ingress.summary(run.run_dir, req),
        "pods": _pods_summary(pods, att),
        "gate": {"limits": limits, "values": values, "thresholds": rows, "count_failures": counting},
        "verdict": v,
        "rollout": run.manifest.get("rollout"),
        "drain": next((e["detail"] for e in reversed(run.events) if e["kind"] == "drain_complete"), None),
        "records_complete": run.records_complete,
        "notes": run.notes,
    }
    return Analysis(run, timeline, pods, att, chains, findings, summary)


def write_summary(run_dir: str | Path) -> Analysis:
    """Analyse ``run_dir`` and write its summary.json (the one writer)."""
    a = analyse(run_dir)
    write_json_atomic(Path(run_dir) / SUMMARY_FILE, a.summary)
    return a
