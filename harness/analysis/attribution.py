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

A refusal is "before it could serve" only on a pod not known to listen
yet: a pod whose app said it listens, or whose network readiness probe
(httpGet, tcpSocket) passed, was listening. A refusal on a deleted pod
after its stop signal, from an app that does not log its listener, is
its listener closing (most servers close it first on their stop signal).

When several candidates carry the same evidence and their evidence is not
clearly nearer in time for one of them (AMBIGUOUS_RATIO), the evidence
cannot separate them: the failure is attributed to no pod, ``how`` is
``ambiguous`` and ``candidates`` names them, rather than a guess. The
platform's ground truth (``route_pod``, local platform only) is never an
input here; it only measures how often this inference is right
(``accuracy``).
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
#: the nearest candidate wins a tie of evidence only when the next one's
#: evidence is this many times farther (plus TOL_NS); else: ambiguous
AMBIGUOUS_RATIO = 3.0
_CHUNK = 200_000


def conn_pods(req: pd.DataFrame) -> pd.Series:
    """conn_id -> the pod that answered on that connection (first seen)."""
    answered = req.loc[req["pod"].notna() & (req["conn_id"].to_numpy() >= 0), ["conn_id", "pod"]]
    if answered.empty:
        return pd.Series(dtype=object)
    return answered.drop_duplicates("conn_id").set_index("conn_id")["pod"]


def _conn_opened(req: pd.DataFrame) -> pd.Series:
    """conn_id -> when its first request was sent (the connection was opened just before)."""
    sent = req["sent_ns"].to_numpy()
    ok = (req["conn_id"].to_numpy() >= 0) & (sent >= 0)
    if not ok.any():
        return pd.Series(dtype=np.int64)
    return pd.Series(sent[ok]).groupby(req["conn_id"].to_numpy()[ok]).min()


