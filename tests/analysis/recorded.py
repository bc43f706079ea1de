"""Tables recorded from real runs, for the rule tests.

``record(run_dir, out)`` keeps, from a real run dir, what the analysis of
its failures reads: the manifest's scenario and status, every lifecycle
event, and the request rows that matter — every failure, the first request
of each connection that failed (when it was opened, the pod that answered
on it), each pod's first and last successful answers, and every tenth other
row (the run's send lag, its steady traffic). ``load(name, root)`` writes
that back as a run dir the analysis reads like any other.

    python -m tests.analysis.recorded RUN_DIR tests/analysis/recorded/NAME.json.gz

The rule tests (test_recorded_rules.py) need no real server: the servers
ran once, when the table was recorded.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from harness.analysis.rundata import OK_CODE, load_run
from harness.model.events import EVENTS_FILE, read_events
from harness.model.requests import COLUMNS, REQUESTS_DIR, RequestWriter
from harness.model.outcome import OUTCOMES
from harness.model.rundir import MANIFEST_FILE, write_json_atomic

HERE = Path(__file__).parent / "recorded"
KEEP_EVERY = 10


def record(run_dir: Path, out: Path) -> dict[str, Any]:
    run = load_run(run_dir)
    req = run.requests
    code = req["code"].to_numpy()
    keep = code != OK_CODE
    conns = set(req.loc[keep, "conn_id"].to_list()) - {-1}
    on_failed_conn = req["conn_id"].isin(conns).to_numpy()
    first_on_conn = ~req["conn_id"].duplicated().to_numpy()
    keep |= on_failed_conn & first_on_conn
    answered = req["pod"].notna().to_numpy()
    keep |= on_failed_conn & answered & ~req.loc[:, ["conn_id"]].assign(a=answered).duplicated().to_numpy()
    ok = req.loc[code == OK_CODE]
    for col in ("pod", "route_pod"):
        g = ok.loc[ok[col].notna()].groupby(col)
        keep[g["ended_ns"].idxmin().to_numpy()] = True
        keep[g["sent_ns"].idxmax().to_numpy()] = True
    keep[::KEEP_EVERY] = True
    rows = req.loc[keep, [c for c in COLUMNS if c != "outcome"] + ["code"]]
    table = {c: [None if (isinstance(v, float) and np.isnan(v)) else (v.item() if hasattr(v, "item") else v)
                 for v in rows[c].to_list()] for c in rows.columns}
    m = run.manifest
    data = {"source": str(run_dir), "manifest": {k: m.get(k) for k in ("scenario", "platform", "status", "rollout",
                                                                         "observation", "kubernetes") if k in m},
            "events": read_events(run_dir), "requests": table, "kept_rows": int(keep.sum()), "all_rows": len(req)}
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(out, "wt", encoding="utf-8") as f:
        json.dump(data, f, separators=(",", ":"))
    return data


def load(name: str, root: Path) -> Path:
    """The recorded table ``name`` as a run dir under ``root``."""
    with gzip.open(HERE / f"{name}.json.gz", "rt", encoding="utf-8") as f:
        data = json.load(f)
    run_dir = Path(root) / name
    run_dir.mkdir(parents=True)
    write_json_atomic(run_dir / MANIFEST_FILE, data["manifest"])
    t = data["requests"]
    w = RequestWriter(run_dir / REQUESTS_DIR / "worker-0.arrow", worker=0)
    for i in range(len(t["seq"])):
        w.add(t["seq"][i], t["scheduled_ns"][i], t["sent_ns"][i], t["ended_ns"][i], t["code"][i], t["status"][i],
              t["errno"][i], t["error"][i], t["conn_id"][i], bool(t["conn_reused"][i]), t["pod"][i],
              t["route_pod"][i])
    w.close()
    with open(run_dir / EVENTS_FILE, "w", encoding="utf-8") as f:
        for ev in data["events"]:
            f.write(json.dumps(ev) + "\n")
    assert len(OUTCOMES) > max(t["code"], default=0)
    return run_dir


if __name__ == "__main__":
    d = record(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"{sys.argv[2]}: {d['kept_rows']} of {d['all_rows']} rows, {len(d['events'])} events")
