"""Analysis speed: a synthetic run dir with 1,000,000 request records and a
rolling update's lifecycle events, then analysis + the full report, timed.

The run: 8 replicas rolled one by one at 2,000 req/s for 500 s (half on new
connections, half on keep-alive ones), each old pod stopped without a
preStop, so new connections are refused while its endpoint update lags.
The records go through RequestWriter and the events through EventWriter,
as a real run writes them.

    .venv/bin/python bench/analysis_bench.py [--records N] [--keep DIR]

``analysis_bench()`` is what ``make bench`` calls; it prints one line and
returns the figures.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.model.events import EventKind, EventWriter, SourceKind  # noqa: E402
from harness.model.outcome import OUTCOME_CODE, Outcome  # noqa: E402
from harness.model.requests import REQUESTS_DIR, RequestWriter  # noqa: E402
from harness.model.rundir import MANIFEST_FILE, write_json_atomic  # noqa: E402
from harness.model.scenario import Scenario  # noqa: E402

S = 1_000_000_000
LIMIT_S = 15.0


def _events(path: Path, replicas: int, base_s: float, step_s: float, end_s: float) -> list[dict]:
    """Lifecycle of the rollout; returns per-pod windows for the records."""
    ew = EventWriter(path)
    pods = []
    t_end = int(end_s * S)
    for name, t in (("baseline", 0.0), ("disruption", base_s), ("settle", base_s + replicas * step_s),
                    ("end", end_s)):
        ew.emit(int(t * S), "", EventKind.PHASE, phase=name)
    for i in range(replicas):
        old, new = f"api-old-{i}", f"api-new-{i}"
        deletion = int((base_s + i * step_s + 2.0) * S)
        created = deletion - 2 * S
        for pod, t0 in ((old, -2 * S), (new, created)):
            ew.emit(t0, pod, EventKind.POD_CREATED)
            ew.emit(t0 + 10_000_000, pod, EventKind.CONTAINER_STARTED)
            ew.emit(t0 + 50_000_000, pod, EventKind.APP_LOG, SourceKind.APP_LOG, event="listening")
            ew.emit(t0 + 60_000_000, pod, EventKind.APP_LOG, SourceKind.APP_LOG, event="ready")
            ew.emit(t0 + 300_000_000, pod, EventKind.READY)
            ew.emit(t0 + 1_300_000_000, pod, EventKind.ENDPOINT_ADDED)
        removal = deletion + 1_100_000_000
        exit_t = deletion + 30_000_000
        ew.emit(deletion, old, EventKind.DELETION_REQUESTED)
        ew.emit(deletion, old, EventKind.ENDPOINT_TERMINATING)
        ew.emit(deletion, old, EventKind.SIGTERM_SENT)
        ew.emit(deletion + 1_000_000, old, EventKind.APP_SHUTDOWN_STARTED, SourceKind.APP_LOG, event="sigterm_received")
        ew.emit(deletion + 5_000_000, old, EventKind.APP_LOG, SourceKind.APP_LOG, event="listener_closed")
        ew.emit(exit_t - 1_000_000, old, EventKind.APP_LOG, SourceKind.APP_LOG, event="exiting")
        ew.emit(exit_t, old, EventKind.APP_EXITED, exit_code=0)
        ew.emit(removal, old, EventKind.ENDPOINT_REMOVED)
        pods.append({"name": old, "added": -2 * S + 1_300_000_000, "removed": removal, "stop": deletion + 5_000_000,
                     "exit": exit_t})
        pods.append({"name": new, "added": created + 1_300_000_000, "removed": t_end + S, "stop": t_end + S,
                     "exit": t_end + S})
    ew.close()
    return pods


def _route(sched: np.ndarray, pods: list[dict], rng: np.random.Generator) -> np.ndarray:
    """Index of the pod each request is routed to: random among the visible."""
    edges = sorted({p["added"] for p in pods} | {p["removed"] for p in pods})
    seg = np.searchsorted(np.array(edges), sched, side="right")
    out = np.empty(len(sched), dtype=np.int64)
    for k in np.unique(seg):
        t = edges[k - 1] if k > 0 else -10 * S
        visible = [i for i, p in enumerate(pods) if p["added"] <= t < p["removed"]]
        sel = seg == k
        out[sel] = np.array(visible)[rng.integers(0, len(visible), int(sel.sum()))]
    return out


def make_run_dir(root: Path, n: int = 1_000_000, *, rate: float = 2000.0, replicas: int = 8,
                 all_fail: bool = False) -> Path:
    """``all_fail``: every request fails (the attribution's worst case)."""
    root.mkdir(parents=True, exist_ok=True)
    duration = n / rate
    base_s, settle_s = duration * 0.12, duration * 0.12
    step_s = (duration - base_s - settle_s) / replicas
    pods = _events(root / "events.jsonl", replicas, base_s, step_s, duration)
    rng = np.random.default_rng(7)
    seq = np.arange(n, dtype=np.int64)
    sched = (seq * (S / rate)).astype(np.int64)
    sent = sched + rng.integers(20_000, 400_000, n)
    lat = (rng.lognormal(np.log(5e6), 0.4, n)).astype(np.int64)
    ended = sent + lat
    pod_i = _route(sched, pods, rng)
    names = np.array([p["name"] for p in pods], dtype=object)
    keep_alive = rng.random(n) < 0.5
    stop = np.array([p["stop"] for p in pods])[pod_i]
    removed = np.array([p["removed"] for p in pods])[pod_i]
    hit = (sent >= stop) & (sent < removed) if not all_fail else np.ones(n, dtype=bool)
    refused = ~keep_alive & hit
    closed = keep_alive & hit
    code = np.full(n, OUTCOME_CODE[Outcome.OK], dtype=np.int8)
    code[refused] = OUTCOME_CODE[Outcome.REFUSED]
    code[closed] = OUTCOME_CODE[Outcome.CLOSED]
    failed = refused | closed
    status = np.where(failed, 0, 200).astype(np.int16)
    sent[refused] = -1
    ended[refused] = sched[refused] + 200_000
    conn = np.where(keep_alive, 1_000_000 + pod_i * 64 + rng.integers(0, 4, n), 10_000_000 + seq)
    reused = keep_alive.astype(np.int8)
    pod = np.where(failed, None, names[pod_i])
    error = np.where(refused, "connection refused", np.where(closed, "server closed the connection", None))

    w = RequestWriter(root / REQUESTS_DIR / "worker-0.arrow", worker=0)
    errno = np.where(refused, 111, 0)
    route = names[pod_i]
    chunk = 100_000
    for lo in range(0, n, chunk):  # the public add(), as the engine records; flushed per chunk
        sl = slice(lo, min(n, lo + chunk))
        for row in zip(seq[sl].tolist(), sched[sl].tolist(), sent[sl].tolist(), ended[sl].tolist(),
                       code[sl].tolist(), status[sl].tolist(), errno[sl].tolist(), error[sl].tolist(),
                       conn[sl].tolist(), reused[sl].tolist(), pod[sl].tolist(), route[sl].tolist()):
            w.add(*row)
        w.flush()
    w.close()
    scenario = Scenario.model_validate({"name": "bench", "deployment": {"replicas": replicas},
                                        "traffic": {"rate": rate}}).dump()
    write_json_atomic(root / MANIFEST_FILE, {
        "scenario": scenario, "platform": "synthetic", "status": "complete",
        "clock": {"monotonic_anchor_ns": 0, "wall_anchor_ns": 0},
        "generator": {"asked_rate": rate, "achieved_rate": rate},
        "rollout": {"completed": True, "error": None}})
    return root


def analysis_bench(n: int = 1_000_000, keep: str | Path | None = None, *, all_fail: bool = False) -> dict[str, Any]:
    """Generate, then time analysis + report; prints one line, returns the figures."""
    from harness.report import write_report

    tmp = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="analysis-bench-"))
    try:
        t0 = time.perf_counter()
        make_run_dir(tmp, n, all_fail=all_fail)
        gen_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        summary = write_report(tmp)
        took = time.perf_counter() - t0
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    acc = (summary["attribution"].get("accuracy") or {}).get("accuracy")
    ok = took <= LIMIT_S
    print(f"analysis + report of {summary['total']:,} request records: {took:.1f} s "
          f"(limit {LIMIT_S:g} s: {'met' if ok else 'NOT met'}); {summary['service_failed']:,} failures attributed, "
          f"accuracy {acc:.1%}; top finding: {summary['top_finding']} (generating the run dir took {gen_s:.1f} s)")
    return {"records": summary["total"], "seconds": round(took, 2), "limit_s": LIMIT_S, "met": ok,
            "accuracy": acc, "top_finding": summary["top_finding"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--keep", metavar="DIR", help="write the run dir here and keep it")
    ap.add_argument("--all-fail", action="store_true", help="every request fails (attribution's worst case)")
    args = ap.parse_args(argv)
    result = analysis_bench(args.records, args.keep, all_fail=args.all_fail)
    return 0 if result["met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
