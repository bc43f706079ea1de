"""The ingress hop in the analysis: the proxy's access log joined to the
request records (by the engine's X-Request-Id = seq), so a proxy 502/503/504,
which carries no pod header, is attributed to the upstream pod the proxy
really sent it to; and what the proxy did that the client never saw
(retries that turned a failed attempt into a success).

Upstream address -> pod comes from the ingress's own endpoint events
(``endpoint_added`` with detail ``hop: ingress, upstream: host:port``), so
the same code serves the local platform and a cluster.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from harness.model.events import EventDict, EventKind
from harness.model.ingresslog import AccessRecord, proxy_errors, read_access_log, retry_attempts

#: columns added to the request records of a run that went through the ingress
COLUMNS = ("upstream", "upstream_pod", "proxy_status", "origin_status", "origin_duration_ns", "proxy_retries")


def upstream_pods(events: list[EventDict]) -> dict[str, str]:
    """upstream host:port -> pod, as the ingress saw it."""
    out: dict[str, str] = {}
    for ev in events:
        d = ev.get("detail") or {}
        if ev["kind"] == EventKind.ENDPOINT_ADDED and d.get("hop") == "ingress" and d.get("upstream") and ev["pod"]:
            out[str(d["upstream"])] = ev["pod"]
    return out


def join(req: pd.DataFrame, records: list[AccessRecord], pods_by_upstream: dict[str, str]) -> pd.DataFrame:
    """``req`` with COLUMNS filled from the access log (NaN/None where the
    proxy logged nothing for a request: it never reached the proxy)."""
    out = req.copy()
    if not records:
        for c in COLUMNS:
            out[c] = None
        return out
    log = pd.DataFrame.from_records(records).drop_duplicates("seq", keep="last").set_index("seq")
    seq = out["seq"]
    out["upstream"] = seq.map(log["upstream"]).replace("", None)
    out["upstream_pod"] = out["upstream"].map(pods_by_upstream)
    out["upstream_pod"] = out["upstream_pod"].where(out["upstream_pod"].notna(), None)
    out["proxy_status"] = seq.map(log["status"])
    out["origin_status"] = seq.map(log["origin_status"])
    out["origin_duration_ns"] = seq.map(log["origin_duration_ns"])
    out["proxy_retries"] = seq.map(log["retries"])
    return out


def via_ingress(req: pd.DataFrame) -> bool:
    return "upstream_pod" in req.columns


def load(run_dir: Any, req: pd.DataFrame, events: list[EventDict], wall_anchor_ns: int) -> pd.DataFrame:
    """The run's requests, joined to its access log when it has one."""
    records = read_access_log(run_dir, wall_anchor_ns)
    if records is None:
        return req
    out = join(req, records, upstream_pods(events))
    out.attrs["proxy_errors"] = proxy_errors(run_dir)
    out.attrs["retry_attempts"] = retry_attempts(run_dir)
    return out


def summary(run_dir: Any, req: pd.DataFrame) -> dict[str, Any] | None:
    """What the ingress hop did in this run (None without an ingress)."""
    if not via_ingress(req):
        return None
    logged = req["proxy_status"].notna().to_numpy()
    status = req["proxy_status"].to_numpy()
    retries = req["proxy_retries"].fillna(0).to_numpy()
    retried_ok = logged & (retries > 0) & (status < 500)
    return {
        "logged": int(logged.sum()),
        "not_logged": int((~logged).sum()),
        "proxy_5xx": {str(int(s)): int(n) for s, n in zip(*np.unique(status[logged & (status >= 500)],
                                                                      return_counts=True))},
        "retried": int((logged & (retries > 0)).sum()),
        "retries_absorbed": int(retried_ok.sum()),
        "retry_attempts_logged": int(req.attrs.get("retry_attempts") or 0),
        "proxy_errors": dict(req.attrs.get("proxy_errors") or {}),
    }
