"""Diagnosis rules of the ingress hop (runs whose traffic went through the
proxy; they claim nothing in other runs). They run before the general
rules (harness.analysis.rules), because through an ingress the hop that
decides is the proxy's, not kube-proxy's:

    no-prestop /          the pod stopped serving while the slowest hop (the
    prestop-too-short     ingress) still routed to it: the proxy's 502s,
                          each attributed from its access log; the fix names
                          that hop and its measured lag
    upstream-keepalive    the proxy's 502 from a pod that was still serving:
                          it reused an upstream keep-alive connection the pod
                          had already closed (app keep-alive timeout shorter
                          than the proxy's upstream idle timeout)
    ingress-retries       what the proxy's retries absorbed: failed attempts
                          the client never saw (no failures claimed)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from harness.analysis.findings import (
    TOL_NS, Context, by_outcome, ceil_half, claim, finding, outcome_text, pod_rows, prestop_seconds, secs,
)
from harness.analysis.ingress import via_ingress

PROXY_CODES = (502, 503, 504)


def _hop_lags(p) -> dict[str, float | None]:
    d = p.deletion
    return {"kube-proxy": secs(p.endpoint_removed - d) if p.endpoint_removed is not None and d is not None else None,
            "ingress": secs(p.ingress_removed - d) if p.ingress_removed is not None and d is not None else None}


def routed_at(ctx: Context) -> np.ndarray:
    """When the proxy picked the upstream of each failed request: the send
    time of a request its access log traced (the proxy chooses the pod as the
    request arrives), not when it failed, which for a dial that timed out
    is the proxy's dial timeout later."""
    t = ctx.att["t_ns"].to_numpy()
    sent = ctx.att["sent_ns"].to_numpy()
    logged = ctx.att["how"].to_numpy(dtype=object) == "ingress-log"
    return np.where(logged & (sent >= 0), sent, t)


def rule_ingress_lag(ctx: Context) -> dict[str, Any] | None:
    if not via_ingress(ctx.req):
        return None
    t = routed_at(ctx)
    mask = np.zeros(len(t), dtype=bool)
    per_pod: dict[str, dict[str, Any]] = {}
    for p in ctx.pods.values():
        if p.deletion is None or p.ingress_removed is None:
            continue
        marks = [x for x in (p.stop_signal, p.shutdown_started, p.not_accepting_from) if x is not None]
        if not marks or min(marks) >= p.ingress_removed:
            continue
        stop = min(marks)
        hit = pod_rows(ctx, p.name) & (t >= stop - TOL_NS) & (t <= p.ingress_removed + TOL_NS)
        if hit.any():
            mask |= hit
            lags = _hop_lags(p)
            per_pod[p.name] = {"stopped_serving_s": secs(stop), "hop_lag_s": lags,
                               "slowest_hop": max((k for k in lags if lags[k] is not None), key=lambda k: lags[k]),
                               "failures": int(hit.sum())}
    if not mask.any():
        return None
    got = claim(ctx, mask)
    worst = max(per_pod, key=lambda k: max(v for v in per_pod[k]["hop_lag_s"].values() if v is not None))
    lags = per_pod[worst]["hop_lag_s"]
    hop = per_pod[worst]["slowest_hop"]
    lag = lags[hop]
    want = ceil_half(lag + 0.5)
    has = prestop_seconds(ctx.spec)
    grace = ctx.spec.grace_s
    others = ", ".join(f"{k} {v:.2f} s" for k, v in lags.items() if v is not None and k != hop)
    why = (f"the {hop} kept routing to deleted pod {worst} for {lag:.2f} s after its deletion"
           + (f" (the other hop: {others})" if others else "")
           + f", but the pods stopped serving before that: the proxy answered {len(got)} requests with "
           f"{outcome_text(by_outcome(got))}, each traced to its stopping pod in the proxy's access log.")
    if ctx.spec.prestop is None:
        rule, title = "no-prestop", f"No preStop hook: pods stopped serving while the {hop} still routed to them"
        cause = "The stop signal went out at deletion with no preStop delay, while " + why
        fix = (f"Add lifecycle.preStop sleep >= {want:g} s, sized for the slowest hop ({hop}: {lag:.2f} s "
               f"measured here){'' if hop == 'kube-proxy' else ', not kube-proxy' + chr(39) + 's'}; keep "
               f"terminationGracePeriodSeconds ({grace:g} s) above preStop + the app's drain time.")
    else:
        now = f"{has:g} s" if has is not None else ctx.spec.prestop_text
        rule, title = "prestop-too-short", f"preStop shorter than the slowest hop ({hop})"
        cause = f"preStop ({now}) ended before the {hop} stopped routing to the pod: " + why
        fix = (f"Raise the preStop sleep from {now} to >= {want:g} s: the slowest hop ({hop}) took {lag:.2f} s; "
               f"keep terminationGracePeriodSeconds ({grace:g} s) above it.")
    return finding(rule, title, cause, fix, "high", got, pods=per_pod, slowest_hop=hop, hop_lag_s=lags,
                    routed_after_deletion_s=lag, prestop_seconds=has, suggested_prestop_s=want)


