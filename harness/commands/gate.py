"""`rollout-harness gate RUN_DIR`: the verdict as an exit code for CI —
0 pass, 1 fail, 2 bad input, 3 inconclusive — and one line saying why."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser(
        "gate", help="exit 0 pass / 1 fail / 2 bad input / 3 inconclusive for a run dir",
        description="Judge a run dir against its scenario's gate (maxFailedRequests, maxErrorRatio, "
        "maxDisruptionSeconds, maxP99LatencyMs; the run is inconclusive when the engine fell behind, the "
        "rollout did not complete or the baseline already failed). Prints one line; the exit code is the verdict.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="reports/<scenario>/<run-id>")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.analysis import analyse

    summary = analyse(args.run_dir).summary
    v = summary["verdict"]
    top = summary["findings"][0]["title"] if summary["findings"] else None
    print(v["headline"] + (f" — top finding: {top}" if top and v["status"] != "pass" else ""))
    return int(v["exit_code"])
