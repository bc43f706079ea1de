"""What really happened to each failed request of a corpus run, from the
local platform's ground truth alone (never from the diagnosis rules): the
pod the traffic path really routed it to (``route_pod``), whether it rode a
reused keep-alive connection, and where its send and its end fall against
that pod's stop signal and process exit.

Why: when a cell's top finding disagrees with the expectation written before
the run, this says which of the two is wrong. Mechanisms::

    refused-after-signal     new connection refused by a pod whose stop signal had come (listener closed)
    refused-not-listening    refused by a pod with no stop signal yet (not started / not listening)
    new-conn-after-stop      a new connection sent after the stop signal, accepted by the kernel into a
                             backlog the server no longer accepted from, cut when the socket closed
    in-flight-at-signal      sent before the stop signal, cut without an answer
    cut-at-sigkill           in flight when the grace period ran out and SIGKILL came
    idle-cut-at-exit         sent after the signal onto a reused connection that was idle then, never
                             answered, cut when the process exited
    idle-close-race          the same, cut well before the exit (the server closed it while idle)
                             Both are the HTTP/1.1 keep-alive close race: the request was written onto a
                             connection the server was done with, no response byte; a retrying client
                             absorbs it. A quick graceful shutdown (nginx: ~15 ms) closes idle
                             connections and exits at once, so timing alone cannot tell the two apart.
    other                    anything else (HTTP errors, timeouts, no route)

Usage: ``python corpus/groundtruth.py RUN_DIR`` prints the counts and rows.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.analysis.rundata import load_run  # noqa: E402

#: a cut this close to the process exit is the exit's doing
EXIT_TOL_NS = 60_000_000
CUT = {"closed", "reset", "other"}
#: a new connection opened this little before the signal was still in the accept queue when the listener closed
NEAR_SIGNAL_NS = 5_000_000
#: the finding that names each mechanism (what the diagnosis should say)
NAMED_BY = {"refused-after-signal": "no-prestop", "new-conn-after-stop": "no-prestop",
            "in-flight-at-signal": "no-graceful-shutdown", "idle-cut-at-exit": "keepalive-close-race",
            "cut-at-sigkill": "short-grace",
            "idle-close-race": "keepalive-close-race"}


def pod_times(events: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for ev in events:
        k = {"sigterm_sent": "signal", "app_exited": "exit", "sigkill_sent": "sigkill"}.get(ev["kind"])
        if k and ev["pod"]:
            out.setdefault(ev["pod"], {}).setdefault(k, int(ev["t_ns"]))
    return out


def mechanism(row: Any, times: dict[str, dict[str, int]]) -> str:
    t = times.get(row.route_pod) if isinstance(row.route_pod, str) else None
    sig, ext = (t or {}).get("signal"), (t or {}).get("exit")
    if row.outcome == "refused":
        return "refused-after-signal" if sig is not None and row.sent_ns >= sig else "refused-not-listening"
    if row.outcome not in CUT or sig is None:
        return "other"
    kill = (t or {}).get("sigkill")
    if kill is not None and row.sent_ns <= (ext or kill) and row.ended_ns >= kill - EXIT_TOL_NS:
        return "cut-at-sigkill"
    if not bool(row.conn_reused) and row.sent_ns >= sig - NEAR_SIGNAL_NS:
        return "new-conn-after-stop"
    if row.sent_ns < sig:
        return "in-flight-at-signal"
    if ext is not None and row.ended_ns >= ext - EXIT_TOL_NS:
        return "idle-cut-at-exit"
    return "idle-close-race" if bool(row.conn_reused) else "other"


def failures(run_dir: str | Path) -> list[dict[str, Any]]:
    run = load_run(run_dir)
    times = pod_times(run.events)
    q = run.requests
    failed = q.loc[(q["outcome"] != "ok").to_numpy() & (q["outcome"] != "dropped").to_numpy()]
    rows = []
    for r in failed.itertuples():
        t = times.get(r.route_pod, {}) if isinstance(r.route_pod, str) else {}
        rows.append({"seq": int(r.seq), "outcome": str(r.outcome), "reused": bool(r.conn_reused),
                     "route_pod": r.route_pod if isinstance(r.route_pod, str) else None,
                     "sent_minus_signal_ms": None if "signal" not in t else round((r.sent_ns - t["signal"]) / 1e6, 1),
                     "ended_minus_exit_ms": None if "exit" not in t else round((r.ended_ns - t["exit"]) / 1e6, 1),
                     "mechanism": mechanism(r, times)})
    return rows


def counts(run_dir: str | Path) -> dict[str, int]:
    return dict(Counter(r["mechanism"] for r in failures(run_dir)))


def dominant_rule(mechanisms: dict[str, int]) -> str | None:
    """The finding ground truth says should come first: the one naming most failures."""
    by_rule: Counter[str] = Counter()
    for m, n in mechanisms.items():
        by_rule[NAMED_BY.get(m, "other")] += n
    if not by_rule:
        return None
    top = max(by_rule.values())
    return "|".join(sorted(r for r, n in by_rule.items() if n == top))  # a tie names both


if __name__ == "__main__":
    rows = failures(sys.argv[1])
    print(dict(Counter(r["mechanism"] for r in rows)))
    for r in rows[: int(sys.argv[2]) if len(sys.argv) > 2 else 40]:
        print(r)
