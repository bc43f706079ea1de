"""`run --repeat N` and `run --verify-fix`: many rollouts, one verdict; and
the top finding's fix applied and verified by a second run.

Called from harness/commands/run.py (the options live on `run`); this
module holds the flows so `run` stays a thin command.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from harness.errors import EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_PASS, BadInput


def record_run(summary: dict[str, Any], scenario, platform: str) -> None:
    """A single run goes into the history too (a series of one)."""
    from harness.analysis.aggregate import headline
    from harness.report.history import record
    from harness.report.series import history_path

    if summary.get("verdict") and summary.get("status") == "complete":
        record(history_path(), scenario.dump(), platform, [headline(summary)])


def _new_dir(args: argparse.Namespace, scenario, kind: str) -> Path:
    from harness.model.rundir import new_run_id

    out = Path(args.out) if args.out else Path("reports") / scenario.name / f"{kind}-{new_run_id()}"
    if out.exists() and any(out.iterdir()):
        raise BadInput(f"--out {out}: directory exists and is not empty; give a new dir")
    if out.exists():
        out.rmdir()
    return out


def run_repeated(args: argparse.Namespace, scenario) -> int:
    if args.repeat < 1:
        raise BadInput(f"--repeat {args.repeat}: give a number of rollouts >= 1")
    if args.lanes < 1:
        raise BadInput(f"--lanes {args.lanes}: give a number of lanes >= 1")
    if args.verify_fix:
        return verify_fix(args, scenario)
    out = _new_dir(args, scenario, "series")
    res = _series(args, scenario, out)
    return res["exit_code"]


def _series(args, scenario, out: Path) -> dict[str, Any]:
    """N rollouts (a series) or one run; the figures the caller prints."""
    from harness.series import run_series

    o = run_series(scenario, platform=args.platform, series_dir=out, repeat=args.repeat, lanes=args.lanes,
                   report=not args.no_report, every_report=args.every_report, quiet=args.quiet)
    print_series(o.summary, out)
    return {"exit_code": o.exit_code, "summary": o.summary, "dir": out}


def print_series(meta: dict[str, Any], out: Path) -> None:
    v = meta.get("verdict") or {}
    a = meta.get("aggregate") or {}
    print(v.get("headline", meta.get("status")))
    for r in meta.get("rollouts", []):
        print(f"  rollout {r['index']:2d}: {r['status']:<12} failed {r['failed_requests']:>5} of "
              f"{r['window_requests']:>6}" + (f"  top: {r['top_title']}" if r.get("top_title") else "")
              + ("" if r["status"] in ("pass", "fail") else f"  ({r['headline']})"))
    rf, fr, rq = a.get("rollout_failure"), a.get("failed_requests"), a.get("requests")
    if rf:
        print(f"failed rollouts {rf['k']}/{rf['n']}, 95% interval [{rf['interval'][0]:.3f}, {rf['interval'][1]:.3f}];"
              f" failed requests per rollout mean {fr['mean']} max {fr['max']}")
        print(f"per-request failure rate {fr['total']}/{rq['window_total']}, upper bound {rq['upper']:.3g}; "
              f"detection limit {rq['detection_limit_per_rollout']:.3g} per rollout, "
              f"{rq['detection_limit_series']:.3g} over the series")
    print(f"series dir: {out}  (report: index.html)")


def _single(args, scenario, out: Path) -> dict[str, Any]:
    from harness.commands.run import print_summary
    from harness.runner import run_scenario

    o = run_scenario(scenario, platform=args.platform, run_dir=out, report=True)
    print_summary(o)
    if o.reported:
        record_run(o.summary, scenario, args.platform)
    return {"exit_code": o.exit_code, "summary": o.summary, "dir": out}


def _status(res: dict[str, Any]) -> str:
    return (res["summary"].get("verdict") or {}).get("status", "inconclusive")


def _findings(res: dict[str, Any]) -> list[dict[str, Any]]:
    """The single run's findings, or the findings of the series' first failing rollout."""
    from harness.report.series import _read_summary

    s = res["summary"]
    if "aggregate" not in s:
        return s.get("findings") or []
    for r in s.get("rollouts", []):
        if r["status"] == "fail" and r.get("run_dir"):
            got = _read_summary(Path(r["run_dir"]))
            if got:
                return got.get("findings") or []
    return []


def _explains(findings: list[dict[str, Any]], rule: str | None) -> bool:
    """Whether a finding of ``rule`` still explains failed requests."""
    return any(f.get("rule") == rule and int(f.get("failures") or 0) > 0 for f in findings)


def _failed(res: dict[str, Any]) -> int:
    """Failed requests in the rollout window(s): the run's, or the series' total."""
    s = res["summary"]
    if "aggregate" in s:
        return int(((s["aggregate"].get("failed_requests") or {}).get("total")) or 0)
    return int((s.get("rollout_window") or {}).get("service_failed") or 0)


def _representative(res: dict[str, Any]) -> Path:
    """The run dir a comparison shows: the run itself, or the series' worst rollout."""
    s = res["summary"]
    if "aggregate" not in s:
        return res["dir"]
    rows = [r for r in s.get("rollouts", []) if r.get("run_dir")]
    if not rows:
        raise BadInput(f"{res['dir']}: no rollout produced a run dir to compare")
    return Path(max(rows, key=lambda r: (r["status"] == "fail", r["failed_requests"]))["run_dir"])


