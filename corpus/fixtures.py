"""Record a corpus run dir as a small fixture for the analysis tests, and
turn it back into a run dir.

Why: rule unit tests should use tables from real servers (no server needed
to run them). A fixture keeps what the rules read: the manifest, the
lifecycle events (probe results dropped), every failed request, and the ok
requests that give it context (those near an old pod's lifecycle events,
each connection's last answer before a failure, each pod's first answer,
and a thin sample of the rest). ``record`` checks that the fixture analyses
to the same failures, attribution and findings as the full run, and keeps
more ok rows until it does.

    python corpus/fixtures.py RUN_DIR NAME     # -> tests/analysis/fixtures/corpus-NAME.{json,requests.csv.gz}
"""

from __future__ import annotations

import csv
import gzip
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "corpus"))

from harness.analysis import analyse  # noqa: E402
from harness.analysis.rundata import load_run  # noqa: E402
from harness.model.events import EventWriter  # noqa: E402
from harness.model.outcome import OUTCOME_CODE, Outcome  # noqa: E402
from harness.model.requests import REQUESTS_DIR, RequestWriter  # noqa: E402
from harness.model.rundir import MANIFEST_FILE, write_json_atomic  # noqa: E402

import groundtruth  # noqa: E402

FIXTURES = ROOT / "tests" / "analysis" / "fixtures"
COLUMNS = ["seq", "scheduled_ns", "sent_ns", "ended_ns", "outcome", "status", "errno", "error", "conn_id",
           "conn_reused", "pod", "route_pod"]
NEAR_NS = 300_000_000
LIFECYCLE = {"deletion_requested", "sigterm_sent", "app_exited", "sigkill_sent", "endpoint_removed",
             "endpoint_terminating", "not_ready"}


def _keep_mask(run: Any, every: int) -> np.ndarray:
    q = run.requests
    n = len(q)
    keep = np.zeros(n, dtype=bool)
    ok = (q["outcome"] == "ok").to_numpy()
    keep |= ~ok
    keep[::every] = True
    ended = q["ended_ns"].to_numpy()
    for ev in run.events:
        if ev["kind"] in LIFECYCLE:
            keep |= np.abs(ended - int(ev["t_ns"])) <= NEAR_NS
    first = q.loc[ok].drop_duplicates("pod").index.to_numpy()
    keep[first] = True
    conn = q["conn_id"].to_numpy()
    for i in np.flatnonzero(~ok):
        prev = np.flatnonzero(ok[:i] & (conn[:i] == conn[i]))
        if len(prev):
            keep[prev[-1]] = True
    return keep


def _facts(a: Any) -> dict[str, Any]:
    s = a.summary
    acc = s["attribution"]["accuracy"]
    return {"service_failed": s["service_failed"], "rollout_failures": {k: v for k, v in s["rollout_window"]["outcomes"].items() if k != "ok"},
            "findings": [[f["rule"], f.get("failures")] for f in s["findings"]],
            "attribution_correct": None if acc is None else acc["correct"]}


def _write_fixture(run: Any, keep: np.ndarray, name: str, source: dict[str, Any]) -> None:
    q = run.requests.loc[keep]
    with gzip.open(FIXTURES / f"corpus-{name}.requests.csv.gz", "wt", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for r in q.itertuples():
            w.writerow([r.seq, r.scheduled_ns, r.sent_ns, r.ended_ns, r.outcome, r.status, r.errno,
                        "" if not isinstance(r.error, str) else r.error, r.conn_id, int(bool(r.conn_reused)),
                        r.pod if isinstance(r.pod, str) else "", r.route_pod if isinstance(r.route_pod, str) else ""])
    events = [ev for ev in run.events if ev["kind"] != "probe"]
    doc = {"source": source, "manifest": run.manifest, "events": events}
    (FIXTURES / f"corpus-{name}.json").write_text(json.dumps(doc, indent=None, separators=(",", ":")) + "\n")


def materialise(name: str, root: Path) -> Path:
    """Write the fixture ``corpus-NAME`` as a run dir under ``root``."""
    doc = json.loads((FIXTURES / f"corpus-{name}.json").read_text())
    d = Path(root) / f"corpus-{name}"
    d.mkdir(parents=True, exist_ok=True)
    write_json_atomic(d / MANIFEST_FILE, doc["manifest"])
    w = RequestWriter(d / REQUESTS_DIR / "worker-000.arrow", worker=0)
    with gzip.open(FIXTURES / f"corpus-{name}.requests.csv.gz", "rt", newline="") as fh:
        for r in csv.DictReader(fh):
            w.add(int(r["seq"]), int(r["scheduled_ns"]), int(r["sent_ns"]), int(r["ended_ns"]),
                  OUTCOME_CODE[Outcome(r["outcome"])], int(r["status"]), int(r["errno"]), r["error"] or None,
                  int(r["conn_id"]), r["conn_reused"] == "1", r["pod"] or None, r["route_pod"] or None)
    w.close()
    ew = EventWriter(d / "events.jsonl")
    for ev in doc["events"]:
        ew.emit(ev["t_ns"], ev["pod"], ev["kind"], ev["source"], **(ev.get("detail") or {}))
    ew.close()
    return d


def record(run_dir: Path, name: str, tmp: Path) -> dict[str, Any]:
    run = load_run(run_dir)
    full = _facts(analyse(run_dir))
    truth = groundtruth.counts(run_dir)
    for every in (20, 10, 5, 2, 1):
        keep = _keep_mask(run, every)
        source = {"run_dir": str(run_dir), "rows": int(len(run.requests)), "kept_rows": int(keep.sum()),
                  "full_run": full, "ground_truth": truth, "truth_top": groundtruth.dominant_rule(truth)}
        _write_fixture(run, keep, name, source)
        if _facts(analyse(materialise(name, tmp / f"{every}"))) == full:
            return source
    raise SystemExit(f"{run_dir}: even the full table does not analyse the same; not recorded")


if __name__ == "__main__":
    import tempfile
    with tempfile.TemporaryDirectory() as t:
        print(json.dumps(record(Path(sys.argv[1]), sys.argv[2], Path(t))))
