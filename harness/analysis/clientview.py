"""The client's view of the failures: which of them a standard retrying
HTTP client would have absorbed without its user ever seeing them.

The rule is the one Go's net/http Transport applies (``shouldRetryRequest``)
and browsers follow: a request is replayed once, on a new connection, when
its method is idempotent (GET, HEAD, OPTIONS, TRACE, PUT, DELETE), it was
sent on a *reused* keep-alive connection, and that connection failed before
any byte of a response arrived (closed or reset). A refused connect, a
timeout, a 5xx or a response cut part-way is seen by every client.

The gate stays strict by default (every failure counts); a scenario's
``gate.countFailures: clientVisible`` counts only the failures such clients
would still see.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from harness.analysis.findings import CODE, no_response_byte
from harness.analysis.runspec import IDEMPOTENT_METHODS, RunSpec
from harness.model.outcome import Outcome

RULE_TEXT = ("a client that replays an idempotent request once when a reused keep-alive connection fails "
             "before any response byte (Go net/http Transport, browsers)")


def retryable(att: pd.DataFrame, req: pd.DataFrame, spec: RunSpec) -> np.ndarray:
    """Per attributed failure: would such a client have retried it transparently?"""
    if not len(att) or spec.method.upper() not in IDEMPOTENT_METHODS:
        return np.zeros(len(att), dtype=bool)
    code = att["code"].to_numpy()
    return (att["reused"].to_numpy(dtype=bool) & np.isin(code, [CODE[Outcome.CLOSED], CODE[Outcome.RESET]])
            & no_response_byte(att, req))


def client_view(att: pd.DataFrame, req: pd.DataFrame, spec: RunSpec, window_rows: np.ndarray) -> dict[str, Any]:
    """Counts over the rollout window (what the gate judges): failed,
    retried transparently, visible to any client; and the sentence."""
    in_window = np.isin(att.index.to_numpy(), np.flatnonzero(window_rows)) if len(att) else np.zeros(0, bool)
    r = retryable(att, req, spec)
    n = int(in_window.sum())
    m = int((r & in_window).sum())
    return {
        "failed": n,
        "retried_transparently": m,
        "visible": n - m,
        "all_runs_failed": int(len(att)),
        "all_runs_retried_transparently": int(r.sum()),
        "method": spec.method,
        "rule": RULE_TEXT,
        "sentence": (f"{n} failed; {m} of them would be retried transparently by such clients; "
                     f"{n - m} visible to any client"),
    }