def _evidence(p: PodLife, code: np.ndarray, t_conn: np.ndarray, sent: np.ndarray,
              ended: np.ndarray, ready_means_listening: bool = False,
              tol_ns: int = TOL_NS) -> tuple[np.ndarray, np.ndarray]:
    """(score, distance) of pod ``p`` as the culprit of each failure.

    score 4: a refusal this pod's state produces (exited, listener closed,
    not yet listening, or signalled and silent about its listener);
    3: a cut in flight this pod's end or shutdown explains; 2: the pod was
    terminating or starting (plausible); 1: merely visible.
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
    # Not listening is a state, not an event near the failure: every pod in
    # it explains a refusal equally well (distance 0), so two such pods make
    # the failure ambiguous. Only a refusal just before the recorded mark
    # (within tol_ns: the event may be stamped late) is merely plausible.
    gone = unanswered & (t_conn >= not_accepting)
    near = unanswered & ~gone & (t_conn >= not_accepting - tol_ns)
    listening = [x for x in (p.listening, p.ready if ready_means_listening else None) if x is not None]
    listen_from = min(listening) if listening else NEVER
    early = refused & (t_conn < serving) & (t_conn < listen_from) & ~gone
    # certain: the process had exited, the app said its listener was closed, or it never listened yet
    score[gone | early] = 4
    dist[gone | early] = 0
    if not p.drained_gracefully and p.stop_signal is not None:
        # no word from the app about its listener, which most servers close soon
        # after their stop signal (uvicorn within ~0.1 s, at its next loop tick):
        # as likely as an exited pod — real runs saw refusals in that first
        # 0.1 s go to either, so two such pods make the failure ambiguous
        signalled = refused & ~gone & ~early & (t_conn >= p.stop_signal)
        score[signalled] = 4
        dist[signalled] = 0
        gone = gone | signalled
    near &= ~gone
    score[near] = 2
    dist[near] = np.abs(t_conn[near] - not_accepting)
    # cut in flight: the pod's end or shutdown fell inside [sent, ended]
    cut = np.isin(code, _CUT)
    sent_eff = np.where(sent >= 0, sent, t_conn)
    for mark in (p.sigkill, p.end, p.listener_closed, p.shutdown_started, p.stop_signal):
        if mark is None:
            continue
        hit = cut & (sent_eff <= mark + tol_ns) & (ended >= mark - tol_ns)
        d = np.abs(ended - mark)
        better = hit & ((score < 3) | (d < dist)) & ~(gone | early)
        score[better] = 3
        dist[better] = d[better]
    # cut after the pod's stop signal, before its end: a server shutting down
    # closes its listener and the connections in its accept backlog (hypercorn)
    if p.stop_signal is not None:
        end = v(p.end)
        shut = cut & (score < 3) & ~(gone | early) & (ended >= p.stop_signal - tol_ns) & (sent_eff <= end + tol_ns)
        score[shut] = 3
        dist[shut] = np.abs(ended[shut] - p.stop_signal)
    # plausible: terminating (deleted) or not yet serving
    plausible = (score < 2) & ((t_conn >= deletion) | (t_conn < serving))
    score[plausible] = 2
    dist[plausible] = np.minimum(np.abs(t_conn[plausible] - deletion) if deletion != NEVER else NEVER,
                                 np.abs(t_conn[plausible] - serving) if serving != NEVER else NEVER)
    return score, dist


def _infer_from_endpoints(pods: list[PodLife], code: np.ndarray, t_conn: np.ndarray, sent: np.ndarray,
                          ended: np.ndarray, ready_means_listening: bool = False,
                          t_vis: np.ndarray | None = None, tol_ns: int = TOL_NS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pod index or -1, ambiguous, rivals (tuple of pod indices) or None) for failures on
    connections no answer named a pod for. ``t_vis``: when the connection was
    opened (the candidates are the pods visible then); default ``t_conn``."""
    if t_vis is None:
        t_vis = t_conn
    n = len(code)
    best = np.full(n, -1, dtype=np.int32)
    second = np.full(n, None, dtype=object)  # the rivals of an ambiguous pick (pod indices)
    ambiguous = np.zeros(n, dtype=bool)
    if not pods or n == 0:
        return best, ambiguous, second
    for lo in range(0, n, _CHUNK):
        sl = slice(lo, min(n, lo + _CHUNK))
        m = sl.stop - sl.start
        key = np.full((len(pods), m), -1, dtype=np.float64)  # -1 = not visible
        dists = np.full((len(pods), m), np.inf)
        for i, p in enumerate(pods):
            vis = p.visible_mask(t_vis[sl], tol_ns)
            if not vis.any():
                continue
            score, dist = _evidence(p, code[sl], t_conn[sl], sent[sl], ended[sl], ready_means_listening, tol_ns)
            # visible only within the tolerance of its endpoint change: less likely
            edge = vis & ~p.visible_mask(t_vis[sl], 0)
            score = np.where(edge, np.maximum(score - 1, 1), score).astype(np.int8)
            # higher score first, then nearer evidence (dist scaled into (0, 1])
            k = score.astype(np.float64) + 1.0 / (1.0 + dist.astype(np.float64) / 1e6)
            key[i] = np.where(vis, k, -1.0)
            dists[i] = np.where(vis & (dist != NEVER), dist.astype(np.float64), np.inf)
        cols = np.arange(m)
        idx = key.argmax(axis=0)
        top = key[idx, cols]
        best[sl] = np.where(top >= 0, idx, -1)
        # rivals: the others with the same score whose evidence is not clearly farther
        same_score = (np.floor(key) == np.floor(top)[None, :]) & (key >= 0)
        same_score[idx, cols] = False
        d_best = dists[idx, cols]
        farther = np.isfinite(d_best)[None, :] & (dists > AMBIGUOUS_RATIO * d_best[None, :] + tol_ns)
        ties = same_score & ~farther & (top >= 0)[None, :]
        ambiguous[sl] = ties.any(axis=0)
        for c in np.flatnonzero(ambiguous[sl]):
            second[sl.start + c] = tuple(int(x) for x in np.flatnonzero(ties[:, c]))
    return best, ambiguous, second


