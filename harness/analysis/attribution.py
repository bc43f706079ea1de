"""Attribution: each failed request -> the pod it most likely hit, and the
phase of that pod's life at that moment.

Evidence, strongest first (the ``how`` column says which one was used):

    answered     the response named its pod (X-Pod-Name on a 5xx)
    ingress-log  through the ingress: the proxy's access log names the
                 upstream it sent the request to (its own 502/503/504)
    connection   the keep-alive connection had been answered by a pod
                 before (a connection never changes pod), so it carries it
    endpoints    a failure on a new connection that never got an answer:
                 the pods the traffic path could route to at connect time
                 are the candidates, and the failure's own evidence picks
                 one (below)
    no-endpoint  no pod was in the endpoints at that moment

The inference for new connections, per outcome:

    refused              a visible pod that was not listening: its listener
                         had closed or its process had exited (still routed
                         after termination), or it had not started yet
    connect_timeout      a visible pod whose process had exited (a cluster
                         drops SYNs to a pod whose network is gone) or ended
                         while the connect was pending
    reset / closed /     a visible pod whose process exited, got SIGKILL or
    read_timeout / other began shutting down while the request was in flight;
                         failing that, one that was terminating or starting
    5xx without a pod    a visible pod that was starting or terminating

When several candidates carry the same evidence the one whose evidence is
nearest in time wins (``ambiguous`` marks such picks). The platform's ground
truth (``route_pod``, local platform only) is never an input here; it only
measures how often this inference is right (``accuracy``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from harness.analysis.podlife import NEVER, PHASE_NAMES, PodLife, phase_at
from harness.model.outcome import OUTCOMES, Outcome

_CODE = {o: OUTCOMES.index(o) for o in Outcome}
_CUT = np.array([_CODE[o] for o in (Outcome.RESET, Outcome.CLOSED, Outcome.READ_TIMEOUT, Outcome.OTHER,
                                    Outcome.CONNECT_TIMEOUT)], np.int8)
#: near-simultaneity allowed between an event and a request time
TOL_NS = 50_000_000
_CHUNK = 200_000


def conn_pods(req: pd.DataFrame) -> pd.Series:
    """conn_id -> the pod that answered on that connection (first seen)."""
    answered = req.loc[req["pod"].notna() & (req["conn_id"].to_numpy() >= 0), ["conn_id", "pod"]]
    if answered.empty:
        return pd.Series(dtype=object)
    return answered.drop_duplicates("conn_id").set_index("conn_id")["pod"]


def _evidence(p: PodLife, code: np.ndarray, t_conn: np.ndarray, sent: np.ndarray,
              ended: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(score, distance) of pod ``p`` as the culprit of each failure.

    score 3: the failure is exactly what this pod's state produces;
    2: the pod was terminating or starting (plausible); 1: merely visible.
    distance: how far (ns) the pod's deciding event is from the failure, to
    break ties between pods with the same score.
    """
    n = len(code)
    score = np.ones(n, dtype=np.int8)
    dist = np.full(n, NEVER, dtype=np.int64)

    def v(x):
        return NEVER if x is None else int(x)

    not_accepting = v(p.not_accepting_from)
    serving = v(p.serving_from)
    started = v(p.started if p.started is not None else p.created)
    deletion = v(p.deletion)
    refused = code == _CODE[Outcome.REFUSED]
    # refused (or, on a cluster whose pod network is gone, a connect timeout):
    # not listening any more, or not yet (before it could serve)
    unanswered = refused | (code == _CODE[Outcome.CONNECT_TIMEOUT])
    gone = unanswered & (t_conn >= not_accepting - TOL_NS)
    early = refused & (t_conn < serving) & ~gone
    score[gone | early] = 3
    dist[gone] = np.abs(t_conn[gone] - not_accepting)
    dist[early] = np.abs(t_conn[early] - min(started, serving))
    # cut in flight: the pod's end or shutdown fell inside [sent, ended]
    cut = np.isin(code, _CUT)
    sent_eff = np.where(sent >= 0, sent, t_conn)
    for mark in (p.sigkill, p.end, p.listener_closed, p.shutdown_started, p.stop_signal):
        if mark is None:
            continue
        hit = cut & (sent_eff <= mark + TOL_NS) & (ended >= mark - TOL_NS)
        d = np.abs(ended - mark)
        better = hit & ((score < 3) | (d < dist))
        score[better] = 3
        dist[better] = d[better]
    # plausible: terminating (deleted) or not yet serving
    plausible = (score < 3) & ((t_conn >= deletion) | (t_conn < serving))
    score[plausible] = 2
    dist[plausible] = np.minimum(np.abs(t_conn[plausible] - deletion) if deletion != NEVER else NEVER,
                                 np.abs(t_conn[plausible] - serving) if serving != NEVER else NEVER)
    return score, dist