def _once_more_if_blind(run, args, scenario, out: Path) -> dict[str, Any]:
    """A run that could not see (a busy machine) is run once more, into
    <dir>-2; the first attempt stays where it is, named in verify-fix.json."""
    res = run(args, scenario, out)
    if _status(res) != "inconclusive":
        return res
    print(f"== {out.name} could not see ({(res['summary'].get('verdict') or {}).get('headline', '')}); "
          "once more", flush=True)
    again = run(args, scenario, out.with_name(out.name + "-2"))
    again["first_attempt"] = str(out)
    return again


def verify_fix(args: argparse.Namespace, scenario) -> int:
    """Before: the scenario as given. Then the top finding's Deployment-level
    fix applied to it, after: the same traffic and disruption again; one
    before/after comparison. Exit 0 only when before failed and after passed."""
    from harness.analysis.fixes import deployment_fix, top_failing_finding
    from harness.model.rundir import write_json_atomic
    from harness.model.scenario import load_scenario
    from harness.report.compare import write_compare

    manifests = getattr(args, "manifests", None) or None
    if manifests and "-" in manifests:
        raise BadInput("--verify-fix with --manifests -: the fixed scenario is loaded again, so give the "
                       "manifests as files, not on stdin")
    base = _new_dir(args, scenario, "verify-fix")
    base.mkdir(parents=True)
    many = args.repeat > 1
    run = _series if many else _single
    print(f"== before: {scenario.name} as given", flush=True)
    before = _once_more_if_blind(run, args, scenario, base / "before")
    record: dict[str, Any] = {"kind": "verify-fix", "scenario": scenario.name, "platform": args.platform,
                              "repeat": args.repeat, "before": {"dir": str(before["dir"]), "status": _status(before),
                                                                "exit_code": before["exit_code"],
                                                                "first_attempt": before.get("first_attempt")}}
    if _status(before) not in ("fail", "flaky"):
        record["result"] = f"nothing to verify: the run before the fix is {_status(before)}"
        write_json_atomic(base / "verify-fix.json", record)
        print(record["result"])
        return before["exit_code"] if _status(before) != "pass" else EXIT_PASS
    finding = top_failing_finding(_findings(before))
    fix = deployment_fix(finding, scenario)
    record["finding"] = {k: finding.get(k) for k in ("rule", "title", "fix")} if finding else None
    record["fix"] = fix.as_dict()
    if not fix.applicable:
        record["result"] = f"not applied: {fix.text}"
        write_json_atomic(base / "verify-fix.json", record)
        print(f"fix for {fix.rule or 'the failure'}: {record['result']}")
        return EXIT_FAIL
    overrides = list(args.overrides) + fix.overrides + [f"name={scenario.name}-fixed"]
    fixed = load_scenario(args.scenario, overrides, manifests=manifests)
    print(f"== after: {fixed.name} with the fix for {fix.rule}: {fix.text} ({' '.join(fix.overrides)})", flush=True)
    after = _once_more_if_blind(run, args, fixed, base / "after")
    record["after"] = {"dir": str(after["dir"]), "status": _status(after), "exit_code": after["exit_code"],
                       "overrides": overrides, "first_attempt": after.get("first_attempt")}
    cmp = write_compare([_representative(before), _representative(after)], base)
    record["compare"] = cmp["html"]
    verified = _status(after) == "pass"
    counts = f"failed requests {_failed(before)} -> {_failed(after)}"
    if verified:
        record["result"] = f"verified: before {_status(before)}, after pass ({counts})"
    else:
        left = top_failing_finding(_findings(after))
        record["remaining"] = deployment_fix(left, fixed).as_dict() if left else None
        gone = _status(after) in ("fail", "flaky") and not _explains(_findings(after), fix.rule)
        record["fixed_finding_gone"] = gone
        view = after["summary"].get("client_view") or {}
        retried = view.get("visible") == 0 and _failed(after) > 0 and "aggregate" not in after["summary"]
        record["after"]["client_visible_failures"] = view.get("visible")
        record["result"] = (f"not verified: after the fix the run is {_status(after)} ({counts})"
                            + (f"; the {fix.rule} fix removed the failures it explains (no {fix.rule} finding "
                               "after)" if gone else "")
                            + ("; every failure left is one a client that replays an idempotent request on a "
                               "closed keep-alive connection retries transparently (0 visible; gate.countFailures: "
                               "clientVisible would pass it)" if retried else "")
                            + (f"; what remains is {left['rule']}: {deployment_fix(left, fixed).text}" if left else ""))
    record["finished_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    write_json_atomic(base / "verify-fix.json", record)
    print(f"{record['result']}  — comparison: {cmp['html']}")
    if verified:
        return EXIT_PASS
    return EXIT_INCONCLUSIVE if _status(after) == "inconclusive" else EXIT_FAIL


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: rollout-harness run SCENARIO --repeat N | --verify-fix")
