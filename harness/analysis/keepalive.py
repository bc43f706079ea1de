"""The keep-alive rules: what happens to requests on reused HTTP/1.1
connections when a server closes them.

    keepalive-close-race  a request written on a reused keep-alive
                          connection just as the server closed it as idle
                          (at its stop signal, or its idle timeout): no
                          response byte. Nothing was in flight; a standard
                          retrying client replays it (harness.analysis.clientview).
    keepalive-cut         the app drained, but closed (RST) connections under
                          requests it had been sent well before (in flight)

A no-byte failure on a reused connection is the race when the request was
written after the pod's stop signal (the connection was idle then, and the
server closed it without reading it), or within the race window
(RACE_WINDOW_NS plus the run's client send lag p99) of the close (an idle
timeout). One written before the signal and cut later was in flight, and so
were those of an app that says it had requests in flight when it closed
its connections and answered nothing after (the sample app's abrupt mode).
The same server behaviour gets the same name whatever the timing of one run.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.analysis.findings import (
    AFTER_END_NS, CODE, CUT_CODES, RACE_FIX, RACE_WINDOW_NS, TITLES, TOL_NS, Context, by_outcome, claim, finding,
    no_response_byte, outcome_text, pod_rows, secs,
)
from harness.analysis.podlife import NEVER
from harness.model.outcome import Outcome


def race_window_ns(req) -> int:
    """RACE_WINDOW_NS plus how late this run's client loop was (send lag
    p99): on a loaded machine the close is seen that much later."""
    sent, sched = req["sent_ns"].to_numpy(), req["scheduled_ns"].to_numpy()
    lag = (sent - sched)[sent >= 0]
    return RACE_WINDOW_NS + (int(np.percentile(lag, 99)) if len(lag) else 0)


def cuts_busy_connections(ctx: Context, p, rows: np.ndarray) -> bool:
    """Did pod ``p`` close connections under requests it was serving (then
    its no-byte failures were in flight), rather than only idle ones (the
    race)? A server that drains keeps answering its busy connections after
    it closes the idle ones; one that cuts them answers nothing after, and
    when the app counts its requests in flight at that moment (app log) a
    count above 0 says it cut them. Without that word the failures' own
    times decide (race_mask). A request written after the app closed its
    listener and counted its requests in flight is not one of them."""
    if p.listener_closed is not None:
        rows = rows & (ctx.att["sent_ns"].to_numpy() < p.listener_closed)
    if not rows.any() or not p.inflight_at_close:
        return False
    cut_at = int(ctx.att["ended_ns"].to_numpy()[rows].min())
    req = ctx.req
    answered = (req["pod"].to_numpy(dtype=object) == p.name) & (req["code"].to_numpy() == CODE[Outcome.OK])
    return not (req["ended_ns"].to_numpy()[answered] > cut_at + TOL_NS).any()


def race_mask(ctx: Context) -> np.ndarray:
    """Failures that look like the keep-alive close race: on a reused
    connection, closed or reset with no response byte, within the race
    window of being written, on a pod still running then (not killed under it)."""
    att = ctx.att
    code = att["code"].to_numpy()
    sent = att["sent_ns"].to_numpy()
    ended = att["ended_ns"].to_numpy()
    mask = (att["reused"].to_numpy(dtype=bool) & np.isin(code, [CODE[Outcome.CLOSED], CODE[Outcome.RESET]])
            & no_response_byte(att, ctx.req) & (sent >= 0))
    young = ended - sent <= race_window_ns(ctx.req)
    alive = np.zeros(len(att), dtype=bool)
    for p in ctx.pods.values():
        rows = ctx.pod_of == p.name
        if not rows.any():
            continue
        if cuts_busy_connections(ctx, p, rows & mask):
            continue
        # written after the pod's stop signal onto a connection it then closed
        # unanswered: the server was done with it (idle at the signal); or
        # written just as the connection closed (idle timeout, any time)
        if p.stop_signal is None:
            ok = young.copy()
        else:  # one written before the signal and cut after it was in flight
            ok = (sent >= p.stop_signal) | (young & (ended < p.stop_signal))
        if p.end is not None:
            # up to AFTER_END_NS after the exit the client may still write on a
            # connection whose close (the exit's) it has not read yet
            ok &= sent <= p.end + AFTER_END_NS
        if p.sigkill is not None:
            ok &= ~((sent <= p.sigkill + TOL_NS) & (ended >= p.sigkill - TOL_NS))
        alive |= rows & ok
    return mask & alive


def rule_keepalive_close_race(ctx: Context) -> dict[str, Any] | None:
    mask = ctx.free & race_mask(ctx)
    if not mask.any():
        return None
    got = claim(ctx, mask)
    lag = (got["ended_ns"] - got["sent_ns"]) / 1e6
    per_pod: dict[str, dict[str, Any]] = {}
    at_shutdown = 0
    for name in sorted({str(x) for x in got["pod"] if x is not None}):
        p = ctx.pods.get(name)
        rows = got.loc[got["pod"] == name]
        marks = [x for x in (p.deletion, p.stop_signal) if p is not None and x is not None] if p else []
        during = int((rows["t_ns"] >= min(marks) - TOL_NS).sum()) if marks else 0
        at_shutdown += during
        per_pod[name] = {"failures": int(len(rows)), "during_termination": during,
                         "stop_signal_s": secs(p.stop_signal) if p else None}
    idle = len(got) - at_shutdown
    where = (f"{at_shutdown} as the pods shut down (the server closes its idle connections on "
             f"{ctx.spec.stop_signal})" if at_shutdown else "")
    if idle:
        where += ("; " if where else "") + f"{idle} while the pods ran (the server's idle keep-alive timeout)"
    return finding(
        "keepalive-close-race", TITLES["keepalive-close-race"],
        f"{len(got)} requests were written on reused keep-alive connections that the server closed as idle at "
        f"that moment, and got no response byte ({outcome_text(by_outcome(got))}; at most "
        f"{float(lag.max()):.1f} ms between the write and the close): {where}. Nothing was in flight: this is "
        "HTTP/1.1's keep-alive close race, not a request cut by the exit or by SIGKILL.",
        RACE_FIX, "high", got, pods=per_pod, during_termination=at_shutdown, while_running=idle,
        write_to_close_ms_max=round(float(lag.max()), 3),
    )


def rule_keepalive_cut(ctx: Context) -> dict[str, Any] | None:
    t = ctx.att["t_ns"].to_numpy()
    cut_code = np.isin(ctx.att["code"].to_numpy(), CUT_CODES)
    mask = np.zeros(len(t), dtype=bool)
    per_pod = {}
    for p in ctx.pods.values():
        marks = [x for x in (p.stop_signal, p.shutdown_started, p.draining, p.listener_closed) if x is not None]
        if not marks or p.sigkill is not None:
            continue
        start, end = min(marks), (p.end if p.end is not None else NEVER)
        hit = pod_rows(ctx, p.name) & cut_code & (t >= start - TOL_NS) & (t <= end + AFTER_END_NS)
        if hit.any():
            mask |= hit
            conns = ctx.att.loc[hit, "conn_id"]
            per_pod[p.name] = {"failures": int(hit.sum()), "connections": int(conns[conns >= 0].nunique()),
                               "shutdown_s": secs(start)}
    if not mask.any():
        return None
    got = claim(ctx, mask)
    reused = int(got["reused"].sum())
    inflight = sum(ctx.pods[k].inflight_at_close or 0 for k in per_pod if k in ctx.pods)
    n_conns = sum(v["connections"] for v in per_pod.values())
    return finding(
        "keepalive-cut", TITLES["keepalive-cut"],
        f"At shutdown {', '.join(per_pod)} closed {n_conns} open connection(s) under requests it was serving "
        f"(it answered nothing on them after"
        + (f"; by its own log {inflight} request(s) were in flight then" if inflight else "")
        + f"): {len(got)} requests failed ({outcome_text(by_outcome(got))}), {reused} of them on reused "
        "keep-alive connections.",
        "At shutdown answer each request still arriving on a keep-alive connection with "
        "Connection: close and close a connection only after its response (no RST, no close while a "
        "request may be on the wire); do it while the preStop delay still keeps new traffic away.",
        "high", got, pods=per_pod, reused_connection_failures=reused,
    )