def _keepalive_timeout_s(ctx: Context) -> float | None:
    """The app's keep-alive idle timeout (sample app KEEPALIVE_TIMEOUT), the
    shorter of the running version's and the version the rollout ships."""
    found = []
    for env in (ctx.scenario.app.env, ctx.scenario.disruption.change.env or {}):
        try:
            found.append(float(env["KEEPALIVE_TIMEOUT"]))
        except (KeyError, TypeError, ValueError):
            continue
    return min(found) if found else None


def suggested_idle_timeout_s(app: float | None) -> float | None:
    """The proxy's upstream idle timeout to recommend: well below the app's
    keep-alive timeout (1 s below it, or half of it when that is shorter), so
    the proxy closes an idle connection before the app can; None when the
    app's timeout is not known."""
    return max(app - 1, app / 2) if app else None


#: The least margin a suggested proxy idle timeout leaves below the app's keep-alive: one
#: run's longest failed attempt is a single sample of the proxy's own delays, which a
#: busier moment exceeds (a 20 ms keep-alive with 10 ms suggested failed that way).
MIN_MARGIN_MS = 20.0


def keepalive_fix(idle: float, app: float | None, held_ms: float | None) -> tuple[str, float | None, float | None]:
    """The fix text, the proxy idle timeout to set (or None) and the app
    keep-alive timeout to set (or None). The proxy's idle timeout bounds how
    long a connection sat idle when the proxy takes it, not how long the
    proxy then takes to write on it: the margin left below the app's
    timeout must exceed the proxy's own delays, of which its longest failed
    attempt in the run (``held_ms``) is the measure. When it would not (a
    keep-alive timeout of milliseconds), only raising the app's keep-alive
    above the proxy's idle timeout fixes it."""
    tail = "; when draining, answer with Connection: close so the proxy drops the connection itself."
    app_want = float(math.ceil(idle + max(1.0, 2 * (held_ms or 0) / 1000)))
    raise_app = (f"raise the app's keep-alive timeout to {app_want:g} s or more (the proxy's upstream idle timeout, "
                 f"{idle:g} s, plus a margin above its own delays)")
    knob = ("the proxy's upstream idle timeout (traffic.ingress.upstreamIdleTimeoutSeconds; Traefik "
            "serversTransport forwardingTimeouts.idleConnTimeout)")
    if app is None:
        return f"Set {knob} below the app's keep-alive timeout, or {raise_app}" + tail, None, None
    held = f" (its failed attempts took up to {held_ms:g} ms here)" if held_ms is not None else ""
    if idle < app and held_ms is not None and (app - idle) * 1000 > held_ms:
        return (f"The proxy's upstream idle timeout ({idle:g} s) is below the app's keep-alive timeout ({app:g} s) "
                f"by more than the proxy's own delays{held}, so these closes were not the app's idle timeout: look "
                "for the app closing connections for another reason (a limit of requests per connection, a "
                "restart of its workers)" + tail, None, None)
    if idle < app:
        return (f"The proxy's upstream idle timeout ({idle:g} s) is already below the app's keep-alive timeout "
                f"({app:g} s), yet it reused connections the app had closed: the margin ({(app - idle) * 1000:.0f} ms) "
                f"is shorter than the proxy's own delays between taking a pooled connection and writing on it{held}. "
                f"{raise_app[0].upper() + raise_app[1:]}" + tail, None, app_want)
    want = suggested_idle_timeout_s(app)
    if (app - want) * 1000 <= max(held_ms or 0.0, MIN_MARGIN_MS):
        return (f"A keep-alive timeout of {app:g} s leaves the proxy no safe idle timeout: {want:g} s would leave "
                f"{(app - want) * 1000:.0f} ms, less than the proxy's own delays between taking a pooled connection "
                f"and writing on it{held} or the least margin of {MIN_MARGIN_MS:g} ms. So {raise_app}" + tail, None, app_want)
    return f"Set {knob} to {want:g} s, or {raise_app}" + tail, want, app_want


#: Go's transport error when a reused upstream connection turned out closed by the
#: server; Traefik maps it to 500 (not a net.Error, not io.EOF: ComputeStatusCode)
CLOSED_IDLE = "server closed idle connection"
#: the proxy's error texts for a request on a connection the server had closed
CLOSED_CONN = (CLOSED_IDLE, "EOF", "reset by peer", "broken pipe")


