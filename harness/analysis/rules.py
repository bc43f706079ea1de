"""The diagnosis rules: each looks at the attributed failures and the
pods' termination chains and returns a finding with a cause, evidence
(counts, times, pods) and a fix whose numbers come from this run.

One rule per mistake a rollout commonly makes (and the shipped scenarios
reproduce). Rules run in order and each failure is explained by at most
one rule, the first that claims it:

    short-grace           SIGKILL at the end of the grace period cut requests
    no-graceful-shutdown  the process exited on the stop signal without a
                          drain, cutting the requests in flight
    keepalive-close-race  a request written on a reused keep-alive
                          connection just as the server closed it as idle:
                          no response byte (HTTP/1.1's keep-alive race)
    no-prestop /          the pod stopped serving while the traffic path
    prestop-too-short     still routed new connections to it
    no-readiness-probe /  the pod got traffic before it could serve it
    premature-readiness
    keepalive-cut         the app drained, but cut its keep-alive
                          connections under requests it was serving
    capacity-dip          fewer ready pods than replicas during the rollout
                          (maxSurge 0 / maxUnavailable > 0) and the rest
                          could not carry the load

Failures no rule explains are reported as ``unexplained``, never hidden.
A run with no failures and no capacity dip yields no finding. Every
sentence uses the run's real values (``ctx.spec``: the stop signal the pods
got, the preStop's kind and duration, the grace period, the probes); the
words and thresholds are module constants, so a static check of a spec can
quote the same rule.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from harness.analysis.findings import (
    AFTER_END_NS, CODE, CUT_CODES, MIN_DIP_NS, OVERLOAD_CODES, RECOVERY_NS, TITLES, TOL_NS, Context, Rule, by_outcome,
    ceil_half, claim, finding, graceful_exit, longest_request_s, outcome_text, pod_rows, prestop_seconds, secs,
)
from harness.analysis.keepalive import race_mask, rule_keepalive_close_race, rule_keepalive_cut
from harness.analysis.podlife import NEVER, PodLife
from harness.model.outcome import Outcome

def rule_short_grace(ctx: Context) -> dict[str, Any] | None:
    mask = ctx.free & (ctx.att["phase"].to_numpy(dtype=object) == "killed")
    if not mask.any():
        return None
    got = claim(ctx, mask)
    grace = ctx.spec.grace_s
    killed = sorted({str(p) for p in got["pod"] if p is not None})
    prestop = prestop_seconds(ctx.spec) or 0.0
    longest = longest_request_s(ctx.req)
    sent = got["sent_ns"].where(got["sent_ns"] >= 0)
    oldest = round(float((got["ended_ns"] - sent).max()) / 1e9, 3) if sent.notna().any() else 0.0
    need_s = max(longest or 0.0, oldest)
    # the app keeps serving for a while after the stop signal before it stops accepting
    drains = [(p.listener_closed - p.stop_signal) / 1e9 for p in (ctx.pods.get(k) for k in killed)
              if p is not None and p.listener_closed is not None and p.stop_signal is not None]
    drain = round(max(drains), 1) if drains else 0.0
    want = math.ceil(prestop + drain + need_s + 1.0)
    kills = {p: secs(ctx.pods[p].sigkill - (ctx.pods[p].deletion or ctx.pods[p].sigkill)) for p in killed
             if p in ctx.pods and ctx.pods[p].sigkill is not None}
    parts = (f"preStop ({ctx.spec.prestop.text}) {prestop:g} s + " if ctx.spec.prestop else "") \
        + (f"the app's drain {drain:g} s + " if drain else "")
    return finding(
        "short-grace", TITLES["short-grace"],
        f"terminationGracePeriodSeconds is {grace:g} s, but requests take up to {need_s:.1f} s: the kubelet "
        f"sent SIGKILL to {', '.join(killed)} while {len(got)} requests were still in flight "
        f"({outcome_text(by_outcome(got))}).",
        f"terminationGracePeriodSeconds >= {want} s: {parts}the longest request ({need_s:.1f} s) + 1 s margin; "
        "or bound request time below the grace period.",
        "high", got, pods_killed=killed, sigkill_after_deletion_s=kills, grace_period_s=grace,
        longest_request_s=longest, oldest_cut_request_s=oldest, app_drain_s=drain,
    )


def rule_no_graceful_shutdown(ctx: Context) -> dict[str, Any] | None:
    t = ctx.att["t_ns"].to_numpy()
    sent = ctx.att["sent_ns"].to_numpy()
    ended = ctx.att["ended_ns"].to_numpy()
    # requests written on an idle keep-alive connection after the stop signal
    # were not in flight: the keep-alive close race (the exit closed them).
    # They are this pod's abrupt exit's doing too, so when it also cut requests
    # really in flight this finding names both; when it cut none, the race
    # finding explains them (the title's "in flight" must hold).
    race = race_mask(ctx)
    cut_code = np.isin(ctx.att["code"].to_numpy(), CUT_CODES)
    mask = np.zeros(len(t), dtype=bool)
    at_exit_race = 0
    gaps: dict[str, float | None] = {}
    for p in ctx.pods.values():
        end = p.end
        if end is None or graceful_exit(p) or p.sigkill is not None:
            continue
        rows = pod_rows(ctx, p.name)
        sent_eff = np.where(sent >= 0, sent, t)
        in_flight = (sent_eff <= end + TOL_NS) & (ended >= end - TOL_NS)
        after = (t >= end - TOL_NS) & (t <= end + AFTER_END_NS)
        hit = rows & cut_code & (in_flight | after)
        if (hit & ~race).any():
            at_exit_race += int((hit & race).sum())
            mask |= hit
            start = p.stop_signal if p.stop_signal is not None else p.shutdown_started
            gaps[p.name] = secs(end - start) if start is not None else None
    if not mask.any():
        return None
    got = claim(ctx, mask)
    longest = longest_request_s(ctx.req)
    fastest = min((g for g in gaps.values() if g is not None), default=None)
    sig = ctx.spec.stop_signal
    return finding(
        "no-graceful-shutdown", TITLES["no-graceful-shutdown"].format(signal=sig),
        f"{', '.join(sorted(gaps))} exited"
        + (f" {fastest:g} s after the stop signal" if fastest is not None else " on the stop signal")
        + f" without draining: the kernel closed their connections and {len(got)} requests failed "
        f"({outcome_text(by_outcome(got))})"
        + (f"; {len(got) - at_exit_race} were in flight, {at_exit_race} were written on idle keep-alive "
           "connections as the process died (the keep-alive close race at exit)" if at_exit_race else "")
        + ".",
        f"Handle {sig} in the app (or set the stop signal to the server's graceful one): stop accepting, "
        "finish the requests in flight"
        + (f" (the longest took {longest:g} s here)" if longest else "")
        + ", answer them with Connection: close, then exit — within terminationGracePeriodSeconds "
        f"({ctx.spec.grace_s:g} s).",
        "high", got, signal_to_exit_s=gaps, longest_request_s=longest, stop_signal=sig,
        in_flight=len(got) - at_exit_race, idle_keepalive_at_exit=at_exit_race,
        exit_codes={k: ctx.pods[k].exit_code for k in sorted(gaps)},
    )


def rule_prestop(ctx: Context) -> dict[str, Any] | None:
    t = ctx.att["t_ns"].to_numpy()
    mask = np.zeros(len(t), dtype=bool)
    per_pod: dict[str, dict[str, Any]] = {}
    for p in ctx.pods.values():
        if p.deletion is None:
            continue
        removed = p.endpoint_removed
        marks = [x for x in (p.stop_signal, p.shutdown_started, p.not_accepting_from) if x is not None]
        if removed is None or not marks:
            continue
        stop = min(marks)
        # the traffic path drops the pod when the proxy applies the removal: on a
        # cluster that is the watched update plus kube-proxy's lag (endpoint_slack_ns)
        if stop >= removed + p.endpoint_slack_ns:
            continue
        hit = pod_rows(ctx, p.name) & (t >= stop - TOL_NS) & (t <= removed + TOL_NS + p.endpoint_slack_ns)
        if hit.any():
            mask |= hit
            # how long the traffic path still routed to it: the endpoint update, or
            # (on a cluster, where kube-proxy applies it later) the last failure seen
            routed = max(removed, int(t[hit].max())) - p.deletion
            per_pod[p.name] = {"stopped_serving_s": secs(stop), "removed_from_endpoints_s": secs(removed),
                               "endpoint_lag_s": secs(removed - p.deletion), "routed_after_deletion_s": secs(routed),
                               "failures": int(hit.sum())}
    if not per_pod:
        return None
    # failures the evidence could not pin on one pod, when every candidate had already stopped
    amb = ctx.free & ~mask & (ctx.att["how"].to_numpy(dtype=object) == "ambiguous")
    for i in np.flatnonzero(amb):
        cands = [ctx.pods.get(c) for c in str(ctx.att["candidates"].iat[i]).split(" | ")]
        stopped = [c for c in cands if c is not None and c.deletion is not None
                   and min(x for x in (c.stop_signal, c.shutdown_started, c.not_accepting_from, c.deletion)
                           if x is not None) <= t[i] + TOL_NS]
        if len(stopped) == len(cands):
            mask[i] = True
    got = claim(ctx, mask)
    worst = max(per_pod, key=lambda k: per_pod[k]["routed_after_deletion_s"])
    lag = per_pod[worst]["routed_after_deletion_s"]
    want = ceil_half(lag + 0.5)
    prestop = ctx.spec.prestop
    has = prestop_seconds(ctx.spec)
    grace = ctx.spec.grace_s
    sig = ctx.spec.stop_signal
    why = (f"the traffic path kept routing to a deleted pod for up to {lag:.2f} s ({worst}), but the pods stopped "
           f"serving before that: {len(got)} requests still reached {len(per_pod)} stopping pod(s) "
           f"({outcome_text(by_outcome(got))}).")
    if prestop is None:
        rule, title = "no-prestop", TITLES["no-prestop"]
        cause = f"The stop signal ({sig}) went out at deletion with no preStop delay, while " + why
        fix = (f"Add lifecycle.preStop sleep >= {want:g} s (the traffic path still routed to {worst} "
               f"{lag:.2f} s after its deletion), and keep terminationGracePeriodSeconds ({grace:g} s) above preStop "
               "+ the app's drain time.")
    else:
        rule, title = "prestop-too-short", TITLES["prestop-too-short"]
        now = f"{prestop.text}" + ("" if prestop.kind == "sleep" or has is None else f", {has:g} s")
        cause = f"preStop ({now}) ended before the endpoint update reached the traffic path: " + why
        if prestop.kind == "sleep" and has is not None:
            change = f"Raise the preStop sleep from {has:g} s to >= {want:g} s"
        else:
            change = f"Make the preStop {prestop.kind} hook ({prestop.text}) last >= {want:g} s"
        fix = (f"{change} (the traffic path still routed to {worst} {lag:.2f} s after its deletion); keep "
               f"terminationGracePeriodSeconds ({grace:g} s) above it.")
    return finding(rule, title, cause, fix, "high", got, pods=per_pod, routed_after_deletion_s=lag,
                   ambiguous_between_stopping_pods=int((got["how"] == "ambiguous").sum()),
                    prestop_seconds=has, suggested_prestop_s=want)


def listening_at(ctx: Context, p: PodLife) -> int | None:
    """When ``p`` was known to listen: the app said so, or a network
    readiness probe (httpGet, tcpSocket) passed."""
    marks = [x for x in (p.listening, p.ready if ctx.spec.readiness_kind in ("httpGet", "tcpSocket") else None)
             if x is not None]
    return min(marks) if marks else None


def rule_readiness(ctx: Context) -> dict[str, Any] | None:
    mask = ctx.free & (ctx.att["phase"].to_numpy(dtype=object) == "starting")
    # a refusal is no readiness problem on a pod that was listening then
    refused = ctx.att["code"].to_numpy() == CODE[Outcome.REFUSED]
    t = ctx.att["t_ns"].to_numpy()
    for p in ctx.pods.values():
        lis = listening_at(ctx, p)
        if lis is not None:
            mask &= ~((ctx.pod_of == p.name) & refused & (t >= lis - TOL_NS))
    if not mask.any():
        return None
    got = claim(ctx, mask)
    per_pod = {}
    for name in sorted({str(p) for p in got["pod"]}):
        p = ctx.pods.get(name)
        if p is None:
            continue
        added, serving = p.endpoint_added, p.serving_from
        per_pod[name] = {"in_endpoints_s": secs(added), "serving_s": secs(serving),
                         "routed_before_ready_s": secs(serving - added) if added is not None and serving is not None
                         else None, "failures": int((got["pod"] == name).sum())}
    early = max((v["routed_before_ready_s"] or 0 for v in per_pod.values()), default=0)
    probe = ctx.spec.readiness
    outcomes = outcome_text(by_outcome(got))
    if probe is None:
        rule, title = "no-readiness-probe", TITLES["no-readiness-probe"]
        cause = (f"Without a readinessProbe a pod is Ready as soon as it starts, so it entered the endpoints "
                 f"up to {early:g} s before the app could serve: {len(got)} requests failed ({outcomes}).")
        fix = ("Add a readinessProbe (httpGet) on an endpoint that fails until the app is warm, periodSeconds 1: "
               f"here the app needed up to {early:g} s after entering the endpoints.")
    else:
        where = probe
        rule, title = "premature-readiness", TITLES["premature-readiness"]
        cause = (f"The readinessProbe ({where}) passed while the app was still warming up: pods were in the "
                 f"endpoints up to {early:g} s too early and {len(got)} requests failed ({outcomes}).")
        fix = (f"Point the readinessProbe at a check that fails until the app is warm (now: {where}); the app "
               f"needed up to {early:g} s more than the probe allowed.")
    return finding(rule, title, cause, fix, "high", got, pods=per_pod, routed_before_ready_s=early)


def _endpoint_count(pods: dict[str, PodLife]) -> tuple[np.ndarray, np.ndarray]:
    """(times, visible endpoints from that time on)."""
    changes = []
    for p in pods.values():
        for lo, hi in p.endpoint_intervals:
            changes.append((lo, 1))
            if hi != NEVER:
                changes.append((hi, -1))
    if not changes:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    changes.sort()
    t = np.array([c[0] for c in changes], dtype=np.int64)
    n = np.cumsum([c[1] for c in changes])
    return t, n


def capacity_dips(pods: dict[str, PodLife], replicas: int, window: tuple[int, int] | None) -> list[tuple[int, int, int]]:
    """(start, end, lowest endpoint count) where the traffic path had fewer
    endpoints than replicas, inside the rollout window, after full capacity
    was first reached; shorter than MIN_DIP_NS are ignored."""
    t, n = _endpoint_count(pods)
    if not len(t) or window is None:
        return []
    full = np.flatnonzero(n >= replicas)
    if not len(full):
        return []
    dips = []
    i = full[0]
    cur = None
    for k in range(i, len(t)):
        if n[k] < replicas and cur is None:
            cur = [t[k], int(n[k])]
        elif n[k] < replicas and cur is not None:
            cur[1] = min(cur[1], int(n[k]))
        elif n[k] >= replicas and cur is not None:
            dips.append((int(cur[0]), int(t[k]), cur[1]))
            cur = None
    if cur is not None:
        dips.append((int(cur[0]), int(window[1]), cur[1]))
    lo, hi = window
    out = []
    for a, b, m in dips:
        a, b = max(a, lo), min(b, hi)
        if b - a >= MIN_DIP_NS:
            out.append((a, b, m))
    return out


def rule_capacity_dip(ctx: Context) -> dict[str, Any] | None:
    """Only where the strategy lets the rollout go below replicas
    (maxUnavailable > 0, or Recreate); pods lost any other way are not this."""
    replicas = ctx.scenario.deployment.replicas
    strategy = ctx.scenario.deployment.strategy.type
    if ctx.scenario.disruption.type in ("drain", "evict"):
        return None  # a drain's dip is the drain rules' (harness.analysis.drain_rules)
    if strategy == "RollingUpdate" and ctx.scenario.max_unavailable() == 0:
        return None
    dips = capacity_dips(ctx.pods, replicas, ctx.window)
    if not dips:
        return None
    t = ctx.att["t_ns"].to_numpy()
    in_dip = np.zeros(len(t), dtype=bool)
    for a, b, _ in dips:
        in_dip |= (t >= a) & (t < b)
    phase = ctx.att["phase"].to_numpy(dtype=object)
    # overload answers (503/504/5xx, timeouts) persist while the queues the dip
    # built drain: from the first dip to RECOVERY_NS after the last one
    overload = np.isin(ctx.att["code"].to_numpy(), OVERLOAD_CODES)
    span = (t >= dips[0][0]) & (t < dips[-1][1] + RECOVERY_NS)
    mask = ctx.free & ((in_dip & np.isin(phase, ["ready", "no-endpoint", "unknown"])) | (span & overload))
    got = claim(ctx, mask) if mask.any() else None
    # latency of successful requests during the dips vs the baseline
    sched = ctx.req["scheduled_ns"].to_numpy()
    ok = ctx.req["code"].to_numpy() == CODE[Outcome.OK]
    sel = np.zeros(len(sched), dtype=bool)
    for a, b, _ in dips:
        sel |= (sched >= a) & (sched < b)
    sel &= ok
    p99 = None
    if sel.any():
        lat = (ctx.req["ended_ns"].to_numpy()[sel] - sched[sel]) / 1e6
        p99 = round(float(np.percentile(lat, 99)), 3)
    base = ctx.baseline_p99_ms
    slower = p99 is not None and base is not None and p99 > max(1.5 * base, base + 10)
    lowest = min(m for _, _, m in dips)
    dip_s = round(sum(b - a for a, b, _ in dips) / 1e9, 3)
    surge, unavail = ctx.scenario.max_surge(), ctx.scenario.max_unavailable()
    how = (f"With maxSurge {surge} and maxUnavailable {unavail}" if strategy == "RollingUpdate"
           else "With strategy Recreate")
    severity = "high" if got is not None else "medium" if slower else "low"
    impact = (f"{len(got)} requests failed ({outcome_text(by_outcome(got))})" if got is not None
              else f"p99 latency rose to {p99:g} ms (baseline {base:g} ms)" if slower
              else f"no request failed, but the service ran on {lowest} of {replicas} pods")
    return finding(
        "capacity-dip", f"Capacity dip: only {lowest} of {replicas} pods in the endpoints during the rollout",
        f"{how} the rollout removed pods before their "
        f"replacements were serving: for {dip_s:g} s the traffic path had fewer than {replicas} endpoints "
        f"(lowest {lowest}); {impact}.",
        f"Set strategy.rollingUpdate maxSurge: 1 (or 25%) and maxUnavailable: 0 (now {surge} and {unavail}), "
        f"so a new pod is serving before an old one leaves; the rollout then never drops below {replicas} pods.",
        severity, got, dips=[{"start_s": secs(a), "end_s": secs(b), "lowest_endpoints": m} for a, b, m in dips],
        dip_seconds=dip_s, lowest_endpoints=lowest, replicas=replicas, p99_during_dip_ms=p99,
        baseline_p99_ms=base,
    )


RULES: tuple[Rule, ...] = (
    rule_short_grace,
    rule_no_graceful_shutdown,
    rule_keepalive_close_race,
    rule_prestop,
    rule_readiness,
    rule_keepalive_cut,
    rule_capacity_dip,
)
