#!/usr/bin/env python3
"""`make bench-repeat`: N best-practice rollouts on the local platform in
one invocation (run --repeat N --lanes L), timed.

Prints the wall time, the load average before and after (the machine may
be shared: a figure without its load is not a figure), how the time
divides (deploy, rollout windows, the tail after the last rollout) and the
ratio of the wall time to N back-to-back single runs' worth of rollout
windows. No pass/fail bar: a benchmark reports.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--lanes", type=int, default=2)
    ap.add_argument("--scenario", default="best-practice")
    ap.add_argument("--set", dest="overrides", action="append",
                    default=["disruption.baselineSeconds=2", "disruption.settleSeconds=2"])
    args = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="bench-repeat-")) / "series"
    cmd = [sys.executable, "-m", "harness", "run", str(ROOT / "scenarios" / f"{args.scenario}.yaml"), "-q",
           "--repeat", str(args.repeat), "--lanes", str(args.lanes), "--out", str(out)]
    for s in args.overrides:
        cmd += ["--set", s]
    env = dict(os.environ, ROLLOUT_HARNESS_HISTORY=str(out.parent / "history.sqlite"))
    load0 = os.getloadavg()
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    load1 = os.getloadavg()
    print(" ".join(cmd[2:]))
    print(proc.stdout.strip())
    if proc.returncode not in (0, 1, 3) or "Traceback" in proc.stderr:
        print(proc.stderr[-2000:], file=sys.stderr)
        return proc.returncode
    meta = json.loads((out / "series.json").read_text())
    windows = []
    for r in meta["rollouts"]:
        if r.get("run_dir"):
            m = json.loads((Path(r["run_dir"]) / "manifest.json").read_text())
            ph = m.get("phases_t_ns") or {}
            if "baseline" in ph and "end" in ph:
                windows.append((ph["baseline"] / 1e9, ph["end"] / 1e9))
    busy = sum(b - a for a, b in windows)
    first = min((a for a, _ in windows), default=0.0)
    last = max((b for _, b in windows), default=0.0)
    print(f"\n{args.repeat} rollouts, {args.lanes} lane(s): wall {wall:.1f} s  (exit {proc.returncode}, "
          f"verdict {meta['verdict']['status']})")
    print(f"load average before {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}, after {load1[0]:.2f} {load1[1]:.2f} "
          f"{load1[2]:.2f} ({os.cpu_count()} CPUs)")
    print(f"deploy + first baseline start {first:.1f} s; rollouts {first:.1f}..{last:.1f} s; "
          f"after the last rollout (reports, history, teardown) {wall - last:.1f} s")
    if windows:
        print(f"sum of the rollouts' own windows {busy:.1f} s (mean {busy / len(windows):.1f} s); "
              f"wall / sum = {wall / busy:.2f} (lanes overlap windows; < 1 means faster than back to back)")
    # where a rollout's window goes (bench/rollout_time.py), mean over the rollouts
    sys.path.insert(0, str(ROOT / "bench"))
    from rollout_time import rollout_times

    parts = [t for t in (rollout_times(Path(r["run_dir"])) for r in meta["rollouts"] if r.get("run_dir")) if t]
    if parts:
        keys = ("baseline", "rollout", "until_old_pods_ended", "settle", "new_pod_start_to_ready",
                "old_pod_delete_to_exit")
        print("mean per rollout: " + ", ".join(f"{k} {sum(t[k] for t in parts) / len(parts):.2f} s" for k in keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
