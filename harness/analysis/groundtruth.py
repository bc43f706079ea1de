"""Hold every finding to the local platform's ground truth.

A finding claims a mechanism for the failures it explains: a pod was
killed under them, exited under them, was in the endpoints before it could
serve, had stopped serving while still routed... On the local platform each
failed request records the pod its connection really went to
(``route_pod``); this module checks each claimed failure against what that
pod was really doing at that moment, and counts the findings the ground
truth contradicts (more than CONTRADICTED_SHARE of the failures it could
check). On a cluster there is no ground truth: nothing is checked.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd

from harness.analysis.findings import AFTER_END_NS, TOL_NS
from harness.analysis.podlife import NEVER, PodLife
from harness.analysis.findings import graceful_exit

#: a finding is contradicted when the ground truth contradicts more than this share of its checked failures
CONTRADICTED_SHARE = 0.10


def _v(x: int | None) -> int:
    return NEVER if x is None else int(x)


def _holds_killed(p: PodLife, t, sent, ended, refused) -> np.ndarray:
    k = _v(p.sigkill)
    return (k != NEVER) & (sent <= k + TOL_NS) & (ended >= k - TOL_NS)


def _holds_exit(p: PodLife, t, sent, ended, refused) -> np.ndarray:
    e = _v(p.end)
    return ((e != NEVER) & ~np.full(len(t), graceful_exit(p)) & (sent <= e + AFTER_END_NS)
            & (ended >= e - TOL_NS))


def _holds_race(p: PodLife, t, sent, ended, refused) -> np.ndarray:
    # the pod was still running when the request was written on its connection
    return sent <= _v(p.end) + TOL_NS


def _holds_stopping(p: PodLife, t, sent, ended, refused) -> np.ndarray:
    marks = [x for x in (p.deletion, p.stop_signal) if x is not None]
    return t >= (min(marks) if marks else NEVER) - TOL_NS


def _holds_not_ready(p: PodLife, t, sent, ended, refused) -> np.ndarray:
    serving = _v(p.serving_from)
    listening = _v(p.listening)
    return (t < serving + TOL_NS) & ~(refused & (t >= listening))


def _holds_shutdown(p: PodLife, t, sent, ended, refused) -> np.ndarray:
    marks = [x for x in (p.stop_signal, p.shutdown_started, p.draining, p.listener_closed) if x is not None]
    return t >= (min(marks) if marks else NEVER) - TOL_NS


#: rule -> what must hold of the request's real pod
CHECKS: dict[str, Callable[..., np.ndarray]] = {
    "short-grace": _holds_killed,
    "no-graceful-shutdown": _holds_exit,
    "keepalive-close-race": _holds_race,
    "no-prestop": _holds_stopping,
    "prestop-too-short": _holds_stopping,
    "no-readiness-probe": _holds_not_ready,
    "premature-readiness": _holds_not_ready,
    "keepalive-cut": _holds_shutdown,
}


def check_findings(findings: list[dict[str, Any]], claims: dict[str, pd.Index], att: pd.DataFrame,
                   pods: dict[str, PodLife], refused_code: int) -> dict[str, Any] | None:
    """Annotate each checkable finding with ``ground_truth`` {checked,
    contradicted, wrong_pod}; return the run's totals (None without ground truth)."""
    if not len(att) or not att["route_pod"].notna().any():
        return None
    checked = contradicted = 0
    names: list[str] = []
    for f in findings:
        check = CHECKS.get(f["rule"])
        rows = claims.get(f["rule"])
        if check is None or rows is None or not len(rows):
            continue
        a = att.loc[rows]
        a = a.loc[a["route_pod"].notna()]
        if a.empty:
            continue
        holds = np.zeros(len(a), dtype=bool)
        real = a["route_pod"].to_numpy(dtype=object)
        t, sent, ended = a["t_ns"].to_numpy(), a["sent_ns"].to_numpy(), a["ended_ns"].to_numpy()
        sent = np.where(sent >= 0, sent, t)
        refused = a["code"].to_numpy() == refused_code
        for name in set(real):
            p = pods.get(str(name))
            sel = real == name
            if p is not None:
                holds[sel] = check(p, t[sel], sent[sel], ended[sel], refused[sel])
        bad = int((~holds).sum())
        named = a["how"].to_numpy(dtype=object) != "ambiguous"
        wrong_pod = int((named & (a["pod"].to_numpy(dtype=object) != real)).sum())
        is_contradicted = bad > CONTRADICTED_SHARE * len(a)
        f["ground_truth"] = {"checked": int(len(a)), "contradicted_failures": bad, "wrong_pod": wrong_pod,
                             "contradicted": is_contradicted}
        checked += 1
        if is_contradicted:
            contradicted += 1
            names.append(f["rule"])
    return {"findings_checked": checked, "findings_contradicted": contradicted, "contradicted_rules": names,
            "threshold_share": CONTRADICTED_SHARE}