def rule_upstream_keepalive(ctx: Context) -> dict[str, Any] | None:
    if not via_ingress(ctx.req) or not len(ctx.att):
        return None
    t = routed_at(ctx)
    status = ctx.req.loc[ctx.att.index, "proxy_status"].fillna(0).to_numpy()
    logged = ctx.att["how"].to_numpy(dtype=object) == "ingress-log"
    serving = np.zeros(len(t), dtype=bool)
    for p in ctx.pods.values():
        stop = [x for x in (p.stop_signal, p.not_accepting_from) if x is not None]
        rows = ctx.pod_of == p.name
        serving |= rows & (t < (min(stop) - TOL_NS if stop else np.iinfo(np.int64).max))
    # the race's answers: 502 (EOF, connection reset) and, when the proxy's log says
    # so, 500 for Go's "server closed idle connection" on a request it may not replay
    errors = dict(ctx.req.attrs.get("proxy_errors") or {})
    closed_idle = any(CLOSED_IDLE in k for k in errors)
    if errors and not any(any(w in k for w in CLOSED_CONN) for k in errors):
        return None  # the proxy says why it failed, and no failure was on a closed connection
    mask = ctx.free & logged & ((status == 502) | ((status == 500) & closed_idle)) & serving
    if not mask.any():
        return None
    got = claim(ctx, mask)
    idle = ctx.scenario.traffic.ingress.upstream_idle_timeout_seconds
    app = _keepalive_timeout_s(ctx)
    codes = "502" + (" or 500" if closed_idle else "")
    cause = (f"The proxy answered {codes} to {len(got)} requests while their upstream pod was serving normally: it "
             f"sent them on pooled keep-alive connections the pod had already closed"
             + (f" (the app closes idle connections after {app:g} s, the proxy keeps them {idle:g} s)" if app else
                f" (the proxy keeps idle upstream connections {idle:g} s)")
             + ". Non-idempotent requests are not retried on a stale connection, so they fail.")
    # the proxy's own time on each failed attempt (access log): how long it held the request between
    # taking the pooled connection and giving up on it
    held = ctx.req.loc[got.index, "origin_duration_ns"].dropna() if "origin_duration_ns" in ctx.req else None
    held_ms = round(float(held.max()) / 1e6, 1) if held is not None and len(held) else None
    fix, suggested, app_want = keepalive_fix(idle, app, held_ms)
    return finding("upstream-keepalive", "Upstream keep-alive mismatch: the proxy reused connections the pod had closed",
                   cause, fix, "high", got, upstream_idle_timeout_s=idle, app_keepalive_timeout_s=app,
                   suggested_upstream_idle_timeout_s=suggested, suggested_app_keepalive_timeout_s=app_want,
                   failed_attempt_ms_max=held_ms, proxy_errors=errors)


def rule_ingress_retries(ctx: Context) -> dict[str, Any] | None:
    if not via_ingress(ctx.req):
        return None
    retries = ctx.req["proxy_retries"].fillna(0).to_numpy()
    status = ctx.req["proxy_status"].fillna(0).to_numpy()
    retried = retries > 0
    logged = int(ctx.req.attrs.get("retry_attempts") or 0)
    if not retried.any() and not logged:
        return None
    n = ctx.scenario.traffic.ingress.retries
    pods = ctx.req.loc[retried, "upstream_pod"].fillna("(none)").value_counts()
    if retried.any():
        absorbed = int((retried & (status < 500)).sum())
        what = (f"The proxy retried {int(retried.sum())} requests (retry middleware, {n} attempts) after an upstream "
                f"attempt failed; {absorbed} of them then succeeded")
    else:  # only the proxy's own log counts them (Traefik v3.6 leaves RetryAttempts at 0)
        absorbed = max(0, logged - int(len(ctx.att)))
        what = (f"The proxy made {logged} retries (retry middleware, {n} attempts; its log), while only "
                f"{len(ctx.att)} requests failed: about {absorbed} failed attempts were retried into successes")
    return finding(
        "ingress-retries", f"The proxy's retries absorbed about {absorbed} failed attempts",
        what + ", so the client never saw the failure. The rollout still broke "
        "connections: the same scenario without retries shows them (run it with "
        "--set traffic.ingress.retries=0 and compare the two runs).",
        "Keep the retries as a safety net, but fix the cause the other findings name; retries only cover idempotent "
        "requests and add the failed attempt's time to the answer.",
        "low", None, retried=int(retried.sum()), absorbed=absorbed, retry_attempts=n, retries_logged=logged,
        last_upstream_of_retried={str(k): int(v) for k, v in pods.items()})


INGRESS_RULES = (rule_ingress_lag, rule_upstream_keepalive, rule_ingress_retries)
