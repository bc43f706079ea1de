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


def _count(rows, att_pods, deletion_ms=1000, limit=50, how="connection", routed=None):
    req = _req(rows)
    req["route_pod"] = [(routed or {}).get(i) for i in range(len(rows))]
    failed = [i for i, r in enumerate(rows) if r[2] != "ok"]
    att = pd.DataFrame({"pod": [att_pods.get(i) for i in failed], "how": how}, index=pd.Index(failed))
    pods = {"old": types.SimpleNamespace(deletion=deletion_ms * MS), "new": types.SimpleNamespace(deletion=None)}
    return _server_caused_on_schedule(req, np.ones(len(req), dtype=bool), att, pods, limit)


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
