"""`rollout-harness gate RUN_DIR`: the verdict as an exit code for CI —
0 pass, 1 fail, 2 bad input, 3 inconclusive — and one line saying why.

RUN_DIR may be a series dir (run --repeat): its aggregate verdict.
``--baseline history`` judges against the configuration's history instead
of the scenario's thresholds (docs/proof.md)."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser(
        "gate", help="exit 0 pass / 1 fail / 2 bad input / 3 inconclusive for a run dir",
        description="Judge a run dir against its scenario's gate (maxFailedRequests, maxErrorRatio, "
        "maxDisruptionSeconds, maxP99LatencyMs; the run is inconclusive when the engine fell behind, the "
        "rollout did not complete or the baseline already failed). Prints one line; the exit code is the verdict. "
        "A series dir (run --repeat) is judged by its aggregate verdict (pass, fail, flaky, inconclusive).")
    p.add_argument("run_dir", metavar="RUN_DIR", help="reports/<scenario>/<run-id> or a series dir")
    p.add_argument("--baseline", choices=("scenario", "history"), default="scenario",
                   help="scenario: the scenario's gate [default]; history: the P99 of failed requests per "
                   "rollout over past runs of the same scenario, platform and parameters, never below --floor")
    p.add_argument("--history", metavar="DB", default=None,
                   help="history store [$ROLLOUT_HARNESS_HISTORY or reports/history.sqlite]")
    p.add_argument("--floor", type=float, default=0.0, metavar="N",
                   help="with --baseline history: failed requests per rollout the limit never goes below [0]")
    p.add_argument("--min-history", type=int, default=5, metavar="N",
                   help="with --baseline history: fewer past rollouts than this is inconclusive [5]")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.report.series import is_series_dir, load_series

    if args.baseline == "history":
        return _history(args)
    if is_series_dir(args.run_dir):
        v = load_series(args.run_dir).get("verdict") or {}
        print(v.get("headline", "INCONCLUSIVE: the series has no verdict (run with its report)"))
        return int(v.get("exit_code", 3))
    from harness.analysis import analyse

    summary = analyse(args.run_dir).summary
    v = summary["verdict"]
    top = summary["findings"][0]["title"] if summary["findings"] else None
    print(v["headline"] + (f" — top finding: {top}" if top and v["status"] != "pass" else ""))
    return int(v["exit_code"])


def _history(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.analysis.aggregate import headline
    from harness.errors import BadInput
    from harness.report.history import history, judge, key_of
    from harness.report.series import history_path, is_series_dir, load_series

    if args.floor < 0 or args.min_history < 1:
        raise BadInput("--floor must be >= 0 and --min-history >= 1")
    db = Path(args.history) if args.history else history_path()
    if is_series_dir(args.run_dir):
        meta = load_series(args.run_dir)
        rollouts, dump, platform = meta.get("rollouts") or [], meta["scenario"], meta["platform"]
    else:
        from harness.analysis import analyse

        a = analyse(args.run_dir)
        rollouts = [headline(a.summary)]
        dump, platform = a.run.manifest.get("scenario") or {}, a.summary.get("platform") or "local"
    past = history(db, key_of(dump, platform), exclude_run_dirs={r["run_dir"] for r in rollouts if r.get("run_dir")})
    v = judge(rollouts, past, floor=args.floor, min_history=args.min_history)
    print(v["headline"])
    return int(v["exit_code"])
