"""Which failures prove a failed rollout although the traffic engine fell
behind: refused/reset/closed requests pinned on a deleted pod, with the
engine on schedule from that pod's deletion until the request was sent."""

from __future__ import annotations

import types

import numpy as np
import pandas as pd

from harness.analysis.analyse import _server_caused_on_schedule
from harness.analysis.findings import CODE
from harness.model.outcome import Outcome

MS = 1_000_000


def _req(rows):
    """rows: (scheduled_ms, lag_ms or None for dropped, outcome)"""
    sched = np.array([r[0] * MS for r in rows], dtype=np.int64)
    sent = np.array([(r[0] + r[1]) * MS if r[1] is not None else -1 for r in rows], dtype=np.int64)
    code = np.array([CODE[Outcome(r[2])] for r in rows])
    return pd.DataFrame({"scheduled_ns": sched, "sent_ns": sent, "code": code})


def _count(rows, att_pods, deletion_ms=1000, limit=50, how="connection", routed=None, proxy=False):
    req = _req(rows)
    req["route_pod"] = [(routed or {}).get(i) for i in range(len(rows))]
    failed = [i for i, r in enumerate(rows) if r[2] != "ok"]
    att = pd.DataFrame({"pod": [att_pods.get(i) for i in failed], "how": how}, index=pd.Index(failed))
    pods = {"old": types.SimpleNamespace(deletion=deletion_ms * MS), "new": types.SimpleNamespace(deletion=None)}
    return _server_caused_on_schedule(req, np.ones(len(req), dtype=bool), att, pods, limit, proxy=proxy)


def test_a_closed_request_on_schedule_since_its_pods_deletion_counts():
    rows = [(0, 900, "ok"), (1100, 2, "ok"), (1500, 3, "closed")]  # the stall was before the deletion
    assert _count(rows, {2: "old"}) == 1


def test_a_stall_between_the_deletion_and_the_failure_voids_it():
    rows = [(1100, 400, "ok"), (1500, 3, "closed")]  # 400 ms late after the deletion: maybe a stale view
    assert _count(rows, {1: "old"}) == 0
    rows = [(1100, None, "dropped"), (1500, 3, "refused")]  # nothing sent on schedule there
    assert _count(rows, {1: "old"}) == 0


def test_the_failed_request_itself_must_be_on_schedule():
    assert _count([(1100, 2, "ok"), (1500, 80, "reset")], {1: "old"}) == 0


def test_timeouts_and_503s_and_unpinned_failures_never_count():
    rows = [(1100, 2, "connect_timeout"), (1200, 2, "read_timeout"), (1300, 2, "http_503"), (1400, 2, "closed"),
            (1500, 2, "closed")]
    # the closed at 1400 is not pinned on a pod, the one at 1500 on a pod that was never deleted
    assert _count(rows, {0: "old", 1: "old", 2: "old", 4: "new"}) == 0


def test_only_a_pods_own_connection_after_its_deletion_counts():
    rows = [(900, 2, "refused"), (1100, 2, "ok"), (1500, 3, "refused")]
    # before the deletion: not this termination's doing
    assert _count(rows, {0: "old", 2: "old"}) == 1
    # pinned by inference from the endpoints only (e.g. "no ready endpoint": no pod refused it)
    assert _count(rows, {2: "old"}, how="endpoints") == 0
    # ... unless the traffic path itself routed it to that pod
    assert _count(rows, {2: "old"}, how="endpoints", routed={2: "old"}) == 1


def test_the_proxys_502_and_504_count_when_its_access_log_names_the_deleted_pod():
    """Through the ingress the client meets the proxy, not the pod: the
    proxy's 502 (the pod refused it) and 504 (its dial to the gone pod timed
    out), traced by its access log to a pod deleted before, on schedule."""
    rows = [(1100, 2, "ok"), (1500, 3, "http_502"), (1600, 2, "http_504"), (1700, 2, "http_503")]
    assert _count(rows, {1: "old", 2: "old", 3: "old"}, how="ingress-log", proxy=True) == 2
    # a stall after the deletion voids them, as for a refused request
    late = [(1100, 400, "ok"), (1500, 3, "http_502")]
    assert _count(late, {1: "old"}, how="ingress-log", proxy=True) == 0
    # only the proxy's own record pins them: not an inference, and never counted as the server's own
    assert _count(rows, {1: "old", 2: "old"}, how="endpoints", routed={1: "old", 2: "old"}, proxy=True) == 0
    assert _count(rows, {1: "old", 2: "old"}, how="ingress-log") == 0
    # a pod never deleted (e.g. an upstream keep-alive race on a serving pod) is not this rule's
    assert _count(rows, {1: "new", 2: "new"}, how="ingress-log", proxy=True) == 0