def attribute(req: pd.DataFrame, pods: dict[str, PodLife], failed_mask: np.ndarray, *,
              ready_means_listening: bool = False, tol_ns: int = TOL_NS) -> pd.DataFrame:
    """One row per failed request (index = the request's row), with columns
    t_ns, outcome code, conn_id, reused, pod, phase, how, ambiguous,
    candidates, route_pod.

    ``ready_means_listening``: the readiness probe is a network probe
    (httpGet, tcpSocket), so a Ready pod was listening.
    ``tol_ns``: how far apart an event and a request time may be and still
    count as simultaneous; widened by the generators' clock uncertainty
    (manifest ``generators.clock_uncertainty_ns``) when the requests came
    from pods with clocks of their own."""
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
    candidates = np.full(len(f), None, dtype=object)
    guess = pod.copy()
    if need.any():
        nidx = np.flatnonzero(need)
        # a reused connection whose answers named no pod (a server that sends no
        # pod header): its pod is one of those visible when it was opened
        opened = _conn_opened(req)
        conn = f["conn_id"].to_numpy()[nidx]
        reused = f["conn_reused"].to_numpy(dtype=bool)[nidx]
        t_open = pd.Series(conn).map(opened).to_numpy(dtype=np.float64)
        t_vis = np.where(reused & ~np.isnan(t_open), np.nan_to_num(t_open), t_conn[nidx]).astype(np.int64)
        best, amb, second = _infer_from_endpoints(plist, code[nidx], t_conn[nidx], sent[nidx], ended[nidx],
                                                  ready_means_listening, t_vis, tol_ns)
        names = np.array([p.name for p in plist] + [None], dtype=object)
        guess[nidx] = names[best]  # -1 -> None
        pod[nidx] = np.where(amb, None, names[best])
        how[nidx] = np.where(best < 0, "no-endpoint", np.where(amb, "ambiguous", "endpoints"))
        ambiguous[nidx] = amb
        candidates[nidx[amb]] = [" | ".join([str(names[b]), *(str(names[r]) for r in rivals)])
                                 for b, rivals in zip(best[amb], second[amb])]

    pod = np.where(pd.notna(pod), pod, None)
    phase = np.full(len(f), -1, dtype=np.int8)
    for name, p in pods.items():
        sel = pod == name
        if sel.any():
            phase[sel] = phase_at(p, t_judge[sel], sent[sel], ended[sel], tol_ns)
    # an ambiguous pick keeps a phase when every candidate was in the same one
    for i in np.flatnonzero(ambiguous):
        ph = {int(phase_at(pods[x], t_judge[i:i + 1], sent[i:i + 1], ended[i:i + 1], tol_ns)[0])
              for x in str(candidates[i]).split(" | ")}
        phase[i] = ph.pop() if len(ph) == 1 else -1
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
        "candidates": candidates,
        #: the nearest candidate, even when ambiguous (only to measure how often a guess would be right)
        "guess": np.where(pd.notna(guess), guess, None),
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
    amb = att["how"].to_numpy(dtype=object) == "ambiguous"
    a_amb = att.loc[known & amb]
    a = att.loc[known & ~amb]
    guessed = int((a_amb["guess"].to_numpy(dtype=object) == a_amb["route_pod"].to_numpy(dtype=object)).sum())
    in_candidates = int(sum(str(r) in str(c).split(" | ") for r, c in
                            zip(a_amb["route_pod"].to_numpy(dtype=object), a_amb["candidates"].to_numpy(dtype=object))))
    right = (a["pod"].to_numpy(dtype=object) == a["route_pod"].to_numpy(dtype=object))
    by_how = {}
    for how, grp in a.assign(right=right).groupby("how", observed=True):
        by_how[str(how)] = {"failures": int(len(grp)), "correct": int(grp["right"].sum()),
                            "accuracy": round(float(grp["right"].mean()), 4)}
    return {
        # over the failures attributed to one pod (ambiguous ones are not a claim)
        "failures_with_ground_truth": int(len(a)),
        "correct": int(right.sum()),
        "accuracy": round(float(right.mean()), 4) if len(a) else None,
        "by_evidence": by_how,
        "ambiguous": int(len(a_amb)),
        # ambiguous failures whose real pod is one of the named candidates / the nearest one
        "ambiguous_real_pod_in_candidates": in_candidates,
        "ambiguous_nearest_was_right": guessed,
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