def _infer_from_endpoints(pods: list[PodLife], code: np.ndarray, t_conn: np.ndarray, sent: np.ndarray,
                          ended: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pod index or -1, ambiguous) for failures on new connections."""
    n = len(code)
    best = np.full(n, -1, dtype=np.int32)
    ambiguous = np.zeros(n, dtype=bool)
    if not pods or n == 0:
        return best, ambiguous
    for lo in range(0, n, _CHUNK):
        sl = slice(lo, min(n, lo + _CHUNK))
        m = sl.stop - sl.start
        key = np.full((len(pods), m), -1, dtype=np.float64)  # -1 = not visible
        for i, p in enumerate(pods):
            vis = p.visible_mask(t_conn[sl], TOL_NS)
            if not vis.any():
                continue
            score, dist = _evidence(p, code[sl], t_conn[sl], sent[sl], ended[sl])
            # higher score first, then nearer evidence (dist scaled into (0, 1])
            k = score.astype(np.float64) + 1.0 / (1.0 + dist.astype(np.float64) / 1e6)
            key[i] = np.where(vis, k, -1.0)
        idx = key.argmax(axis=0)
        top = key[idx, np.arange(m)]
        best[sl] = np.where(top >= 0, idx, -1)
        top_score = np.floor(top)
        same = (np.floor(key) == top_score[None, :]).sum(axis=0)
        ambiguous[sl] = (top >= 0) & (same > 1)
    return best, ambiguous


def attribute(req: pd.DataFrame, pods: dict[str, PodLife], failed_mask: np.ndarray) -> pd.DataFrame:
    """One row per failed request (index = the request's row), with columns
    t_ns, outcome code, conn_id, reused, pod, phase, how, ambiguous, route_pod."""
    f = req.loc[failed_mask]
    code = f["code"].to_numpy()
    sent = f["sent_ns"].to_numpy()
    ended = f["ended_ns"].to_numpy()
    sched = f["scheduled_ns"].to_numpy()
    t_conn = np.where(sent >= 0, sent, np.where(ended >= 0, ended, sched))
    refused_like = np.isin(code, [_CODE[Outcome.REFUSED], _CODE[Outcome.CONNECT_TIMEOUT]])
    t_judge = np.where(refused_like, t_conn, np.where(ended >= 0, ended, t_conn))

    pod = f["pod"].to_numpy(dtype=object)
    how = np.where(pd.notna(pod), "answered", "").astype(object)
    need = how == ""
    upstream = f["upstream_pod"].to_numpy(dtype=object) if "upstream_pod" in f.columns else None
    if upstream is not None:  # through the ingress: its access log names the upstream pod
        logged = need & pd.notna(upstream)
        pod[logged] = upstream[logged]
        how[logged] = "ingress-log"
        need = how == ""
    # a client connection to the ingress does not carry a pod (the proxy picks one per request)
    by_conn = conn_pods(req) if upstream is None else pd.Series(dtype=object)
    if len(by_conn) and need.any():
        carried = pd.Series(f["conn_id"].to_numpy()[need]).map(by_conn).to_numpy(dtype=object)
        have = pd.notna(carried)
        idx = np.flatnonzero(need)[have]
        pod[idx] = carried[have]
        how[idx] = "connection"
        need = how == ""

    plist = list(pods.values())
    ambiguous = np.zeros(len(f), dtype=bool)
    if need.any():
        nidx = np.flatnonzero(need)
        best, amb = _infer_from_endpoints(plist, code[nidx], t_conn[nidx], sent[nidx], ended[nidx])
        names = np.array([p.name for p in plist] + [None], dtype=object)
        pod[nidx] = names[best]  # -1 -> None
        how[nidx] = np.where(best >= 0, "endpoints", "no-endpoint")
        ambiguous[nidx] = amb

    pod = np.where(pd.notna(pod), pod, None)
    phase = np.full(len(f), -1, dtype=np.int8)
    for name, p in pods.items():
        sel = pod == name
        if sel.any():
            phase[sel] = phase_at(p, t_judge[sel], sent[sel], ended[sel], TOL_NS)
    phase_names = np.array([*PHASE_NAMES, "unknown"], dtype=object)
    out = pd.DataFrame({
        "t_ns": t_judge,
        "sent_ns": sent,
        "ended_ns": ended,
        "code": code,
        "conn_id": f["conn_id"].to_numpy(),
        "reused": f["conn_reused"].to_numpy(dtype=bool),
        "pod": pod,
        "phase": phase_names[phase],
        "how": how,
        "ambiguous": ambiguous,
        "route_pod": f["route_pod"].to_numpy(dtype=object),
        "run_phase": f["phase"].to_numpy(),
    }, index=f.index)
    out.loc[out["how"] == "no-endpoint", "phase"] = "no-endpoint"
    return out


def accuracy(att: pd.DataFrame) -> dict[str, Any] | None:
    """How often the attributed pod is the platform's ground truth, over the
    failures where the platform recorded it (None when it never did)."""
    known = att["route_pod"].notna().to_numpy()
    if not known.any():
        return None
    a = att.loc[known]
    right = (a["pod"].to_numpy(dtype=object) == a["route_pod"].to_numpy(dtype=object))
    by_how = {}
    for how, grp in a.assign(right=right).groupby("how", observed=True):
        by_how[str(how)] = {"failures": int(len(grp)), "correct": int(grp["right"].sum()),
                            "accuracy": round(float(grp["right"].mean()), 4)}
    return {
        "failures_with_ground_truth": int(len(a)),
        "correct": int(right.sum()),
        "accuracy": round(float(right.mean()), 4),
        "by_evidence": by_how,
        "ambiguous": int(a["ambiguous"].sum()),
    }


def phase_counts(att: pd.DataFrame) -> dict[str, dict[str, int]]:
    """pod -> phase -> failures (unattributed failures under '(none)')."""
    if att.empty:
        return {}
    t = att.assign(pod=att["pod"].fillna("(none)"))
    grp = t.groupby(["pod", "phase"], observed=True).size()
    out: dict[str, dict[str, int]] = {}
    for (p, ph), n in grp.items():
        out.setdefault(str(p), {})[str(ph)] = int(n)
    return out
