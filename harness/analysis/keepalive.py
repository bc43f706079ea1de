"""The keep-alive rules: what happens to requests on reused HTTP/1.1
connections when a server closes them.

    keepalive-close-race  a request written on a reused keep-alive
                          connection just as the server closed it as idle
                          (at its stop signal, or its idle timeout): no
                          response byte. Nothing was in flight; a standard
                          retrying client replays it (harness.analysis.clientview).
    keepalive-cut         the app drained, but closed (RST) connections under
                          requests it had been sent well before (in flight)

A request written within the race window (RACE_WINDOW_NS plus the run's
client send lag p99) of its connection's close is the race; one written
earlier was in flight. The same server behaviour gets the same name
whatever the timing of one run.
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


def race_mask(ctx: Context) -> np.ndarray:
    """Failures that look like the keep-alive close race: on a reused
    connection, closed or reset with no response byte, within the race
    window of being written, on a pod still running then (not killed under it)."""
    att = ctx.att
    code = att["code"].to_numpy()
    sent = att["sent_ns"].to_numpy()
    ended = att["ended_ns"].to_numpy()
    mask = (att["reused"].to_numpy(dtype=bool) & np.isin(code, [CODE[Outcome.CLOSED], CODE[Outcome.RESET]])
            & no_response_byte(att, ctx.req) & (sent >= 0) & (ended - sent <= race_window_ns(ctx.req)))
    alive = np.zeros(len(att), dtype=bool)
    for p in ctx.pods.values():
        rows = ctx.pod_of == p.name
        if not rows.any():
            continue
        ok = np.ones(len(att), dtype=bool)
        if p.end is not None:
            ok &= sent <= p.end + TOL_NS
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
    n_conns = sum(v["connections"] for v in per_pod.values())
    return finding(
        "keepalive-cut", TITLES["keepalive-cut"],
        f"The app drained, but at shutdown it closed {n_conns} open connection(s) on {', '.join(per_pod)} "
        f"under requests it had been sent more than {race_window_ns(ctx.req) / 1e6:.0f} ms earlier: {len(got)} requests "
        f"failed ({outcome_text(by_outcome(got))}), {reused} of them on reused keep-alive connections.",
        "At shutdown answer each request still arriving on a keep-alive connection with "
        "Connection: close and close a connection only after its response (no RST, no close while a "
        "request may be on the wire); do it while the preStop delay still keeps new traffic away.",
        "high", got, pods=per_pod, reused_connection_failures=reused,
    )
