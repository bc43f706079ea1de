#!/usr/bin/env python3
"""Where the time of a `run --repeat` series goes, from its run dirs alone.

    python bench/rollout_time.py reports/best-practice/series-XXXX

For every rollout (from its manifest's phase times and its events.jsonl):
the gap since the lane's previous rollout ended (session start, run dir,
replay), the baseline, the rollout itself split into its pod steps (for
each new pod: created -> container started -> ready -> available after
minReadySeconds; for each old pod: deletion -> SIGTERM -> exit), the wait
after the rollout completed for the deleted pods to end (the observation
rule: every deleted pod observed to its exit), and the settle. A benchmark
helper: it reports, it asserts nothing.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def _events(run_dir: Path) -> list[dict]:
    out = []
    for line in (run_dir / "events.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def rollout_times(run_dir: Path) -> dict[str, float] | None:
    m = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    ph = m.get("phases_t_ns") or {}
    if not all(k in ph for k in ("baseline", "disruption", "settle", "end")):
        return None
    ev = _events(run_dir)
    d0 = ph["disruption"]
    first = {}
    for e in ev:
        if e.get("t_ns", 0) < d0:
            continue
        first.setdefault((e["kind"], e.get("pod", "")), e["t_ns"])
    complete = next((e["t_ns"] for e in ev if e["kind"] == "rollout_complete" and e["t_ns"] >= d0), None)
    created = {p: t for (k, p), t in first.items() if k == "pod_created"}
    started = [first[("container_started", p)] - t for p, t in created.items() if ("container_started", p) in first]
    ready = [first[("ready", p)] - first[("container_started", p)] for p in created
             if ("ready", p) in first and ("container_started", p) in first]
    deleted = {p: t for (k, p), t in first.items() if k == "deletion_requested"}
    exited = [first[("app_exited", p)] - t for p, t in deleted.items() if ("app_exited", p) in first]
    s = 1e9
    return {
        "start_s": ph["baseline"] / s,
        "baseline": (ph["disruption"] - ph["baseline"]) / s,
        "rollout": ((complete or ph["settle"]) - d0) / s,
        "until_old_pods_ended": (ph["settle"] - (complete or ph["settle"])) / s,
        "settle": (ph["end"] - ph["settle"]) / s,
        "end_s": ph["end"] / s,
        "new_pod_start": statistics.mean(started) / s if started else 0.0,
        "new_pod_start_to_ready": statistics.mean(ready) / s if ready else 0.0,
        "old_pod_delete_to_exit": statistics.mean(exited) / s if exited else 0.0,
        "new_pods": len(created),
    }


def main() -> int:
    series = Path(sys.argv[1])
    meta = json.loads((series / "series.json").read_text(encoding="utf-8"))
    lanes: dict[int, list] = {}
    for r in meta.get("rollouts", []):
        if not r.get("run_dir"):
            continue
        rd = Path(r["run_dir"])
        m = json.loads((rd / "manifest.json").read_text(encoding="utf-8"))
        t = rollout_times(rd)
        if t is not None:
            lanes.setdefault((m.get("series") or {}).get("lane", 1), []).append((r.get("index"), t))
    cols = ("gap", "baseline", "rollout", "until_old_pods_ended", "settle", "new_pod_start",
            "new_pod_start_to_ready", "old_pod_delete_to_exit")
    print("lane rollout " + " ".join(f"{c:>12.12}" for c in cols))
    for lane, rows in sorted(lanes.items()):
        prev_end = None
        for idx, t in sorted(rows, key=lambda x: x[1]["start_s"]):
            t["gap"] = t["start_s"] - prev_end if prev_end is not None else t["start_s"]
            prev_end = t["end_s"]
            print(f"{lane:>4} {idx:>7} " + " ".join(f"{t[c]:>12.2f}" for c in cols))
    return 0


if __name__ == "__main__":
    sys.exit(main())
