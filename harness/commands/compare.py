"""`rollout-harness compare RUN_DIR... [--out DIR]`: runs side by side, one
HTML page and one PNG (failed requests by outcome, disruption seconds, p99
in the rollout, top finding per scenario)."""

from __future__ import annotations

import argparse
import datetime as dt


def register(sub) -> None:
    p = sub.add_parser(
        "compare", help="compare runs side by side (one HTML page + one PNG)",
        description="Compare run dirs side by side. A directory of runs (reports/<scenario>) stands for "
        "its latest run. Writes compare.html and compare.png into --out.")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run dirs or reports/<scenario> dirs")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="where to write (default reports/compare/<timestamp>)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.report.compare import write_compare

    out = args.out or f"reports/compare/{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}"
    result = write_compare(args.run_dirs, out)
    width = max(len(r["label"]) for r in result["rows"])
    for r in result["rows"]:
        print(f"{r['label']:<{width}}  {r['verdict']:<12} failed {r['failed']:>6}  disruption {r['disruption_seconds']:>6g} s"
              f"  p99 {r['p99_ms']} ms  top: {r['top_title']}")
    print(f"comparison: {result['html']} (chart {result['png']})")
    return 0
