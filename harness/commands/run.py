"""`rollout-harness run SCENARIO`: a rollout under load, recorded, reported, gated."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EPILOG = """\
examples:
  rollout-harness run scenarios/best-practice.yaml
  rollout-harness run scenarios/no-prestop.yaml --set traffic.rate=800 --set disruption.settleSeconds=5
  rollout-harness run my-service.yaml --platform kubernetes --out reports/ci/run-1

Writes reports/<scenario>/<run-id>/ (or --out): manifest.json, requests/*.arrow,
events.jsonl, logs/<pod>.log, summary.json and the report. Exit code: 0 pass,
1 fail (the gate), 2 bad input, 3 inconclusive (rollout stuck, app cannot
start, engine fell behind, target failing before the rollout), 130 interrupted.
"""


def register(sub) -> None:
    p = sub.add_parser("run", help="roll out a service under load and judge the result",
                       description="Deploy the scenario's app, fire open-loop traffic, trigger the rollout, "
                       "record every request and pod step, report and gate.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", metavar="SCENARIO", help="scenario YAML file (see docs/scenarios.md)")
    p.add_argument("--platform", default="local", help="local (default: replicas as processes here) or kubernetes")
    p.add_argument("--out", metavar="DIR", help="run dir to create [reports/<scenario>/<run-id>]")
    p.add_argument("--manifests", action="append", default=[], metavar="FILE",
                   help="take the workload from Kubernetes manifests (repeatable; '-' reads stdin, e.g. "
                   "`helm template ... | rollout-harness run s.yaml --manifests -`); see docs/manifests.md")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                   help="override a scenario field, e.g. --set traffic.rate=1000 (repeatable)")
    p.add_argument("--no-report", action="store_true",
                   help="skip the report (charts, index.html, junit.xml); summary.json, the verdict and "
                   "its exit code are still written and given")
    p.add_argument("--quiet", "-q", action="store_true", help="no live progress")
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="N rollouts in one invocation, one verdict with confidence bounds (docs/proof.md)")
    p.add_argument("--lanes", type=int, default=1, metavar="L",
                   help="with --repeat: L Deployments side by side, each rolled out in turn [1]")
    p.add_argument("--every-report", action="store_true",
                   help="with --repeat: a full report for every rollout (default: for those that did not pass; "
                   "each still gets summary.json, and `report RUN_DIR` renders one later)")
    p.add_argument("--verify-fix", action="store_true",
                   help="run, apply the top finding's Deployment-level fix, run again, compare before/after")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.errors import BadInput
    from harness.model.rundir import default_run_dir
    from harness.model.generators import check_generators
    from harness.model.scenario import load_scenario
    from harness.runner import check_platform, run_scenario
    from harness.traffic.progress import Progress

    # bad input: exit 2 before anything is created
    scenario = load_scenario(args.scenario, args.overrides, manifests=getattr(args, "manifests", None) or None)
    check_platform(args.platform)
    check_generators(scenario, args.platform)
    if args.repeat != 1 or args.lanes != 1 or args.verify_fix:
        from harness.commands.repeat import run_repeated

        return run_repeated(args, scenario)
    run_dir = Path(args.out) if args.out else default_run_dir(scenario.name)
    if run_dir.exists() and any(run_dir.iterdir()):
        raise BadInput(f"--out {run_dir}: directory exists and is not empty; give a new run dir")
    if run_dir.exists():
        run_dir.rmdir()
    progress = None if args.quiet else Progress(label=scenario.name, asked_rate=scenario.traffic.rate, transient=True)
    if progress is not None:
        with progress:
            outcome = run_scenario(scenario, platform=args.platform, run_dir=run_dir, report=not args.no_report,
                                   progress=progress)
    else:
        outcome = run_scenario(scenario, platform=args.platform, run_dir=run_dir, report=not args.no_report)
    print_summary(outcome)
    if outcome.reported:
        from harness.commands.repeat import record_run

        record_run(outcome.summary, scenario, args.platform)
    return outcome.exit_code


def print_summary(outcome) -> None:
    from rich.console import Console

    console = Console(file=sys.stdout)
    s = outcome.summary
    verdict = s.get("verdict") or {}
    status = verdict.get("status") or outcome.status
    style = {"pass": "bold green", "fail": "bold red"}.get(status, "bold yellow")
    console.print(f"[{style}]{status.upper()}[/]  run {outcome.status}  exit {outcome.exit_code}")
    if outcome.error:
        console.print(outcome.error, style="yellow", soft_wrap=True, markup=False, highlight=False)
    if s.get("total") is not None:
        outcomes = {k: v for k, v in (s.get("outcomes") or {}).items() if k != "ok"}
        console.print(f"requests {s.get('total', 0):,}  failed {s.get('failed', 0):,}"
                      + (f" ({', '.join(f'{k} {v:,}' for k, v in sorted(outcomes.items()))})" if outcomes else "")
                      + f"  rate {s.get('achieved_rate', 0):,.0f}/{s.get('asked_rate', 0):,.0f} req/s")
        lat, lag = s.get("latency_ms") or {}, s.get("send_lag_ms") or {}
        if lat.get("p99") is not None:
            console.print(f"latency p50 {lat.get('p50')} ms  p99 {lat.get('p99')} ms  max {lat.get('max')} ms"
                          f"   send lag p99 {lag.get('p99')} ms")
        during = ((s.get("phases") or {}).get("disruption") or {}).get("outcomes") or {}
        fails = {k: v for k, v in during.items() if k != "ok"}
        if during:
            console.print("during the rollout: " + (", ".join(f"{k} {v:,}" for k, v in sorted(fails.items()))
                                                    if fails else "no failed request"))
    view = s.get("client_view") or {}
    if view.get("failed"):
        console.print(f"client view: {view['sentence']}", soft_wrap=True, markup=False)
    for f in (s.get("findings") or [])[:3]:
        title = f.get("title") or f.get("cause") or str(f)
        console.print(f"  finding: {title}", soft_wrap=True, markup=False)
    console.print(f"run dir: {outcome.run_dir}" + ("  (report: index.html)" if outcome.reported else ""))
