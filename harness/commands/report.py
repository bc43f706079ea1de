"""`rollout-harness report RUN_DIR`: (re-)analyse a run dir and write its
report (summary.json, index.html, PNGs, junit.xml); prints the verdict and
where the report is."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "report", help="re-render the report of a run dir",
        description="Analyse a run dir (requests, events, manifest) and write summary.json, index.html, "
        "the PNG charts and junit.xml into it. Exit 0 once written (use 'gate' for the verdict's exit code); "
        "2 if RUN_DIR is not a run dir.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="reports/<scenario>/<run-id>")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.report import write_report

    summary = write_report(args.run_dir)
    v = summary["verdict"]
    print(v["headline"])
    for f in summary["findings"][:3]:
        print(f"  - {f['title']} ({f['failures']} failed requests)\n    fix: {f['fix']}")
    print(f"report: {Path(args.run_dir) / 'index.html'}")
    return 0
